import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { installLeakGuard, recordRun } from './canary.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const cliPath = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  /** Extra flags for node itself, e.g. `--import` of a tracing hook. */
  nodeArgs?: string[];
  /** Stdout carries secret values by design (decrypt): the leak guard then scans stderr only. */
  revealsSecrets?: boolean;
  /** Run as this user and group (root only): a read-only folder refuses only a user other than root. */
  uid?: number;
  gid?: number;
  /** Kill the run after this many ms: a test of input that could hang fails instead of hanging. */
  timeout?: number;
}

// Every run's output is scanned for canaries and private keys once the test file is done.
installLeakGuard();

/** Run the built CLI (`npm run build` first) with the Node that runs the tests, as CI would. */
export function runCli(args: string[], opts: CliOptions = {}): CliResult {
  const r = spawnSync(process.execPath, [...(opts.nodeArgs ?? []), cliPath, ...args], {
    encoding: 'utf8',
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.timeout !== undefined ? { timeout: opts.timeout, killSignal: 'SIGKILL' as const } : {}),
    env: { ...process.env, CI: '1', NO_COLOR: '1', ...opts.env },
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
  if (r.error) throw r.error;
  recordRun({ args, stdout: r.stdout, stderr: r.stderr, revealsSecrets: opts.revealsSecrets === true });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** runCli without blocking the test's event loop, for tests that serve the CLI from this process (a GitHub stand-in). */
export function runCliAsync(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), cliPath, ...args], {
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      env: { ...process.env, CI: '1', NO_COLOR: '1', ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(opts.input ?? '');
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Bad input: one `error:` line matching pattern and naming where, hints after it, non-zero exit. */
export function assertUserError(r: CliResult, pattern: RegExp, where: string): void {
  assert.notEqual(r.code, 0, r.stderr);
  const [first, ...rest] = r.stderr.trimEnd().split('\n');
  assert.match(first ?? '', pattern);
  assert.ok(first?.includes(where), `names ${where}: ${first}`);
  assert.ok(rest.length > 0 && rest.every((l) => l.startsWith('hint: ')), r.stderr);
}
