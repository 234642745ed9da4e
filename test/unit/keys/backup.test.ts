import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decryptVault, encryptVault } from '../../../src/keys/ansible-vault.ts';
import { backupFormat, encryptToRecipients, encryptWithPassphrase, openBackup } from '../../../src/keys/backup.ts';
import { generateAgeIdentity } from '../../../src/keys/generate.ts';
import { formatAgeKeyFile } from '../../../src/keys/age.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';

const decryptError = (message: RegExp) => (e: unknown) => e instanceof FluxstrapError && e.code === 'E_DECRYPT' && message.test(e.message);

void describe('Ansible Vault writer', () => {
  void it('round-trips every padding length, in the 1.1 layout wrapped at 80 columns, and a wrong password fails the HMAC', async () => {
    for (const text of ['', 'x', 'a'.repeat(15), 'b'.repeat(16), 'c'.repeat(17), 'ü€'.repeat(40)]) {
      const vault = await encryptVault(text, 'pw');
      const [header, ...body] = vault.trimEnd().split('\n');
      assert.equal(header, '$ANSIBLE_VAULT;1.1;AES256');
      assert.ok(body.every((l, i) => /^[0-9a-f]+$/.test(l) && (i === body.length - 1 ? l.length <= 80 : l.length === 80)));
      assert.equal(await decryptVault(vault, 'pw', 'v'), text);
    }
    await assert.rejects(decryptVault(await encryptVault('k', 'pw'), 'other', 'v'), decryptError(/HMAC verification failed/));
  });
});

void describe('key backups', () => {
  void it('open with the passphrase they were made with, and name the file (never the key) otherwise', async () => {
    const id = await generateAgeIdentity(false);
    const keyText = formatAgeKeyFile(id, new Date(0));
    const armored = await encryptWithPassphrase(keyText, 'correct horse');
    assert.equal(backupFormat(Buffer.from(armored)), 'age');
    const opened = await openBackup(Buffer.from(armored), 'b.age', 'correct horse');
    assert.equal(opened.text, keyText);
    assert.deepEqual(
      opened.identities.map((i) => i.recipient),
      [id.recipient],
    );
    await assert.rejects(
      openBackup(Buffer.from(armored), 'b.age', 'wrong'),
      (e: unknown) => decryptError(/^wrong passphrase for the key backup$/)(e) && (e as FluxstrapError).location?.file === 'b.age',
    );

    const vault = await encryptVault(keyText, 'pw');
    assert.equal(backupFormat(Buffer.from(vault)), 'ansible-vault');
    assert.equal((await openBackup(Buffer.from(vault), 'v', 'pw')).text, keyText);

    const toRecipient = await encryptToRecipients(keyText, [id.recipient]);
    await assert.rejects(openBackup(Buffer.from(toRecipient), 'r.age', 'x'), decryptError(/encrypted to age recipients, not to a passphrase/));
  });

  void it('refuse what is no backup, and a backup that holds no age key, without printing its content', async () => {
    assert.equal(backupFormat(Buffer.from('AGE-SECRET-KEY-1…')), undefined);
    await assert.rejects(openBackup(Buffer.from('plain text'), 'p', 'x'), /not a key backup/);
    const notKey = await encryptVault('password: hunter2-canary\n', 'pw');
    await assert.rejects(
      openBackup(Buffer.from(notKey), 'v', 'pw'),
      (e: unknown) => e instanceof FluxstrapError && /does not hold an age key file/.test(e.message) && !JSON.stringify(e).includes('hunter2'),
    );
  });
});
