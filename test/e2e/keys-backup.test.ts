import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cliPath, runCli } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { allowSecretsIn, canary } from '../helpers/canary.ts';
import { tempDir } from '../helpers/tmp.ts';
import { requireTool, runTool } from '../helpers/tools.ts';

/**
 * `fluxstrap keys backup` / `keys restore` through the built CLI, against the real tools: `age -d`
 * opens the passphrase backup, `age -p` writes one fluxstrap restores, `ansible-vault view` opens
 * the vault backup. age reads a passphrase from a terminal only, so those runs get a pty.
 */

const WITH_TTY = fileURLToPath(new URL('../helpers/with_tty.py', import.meta.url));

let home: string;
let keyFile: string;
let keyText: string;
let recipient: string;
let passFile: string;
let passphrase: string;

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: undefined,
  FLUXSTRAP_BACKUP_PASSPHRASE: undefined,
  ...extra,
});
const cli = (args: string[], extra: NodeJS.ProcessEnv = {}): CliResult => runCli(args, { cwd: home, env: env(extra) });

function ok(r: CliResult): string {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** One `error:` line, hints after it, no stack, nothing on stdout. */
function userError(r: CliResult, text: RegExp): void {
  assert.notEqual(r.code, 0);
  const [first, ...rest] = r.stderr.trimEnd().split('\n');
  assert.match(first ?? '', text);
  assert.ok(
    rest.every((l) => l.startsWith('hint: ')),
    r.stderr,
  );
  assert.equal(r.stdout, '');
}

/** A secret file the test writes on purpose (the leak scan skips it). */
function secretFile(name: string, text: string): string {
  const file = join(home, name);
  writeFileSync(file, text, { mode: 0o600 });
  allowSecretsIn(file);
  return file;
}

/** A command run at a terminal that types the first line of `secret` at each passphrase prompt. */
function atTerminal(secret: string, command: string[], extraEnv: NodeJS.ProcessEnv = {}): { code: number | null; transcript: string } {
  requireTool('python3');
  const r = spawnSync('python3', [WITH_TTY, secret, ...command], { cwd: home, encoding: 'utf8', env: { ...process.env, ...env(extraEnv) }, timeout: 120_000 });
  return { code: r.status, transcript: r.stderr };
}

const mode = (file: string) => statSync(file).mode & 0o777;

void before(async () => {
  requireTool('age');
  requireTool('ansible-vault');
  home = await tempDir('keys-backup');
  keyFile = join(home, 'cluster.agekey');
  recipient = ok(cli(['keys', 'new', '--out', keyFile])).trim();
  keyText = readFileSync(keyFile, 'utf8');
  passphrase = canary('passphrase');
  passFile = secretFile('pass.txt', `${passphrase}\n`);
});

void describe('keys backup --out (age passphrase)', () => {
  void it('writes an armored age file, 0600, that the real age -d opens with the passphrase', () => {
    const out = join(home, 'b1.age');
    assert.equal(ok(cli(['keys', 'backup', keyFile, '--out', out, '--passphrase-file', passFile])), `${recipient}\n`);
    const text = readFileSync(out, 'utf8');
    assert.match(text, /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
    assert.ok(!text.includes('AGE-SECRET-KEY'), 'ciphertext only');
    assert.equal(mode(out), 0o600);
    const opened = join(home, 'b1.opened');
    allowSecretsIn(opened);
    const r = atTerminal(passFile, ['age', '-d', '-o', opened, out]);
    assert.equal(r.code, 0, r.transcript);
    assert.equal(readFileSync(opened, 'utf8'), keyText);
  });

  void it('asks twice at a terminal, unseen, when no file or variable gives the passphrase', () => {
    const out = join(home, 'b2.age');
    const r = atTerminal(passFile, [process.execPath, cliPath, 'keys', 'backup', keyFile, '--out', out]);
    assert.equal(r.code, 0, r.transcript);
    assert.ok(!r.transcript.includes(passphrase), 'the passphrase is not echoed');
    assert.match(r.transcript, /passphrase of the key backup \(not shown\)/);
    assert.match(r.transcript, /the same passphrase again/);
    const restored = join(home, 'b2.key');
    ok(cli(['keys', 'restore', out, '--out', restored], { FLUXSTRAP_BACKUP_PASSPHRASE: passphrase }));
    assert.equal(readFileSync(restored, 'utf8'), keyText);
  });

  void it('takes the passphrase from $FLUXSTRAP_BACKUP_PASSPHRASE, and the key from SOPS_AGE_KEY_FILE when no file is named', () => {
    const out = join(home, 'b3.age');
    assert.equal(ok(cli(['keys', 'backup', '--out', out], { SOPS_AGE_KEY_FILE: keyFile, FLUXSTRAP_BACKUP_PASSPHRASE: passphrase })), `${recipient}\n`);
    const restored = join(home, 'b3.key');
    assert.equal(ok(cli(['keys', 'restore', out, '--out', restored, '--passphrase-file', passFile])), `${recipient}\n`);
  });

  void it('refuses without a terminal, file or variable, and never overwrites a backup', () => {
    userError(cli(['keys', 'backup', keyFile, '--out', join(home, 'b4.age')]), /^error: no passphrase for the key backup/);
    const out = join(home, 'b5.age');
    writeFileSync(out, 'older backup\n');
    userError(cli(['keys', 'backup', keyFile, '--out', out, '--passphrase-file', passFile]), /refusing to overwrite/);
    assert.equal(readFileSync(out, 'utf8'), 'older backup\n');
  });

  void it('--also-recipient writes a second file, for that recipient, which age -d -i opens', async () => {
    const offline = join(home, 'offline.agekey');
    const offlineRecipient = ok(cli(['keys', 'new', '--out', offline])).trim();
    const out = join(home, 'b6.age');
    ok(cli(['keys', 'backup', keyFile, '--out', out, '--passphrase-file', passFile, '--also-recipient', offlineRecipient]));
    const copy = `${out}.recipients.age`;
    assert.equal(mode(copy), 0o600);
    const { stdout } = await runTool('age', ['-d', '-i', offline, copy]);
    assert.equal(stdout, keyText);
    // The recipients copy is not a passphrase file: restore says how to open it.
    userError(cli(['keys', 'restore', copy, '--out', join(home, 'b6.key'), '--passphrase-file', passFile]), /encrypted to age recipients, not to a passphrase/);
    userError(
      cli(['keys', 'backup', keyFile, '--out', join(home, 'b7.age'), '--passphrase-file', passFile, '--also-recipient', 'age1nope']),
      /not an age recipient/,
    );
  });
});

void describe('keys restore', () => {
  void it('restores a file the real `age -p` wrote, to where sops looks, 0600 in a 0700 folder, printing the public key', () => {
    const out = join(home, 'agep.age');
    const r = atTerminal(passFile, ['age', '-p', '-o', out, keyFile]);
    assert.equal(r.code, 0, r.transcript);
    const fresh = join(home, 'fresh-home');
    const res = runCli(['keys', 'restore', out, '--passphrase-file', passFile], { cwd: home, env: env({ HOME: fresh }) });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `${recipient}\n`);
    const target = join(fresh, '.config', 'sops', 'age', 'keys.txt');
    assert.equal(readFileSync(target, 'utf8'), keyText);
    assert.equal(mode(target), 0o600);
    assert.equal(mode(join(fresh, '.config', 'sops', 'age')), 0o700);
  });

  void it('refuses a wrong passphrase, an existing key file, and a file that is no backup, each in one line', () => {
    const out = join(home, 'r1.age');
    ok(cli(['keys', 'backup', keyFile, '--out', out, '--passphrase-file', passFile]));
    const wrong = secretFile('wrong.txt', `${canary('wrong')}\n`);
    userError(
      cli(['keys', 'restore', out, '--out', join(home, 'r1.key'), '--passphrase-file', wrong]),
      /^error: wrong passphrase for the key backup \(.*r1\.age\)$/,
    );
    const existing = join(home, 'r2.key');
    writeFileSync(existing, 'mine\n');
    userError(cli(['keys', 'restore', out, '--out', existing, '--passphrase-file', passFile]), /refusing to overwrite an existing key file/);
    assert.equal(readFileSync(existing, 'utf8'), 'mine\n');
    userError(cli(['keys', 'restore', keyFile, '--out', join(home, 'r3.key'), '--passphrase-file', passFile]), /not a key backup/);
  });
});

void describe('keys backup --ansible-vault', () => {
  void it('writes a vault ansible-vault view opens, which restore and bootstrap-style reading open back', async () => {
    const vaultPass = secretFile('vault-pass', `${canary('vault')}\n`);
    const vault = join(home, 'key.vault');
    assert.equal(ok(cli(['keys', 'backup', keyFile, '--ansible-vault', vault, '--vault-password-file', vaultPass])), `${recipient}\n`);
    assert.match(readFileSync(vault, 'utf8'), /^\$ANSIBLE_VAULT;1\.1;AES256\n[0-9a-f\n]+$/);
    assert.equal(mode(vault), 0o600);
    const { stdout } = await runTool('ansible-vault', ['view', '--vault-password-file', vaultPass, vault]);
    assert.equal(stdout, keyText);
    const restored = join(home, 'v.key');
    assert.equal(ok(cli(['keys', 'restore', vault, '--out', restored, '--vault-password-file', vaultPass])), `${recipient}\n`);
    assert.equal(readFileSync(restored, 'utf8'), keyText);
  });

  void it('opens a vault the real ansible-vault encrypted', async () => {
    const vaultPass = secretFile('vault-pass2', `${canary('vault2')}\n`);
    const plain = join(home, 'ansible.vault');
    writeFileSync(plain, keyText, { mode: 0o600 });
    await runTool('ansible-vault', ['encrypt', '--vault-password-file', vaultPass, plain]);
    const restored = join(home, 'av.key');
    assert.equal(ok(cli(['keys', 'restore', plain, '--out', restored, '--vault-password-file', vaultPass])), `${recipient}\n`);
  });

  void it('needs a vault password file, and takes no age passphrase file', () => {
    userError(cli(['keys', 'backup', keyFile, '--ansible-vault', join(home, 'x.vault')]), /needs --vault-password-file/);
    userError(cli(['keys', 'backup', keyFile]), /no backup file named/);
  });
});
