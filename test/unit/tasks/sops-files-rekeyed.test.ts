import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { FluxstrapError } from '../../../src/core/errors.ts';
import type { AgeIdentity } from '../../../src/keys/age.ts';
import { generateAgeIdentity } from '../../../src/keys/generate.ts';
import { decryptDocument, parseEncrypted } from '../../../src/sops/engine.ts';
import { sopsFilesRekeyedKind } from '../../../src/tasks/sops-files-rekeyed.ts';
import type { RekeyContext, SopsFilesRekeyedParams } from '../../../src/tasks/sops-files-rekeyed.ts';
import { tempDir } from '../../helpers/tmp.ts';
import { vectorAgeIdentities, vectorsDir } from '../sops/helpers.ts';

/** The kind against a copy of a Flux test vector: observe → plan → apply, and the plan after. */

const FILE = 'clusters/prod/apps/secret.enc.yaml';
let repo: string;
let old: AgeIdentity;
let fresh: AgeIdentity;

const ctxWith = (identities: AgeIdentity[]): RekeyContext => ({ paths: { repo }, ageIdentities: () => Promise.resolve(identities) });
const kind = sopsFilesRekeyedKind;

async function converge(params: SopsFilesRekeyedParams, ctx: RekeyContext): Promise<string[]> {
  const changes = kind.plan(params, await kind.observe(params, ctx), ctx);
  for (const c of changes) await kind.apply(c, params, ctx);
  assert.deepEqual(kind.plan(params, await kind.observe(params, ctx), ctx), [], 'a second run has nothing to do');
  return changes.map((c) => `${c.action} ${c.target}: ${c.summary}`);
}

const current = async () => Buffer.from(await readFile(join(repo, FILE)));
const opens = async (identity: AgeIdentity) => decryptDocument(await current(), 'yaml', FILE, { age: [identity], pgpFiles: [], gpg: false }).then(() => true, () => false);

before(async () => {
  repo = await tempDir('rekey');
  await mkdir(join(repo, 'clusters/prod/apps'), { recursive: true });
  await copyFile(join(vectorsDir, 'flux-secret-age.enc.yaml'), join(repo, FILE));
  const held = await vectorAgeIdentities();
  old = held.find((i) => i.source.endsWith('flux-key-age.txt')) as AgeIdentity;
  const g = await generateAgeIdentity(false);
  fresh = { ...g, source: 'test', line: 1, postQuantum: false };
});

void describe('sops-files-rekeyed', () => {
  void it('adding a recipient re-encrypts the same data key: values and MAC unchanged, both keys open the file', async () => {
    const before = parseEncrypted(await current(), 'yaml', FILE);
    const done = await converge({ clusterPath: 'clusters/prod', age: [old.recipient, fresh.recipient] }, ctxWith([old]));
    assert.deepEqual(done, [`update file ${FILE}: data key re-encrypted for ${fresh.recipient} too`]);
    const after = parseEncrypted(await current(), 'yaml', FILE);
    assert.equal(after.metadata.mac, before.metadata.mac);
    assert.deepEqual(after.branches, before.branches);
    assert.ok((await opens(old)) && (await opens(fresh)));
  });

  void it('removing a recipient rotates the data key: the removed key no longer opens the file', async () => {
    const before = parseEncrypted(await current(), 'yaml', FILE);
    const done = await converge({ clusterPath: 'clusters/prod', age: [fresh.recipient] }, ctxWith([fresh]));
    assert.deepEqual(done, [`update file ${FILE}: new data key for ${fresh.recipient} (drops ${old.recipient})`]);
    assert.notEqual(parseEncrypted(await current(), 'yaml', FILE).metadata.mac, before.metadata.mac);
    assert.ok(await opens(fresh));
    assert.equal(await opens(old), false);
  });

  void it('a file no key at hand opens is a one-line error naming it', async () => {
    const params = { clusterPath: 'clusters/prod', age: [old.recipient] };
    const ctx = ctxWith([old]);
    const [change] = kind.plan(params, await kind.observe(params, ctx), ctx);
    assert.ok(change);
    await assert.rejects(kind.apply(change, params, ctx), (e: unknown) => e instanceof FluxstrapError && e.code === 'E_DECRYPT' && e.location?.file === FILE && !e.message.includes('\n'));
  });
});
