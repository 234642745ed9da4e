// Child processes for the harness: one-shot commands, and long-running servers that must never
// outlive the test process.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  /** Append stdout and stderr to this file instead of keeping stderr in memory only. */
  logFile?: string;
  /** Called with every chunk of stderr (build progress). */
  onStderr?: (chunk: string) => void;
  /**
   * Ended by killTracked() (a long build step). Not for the short commands that set a cluster
   * up: killing one mid-start would fail the start, which then keeps its logs as a failure.
   */
  interruptible?: boolean;
}

const running = new Set<ChildProcess>();

/**
 * Registers a short-lived child (a build step, a CLI run) until it exits, so that a program
 * that is interrupted can end it with killTracked() instead of leaving it orphaned.
 */
export function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
}

/** Signals every tracked child that is still running. */
export function killTracked(signal: NodeJS.Signals): void {
  for (const child of running) child.kill(signal);
}

/** Runs a command to completion; rejects with a one-line message naming the command. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const logFd = opts.logFile === undefined ? undefined : openSync(opts.logFile, 'a');
  try {
    return await new Promise<string>((resolve, reject) => {
      const child = spawn(cmd, args, {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      if (opts.interruptible === true) track(child);
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
        if (logFd !== undefined) writeFileSync(logFd, d);
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr = (stderr + d).slice(-20_000);
        if (logFd !== undefined) writeFileSync(logFd, d);
        opts.onStderr?.(d);
      });
      child.on('error', (err) => reject(new Error(`${cmd}: ${err.message}`)));
      child.on('close', (code, signal) => {
        if (code === 0) resolve(stdout);
        else {
          const why = lastMeaningfulLine(stderr) ?? lastMeaningfulLine(stdout) ?? 'no output';
          reject(new Error(`${cmd} ${args.slice(0, 2).join(' ')} failed (${signal ?? `exit ${code}`}): ${why}`));
        }
      });
      // A command that exits without reading its input makes the write fail with EPIPE; its exit
      // status is what counts.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input ?? '');
    });
  } finally {
    if (logFd !== undefined) closeSync(logFd);
  }
}

function lastMeaningfulLine(text: string): string | undefined {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .at(-1);
}

export function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

export interface ServiceOptions {
  name: string;
  cmd: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  logsDir: string;
  /** Directory the watchdog reads process-group ids from. */
  pidsDir: string;
}

/**
 * A long-running child in its own process group, so stop() also reaches anything it spawns
 * (kustomize-controller runs gpg). Its pid is registered for the watchdog.
 */
export class Service {
  readonly name: string;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
  #child: ChildProcess;
  #pid: number;
  #pidFile: string;
  #alive = true;

  constructor(opts: ServiceOptions) {
    this.name = opts.name;
    this.logFile = join(opts.logsDir, `${opts.name}.log`);
    const fd = openSync(this.logFile, 'a');
    const child = spawn(opts.cmd, opts.args, {
      env: opts.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    if (child.pid === undefined) throw new Error(`${opts.name}: could not start ${opts.cmd}`);
    this.#child = child;
    this.#pid = child.pid;
    this.#pidFile = join(opts.pidsDir, `${opts.name}.pid`);
    writeFileSync(this.#pidFile, String(child.pid));
    // The harness must not keep the event loop alive just because a server is running.
    child.unref();
    this.exited = new Promise((resolve) => {
      child.on('exit', (code) => {
        this.#alive = false;
        rmSync(this.#pidFile, { force: true });
        resolve(code);
      });
      child.on('error', () => {
        this.#alive = false;
        resolve(null);
      });
    });
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** SIGTERM the group, SIGKILL it after a grace period. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.#alive) return;
    // An unref'd child's exit event is only seen while something keeps the loop running.
    this.#child.ref();
    signalGroup(this.#pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(this.#pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    // Children that ignored SIGTERM (gpg-agent) must not survive their parent.
    signalGroup(this.#pid, 'SIGKILL');
  }

  /** Synchronous last-resort kill for process 'exit' handlers. */
  kill(): void {
    signalGroup(this.#pid, 'SIGKILL');
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a value other than undefined, or fails with `what`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  { timeoutMs = 60_000, intervalMs = 200, abort }: { timeoutMs?: number; intervalMs?: number; abort?: () => string | undefined } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    const aborted = abort?.();
    if (aborted !== undefined) throw new Error(`${what}: ${aborted}`);
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}`);
    }
    await sleep(intervalMs);
  }
}
