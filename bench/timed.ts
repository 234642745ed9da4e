// Wall time and peak memory (max RSS, from GNU time) of one process, for the benchmarks.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Timed {
  wallMs: number;
  waitMs: number;
  maxRssKb: number;
  stdout: string;
}

/** Run under GNU time for the peak RSS; `waits` turns the program's output into its waiting time. */
export function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, waits: (stdout: string, stderr: string) => number, cwd?: string): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const rss = join(tmpdir(), `fluxstrap-bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const t0 = performance.now();
    const child = spawn('/usr/bin/time', ['-q', '-f', '%M', '-o', rss, cmd, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(cwd !== undefined ? { cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - t0;
      const maxRssKb = Number(readFileSync(rss, 'utf8').trim().split('\n').pop());
      rmSync(rss, { force: true });
      if (code !== 0) {
        reject(new Error(`${cmd} exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
        return;
      }
      resolve({ wallMs, waitMs: waits(stdout, stderr), maxRssKb, stdout });
    });
  });
}
