import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Decrypter, Encrypter } from 'age-encryption';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { parseAgeKeyFile, recipientOf } from '../../../src/keys/age.ts';
import { newAgeKey } from '../../../src/keys/generate.ts';
import { leftoverTempFiles, tempDir } from '../../helpers/tmp.ts';

const isError = (code: string, text: RegExp) => (e: unknown) => e instanceof FluxstrapError && e.code === code && text.test(e.message);
const mode = async (p: string) => (await stat(p)).mode & 0o777;

/** `fluxstrap keys new --append` in its own process, from the sources; its recipient. */
function cliAppend(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [fileURLToPath(new URL('../../../src/cli.ts', import.meta.url)), 'keys', 'new', '--append', '--out', file],
      (e, stdout, stderr) => {
        if (e) reject(new Error(stderr || e.message));
        else resolve(stdout.trim());
      },
    );
  });
}

async function roundTrip(secret: string, recipient: string): Promise<string> {
  const enc = new Encrypter();
  enc.addRecipient(recipient);
  const dec = new Decrypter();
  dec.addIdentity(secret);
  return dec.decrypt(await enc.encrypt('hello'), 'text');
}

void describe('newAgeKey', () => {
  void it('writes the age-keygen format, 0600 in new 0700 folders, and the recipient opens what it encrypts', async () => {
    const dir = await tempDir('keys');
    const file = join(dir, 'a', 'b', 'keys.txt');
    const now = new Date('2026-01-02T03:04:05.678Z');
    const key = await newAgeKey({ file, postQuantum: false, append: false, now });
    const text = await readFile(file, 'utf8');
    assert.match(text, /^# created: 2026-01-02T03:04:05Z\n# public key: age1[a-z0-9]{58}\nAGE-SECRET-KEY-1[A-Z0-9]{58}\n$/);
    assert.ok(text.includes(`# public key: ${key.recipient}\n`));
    assert.equal(await mode(file), 0o600);
    assert.equal(await mode(join(dir, 'a')), 0o700);
    assert.equal(await mode(join(dir, 'a', 'b')), 0o700);
    const [id] = await parseAgeKeyFile(text, file, recipientOf);
    assert.equal(id?.recipient, key.recipient);
    assert.equal(await roundTrip(id?.secret ?? '', key.recipient), 'hello');
  });

  void it('makes a post-quantum hybrid identity with --pq', async () => {
    const dir = await tempDir('keys');
    const file = join(dir, 'pq.txt');
    const key = await newAgeKey({ file, postQuantum: true, append: false });
    assert.match(key.recipient, /^age1pq1/);
    const [id] = await parseAgeKeyFile(await readFile(file, 'utf8'), file, recipientOf);
    assert.equal(id?.postQuantum, true);
    assert.equal(await roundTrip(id?.secret ?? '', key.recipient), 'hello');
  });

  void it('never overwrites a key file, and leaves no temp file behind', async () => {
    const dir = await tempDir('keys');
    const file = join(dir, 'keys.txt');
    await newAgeKey({ file, postQuantum: false, append: false });
    const before = await readFile(file, 'utf8');
    await assert.rejects(newAgeKey({ file, postQuantum: false, append: false }), isError('E_PRECONDITION', /refusing to overwrite/));
    assert.equal(await readFile(file, 'utf8'), before);
    assert.deepEqual(await leftoverTempFiles(dir), []);
  });

  void it('appends a second identity for rotation, keeping the first one first', async () => {
    const dir = await tempDir('keys');
    const file = join(dir, 'keys.txt');
    const first = await newAgeKey({ file, postQuantum: false, append: true });
    const second = await newAgeKey({ file, postQuantum: false, append: true });
    assert.equal(second.identities, 2);
    const ids = await parseAgeKeyFile(await readFile(file, 'utf8'), file, recipientOf);
    assert.deepEqual(
      ids.map((i) => i.recipient),
      [first.recipient, second.recipient],
    );
    assert.equal(await mode(file), 0o600);
  });

  void it('appends after a file that lacks its final newline', async () => {
    const dir = await tempDir('keys');
    const file = join(dir, 'keys.txt');
    await newAgeKey({ file, postQuantum: false, append: false });
    await writeFile(file, (await readFile(file, 'utf8')).trimEnd(), { mode: 0o600 });
    await newAgeKey({ file, postQuantum: false, append: true });
    assert.equal((await parseAgeKeyFile(await readFile(file, 'utf8'), file, recipientOf)).length, 2);
  });

  void it('appends at the same moment, in one process or several, lose no identity', async () => {
    const dir = await tempDir('keys');
    const file = join(dir, 'keys.txt');
    const first = await newAgeKey({ file, postQuantum: false, append: false });
    const together = await Promise.all([1, 2, 3].map(() => newAgeKey({ file, postQuantum: false, append: true })));
    const processes = await Promise.all([1, 2].map(() => cliAppend(file)));
    const held = await parseAgeKeyFile(await readFile(file, 'utf8'), file, recipientOf);
    assert.deepEqual(new Set(held.map((i) => i.recipient)), new Set([first.recipient, ...together.map((k) => k.recipient), ...processes]));
    assert.equal(held.length, 6);
    assert.equal(await mode(file), 0o600);
    assert.deepEqual(await readdir(dir), ['keys.txt'], 'no lock or temp file left');
  });

  void it('refuses to append to a file that is not a key file, leaving it as it was', async () => {
    const dir = await tempDir('keys');
    const file = join(dir, 'notes.txt');
    await writeFile(file, 'my shopping list\n');
    await assert.rejects(
      newAgeKey({ file, postQuantum: false, append: true }),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_CONFIG' && e.location?.file === file && e.location.line === 1,
    );
    assert.equal(await readFile(file, 'utf8'), 'my shopping list\n');
  });

  void it('says "is a directory" for a directory, with or without --append', async () => {
    const dir = await tempDir('keys');
    await mkdir(join(dir, 'keys.txt'));
    for (const append of [false, true]) {
      await assert.rejects(newAgeKey({ file: join(dir, 'keys.txt'), postQuantum: false, append }), isError('E_IO', /is a directory/));
    }
  });

  void it('names the file when a parent is not a folder', async () => {
    const dir = await tempDir('keys');
    await writeFile(join(dir, 'plain'), 'x');
    await assert.rejects(newAgeKey({ file: join(dir, 'plain', 'keys.txt'), postQuantum: false, append: false }), isError('E_IO', /not a directory/));
  });
});

void describe('age key files: keys kustomize-controller cannot import are named for what they are', () => {
  const where = (line: number) => (e: unknown) => e instanceof FluxstrapError && e.location?.file === 'k.txt' && e.location.line === line;
  void it('an SSH private key (ed25519 or RSA PEM), at its line, never echoed', async () => {
    for (const head of ['-----BEGIN OPENSSH PRIVATE KEY-----', '-----BEGIN RSA PRIVATE KEY-----']) {
      const text = `# cluster key\n${head}\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n`;
      await assert.rejects(
        parseAgeKeyFile(text, 'k.txt', recipientOf),
        (e: unknown) => isError('E_CONFIG', /^an SSH private key is not an age identity/)(e) && where(2)(e) && !JSON.stringify(e).includes('b3BlbnNzaC1rZXkt'),
      );
    }
  });

  void it('an age plugin identity', async () => {
    const text = `AGE-PLUGIN-YUBIKEY-1${'QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L'.repeat(2)}\n`;
    await assert.rejects(
      parseAgeKeyFile(text, 'k.txt', recipientOf),
      (e: unknown) => isError('E_CONFIG', /^an age plugin identity is not a native age identity/)(e) && where(1)(e) && !JSON.stringify(e).includes('QPZRY9X8'),
    );
  });
});
