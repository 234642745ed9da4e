import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Where each external tool comes from, so a missing one fails with how to get it (never a skip). */
const INSTALL: Record<string, string> = {
  age: 'apt-get install age',
  'age-keygen': 'apt-get install age',
  gpg: 'apt-get install gnupg',
  git: 'apt-get install git',
  kubectl: 'install kubectl (https://kubernetes.io/docs/tasks/tools/) to /usr/bin/kubectl',
};

/** The absolute path of a tool in /usr/bin or /usr/local/bin; fails the test if it is missing. */
export function requireTool(name: string): string {
  const path = ['/usr/bin', '/usr/local/bin'].map((d) => `${d}/${name}`).find((p) => existsSync(p));
  assert.ok(path, `${name} is missing: ${INSTALL[name] ?? `install ${name}`}`);
  return path;
}

export interface ToolResult {
  stdout: string;
  stderr: string;
}

/** Run a tool to completion; input goes on stdin (secrets never go in argv). Rejects naming the tool. */
export function runTool(
  name: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Uint8Array; encoding?: 'utf8' | 'buffer' } = {},
): Promise<ToolResult> {
  const bin = requireTool(name);
  return new Promise((resolve, reject) => {
    const child = execFile(bin, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, maxBuffer: 64 * 1024 * 1024 }, (e, stdout, stderr) => {
      if (e) reject(new Error(`${name} ${args.join(' ')} failed: ${stderr.trim() || e.message}`));
      else resolve({ stdout, stderr });
    });
    // A tool that does not read its input may exit first; the exit status tells what happened.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}
