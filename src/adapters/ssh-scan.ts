import { execFile } from 'node:child_process';
import { FluxstrapError } from '../core/errors.ts';

/**
 * The host keys a Git server offers, as known_hosts lines (`[host]:port type key` for a port
 * other than 22), read with OpenSSH's ssh-keyscan. Nothing is trusted here: the caller shows
 * the fingerprints and keeps only a key the user confirmed.
 */
export function scanHostKeys(host: string, port: number, timeoutMs = 15_000): Promise<string[]> {
  const seconds = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
  return new Promise((resolve, reject) => {
    execFile('ssh-keyscan', ['-T', seconds, '-p', String(port), '--', host], { timeout: timeoutMs + 5000, maxBuffer: 1 << 20 }, (err, stdout) => {
      const lines = stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#'));
      if (lines.length > 0) return resolve(lines);
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(
          new FluxstrapError('E_PROCESS', 'ssh-keyscan is not installed', {
            hint: 'install the OpenSSH client, or give a known_hosts file with --git-known-hosts',
          }),
        );
      }
      reject(
        new FluxstrapError('E_GIT', `no SSH host key from ${host}:${port}`, {
          hint: 'check the Git URL and that the server is reachable over SSH, or give a known_hosts file with --git-known-hosts',
        }),
      );
    });
  });
}
