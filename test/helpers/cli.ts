import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

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
  /** Kill the run after this many ms: a test of input that could hang fails instead of hanging. */
  timeout?: number;
}

/** Run the built CLI (`npm run build` first) with the Node that runs the tests, as CI would. */
export function runCli(args: string[], opts: CliOptions = {}): CliResult {
  const r = spawnSync(process.execPath, [...(opts.nodeArgs ?? []), cliPath, ...args], {
    encoding: 'utf8',
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.timeout !== undefined ? { timeout: opts.timeout, killSignal: 'SIGKILL' as const } : {}),
    env: { ...process.env, CI: '1', NO_COLOR: '1', ...opts.env },
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
