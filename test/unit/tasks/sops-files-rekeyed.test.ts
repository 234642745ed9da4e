import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { FluxstrapError } from '../../../src/core/errors.ts';
import type { AgeIdentity } from '../../../src/keys/age.ts';
import { generateAgeIdentity } from '../../../src/keys/generate.ts';
import { newStanza } from '../../../src/sops/datakey.ts';
import { decryptDocument, encryptDocument, parseEncrypted } from '../../../src/sops/engine.ts';
import { stanzaField, stanzaName } from '../../../src/sops/metadata.ts';
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
const step = (change: Partial<SopsFilesRekeyedParams>, clusterPath = 'clusters/prod'): SopsFilesRekeyedParams => kind.params.parse({ clusterPath, ...change });

async function converge(params: SopsFilesRekeyedParams, ctx: RekeyContext): Promise<string[]> {
  const changes = kind.plan(params, await kind.observe(params, ctx, { check: false }), ctx);
  for (const c of changes) await kind.apply(c, params, ctx);
  assert.deepEqual(kind.plan(params, await kind.observe(params, ctx, { check: false }), ctx), [], 'a second run has nothing to do');
  return changes.map((c) => `${c.action} ${c.target}: ${c.summary}`);
}

const current = async () => Buffer.from(await readFile(join(repo, FILE)));
const opens = async (identity: AgeIdentity) =>
  decryptDocument(await current(), 'yaml', FILE, { age: [identity], pgpFiles: [], gpg: false }).then(
    () => true,
    () => false,
  );

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
    const done = await converge(step({ add: [{ recipient: fresh.recipient, besides: old.recipient }] }), ctxWith([old]));
    assert.deepEqual(done, [`update file ${FILE}: data key re-encrypted for ${fresh.recipient} too`]);
    const after = parseEncrypted(await current(), 'yaml', FILE);
    assert.equal(after.metadata.mac, before.metadata.mac);
    assert.deepEqual(after.branches, before.branches);
    assert.ok((await opens(old)) && (await opens(fresh)));
  });

  void it('removing a recipient rotates the data key: the removed key no longer opens the file', async () => {
    const before = parseEncrypted(await current(), 'yaml', FILE);
    const done = await converge(step({ remove: [old.recipient] }), ctxWith([fresh]));
    assert.deepEqual(done, [`update file ${FILE}: new data key for ${fresh.recipient} (drops ${old.recipient})`]);
    assert.notEqual(parseEncrypted(await current(), 'yaml', FILE).metadata.mac, before.metadata.mac);
    assert.ok(await opens(fresh));
    assert.equal(await opens(old), false);
  });

  void it('a file no key at hand opens is a one-line error naming it', async () => {
    const p = step({ add: [{ recipient: old.recipient, besides: fresh.recipient }] });
    const ctx = ctxWith([old]);
    const [change] = kind.plan(p, await kind.observe(p, ctx, { check: false }), ctx);
    assert.ok(change);
    await assert.rejects(
      kind.apply(change, p, ctx),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_DECRYPT' && e.location?.file === FILE && !e.message.includes('\n'),
    );
  });
});

/** A Shamir file: three key groups, any two of which open it; the first holds the key being rotated. */
void describe('sops-files-rekeyed with key groups (Shamir)', () => {
  const SHAMIR = 'clusters/shamir/secret.yaml';
  let cluster: AgeIdentity;
  let next: AgeIdentity;
  let second: AgeIdentity;
  let third: AgeIdentity;
  const identity = async (): Promise<AgeIdentity> => ({ ...(await generateAgeIdentity(false)), source: 'test', line: 1, postQuantum: false });
  const bytes = async () => Buffer.from(await readFile(join(repo, SHAMIR)));
  const opensWith = async (...ids: AgeIdentity[]) =>
    decryptDocument(await bytes(), 'yaml', SHAMIR, { age: ids, pgpFiles: [], gpg: false }).then(
      (b) => b.toString().includes('s3cret'),
      () => false,
    );
  const groups = async () => parseEncrypted(await bytes(), 'yaml', SHAMIR).metadata.keyGroups.map((g) => g.map(stanzaName));
  const rotation = (change: Partial<SopsFilesRekeyedParams>) => step(change, 'clusters/shamir');

  before(async () => {
    [cluster, next, second, third] = [await identity(), await identity(), await identity(), await identity()];
    await mkdir(join(repo, 'clusters/shamir'), { recursive: true });
    const plain = Buffer.from('apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: s3cret\n');
    const keyGroups = [[newStanza('age', cluster.recipient)], [newStanza('age', second.recipient)], [newStanza('age', third.recipient)]];
    const none = { age: [], pgpFiles: [], gpg: false };
    await writeFile(join(repo, SHAMIR), await encryptDocument(plain, 'yaml', SHAMIR, { keyGroups, shamirThreshold: 2, rules: {} }, none));
  });

  void it("phase 1: the new recipient joins the old one's group only, with the old key alone at hand; nothing else changes", async () => {
    const before = parseEncrypted(await bytes(), 'yaml', SHAMIR);
    const p = rotation({ add: [{ recipient: next.recipient, besides: cluster.recipient }] });
    const [change] = kind.plan(p, await kind.observe(p, ctxWith([]), { check: false }), ctxWith([]));
    assert.equal(change?.before, `group 1: age:${cluster.recipient}\ngroup 2: age:${second.recipient}\ngroup 3: age:${third.recipient}\n`);
    assert.equal(
      change?.after,
      `group 1: age:${cluster.recipient}\ngroup 1: age:${next.recipient}\ngroup 2: age:${second.recipient}\ngroup 3: age:${third.recipient}\n`,
    );
    assert.deepEqual(await converge(p, ctxWith([cluster])), [`update file ${SHAMIR}: data key re-encrypted for ${next.recipient} (group 1) too`]);
    const after = parseEncrypted(await bytes(), 'yaml', SHAMIR);
    assert.deepEqual(await groups(), [[cluster.recipient, next.recipient], [second.recipient], [third.recipient]]);
    assert.equal(after.metadata.mac, before.metadata.mac);
    assert.deepEqual(after.branches, before.branches);
    assert.equal(after.metadata.shamirThreshold, 2);
    const encs = (md: typeof after.metadata) => md.keyGroups.map((g) => g.map((s) => stanzaField(s, 'enc')));
    assert.deepEqual(
      encs(after.metadata).map((g, i) => g.slice(0, encs(before.metadata)[i]?.length)),
      encs(before.metadata),
      'the stanzas that were there are untouched',
    );
    assert.ok(await opensWith(next, second), 'new key + group 2');
    assert.ok(await opensWith(cluster, third), 'old key + group 3');
    assert.equal(await opensWith(cluster, next), false, 'two keys of one group are one share');
  });

  void it('phase 2: the old recipient leaves its group; a new data key split again with the same threshold shuts it out', async () => {
    const before = parseEncrypted(await bytes(), 'yaml', SHAMIR);
    const p = rotation({ add: [{ recipient: next.recipient, besides: cluster.recipient }], remove: [cluster.recipient] });
    await assert.rejects(
      converge(p, ctxWith([next, cluster])),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_DECRYPT' && e.location?.file === SHAMIR,
      'a new data key takes the keys of a threshold of groups',
    );
    const done = await converge(p, ctxWith([next, second]));
    assert.deepEqual(done, [`update file ${SHAMIR}: new data key for ${next.recipient}, ${second.recipient}, ${third.recipient} (drops ${cluster.recipient})`]);
    const after = parseEncrypted(await bytes(), 'yaml', SHAMIR);
    assert.deepEqual(await groups(), [[next.recipient], [second.recipient], [third.recipient]]);
    assert.notEqual(after.metadata.mac, before.metadata.mac);
    assert.equal(after.metadata.shamirThreshold, 2);
    assert.ok((await opensWith(next, second)) && (await opensWith(next, third)) && (await opensWith(second, third)));
    assert.equal(await opensWith(cluster, second), false);
    assert.equal(await opensWith(next), false, 'one group is not enough');
  });

  void it('refuses to leave a group without a key, naming the file, before changing anything', async () => {
    const p = rotation({ remove: [second.recipient] });
    const was = await bytes();
    await assert.rejects(
      async () => kind.plan(p, await kind.observe(p, ctxWith([]), { check: false }), ctxWith([])),
      (e: unknown) =>
        e instanceof FluxstrapError &&
        e.code === 'E_PRECONDITION' &&
        e.location?.file === SHAMIR &&
        /key group 2 of this file without a key/.test(e.message) &&
        !e.message.includes('\n'),
    );
    assert.deepEqual(await bytes(), was);
  });
});
