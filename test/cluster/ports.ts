// Listener ports for the cluster's processes. A port found free and then released for a child
// to bind can be handed to a second listener in between (issue 9: kustomize-controller's
// --health-addr took source-controller's --storage-addr). Two rules make that impossible:
// - ports come from below the kernel's ephemeral range, which bind(0) and outgoing connections
//   never use, so only an explicit bind can take one;
// - every cluster reserves its own block of them with a lock file that names its owner pid, in a
//   directory every test process on the machine shares (the harness cache), so no two clusters
//   of any worktree pick the same port. A block whose owner died is reclaimed.
// A port some other program listens on is skipped when it is taken; the controllers also restart
// on new ports if one still reports "address already in use" (flux.ts).
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pidAlive } from '../helpers/tmp.ts';
import { cacheDir } from './components.ts';

export const BLOCK_SIZE = 32;
// Below this nothing is reserved: well-known and commonly configured service ports.
const LOWEST = 10_000;
// A reclaimer must not remove a file another reclaimer has just re-created.
const RECLAIM_AFTER_MS = 10_000;

export function portsDir(): string {
  return join(cacheDir(), 'ports');
}

/** The kernel's ephemeral range (Linux), else the IANA one that macOS uses. */
export function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high)) return [low, high];
  } catch {
    // Not Linux.
  }
  return [49_152, 65_535];
}

/** First ports of the blocks that lie wholly outside the ephemeral range. */
export function blockStarts([low, high]: [number, number]): number[] {
  const starts: number[] = [];
  for (let p = LOWEST; p + BLOCK_SIZE <= 65_536; p += BLOCK_SIZE) {
    if (p + BLOCK_SIZE <= low || p > high) starts.push(p);
  }
  return starts;
}

interface Owner {
  pid: number;
  /** What the block is for (the cluster directory), for whoever finds a leftover file. */
  holder: string;
}

function lockFile(start: number): string {
  return join(portsDir(), `${start}.lock`);
}

function readOwner(file: string): Owner | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Owner;
  } catch {
    // Half-written by its creator this very moment, or just removed.
    return undefined;
  }
}

/** Removes a lock file whose owner process is gone; true if the block may be tried again. */
function reclaimIfDead(file: string): boolean {
  const owner = readOwner(file);
  if (owner === undefined || pidAlive(owner.pid)) return false;
  try {
    if (Date.now() - statSync(file).mtimeMs < RECLAIM_AFTER_MS) return false;
    rmSync(file);
    return true;
  } catch {
    return false;
  }
}

function tryLock(start: number, owner: Owner): boolean {
  try {
    writeFileSync(lockFile(start), JSON.stringify(owner), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

/** Whether nothing listens on 127.0.0.1:port right now. */
export function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * The ports of one cluster: blocks reserved for this process until release(), handed out one
 * at a time, each checked to be unused when it is taken.
 */
export class PortAllocator {
  readonly #holder: string;
  readonly #blocks: number[] = [];
  #next = 0;

  constructor(holder: string) {
    this.#holder = holder;
  }

  async take(): Promise<number> {
    for (;;) {
      const block = this.#blocks.at(-1);
      if (block === undefined || this.#next >= block + BLOCK_SIZE) {
        this.#next = this.#reserveBlock();
        continue;
      }
      const port = this.#next++;
      if (await bindable(port)) return port;
    }
  }

  /** Reserved block starts, for tests. */
  get blocks(): readonly number[] {
    return this.#blocks;
  }

  release(): void {
    for (const start of this.#blocks.splice(0)) {
      if (readOwner(lockFile(start))?.pid === process.pid) rmSync(lockFile(start), { force: true });
    }
  }

  #reserveBlock(): number {
    mkdirSync(portsDir(), { recursive: true });
    const starts = blockStarts(ephemeralRange());
    if (starts.length === 0) throw new Error('no port block outside the ephemeral range is left for the test cluster');
    // A random first try keeps concurrent starts from racing for the same files.
    const offset = Math.floor(Math.random() * starts.length);
    const owner: Owner = { pid: process.pid, holder: this.#holder };
    for (let i = 0; i < starts.length; i++) {
      const start = starts[(offset + i) % starts.length] ?? 0;
      if (this.#blocks.includes(start)) continue;
      if (tryLock(start, owner) || (reclaimIfDead(lockFile(start)) && tryLock(start, owner))) {
        this.#blocks.push(start);
        return start;
      }
    }
    throw new Error(`every port block in ${portsDir()} is reserved by a live process`);
  }
}

/** Frees the blocks of a dead owner at once (the watchdog), instead of after RECLAIM_AFTER_MS. */
export function releaseBlocksOf(pid: number): void {
  let files: string[];
  try {
    files = readdirSync(portsDir());
  } catch {
    return;
  }
  for (const f of files) {
    if (f.endsWith('.lock') && readOwner(join(portsDir(), f))?.pid === pid) rmSync(join(portsDir(), f), { force: true });
  }
}
