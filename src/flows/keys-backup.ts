import { exists, readBytes, readText } from '../adapters/files.ts';
import { FluxstrapError, usageError } from '../core/errors.ts';
import { ageKeyFilePath, parseAgeKeyFile, recipientOf } from '../keys/age.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { readVaultPassword } from '../keys/ansible-vault.ts';
import { encryptToRecipients, encryptVaultBackup, encryptWithPassphrase, openBackup } from '../keys/backup.ts';
import { KEY_FILE_MODE, writeKeyFile } from '../keys/generate.ts';
import { info, terminalAsk } from './io.ts';
import type { CommandIo } from './io.ts';
import { identitiesFromEnv } from './keys.ts';
import { backupPassphrase } from './passphrase.ts';

/** `fluxstrap keys backup` and `keys restore`: the age key kept safe for a machine that is gone. */

export interface KeysBackupOptions {
  out?: string;
  ansibleVault?: string;
  vaultPasswordFile?: string;
  passphraseFile?: string;
  alsoRecipient?: string[];
}

/** The key file to back up, as text: the file named, else what sops would use (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, the default file). */
async function keyToBackUp(file: string | undefined, env: NodeJS.ProcessEnv): Promise<{ text: string; identities: AgeIdentity[] }> {
  if (file !== undefined) {
    const text = await readText(file);
    return { text, identities: await parseAgeKeyFile(text, file, recipientOf) };
  }
  const identities = await identitiesFromEnv(env);
  const text = identities.map((i) => `${i.createdAt !== undefined ? `# created: ${i.createdAt}\n` : ''}# public key: ${i.recipient}\n${i.secret}\n`).join('');
  return { text, identities };
}

export async function keysBackup(file: string | undefined, opts: KeysBackupOptions, g: CommandIo): Promise<void> {
  if ((opts.out === undefined) === (opts.ansibleVault === undefined)) {
    throw usageError(
      opts.out === undefined ? 'no backup file named' : '--out and --ansible-vault both name the backup',
      'pass --out FILE (age passphrase) or --ansible-vault FILE --vault-password-file F',
    );
  }
  if (opts.ansibleVault !== undefined && opts.vaultPasswordFile === undefined)
    throw usageError('--ansible-vault needs --vault-password-file F', 'the vault password file, as ansible-vault --vault-password-file reads it');
  if (opts.ansibleVault !== undefined && opts.passphraseFile !== undefined)
    throw usageError('--passphrase-file applies to --out backups', 'an Ansible Vault takes --vault-password-file');
  if (opts.out !== undefined && opts.vaultPasswordFile !== undefined)
    throw usageError('--vault-password-file applies to --ansible-vault backups', 'an age backup takes --passphrase-file');
  const key = await keyToBackUp(file, g.env);
  const recipients = opts.alsoRecipient ?? [];
  const extra = recipients.length > 0 ? await encryptToRecipients(key.text, recipients) : undefined;

  const target = opts.out ?? opts.ansibleVault ?? '';
  const content =
    opts.ansibleVault !== undefined
      ? await encryptVaultBackup(key.text, await readVaultPassword(opts.vaultPasswordFile ?? ''))
      : await encryptWithPassphrase(key.text, await backupPassphrase(opts.passphraseFile, g.env, terminalAsk(g), true));
  // Ciphertext, but of a private key: owner-only, and never over an older backup (it may be the only good copy).
  const written = [target];
  await writeKeyFile(target, content, true);
  if (extra !== undefined) {
    const copy = `${target}.recipients.age`;
    await writeKeyFile(copy, extra, true);
    written.push(copy);
  }
  const publicKeys = key.identities.map((i) => i.recipient);
  g.result({ files: written, format: opts.ansibleVault !== undefined ? 'ansible-vault' : 'age', recipients: publicKeys, alsoRecipients: recipients });
  if (g.json) return;
  info(
    g,
    `wrote ${target} (${opts.ansibleVault !== undefined ? 'Ansible Vault' : 'age, passphrase'}; mode 0600) holding ${publicKeys.length} identit${publicKeys.length === 1 ? 'y' : 'ies'}`,
  );
  if (extra !== undefined)
    info(g, `wrote ${target}.recipients.age for ${recipients.join(', ')} (age allows a passphrase only alone in a file, so the offline copy is its own file)`);
  info(g, `restore with: fluxstrap keys restore ${target}`);
  g.stdout.write(publicKeys.map((r) => `${r}\n`).join(''));
}

export interface KeysRestoreOptions {
  out?: string;
  passphraseFile?: string;
  vaultPasswordFile?: string;
}

/** Open a backup and write the key file where sops looks (or --out), 0600, never over an existing file. */
export async function keysRestore(file: string, opts: KeysRestoreOptions, g: CommandIo): Promise<void> {
  if (opts.passphraseFile !== undefined && opts.vaultPasswordFile !== undefined)
    throw usageError(
      '--passphrase-file and --vault-password-file both given',
      'pass the one of the backup: an age backup takes a passphrase, an Ansible Vault its vault password',
    );
  const out = opts.out ?? ageKeyFilePath(g.env);
  // Before any passphrase is asked: a key file there may be another key, and is never replaced.
  if (await exists(out)) {
    throw new FluxstrapError('E_PRECONDITION', 'refusing to overwrite an existing key file', {
      location: { file: out },
      hint: 'it may hold another key: restore to another file with --out FILE, compare with `fluxstrap keys pub`, and merge by hand',
    });
  }
  const bytes = await readBytes(file, 'read the key backup');
  const passphrase =
    opts.vaultPasswordFile !== undefined
      ? await readVaultPassword(opts.vaultPasswordFile)
      : await backupPassphrase(opts.passphraseFile, g.env, terminalAsk(g), false);
  const opened = await openBackup(bytes, file, passphrase);
  await writeKeyFile(out, opened.text.endsWith('\n') ? opened.text : `${opened.text}\n`, true);
  const publicKeys = opened.identities.map((i) => i.recipient);
  g.result({ file: out, recipients: publicKeys });
  if (g.json) return;
  info(g, `restored ${publicKeys.length} age identit${publicKeys.length === 1 ? 'y' : 'ies'} to ${out} (mode 0${KEY_FILE_MODE.toString(8)})`);
  g.stdout.write(publicKeys.map((r) => `${r}\n`).join(''));
}
