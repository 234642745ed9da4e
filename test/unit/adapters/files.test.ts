import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { link, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeAllAtomic, writeAtomic, type BatchWrite, type CommitOps } from '../../../src/adapters/files.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { snapshot } from '../../helpers/tmp.ts';

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

void describe('writeAtomic through symlinks', () => {
  void it('writes the target of a symlink (and of a chain of them), keeping the links and the target mode', async () => {
    const sub = mkdtempSync(join(dir, 'links-'));
    const real = join(sub, 'real.yaml');
    writeFileSync(real, 'password: hunter2\n');
    chmodSync(real, 0o640);
    symlinkSync('real.yaml', join(sub, 'link.yaml'));
    mkdirSync(join(sub, 'other'));
    symlinkSync('../link.yaml', join(sub, 'other', 'link2.yaml'));
    await writeAtomic(join(sub, 'other', 'link2.yaml'), 'password: ENC[…]\n');
    assert.equal(readFileSync(real, 'utf8'), 'password: ENC[…]\n');
    assert.equal(statSync(real).mode & 0o777, 0o640);
    assert.ok(lstatSync(join(sub, 'link.yaml')).isSymbolicLink());
    assert.ok(lstatSync(join(sub, 'other', 'link2.yaml')).isSymbolicLink());
    assert.deepEqual(readdirSync(sub).sort(), ['link.yaml', 'other', 'real.yaml']);
    assert.deepEqual(readdirSync(join(sub, 'other')), ['link2.yaml']);
  });

  void it('creates the target of a dangling symlink, and stops at a symlink loop with a one-line error', async () => {
    const sub = mkdtempSync(join(dir, 'dangling-'));
    symlinkSync('made.yaml', join(sub, 'link.yaml'));
    await writeAtomic(join(sub, 'link.yaml'), 'x\n');
    assert.equal(readFileSync(join(sub, 'made.yaml'), 'utf8'), 'x\n');
    assert.ok(lstatSync(join(sub, 'link.yaml')).isSymbolicLink());
    symlinkSync('b', join(sub, 'a'));
    symlinkSync('a', join(sub, 'b'));
    await assert.rejects(
      writeAtomic(join(sub, 'a'), 'x'),
      (e: unknown) => e instanceof FluxstrapError && e.location?.file === join(sub, 'a') && e.message === 'cannot write file: ELOOP',
    );
  });

  void it('with `within`, follows links that stay inside the folder and refuses those that lead out, touching nothing', async () => {
    const sub = mkdtempSync(join(dir, 'within-'));
    const repo = join(sub, 'repo');
    mkdirSync(join(repo, 'clusters'), { recursive: true });
    writeFileSync(join(sub, 'bashrc'), 'mine\n');
    writeFileSync(join(repo, 'real.yaml'), 'old\n');
    symlinkSync('real.yaml', join(repo, 'inside.yaml'));
    symlinkSync('../bashrc', join(repo, '.gitignore'));
    symlinkSync(join('..', '..'), join(repo, 'clusters', 'out'));
    await writeAtomic(join(repo, 'inside.yaml'), 'new\n', { within: repo });
    assert.equal(readFileSync(join(repo, 'real.yaml'), 'utf8'), 'new\n');
    // A link to the file, a folder link above the file (existing, and new).
    for (const out of [join(repo, '.gitignore'), join(repo, 'clusters', 'out', 'bashrc'), join(repo, 'clusters', 'out', 'x.yaml')]) {
      await assert.rejects(
        writeAtomic(out, 'evil\n', { within: repo }),
        (e: unknown) => e instanceof FluxstrapError && e.code === 'E_PRECONDITION' && e.location?.file === out,
        out,
      );
    }
    assert.equal(readFileSync(join(sub, 'bashrc'), 'utf8'), 'mine\n');
    assert.deepEqual(readdirSync(sub).sort(), ['bashrc', 'repo']);
  });

  void it('still refuses to overwrite a key through a symlink when exclusive', async () => {
    const sub = mkdtempSync(join(dir, 'key-link-'));
    writeFileSync(join(sub, 'key.txt'), 'precious');
    symlinkSync('key.txt', join(sub, 'link.txt'));
    await assert.rejects(
      writeAtomic(join(sub, 'link.txt'), 'other', { exclusive: true }),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_PRECONDITION',
    );
    assert.equal(readFileSync(join(sub, 'key.txt'), 'utf8'), 'precious');
  });
});

/** Three files, the second a symlink to a file in another folder and the third a new file. */
async function batchFixture(): Promise<{ sub: string; writes: BatchWrite[]; before: Record<string, string> }> {
  const sub = mkdtempSync(join(dir, 'batch-'));
  mkdirSync(join(sub, 'elsewhere'));
  writeFileSync(join(sub, 'a.yaml'), 'a: plain\n');
  writeFileSync(join(sub, 'elsewhere', 'b.yaml'), 'b: plain\n');
  chmodSync(join(sub, 'elsewhere', 'b.yaml'), 0o600);
  symlinkSync(join('elsewhere', 'b.yaml'), join(sub, 'b.yaml'));
  const writes = [
    { file: join(sub, 'a.yaml'), content: 'a: ENC\n' },
    { file: join(sub, 'b.yaml'), content: 'b: ENC\n' },
    { file: join(sub, 'c.yaml'), content: 'c: ENC\n' },
  ];
  return { sub, writes, before: await snapshot(sub) };
}

void describe('writeAllAtomic', () => {
  void it('publishes every file of the batch, through symlinks, keeping modes, leaving no temp file', async () => {
    const { sub, writes } = await batchFixture();
    await writeAllAtomic(writes);
    assert.deepEqual(await snapshot(sub), {
      'a.yaml': '644 a: ENC\n',
      'b.yaml': '-> elsewhere/b.yaml',
      'elsewhere/b.yaml': '600 b: ENC\n',
      'c.yaml': '644 c: ENC\n',
    });
  });

  for (const failAt of [1, 2, 3]) {
    void it(`leaves every file as it was when rename ${failAt} of 3 fails`, async () => {
      const { sub, writes, before } = await batchFixture();
      let calls = 0;
      const failing: CommitOps = {
        link,
        rename: async (from, to) => {
          if (++calls === failAt) throw Object.assign(new Error('injected'), { code: 'ENOSPC' });
          await rename(from, to);
        },
      };
      await assert.rejects(
        writeAllAtomic(writes, failing),
        (e: unknown) =>
          e instanceof FluxstrapError && e.message === 'cannot write file: no space left on device' && e.location?.file === writes[failAt - 1]?.file,
      );
      assert.equal(calls, failAt, 'nothing is published after the failure');
      assert.deepEqual(await snapshot(sub), before);
    });
  }

  void it('keeps copies of the originals where hard links are refused, and rolls back from them', async () => {
    const { sub, writes, before } = await batchFixture();
    let renames = 0;
    const noLinks: CommitOps = {
      link: () => Promise.reject(Object.assign(new Error('no hard links here'), { code: 'EPERM' })),
      rename: async (from, to) => {
        if (++renames === 3) throw Object.assign(new Error('injected'), { code: 'EIO' });
        await rename(from, to);
      },
    };
    await assert.rejects(writeAllAtomic(writes, noLinks), (e: unknown) => e instanceof FluxstrapError && e.location?.file === writes[2]?.file);
    assert.deepEqual(await snapshot(sub), before, 'contents and modes restored from the copies, no copy left');
  });

  void it('stages every file before publishing any: a target that refuses its content stops the batch with nothing changed', async () => {
    const { sub, writes, before } = await batchFixture();
    // A folder where the third file should be: refused at staging even for root, who ignores modes.
    mkdirSync(join(sub, 'd.yaml'));
    await assert.rejects(
      writeAllAtomic([...writes.slice(0, 2), { file: join(sub, 'd.yaml'), content: 'd\n' }, ...writes.slice(2)]),
      (e: unknown) => e instanceof FluxstrapError && e.location?.file === join(sub, 'd.yaml') && e.message === 'cannot write file: is a directory',
    );
    assert.deepEqual(await snapshot(sub), before);
  });

  void it('writes a file whose name is near the length limit (temp names are cut short)', async () => {
    const sub = mkdtempSync(join(dir, 'long-'));
    const long = join(sub, `${'x'.repeat(250)}.yaml`);
    writeFileSync(long, 'x: plain\n');
    await writeAllAtomic([{ file: long, content: 'x: ENC\n' }]);
    assert.deepEqual(await snapshot(sub), { [`${'x'.repeat(250)}.yaml`]: '644 x: ENC\n' });
  });

  void it('keeps the last content when two names of the batch are one file', async () => {
    const { sub, writes } = await batchFixture();
    await writeAllAtomic([...writes, { file: join(sub, 'elsewhere', 'b.yaml'), content: 'b: last\n' }]);
    assert.equal(readFileSync(join(sub, 'elsewhere', 'b.yaml'), 'utf8'), 'b: last\n');
    assert.deepEqual(readdirSync(join(sub, 'elsewhere')), ['b.yaml']);
  });
});
