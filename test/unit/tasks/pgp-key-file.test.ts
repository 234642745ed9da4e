import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { generatePgpKey } from '../../../src/keys/pgp.ts';
import type { PgpKeyPair } from '../../../src/keys/pgp.ts';
import { pgpKeyFileKind } from '../../../src/tasks/pgp-key-file.ts';
import { tempDir } from '../../helpers/tmp.ts';

/** The new key file of `keys rotate --generate`: written once, 0600, never over another file. */

let dir: string;
let key: PgpKeyPair;
const ctx = () => ({ paths: { repo: dir } });
const converge = async (file: string) => {
  const p = { file, fingerprint: key.fingerprint, armored: key.privateKey };
  const changes = pgpKeyFileKind.plan(p, await pgpKeyFileKind.observe(p, ctx(), { check: false }), ctx());
  for (const c of changes) await pgpKeyFileKind.apply(c, p, ctx());
  assert.deepEqual(pgpKeyFileKind.plan(p, await pgpKeyFileKind.observe(p, ctx(), { check: false }), ctx()), [], 'the file written is done');
  return changes;
};

before(async () => {
  dir = await tempDir('pgp-key-file');
  key = await generatePgpKey('ed25519', { name: 'test' });
});

void describe('pgp-key-file', () => {
  void it('creates the file with mode 0600; the change shows the fingerprint, never the key', async () => {
    const file = join(dir, 'keys', 'new.asc');
    const [change] = await converge(file);
    assert.equal(change?.summary, `new OpenPGP key ${key.fingerprint} (no passphrase, mode 0600)`);
    assert.doesNotMatch(JSON.stringify({ ...change, data: undefined }), /PRIVATE KEY/);
    assert.equal(await readFile(file, 'utf8'), key.privateKey);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  void it('refuses a file that exists with anything else, leaving it as it is', async () => {
    const file = join(dir, 'other.asc');
    await writeFile(file, 'not this key\n');
    const p = { file, fingerprint: key.fingerprint, armored: key.privateKey };
    assert.throws(
      () => pgpKeyFileKind.plan(p, { fingerprint: null }, ctx()),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_PRECONDITION' && e.location?.file === file,
    );
    assert.deepEqual(await pgpKeyFileKind.observe(p, ctx(), { check: false }), { fingerprint: null });
    assert.equal(await readFile(file, 'utf8'), 'not this key\n');
  });
});
