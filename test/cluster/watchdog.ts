// Kills the cluster's process groups when the process that started them dies without
// stop() (SIGKILL, crash, a test runner timeout). Linux offers no portable parent-death
// signal to Node, so this small detached process polls its parent instead.
// Usage: node watchdog.ts <parent-pid> <pids-dir> <cluster-dir>
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const [parentArg, pidsDir, clusterDir] = process.argv.slice(2);
const parent = Number(parentArg);

function parentAlive(): boolean {
  try {
    process.kill(parent, 0);
    return true;
  } catch {
    return false;
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

if (!Number.isInteger(parent) || pidsDir === undefined || clusterDir === undefined) {
  process.exit(2);
}
setInterval(() => {
  if (parentAlive()) return;
  killAll(pidsDir);
  // etcd preallocates large WAL files; the logs stay for a post-mortem.
  for (const entry of readdirSync(clusterDir)) {
    if (entry !== 'logs') rmSync(join(clusterDir, entry), { recursive: true, force: true });
  }
  process.exit(0);
}, 500);
