import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { formatAgeKeyFile } from '../../../src/keys/age.ts';
import { generateAgeIdentity } from '../../../src/keys/generate.ts';
import { newStanza } from '../../../src/sops/datakey.ts';
import { encryptDocument } from '../../../src/sops/engine.ts';
import { ageIdentitiesRetiredKind, ageKeyAppendedKind, readIdentities } from '../../../src/tasks/age-key-file.ts';
import type { AgeIdentitiesRetiredParams } from '../../../src/tasks/age-key-file.ts';
import type { RepoContext } from '../../../src/tasks/file-content.ts';
import { tempDir } from '../../helpers/tmp.ts';

/** The key file's steps of `keys rotate`, against real key files and a real sops file. */

let repo: string;
let keyFile: string;
let old: { secret: string; recipient: string };
let ctx: RepoContext;
const run = { check: false };

before(async () => {
  repo = await tempDir('age-key-file');
  keyFile = join(repo, 'keys.txt');
  old = await generateAgeIdentity(false);
  await writeFile(keyFile, formatAgeKeyFile(old, new Date(0)), { mode: 0o600 });
  ctx = { paths: { repo } };
});

void describe('age-key-appended', () => {
  void it('plans the planned recipient, never the private key, appends it once', async () => {
    const fresh = await generateAgeIdentity(false);
    const p = { file: keyFile, identity: { ...fresh, postQuantum: false } };
    const changes = ageKeyAppendedKind.plan(p, await ageKeyAppendedKind.observe(p, ctx, run), ctx);
    assert.deepEqual(
      changes.map((c) => c.summary),
      [`append a new age identity: ${fresh.recipient}`],
    );
    assert.doesNotMatch(JSON.stringify(changes.map(({ data: _d, ...view }) => view)), /AGE-SECRET-KEY/);
    for (const c of changes) await ageKeyAppendedKind.apply(c, p, ctx);
    assert.deepEqual(
      (await readIdentities(keyFile)).map((i) => i.recipient),
      [old.recipient, fresh.recipient],
    );
    assert.deepEqual(ageKeyAppendedKind.plan(p, await ageKeyAppendedKind.observe(p, ctx, run), ctx), [], 'converged');
  });

  void it('under --check the placeholder is planned, and apply would refuse it', async () => {
    const p = { file: keyFile, identity: { recipient: '<new age recipient>', postQuantum: false } };
    const [change] = ageKeyAppendedKind.plan(p, await ageKeyAppendedKind.observe(p, ctx, { check: true }), ctx);
    assert.ok(change);
    await assert.rejects(ageKeyAppendedKind.apply(change, p, ctx), /without its private key/);
  });
});

void describe('age-identities-retired', () => {
  const params = (): AgeIdentitiesRetiredParams => ({
    file: keyFile,
    recipients: [old.recipient],
    clusterPath: 'clusters/prod',
    again: 'fluxstrap keys rotate --cluster prod --finish',
  });

  void it('refuses while a file under the cluster is encrypted to the identity; the hint follows check mode', async () => {
    await mkdir(join(repo, 'clusters/prod'), { recursive: true });
    const enc = await encryptDocument(
      Buffer.from('password: x\n'),
      'yaml',
      's.yaml',
      { keyGroups: [[newStanza('age', old.recipient)]], shamirThreshold: 0, rules: {} },
      { age: [], pgpFiles: [], gpg: false },
    );
    await writeFile(join(repo, 'clusters/prod/s.yaml'), enc);
    for (const check of [true, false]) {
      const facts = await ageIdentitiesRetiredKind.observe(params(), ctx, { check });
      assert.throws(
        () => ageIdentitiesRetiredKind.plan(params(), facts, ctx),
        (e: unknown) =>
          e instanceof FluxstrapError &&
          e.code === 'E_PRECONDITION' &&
          e.location?.file === join('clusters', 'prod', 's.yaml') &&
          (check ? /without --check/ : /--finish again/).test(e.hint ?? ''),
      );
    }
  });

  void it('removes the identity and its comment lines, keeping the others', async () => {
    await writeFile(join(repo, 'clusters/prod/s.yaml'), 'not: encrypted\n');
    const p = params();
    const changes = ageIdentitiesRetiredKind.plan(p, await ageIdentitiesRetiredKind.observe(p, ctx, run), ctx);
    assert.equal(changes.length, 1);
    for (const c of changes) await ageIdentitiesRetiredKind.apply(c, p, ctx);
    const left = await readFile(keyFile, 'utf8');
    assert.doesNotMatch(left, new RegExp(old.recipient));
    assert.equal(left.match(/AGE-SECRET-KEY-/g)?.length, 1);
    assert.deepEqual(ageIdentitiesRetiredKind.plan(p, await ageIdentitiesRetiredKind.observe(p, ctx, run), ctx), [], 'converged');
  });
});
