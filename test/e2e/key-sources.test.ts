// Key sources as sops 3.13 reads them, each checked against the real sops: the same inputs must
// open the same files with both tools.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cliPath, runCli } from '../helpers/cli.ts';
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
    writeFileSync(
      cmd,
      `#!/bin/sh\necho "$SOPS_AGE_RECIPIENT" >> "$0.$LOG"\n[ "$SOPS_AGE_RECIPIENT" = "${wanted.recipient}" ] && cat "${wanted.file}"\nexit 0\n`,
    );
    chmodSync(cmd, 0o700);
    const theirs = sopsRun(['decrypt', 'secret.enc.yaml'], { SOPS_AGE_KEY_CMD: cmd, LOG: 'sops' });
    assert.equal(theirs.code, 0, theirs.stderr);
    const ours = runCli(['decrypt', 'secret.enc.yaml'], {
      cwd: dir,
      env: { HOME: dir, XDG_CONFIG_HOME: join(dir, '.config'), SOPS_AGE_KEY_CMD: cmd, LOG: 'ours' },
    });
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ours.stdout, theirs.stdout);
    const asked = (who: string) => readFileSync(`${cmd}.${who}`, 'utf8').trim().split('\n');
    assert.ok(asked('ours').includes(wanted.recipient), `asked for ${asked('ours').join(', ')}`);
    assert.ok(
      asked('ours').every((r) => [wanted.recipient, other.recipient].includes(r)),
      "only the file's recipients",
    );
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

/** Ours with a clean environment: HOME is the test's folder, so no key of the machine's user takes part. */
const ours = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCli(args, {
    cwd: dir,
    env: {
      HOME: dir,
      XDG_CONFIG_HOME: join(dir, '.config'),
      SOPS_AGE_KEY: undefined,
      SOPS_AGE_KEY_FILE: undefined,
      SOPS_AGE_SSH_PRIVATE_KEY_FILE: undefined,
      SOPS_AGE_KEY_CMD: undefined,
      ...env,
    },
    revealsSecrets: true,
  });

function sshKey(name: string, args: string[]): { file: string; pub: string } {
  const file = join(dir, name);
  const r = spawnSync(requireTool('ssh-keygen'), ['-q', '-C', `${name}@host`, '-f', file, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { file, pub: readFileSync(`${file}.pub`, 'utf8').trim() };
}

void describe('age SSH recipients and identities (sops 3.13, both directions)', () => {
  for (const [type, args] of [
    ['ed25519', ['-t', 'ed25519', '-N', '']],
    ['rsa', ['-t', 'rsa', '-b', '3072', '-N', '']],
  ] as const) {
    void it(`ssh-${type}: sops opens what we encrypt to --age "ssh-… comment", and we open what sops encrypts`, () => {
      const key = sshKey(`flag_${type}`, [...args]);
      const plain = join(dir, `ssh-${type}.yaml`);
      writeFileSync(plain, `password: ssh-${type}-value\ntoken: t0k3n\n`);
      const mine = ours(['encrypt', '--age', key.pub, '--output', `mine-${type}.yaml`, plain]);
      assert.equal(mine.code, 0, mine.stderr);
      const theirsEnc = sopsRun(['encrypt', '--age', key.pub, '--output', `sops-${type}.yaml`, plain], {});
      assert.equal(theirsEnc.code, 0, theirsEnc.stderr);
      // Both tools keep the recipient as given, comment included, so updatekeys/rotate compare alike.
      const recipientLine = (f: string) => /recipient: (.*)/.exec(readFileSync(join(dir, f), 'utf8'))?.[1];
      assert.equal(recipientLine(`mine-${type}.yaml`), recipientLine(`sops-${type}.yaml`));
      assert.equal(recipientLine(`mine-${type}.yaml`), key.pub);

      const sopsOpensMine = sopsRun(['decrypt', `mine-${type}.yaml`], { SOPS_AGE_SSH_PRIVATE_KEY_FILE: key.file });
      assert.equal(sopsOpensMine.code, 0, sopsOpensMine.stderr);
      assert.equal(sopsOpensMine.stdout, readFileSync(plain, 'utf8'));
      const weOpenSops = ours(['decrypt', `sops-${type}.yaml`], { SOPS_AGE_SSH_PRIVATE_KEY_FILE: key.file });
      assert.equal(weOpenSops.code, 0, weOpenSops.stderr);
      assert.equal(weOpenSops.stdout, sopsOpensMine.stdout);

      // Without the key neither opens it.
      assert.notEqual(sopsRun(['decrypt', `mine-${type}.yaml`], {}).code, 0);
      assert.equal(ours(['decrypt', `sops-${type}.yaml`]).code, 1);
    });
  }

  void it('.sops.yaml age: rule with SSH keys; identities from ~/.ssh/id_ed25519 and ~/.ssh/id_rsa as sops looks for them', () => {
    const sub = join(dir, 'rule');
    mkdirSync(join(sub, '.ssh'), { recursive: true });
    const ed = sshKey('rule/.ssh/id_ed25519', ['-t', 'ed25519', '-N', '']);
    const rsa = sshKey('rule/.ssh/id_rsa', ['-t', 'rsa', '-b', '2048', '-N', '']);
    writeFileSync(join(sub, '.sops.yaml'), `creation_rules:\n  - path_regex: \\.yaml$\n    age: >-\n      ${ed.pub},\n      ${rsa.pub}\n`);
    writeFileSync(join(sub, 's.yaml'), 'password: from-the-rule\n');
    const inSub = (env: NodeJS.ProcessEnv) => ({ HOME: sub, XDG_CONFIG_HOME: join(sub, '.config'), ...env });
    const enc = runCli(['encrypt', '--output', 'mine.yaml', 's.yaml'], { cwd: sub, env: inSub({}) });
    assert.equal(enc.code, 0, enc.stderr);
    const sopsEnc = spawnSync(sops, ['encrypt', '--output', 'theirs.yaml', 's.yaml'], {
      cwd: sub,
      env: { PATH: process.env.PATH, HOME: sub },
      encoding: 'utf8',
    });
    assert.equal(sopsEnc.status, 0, sopsEnc.stderr);
    const recipients = (f: string) => [...readFileSync(join(sub, f), 'utf8').matchAll(/recipient: (.*)/g)].map((m) => m[1]);
    assert.deepEqual(recipients('mine.yaml'), recipients('theirs.yaml'));
    assert.deepEqual(recipients('mine.yaml'), [ed.pub, rsa.pub]);
    // One key at a time in ~/.ssh: each opens both files, with either tool.
    for (const [keep, drop] of [
      [ed, rsa],
      [rsa, ed],
    ] as const) {
      const saved = readFileSync(drop.file);
      rmSync(drop.file);
      try {
        for (const f of ['mine.yaml', 'theirs.yaml']) {
          const theirs = spawnSync(sops, ['decrypt', f], { cwd: sub, env: { PATH: process.env.PATH, HOME: sub }, encoding: 'utf8' });
          assert.equal(theirs.status, 0, `sops with ${keep.file}: ${theirs.stderr}`);
          const mine = runCli(['decrypt', f], { cwd: sub, env: inSub({}), revealsSecrets: true });
          assert.equal(mine.code, 0, `ours with ${keep.file}: ${mine.stderr}`);
          assert.equal(mine.stdout, theirs.stdout);
        }
      } finally {
        writeFileSync(drop.file, saved, { mode: 0o600 });
      }
    }
  });

  void it('a passphrase-protected SSH key in SOPS_AGE_SSH_PRIVATE_KEY_FILE: one line naming the file, no key bytes', () => {
    const locked = sshKey('locked', ['-t', 'ed25519', '-N', 'a passphrase']);
    const enc = sopsRun(['encrypt', '--age', locked.pub, '--output', 'locked.yaml', join(dir, 'ssh-ed25519.yaml')], {});
    assert.equal(enc.code, 0, enc.stderr);
    const r = ours(['decrypt', 'locked.yaml'], { SOPS_AGE_SSH_PRIVATE_KEY_FILE: locked.file });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      new RegExp(`^error: the SSH key is protected by a passphrase, which fluxstrap does not ask for \\(${locked.file}\\)\nhint: [^\n]+\n$`),
    );
    const body = readFileSync(locked.file, 'utf8').split('\n')[2] ?? '';
    assert.ok(!r.stderr.includes(body.slice(0, 16)));
    // The same key in ~/.ssh is passed over, as many users have one there: an age key still opens what it can.
    const home = join(dir, 'lockedhome');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    writeFileSync(join(home, '.ssh', 'id_ed25519'), readFileSync(locked.file), { mode: 0o600 });
    const age = newKey('beside-locked');
    assert.equal(ours(['encrypt', '--age', age.recipient, '--output', 'age-only.yaml', join(dir, 'ssh-ed25519.yaml')]).code, 0);
    const opened = ours(['decrypt', 'age-only.yaml'], { HOME: home, SOPS_AGE_KEY_FILE: age.file });
    assert.equal(opened.code, 0, opened.stderr);
  });

  void it('refuses an SSH key age cannot encrypt to (ECDSA), as sops does, before writing anything', () => {
    const ecdsa = sshKey('ecdsa', ['-t', 'ecdsa', '-N', '']);
    assert.notEqual(sopsRun(['encrypt', '--age', ecdsa.pub, join(dir, 'ssh-ed25519.yaml')], {}).code, 0);
    const r = ours(['encrypt', '--age', ecdsa.pub, '--output', 'never.yaml', join(dir, 'ssh-ed25519.yaml')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: invalid age recipient "ecdsa-sha2-nistp256 [^\n]*\(--age\)\nhint: .*ssh-ed25519/);
    assert.throws(() => readFileSync(join(dir, 'never.yaml')));
  });
});

const WITH_TTY = fileURLToPath(new URL('../helpers/with_tty.py', import.meta.url));

/** `command` at a terminal whose user types the first line of `secretFile` at each passphrase prompt. */
function atTerminal(secretFile: string, command: string[], env: NodeJS.ProcessEnv): { code: number | null; transcript: string } {
  const r = spawnSync(requireTool('python3'), [WITH_TTY, secretFile, ...command], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: join(dir, '.config'), ...env },
    timeout: 120_000,
  });
  return { code: r.status, transcript: r.stderr };
}

void describe('passphrase-protected age identity files (age -p), as sops reads them', () => {
  const passphrase = 'correct horse battery staple';
  let key: { file: string; recipient: string };
  let passFile: string;

  before(() => {
    key = newKey('wrapped');
    passFile = join(dir, 'pass.txt');
    writeFileSync(passFile, `${passphrase}\n`, { mode: 0o600 });
    for (const [out, armor] of [
      ['wrapped.age.txt', ['-a']],
      ['wrapped.age', []],
    ] as const) {
      const r = atTerminal(passFile, [requireTool('age'), '-p', ...armor, '-o', join(dir, out), key.file], {});
      assert.equal(r.code, 0, r.transcript);
    }
    writeFileSync(join(dir, 'wrapped-plain.yaml'), 'password: behind-a-passphrase\n');
    const enc = sopsRun(['encrypt', '--age', key.recipient, '--output', 'wrapped.enc.yaml', 'wrapped-plain.yaml'], {});
    assert.equal(enc.code, 0, enc.stderr);
  });

  for (const file of ['wrapped.age.txt', 'wrapped.age']) {
    void it(`${file}: sops and we open the file with the passphrase typed at a terminal; we also take it from ${'$'}FLUXSTRAP_AGE_PASSPHRASE`, () => {
      const env = { SOPS_AGE_KEY_FILE: join(dir, file) };
      const theirs = atTerminal(passFile, [sops, 'decrypt', '--output', `sops-out-${file}.yaml`, 'wrapped.enc.yaml'], env);
      assert.equal(theirs.code, 0, theirs.transcript);
      const mine = atTerminal(passFile, [process.execPath, cliPath, 'decrypt', '--output', `our-out-${file}.yaml`, 'wrapped.enc.yaml'], env);
      assert.equal(mine.code, 0, mine.transcript);
      assert.match(mine.transcript, /passphrase of the age identity file .*wrapped\.age(\.txt)? \(not shown\): /);
      assert.ok(!mine.transcript.includes(passphrase), 'the passphrase is not echoed');
      const expected = readFileSync(join(dir, `sops-out-${file}.yaml`), 'utf8');
      assert.equal(expected, 'password: behind-a-passphrase\n');
      assert.equal(readFileSync(join(dir, `our-out-${file}.yaml`), 'utf8'), expected);
      const viaEnv = ours(['decrypt', 'wrapped.enc.yaml'], { ...env, FLUXSTRAP_AGE_PASSPHRASE: passphrase });
      assert.equal(viaEnv.code, 0, viaEnv.stderr);
      assert.equal(viaEnv.stdout, expected);
    });
  }

  void it('a wrong passphrase: sops fails, and ours says so in one line naming the file', () => {
    const wrong = join(dir, 'wrong.txt');
    writeFileSync(wrong, 'not it\n');
    const env = { SOPS_AGE_KEY_FILE: join(dir, 'wrapped.age.txt') };
    assert.notEqual(atTerminal(wrong, [sops, 'decrypt', 'wrapped.enc.yaml'], env).code, 0);
    const r = ours(['decrypt', 'wrapped.enc.yaml'], { ...env, FLUXSTRAP_AGE_PASSPHRASE: 'not it' });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `error: wrong passphrase for the encrypted age identity file (${join(dir, 'wrapped.age.txt')})\nhint: check $FLUXSTRAP_AGE_PASSPHRASE\n`,
    );
    const typed = atTerminal(wrong, [process.execPath, cliPath, 'decrypt', 'wrapped.enc.yaml'], env);
    assert.equal(typed.code, 1);
    assert.match(typed.transcript, /error: wrong passphrase for the encrypted age identity file \([^)]*wrapped\.age\.txt\)\r?\nhint: type it again/);
  });

  void it('--key-file of an encrypted identity file with no passphrase at hand: one line, nothing written', () => {
    const r = ours(['decrypt', '--key-file', 'wrapped.age.txt', '--output', 'never-out.yaml', 'wrapped.enc.yaml']);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'error: the age identity file is encrypted with a passphrase, and none is given (wrapped.age.txt)\nhint: set FLUXSTRAP_AGE_PASSPHRASE or run at a terminal to type it\n',
    );
    assert.throws(() => readFileSync(join(dir, 'never-out.yaml')));
  });
});
