import { readBytes } from '../adapters/files.ts';
import { usageError } from '../core/errors.ts';
import type { AgeKeySource } from '../cluster/config.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { givenPassphrase, noPassphrase, openBackup } from '../keys/backup.ts';
import type { OpenedBackup } from '../keys/backup.ts';
import type { AskSecret } from './io.ts';

/**
 * A key backup's passphrase: --passphrase-file, else $FLUXSTRAP_BACKUP_PASSPHRASE, else typed at
 * the terminal (twice when making a backup, so a typo cannot lock the key away). Never argv.
 */
export async function backupPassphrase(
  passphraseFile: string | undefined,
  env: NodeJS.ProcessEnv,
  ask: AskSecret | undefined,
  confirm: boolean,
): Promise<string> {
  const given = await givenPassphrase(passphraseFile, env);
  if (given !== undefined) return given;
  if (ask === undefined) throw noPassphrase();
  const typed = await ask('passphrase of the key backup (not shown): ');
  if (typed === '') throw usageError('the passphrase is empty', 'type a passphrase: a backup without one would be the private key in the clear');
  if (confirm && (await ask('the same passphrase again: ')) !== typed)
    throw usageError('the two passphrases differ', 'run the command again and type the same passphrase twice');
  return typed;
}

/** Read and open a backup file, asking for its passphrase at the terminal when no file or variable gives it. */
export async function openBackupFile(
  file: string,
  passphraseFile: string | undefined,
  env: NodeJS.ProcessEnv,
  ask: AskSecret | undefined,
): Promise<OpenedBackup> {
  const bytes = await readBytes(file, 'read the key backup');
  return openBackup(bytes, file, await backupPassphrase(passphraseFile, env, ask, false));
}

/** The identities of a cluster whose key is a backup; undefined for every other key source (read later, by the tasks). */
export async function backupIdentities(ageKey: AgeKeySource, env: NodeJS.ProcessEnv, ask: AskSecret | undefined): Promise<AgeIdentity[] | undefined> {
  if (ageKey.type !== 'backup') return undefined;
  return (await openBackupFile(ageKey.file, ageKey.passphraseFile, env, ask)).identities;
}
