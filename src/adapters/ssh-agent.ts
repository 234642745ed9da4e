import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FluxstrapError } from '../core/errors.ts';
import { pendingTemps, removeTempDir } from './temp-files.ts';

/**
 * A private ssh-agent holding one deploy key that exists only in memory (decrypted from the
 * repository): the key reaches the agent on ssh-add's stdin, so no file ever holds it. Its folder
 * (0700, mkdtemp) holds the agent's socket and the public halves ssh is pointed at: the public
 * key, to pick the agent's key, and known_hosts. `stop()` removes the folder and ends the agent;
 * the signal handler removes the folder too.
 */
export interface AgentKey {
  socket: string;
  publicKeyFile: string;
  knownHostsFile: string;
  stop: () => void;
}

const WAIT_MS = 5000;
/** Longer than any Git operation of a run (their timeout is 120 s). */
const KEY_LIFETIME_S = 600;

export async function agentWithKey(identity: string, publicKey: string, knownHosts: string): Promise<AgentKey> {
  const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-agent-'));
  pendingTemps.add(dir);
  const socket = join(dir, 'agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  const stop = () => {
    // The folder first: an agent ending unlinks its socket, racing a removal of the folder.
    removeTempDir(dir);
    agent.kill();
  };
  try {
    const failed = new Promise<never>((_, reject) =>
      agent.once('error', (e) =>
        reject(new FluxstrapError('E_PROCESS', 'cannot run ssh-agent', { hint: "install OpenSSH's client (Debian: openssh-client)", cause: e })),
      ),
    );
    const ready = (async () => {
      for (let waited = 0; !existsSync(socket); waited += 25) {
        if (waited > WAIT_MS || agent.exitCode !== null)
          throw new FluxstrapError('E_PROCESS', 'ssh-agent did not start', { hint: 'check that ssh-agent runs on this machine' });
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    await Promise.race([ready, failed]);
    const { execa } = await import('execa');
    // The key expires in the agent even if this process is killed before it can stop the agent.
    const add = await execa('ssh-add', ['-q', '-t', String(KEY_LIFETIME_S), '-'], {
      env: { SSH_AUTH_SOCK: socket },
      input: identity,
      reject: false,
      timeout: WAIT_MS,
    });
    // ssh-add's message names no key material; the key came on stdin.
    if (add.exitCode !== 0)
      throw new FluxstrapError('E_PROCESS', `ssh-add refused the deploy key: ${add.stderr.trim().split('\n').pop() ?? ''}`, {
        hint: 'the key in the encrypted Secret must be an OpenSSH private key without a passphrase',
      });
    const publicKeyFile = join(dir, 'identity.pub');
    const knownHostsFile = join(dir, 'known_hosts');
    writeFileSync(publicKeyFile, `${publicKey}\n`, { mode: 0o600 });
    writeFileSync(knownHostsFile, knownHosts, { mode: 0o600 });
    return { socket, publicKeyFile, knownHostsFile, stop };
  } catch (e) {
    stop();
    throw e;
  }
}
