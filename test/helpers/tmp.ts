import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

/** A temp dir holding this file outlives its owner by KEPT_FOR_MS (a failed run's logs). */
export const KEPT_MARKER = 'kept.json';
const KEPT_FOR_MS = 24 * 3600_000;
// A run whose owner has just died may still be being torn down by its watchdog.
const DEAD_GRACE_MS = 5 * 60_000;
const OWNED = /^fluxstrap-.+-pid(\d+)-[A-Za-z0-9]{6}$/;

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the `ownedTempDir`s whose owner process is gone: a SIGKILLed or crashed test process
 * never runs its own cleanup.
 */
export function pruneDeadTempDirs(): void {
  const now = Date.now();
  for (const name of readdirSync(tmpdir())) {
    const owner = OWNED.exec(name)?.[1];
    if (owner === undefined || pidAlive(Number(owner))) continue;
    const dir = join(tmpdir(), name);
    try {
      const kept = statSync(join(dir, KEPT_MARKER), { throwIfNoEntry: false });
      const age = now - (kept ?? statSync(dir)).mtimeMs;
      if (age > (kept === undefined ? DEAD_GRACE_MS : KEPT_FOR_MS)) rmSync(dir, { recursive: true, force: true });
    } catch {
      // Pruned by a concurrent test process first.
    }
  }
}

/**
 * A fresh temp dir whose name carries this process's pid, so that a later test process can tell
 * it is left over from a dead run and remove it. Dead runs' dirs are pruned first.
 */
export function ownedTempDir(prefix: string): string {
  pruneDeadTempDirs();
  return mkdtempSync(join(tmpdir(), `fluxstrap-${prefix}-pid${process.pid}-`));
}

const made: string[] = [];
// At process exit rather than in an `after` hook: a hook registered from inside another hook or
// a test belongs to that scope and would remove the folder while later tests still use it.
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** The folders tempDir made in this process (the leak guard scans them). */
export const tempDirsMade = (): readonly string[] => made;

/** A fresh temp folder, removed when the test process ends (or by a later run if it is killed). */
export function tempDir(prefix: string): Promise<string> {
  const dir = ownedTempDir(prefix);
  made.push(dir);
  return Promise.resolve(dir);
}

/**
 * Every file under `dir` (except .git) with its content and mode, and every symlink with its
 * target, keyed by relative path: compare two snapshots to prove a command changed nothing, or
 * changed exactly what it said (a link replaced by a file is a change).
 */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.name === '.git') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isSymbolicLink()) out[relative(dir, p)] = `-> ${await readlink(p)}`;
      else out[relative(dir, p)] = `${((await stat(p)).mode & 0o777).toString(8)} ${await readFile(p, 'utf8')}`;
    }
  }
  await walk(dir);
  return out;
}

/** Temp files a writer might leave behind (writeAtomic names them `.<name>.<hex>.<new|orig>.tmp`). */
export async function leftoverTempFiles(dir: string): Promise<string[]> {
  const found = Object.keys(await snapshot(dir));
  return found.filter((f) => f.endsWith('.tmp'));
}
