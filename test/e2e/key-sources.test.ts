// Key sources as sops 3.13 reads them, each checked against the real sops: the same inputs must
// open the same files with both tools.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { requireTool } from '../helpers/tools.ts';
import { findSops } from '../unit/sops/helpers.ts';

let dir: string;
let sops: string;

function sopsRun(args: string[], env: NodeJS.ProcessEnv): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(sops, args, { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, ...env }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function newKey(name: string): { file: string; recipient: string } {
  const file = join(dir, `${name}.agekey`);
  const r = spawnSync(requireTool('age-keygen'), ['-o', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const recipient = /public key: (age1\S+)/.exec(readFileSync(file, 'utf8'))?.[1] ?? '';
  return { file, recipient };
}

before(async () => {
  dir = await tempDir('key-sources');
  sops = findSops();
});

void describe('SOPS_AGE_KEY_CMD with SOPS_AGE_RECIPIENT (sops 3.12+)', () => {
  void it('runs the command per recipient of the file with SOPS_AGE_RECIPIENT set, as sops does', () => {
    const wanted = newKey('wanted');
    const other = newKey('other');
    const plain = join(dir, 'secret.yaml');
    writeFileSync(plain, 'password: per-recipient\n');
    const enc = sopsRun(['encrypt', '--age', `${other.recipient},${wanted.recipient}`, '--output', join(dir, 'secret.enc.yaml'), plain], {});
    assert.equal(enc.code, 0, enc.stderr);
    // Hands out the key only for the recipient it is asked for, and logs what it was asked.
    const cmd = join(dir, 'key-cmd.sh');
    writeFileSync(cmd, `#!/bin/sh\necho "$SOPS_AGE_RECIPIENT" >> "$0.$LOG"\n[ "$SOPS_AGE_RECIPIENT" = "${wanted.recipient}" ] && cat "${wanted.file}"\nexit 0\n`);
    chmodSync(cmd, 0o700);
    const theirs = sopsRun(['decrypt', 'secret.enc.yaml'], { SOPS_AGE_KEY_CMD: cmd, LOG: 'sops' });
    assert.equal(theirs.code, 0, theirs.stderr);
    const ours = runCli(['decrypt', 'secret.enc.yaml'], { cwd: dir, env: { HOME: dir, XDG_CONFIG_HOME: join(dir, '.config'), SOPS_AGE_KEY_CMD: cmd, LOG: 'ours' } });
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ours.stdout, theirs.stdout);
    const asked = (who: string) => readFileSync(`${cmd}.${who}`, 'utf8').trim().split('\n');
    assert.ok(asked('ours').includes(wanted.recipient), `asked for ${asked('ours').join(', ')}`);
    assert.ok(asked('ours').every((r) => [wanted.recipient, other.recipient].includes(r)), 'only the file\'s recipients');
    assert.ok(asked('sops').includes(wanted.recipient));
  });

  void it('a command that gives nothing for the recipients: both tools fail, and ours says what was tried', () => {
    const cmd = join(dir, 'nothing.sh');
    writeFileSync(cmd, '#!/bin/sh\nexit 0\n');
    chmodSync(cmd, 0o700);
    assert.notEqual(sopsRun(['decrypt', 'secret.enc.yaml'], { SOPS_AGE_KEY_CMD: cmd }).code, 0);
    const ours = runCli(['decrypt', 'secret.enc.yaml'], { cwd: dir, env: { HOME: dir, XDG_CONFIG_HOME: join(dir, '.config'), SOPS_AGE_KEY_CMD: cmd } });
    assert.equal(ours.code, 1);
    assert.match(ours.stderr, /^error: no key at hand opens this file \(secret\.enc\.yaml\)\nhint: .*SOPS_AGE_KEY_CMD/);
  });
});
