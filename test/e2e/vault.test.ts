import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FluxstrapError } from '../../src/core/errors.ts';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { decryptVault, parseVaultEnvelope, readVaultVariable } from '../../src/keys/ansible-vault.ts';
import { readAgeIdentities } from '../../src/tasks/context.ts';

/** Interop with the real `ansible-vault` (Debian ansible-core): what it encrypts, we must read. */

const ANSIBLE_VAULT = '/usr/bin/ansible-vault';
let dir: string;

/** Passwords reach ansible-vault only through 0600 files, never argv. */
function ansibleVault(opts: { input?: string }, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(ANSIBLE_VAULT, args, { cwd: dir, env: { ...process.env, HOME: dir, ANSIBLE_LOCAL_TEMP: join(dir, '.tmp') } }, (e, stdout, stderr) =>
      e ? reject(new Error(`ansible-vault ${args[0] ?? ''} failed: ${stderr}`)) : resolve(stdout),
    );
    child.stdin?.end(opts.input ?? '');
  });
}

const isError = (code: string) => (e: unknown) => e instanceof FluxstrapError && e.code === code;

const AGE_KEY = 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ';
const VARS = `vault_github_token: "github_pat_example"\nsops_age_private_key: "${AGE_KEY}"\n`;

void describe('Ansible Vault reader against the real ansible-vault', () => {
  before(async () => {
    assert.ok(existsSync(ANSIBLE_VAULT), 'ansible-vault is missing: apt-get install ansible-core');
    dir = await mkdtemp(join(tmpdir(), 'fluxstrap-vault-'));
    await writeFile(join(dir, 'pw'), 'correct horse\n', { mode: 0o600 });
    await writeFile(join(dir, 'wrong'), 'battery staple\n', { mode: 0o600 });
    await writeFile(join(dir, 'secrets.yml'), VARS);
    await ansibleVault({}, 'encrypt', '--vault-password-file', 'pw', 'secrets.yml');
    await writeFile(join(dir, 'seed.yml'), VARS);
    await ansibleVault({}, 'encrypt', '--vault-id', 'seed@pw', 'seed.yml');
    // The value goes in on stdin, as a user would pipe it, so it is never on argv.
    const inline = await ansibleVault({ input: AGE_KEY }, 'encrypt_string', '--vault-id', 'seed@pw', '--stdin-name', 'sops_age_private_key');
    await writeFile(join(dir, 'inline.yml'), `plain: visible\n${inline}`);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  void it('decrypts a 1.1 file made by ansible-vault encrypt', async () => {
    const text = await readFile(join(dir, 'secrets.yml'), 'utf8');
    assert.equal(parseVaultEnvelope(text, 'secrets.yml').version, '1.1');
    assert.equal(await decryptVault(text, 'correct horse', 'secrets.yml'), VARS);
    assert.equal(await readVaultVariable(join(dir, 'secrets.yml'), join(dir, 'pw'), 'sops_age_private_key'), AGE_KEY);
  });

  void it('decrypts a 1.2 file with a vault id, and with CRLF line ends', async () => {
    const text = await readFile(join(dir, 'seed.yml'), 'utf8');
    const env = parseVaultEnvelope(text, 'seed.yml');
    assert.equal(env.version, '1.2');
    assert.equal(env.vaultId, 'seed');
    assert.equal(await decryptVault(text.replace(/\n/g, '\r\n'), 'correct horse', 'seed.yml'), VARS);
  });

  void it('decrypts an inline !vault value from encrypt_string in a plain vars file', async () => {
    assert.equal(await readVaultVariable(join(dir, 'inline.yml'), join(dir, 'pw'), 'sops_age_private_key'), AGE_KEY);
    assert.equal(await readVaultVariable(join(dir, 'inline.yml'), join(dir, 'pw'), 'plain'), 'visible');
  });

  void it('refuses a wrong password with a clear error naming the file', async () => {
    await assert.rejects(readVaultVariable(join(dir, 'secrets.yml'), join(dir, 'wrong'), 'sops_age_private_key'), (e: unknown) => {
      assert.ok(isError('E_DECRYPT')(e));
      assert.match((e as Error).message, /wrong vault password/);
      assert.equal((e as FluxstrapError).location?.file, join(dir, 'secrets.yml'));
      assert.ok(!(e as Error).message.includes('correct'));
      return true;
    });
  });

  void it('refuses a tampered file', async () => {
    const text = await readFile(join(dir, 'secrets.yml'), 'utf8');
    // Change one ciphertext digit inside the inner hex layer, so the file stays well-formed.
    const [header, ...body] = text.trim().split('\n');
    const inner = Buffer.from(body.join(''), 'hex').toString('latin1');
    const flipped = inner.slice(0, -1) + (inner.endsWith('0') ? '1' : '0');
    const tampered = `${header ?? ''}\n${Buffer.from(flipped, 'latin1').toString('hex')}\n`;
    await assert.rejects(decryptVault(tampered, 'correct horse', 'secrets.yml'), isError('E_DECRYPT'));
    await assert.rejects(decryptVault(text.replace('AES256', 'AES'), 'correct horse', 'x.yml'), isError('E_CONFIG'));
    await assert.rejects(decryptVault(`${text}zz\n`, 'correct horse', 'x.yml'), isError('E_CONFIG'));
  });

  void it('names a missing variable and refuses an empty password file', async () => {
    await assert.rejects(readVaultVariable(join(dir, 'secrets.yml'), join(dir, 'pw'), 'nope'), (e: unknown) => {
      assert.ok(isError('E_CONFIG')(e));
      assert.equal((e as FluxstrapError).location?.field, 'nope');
      return true;
    });
    await writeFile(join(dir, 'empty'), '\n', { mode: 0o600 });
    await assert.rejects(readVaultVariable(join(dir, 'secrets.yml'), join(dir, 'empty'), 'x'), /password file is empty/);
  });

  void it('runs an executable password file and uses its output, as ansible-vault does', async () => {
    await writeFile(join(dir, 'pw.sh'), "#!/bin/sh\nprintf 'correct horse\\n'\n", { mode: 0o700 });
    assert.equal(await ansibleVault({}, 'view', '--vault-password-file', 'pw.sh', 'secrets.yml'), VARS);
    assert.equal(await readVaultVariable(join(dir, 'secrets.yml'), join(dir, 'pw.sh'), 'sops_age_private_key'), AGE_KEY);
    await writeFile(join(dir, 'fail.sh'), '#!/bin/sh\nexit 3\n', { mode: 0o700 });
    await assert.rejects(
      readVaultVariable(join(dir, 'secrets.yml'), join(dir, 'fail.sh'), 'x'),
      (e: unknown) => isError('E_PROCESS')(e) && /exit 3/.test((e as Error).message),
    );
    await assert.rejects(readVaultVariable(join(dir, 'secrets.yml'), join(dir, 'absent'), 'x'), isError('E_NOT_FOUND'));
  });

  void it('gives the task context the age identity kept in a vault, as the seed keeps it', async () => {
    const secret = await generateIdentity();
    await writeFile(join(dir, 'seed-secrets.yml'), `vault_github_token: "x"\nsops_age_private_key: "${secret}"\n`);
    await ansibleVault({}, 'encrypt', '--vault-password-file', 'pw', 'seed-secrets.yml');
    const ids = await readAgeIdentities(
      { type: 'ansible-vault', file: join(dir, 'seed-secrets.yml'), passwordFile: join(dir, 'pw'), variable: 'sops_age_private_key' },
      {},
    );
    assert.deepEqual(
      ids.map((i) => i.recipient),
      [await identityToRecipient(secret)],
    );
    assert.equal(ids[0]?.source, `${join(dir, 'seed-secrets.yml')} (sops_age_private_key)`);
  });

  void it('ansible-vault itself opens the file we read (the fixture is real)', async () => {
    assert.equal(await ansibleVault({}, 'view', '--vault-password-file', 'pw', 'secrets.yml'), VARS);
  });
});
