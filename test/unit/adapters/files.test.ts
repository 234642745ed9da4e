import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeAtomic } from '../../../src/adapters/files.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

void describe('writeAtomic', () => {
  void it('creates parents with the folder mode and the file with its mode, leaving no temp file', async () => {
    const file = join(dir, 'a', 'b', 'keys.txt');
    await writeAtomic(file, 'x\n', { mode: 0o600, dirMode: 0o700 });
    assert.equal(readFileSync(file, 'utf8'), 'x\n');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'a', 'b')).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(join(dir, 'a', 'b')), ['keys.txt']);
  });

  void it('keeps the mode of a file it replaces', async () => {
    const file = join(dir, 'script.sh');
    writeFileSync(file, 'old');
    chmodSync(file, 0o750);
    await writeAtomic(file, 'new');
    assert.equal(readFileSync(file, 'utf8'), 'new');
    assert.equal(statSync(file).mode & 0o777, 0o750);
  });

  void it('refuses to replace an existing file when exclusive, keeping its content', async () => {
    const file = join(dir, 'key.txt');
    writeFileSync(file, 'precious');
    await assert.rejects(writeAtomic(file, 'other', { exclusive: true }), (e: unknown) => e instanceof FluxstrapError && e.code === 'E_PRECONDITION');
    assert.equal(readFileSync(file, 'utf8'), 'precious');
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tmp')).length, 0);
  });

  void it('names the file when the target is a directory', async () => {
    const target = join(dir, 'adir');
    mkdirSync(target);
    await assert.rejects(writeAtomic(target, 'x'), (e: unknown) => e instanceof FluxstrapError && e.location?.file === target && /directory/.test(e.message));
  });
});
