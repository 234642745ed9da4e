import { rmSync } from 'node:fs';
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const made: string[] = [];
// At process exit rather than in an `after` hook: a hook registered from inside another hook or
// a test belongs to that scope and would remove the folder while later tests still use it.
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp folder, removed when the test process ends. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `fluxstrap-${prefix}-`));
  made.push(dir);
  return dir;
}

/**
 * Every file under `dir` (except .git) with its content and mode, keyed by relative path: compare
 * two snapshots to prove a command changed nothing, or changed exactly what it said.
 */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.name === '.git') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out[relative(dir, p)] = `${((await stat(p)).mode & 0o777).toString(8)} ${await readFile(p, 'utf8')}`;
    }
  }
  await walk(dir);
  return out;
}

/** Temp files a writer might leave behind (writeAtomic names them `.<name>.<hex>.tmp`). */
export async function leftoverTempFiles(dir: string): Promise<string[]> {
  const found = Object.keys(await snapshot(dir));
  return found.filter((f) => f.endsWith('.tmp'));
}
