import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { agentWithKey } from '../../../src/adapters/ssh-agent.ts';
import { pendingTemps, removePendingTemps } from '../../../src/adapters/temp-files.ts';
import { generateSshKey } from '../../../src/keys/ssh.ts';

// Without the fixes, about one stop in twelve left the folder behind: enough rounds to see it.
const ROUNDS = 40;

const waitFor = async (file: string) => {
  for (let waited = 0; !existsSync(file); waited += 5) {
    assert.ok(waited < 5000, `${file} did not appear`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

void describe('ssh-agent holding a deploy key', () => {
  void it('stop() leaves no folder behind, round after round (the agent unlinks its socket as it ends)', async () => {
    const key = generateSshKey('ed25519', 'test');
    for (let i = 0; i < ROUNDS; i++) {
      const agent = await agentWithKey(key.privateKey, key.publicKey, 'git.example ssh-ed25519 AAAA\n');
      const dir = dirname(agent.socket);
      assert.deepEqual(readdirSync(dir).sort(), ['agent.sock', 'identity.pub', 'known_hosts']);
      agent.stop();
      assert.equal(existsSync(dir), false, `round ${i}: ${dir} is gone`);
    }
  });

  void it('an interrupt removes the folder even while the agent, signalled too, unlinks its socket', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-agent-'));
      pendingTemps.add(dir);
      const socket = join(dir, 'agent.sock');
      const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
      await waitFor(socket);
      writeFileSync(join(dir, 'identity.pub'), 'ssh-ed25519 AAAA\n');
      const ended = new Promise((r) => agent.once('exit', r));
      // As a Ctrl-C reaches the whole process group: the agent and this process's handler at once.
      agent.kill('SIGINT');
      removePendingTemps();
      await ended;
      assert.equal(existsSync(dir), false, `round ${i}: ${dir} is gone`);
    }
  });
});
