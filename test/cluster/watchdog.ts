// Kills the cluster's process groups when the process that started them dies without
// stop() (SIGKILL, crash, a test runner timeout), then removes the cluster directory and frees
// its port blocks as stop() would. Linux offers no portable parent-death signal to Node, so this small detached process
// polls its parent instead.
// Usage: node watchdog.ts <parent-pid> <pids-dir> <cluster-dir>
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KEPT_MARKER, pidAlive } from '../helpers/tmp.ts';
import { releaseBlocksOf } from './ports.ts';

interface Kept {
  why: string;
  /** Keep everything, not only the logs. */
  everything: boolean;
}

/** Marks the cluster directory to survive stop() and the watchdog; the first mark wins. */
export function markKept(dir: string, kept: Kept): void {
  try {
    writeFileSync(join(dir, KEPT_MARKER), `${JSON.stringify(kept)}\n`, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** Removes the cluster directory, or what its kept mark does not cover. */
export function clearClusterDir(dir: string): void {
  const marker = join(dir, KEPT_MARKER);
  if (!existsSync(marker)) {
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  if ((JSON.parse(readFileSync(marker, 'utf8')) as Kept).everything) return;
  // etcd preallocates large WAL files: a failed run keeps what a post-mortem reads.
  for (const entry of readdirSync(dir)) {
    if (entry !== 'logs' && entry !== KEPT_MARKER) rmSync(join(dir, entry), { recursive: true, force: true });
  }
}

function killAll(dir: string): void {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return;
  }
  for (const file of files) {
    const pid = Number(readFileSync(join(dir, file), 'utf8'));
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

if (import.meta.main) {
  const [parentArg, pidsDir, clusterDir] = process.argv.slice(2);
  const parent = Number(parentArg);
  if (!Number.isInteger(parent) || pidsDir === undefined || clusterDir === undefined) {
    process.exit(2);
  }
  setInterval(() => {
    if (pidAlive(parent)) return;
    killAll(pidsDir);
    clearClusterDir(clusterDir);
    releaseBlocksOf(parent);
    process.exit(0);
  }, 500);
}
