import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { cliPath } from '../helpers/cli.ts';

/** The process as a shell pipeline sees it. */
void describe('the fluxstrap process', () => {
  void it('stops quietly with 141 when the reader of its output has gone (`| head`), as sops does', async () => {
    const child = spawn(process.execPath, [cliPath, '--help'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    // Closed before Node has even started: the first write meets a pipe without a reader.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 141, stderr);
    assert.equal(stderr, '', 'no stack trace, no message');
  });
});
