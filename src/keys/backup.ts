import { readBytes, readText } from '../adapters/files.ts';
import { FluxstrapError, configError, usageError } from '../core/errors.ts';
import { isAgeFile, isAgeRecipient, parseAgeKeyFile, recipientOf } from './age.ts';
import type { AgeIdentity } from './age.ts';
import { decryptVault, encryptVault, isVaultText } from './ansible-vault.ts';

/**
 * Backups of an age key file, for when the machine holding it is gone: the key file encrypted
 * with a passphrase (age's scrypt recipient, so `age -d` opens it and `age -p` writes one fluxstrap
 * opens), or a whole-file Ansible Vault (`ansible-vault view` opens it). The plaintext and the
 * passphrase stay in memory; only ciphertext is written.
 */

export type BackupFormat = 'age' | 'ansible-vault';

const AGE_ARMOR = '-----BEGIN AGE ENCRYPTED FILE-----';

/** The variable a passphrase may be given in, for scripts; a terminal is asked instead. */
export const PASSPHRASE_ENV = 'FLUXSTRAP_BACKUP_PASSPHRASE';

/** Which kind of backup the bytes are, undefined when neither. */
export function backupFormat(bytes: Buffer): BackupFormat | undefined {
  if (isAgeFile(bytes)) return 'age';
  if (isVaultText(bytes.subarray(0, 64).toString('latin1').trimStart())) return 'ansible-vault';
  return undefined;
}

/** The key file text encrypted with `passphrase`, ASCII-armored (age's scrypt recipient, work factor 2^18 as `age -p`). */
export async function encryptWithPassphrase(keyText: string, passphrase: string): Promise<string> {
  const age = await import('age-encryption');
  const e = new age.Encrypter();
  e.setPassphrase(passphrase);
  return age.armor.encode(await e.encrypt(keyText));
}

/**
 * The key file text encrypted to age recipients (an offline or hardware key). A separate file
 * from the passphrase one: age allows a passphrase stanza only alone in a header.
 */
export async function encryptToRecipients(keyText: string, recipients: readonly string[]): Promise<string> {
  const age = await import('age-encryption');
  const e = new age.Encrypter();
  for (const r of recipients) {
    if (!isAgeRecipient(r)) throw usageError(`--also-recipient ${r}: not an age recipient`, 'an age public key starts with age1');
    try {
      e.addRecipient(r);
    } catch {
      throw usageError(
        `--also-recipient ${r}: this age recipient type cannot be encrypted to here`,
        'use an X25519 (age1…) or post-quantum (age1pq1…) recipient, or encrypt with the age CLI and its plugin',
      );
    }
  }
  return age.armor.encode(await e.encrypt(keyText));
}

export const encryptVaultBackup = encryptVault;

/** An opened backup: the key file text it holds and its identities. Secret: never print. */
export interface OpenedBackup {
  text: string;
  identities: AgeIdentity[];
  format: BackupFormat;
}

/** Open a backup with its passphrase (an Ansible Vault's vault password); the content must be an age key file. */
export async function openBackup(bytes: Buffer, file: string, passphrase: string): Promise<OpenedBackup> {
  const format = backupFormat(bytes);
  if (format === undefined) {
    throw configError(
      'not a key backup: neither an age-encrypted file nor an Ansible Vault',
      { file },
      'name the file `fluxstrap keys backup` (or `age -p`, or `ansible-vault encrypt`) wrote',
    );
  }
  const text = format === 'age' ? await openPassphraseAge(bytes, file, passphrase, BACKUP) : await decryptVault(bytes.toString('utf8'), passphrase, file);
  // Locations point at the backup: line numbers of the plaintext would mean nothing to the reader.
  const identities = await parseAgeKeyFile(text, file, recipientOf).catch(() => {
    throw configError(
      'the backup opens, but does not hold an age key file',
      { file },
      'a key backup holds lines starting with AGE-SECRET-KEY-1 (the key file sops reads)',
    );
  });
  return { text, identities, format };
}

/** What a passphrase-encrypted age file is to the user, for messages: its name and where a passphrase comes from. */
export interface PassphraseFileKind {
  what: string;
  passphraseHint: string;
}

const BACKUP: PassphraseFileKind = { what: 'the key backup', passphraseHint: `type it again, or check --passphrase-file / $${PASSPHRASE_ENV}` };

/** The text of an age file encrypted to a passphrase (`age -p`, binary or armored); a wrong passphrase is one line naming `file`. */
export async function openPassphraseAge(bytes: Buffer, file: string, passphrase: string, kind: PassphraseFileKind): Promise<string> {
  const age = await import('age-encryption');
  let binary: Uint8Array = bytes;
  if (bytes.toString('latin1').trimStart().startsWith(AGE_ARMOR)) {
    try {
      binary = age.armor.decode(bytes.toString('latin1').trim());
    } catch {
      throw configError('the armored age file is damaged', { file }, 'restore the backup file from another copy');
    }
  }
  const header = Buffer.from(binary.subarray(0, 4096)).toString('latin1');
  if (!header.includes('\n-> scrypt ')) {
    throw new FluxstrapError('E_DECRYPT', `${kind.what} is encrypted to age recipients, not to a passphrase`, {
      location: { file },
      hint: 'open it with the matching identity: age -d -i IDENTITY_FILE -o keys.txt FILE (the --also-recipient copy is one of these)',
    });
  }
  const d = new age.Decrypter();
  d.addPassphrase(passphrase);
  try {
    return await d.decrypt(binary, 'text');
  } catch (e) {
    const why = e instanceof Error ? e.message : '';
    if (/no identity matched/i.test(why)) {
      throw new FluxstrapError('E_DECRYPT', `wrong passphrase for ${kind.what}`, { location: { file }, hint: kind.passphraseHint });
    }
    throw new FluxstrapError('E_DECRYPT', `cannot open ${kind.what} (age, passphrase): ${why.slice(0, 120)}`, {
      location: { file },
      hint: 'restore the file from another copy',
    });
  }
}

/**
 * A passphrase given without a terminal: `--passphrase-file` (its first line, as a password
 * manager writes it), else $FLUXSTRAP_BACKUP_PASSPHRASE; undefined when neither is given.
 */
export async function givenPassphrase(passphraseFile: string | undefined, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (passphraseFile !== undefined) {
    const value = (await readText(passphraseFile, 'read the passphrase file')).replace(/\r?\n$/, '');
    if (value === '') throw configError('the passphrase file is empty', { file: passphraseFile }, 'write the passphrase on its first line');
    return value;
  }
  const value = env[PASSPHRASE_ENV];
  return value === undefined || value === '' ? undefined : value;
}

export const noPassphrase = (): FluxstrapError =>
  usageError('no passphrase for the key backup', `pass --passphrase-file FILE, set ${PASSPHRASE_ENV}, or run at a terminal to type it`);

/** Read and open a backup file with a passphrase from a file or the environment (no terminal here). */
export async function readBackupIdentities(file: string, passphraseFile: string | undefined, env: NodeJS.ProcessEnv): Promise<AgeIdentity[]> {
  const passphrase = await givenPassphrase(passphraseFile, env);
  if (passphrase === undefined) throw noPassphrase();
  return (await openBackup(await readBytes(file, 'read the key backup'), file, passphrase)).identities;
}
