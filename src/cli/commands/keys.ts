import { Option } from 'commander';
import type { Command } from 'commander';
import { commandIo, DEFAULT_AGE_KEY_FILE } from '../context.ts';
import type { KeysNewOptions, KeysPubOptions } from '../../flows/keys.ts';
import type { KeysRotateOptions } from '../../flows/keys-rotate.ts';
import type { KeysBackupOptions, KeysRestoreOptions } from '../../flows/keys-backup.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('generate age and OpenPGP keys for sops, and print their public keys');

  keys
    .command('new')
    .summary('generate an age identity (or an OpenPGP key with --pgp) and print its public key')
    .description(
      'Generate an age X25519 identity in the age-keygen format and print its public key. ' +
        'A key file is never overwritten: --append adds a second identity to it (key rotation). ' +
        'With --pgp: an OpenPGP key without passphrase, armored, for sops `pgp:` rules; prints its fingerprint.',
    )
    .option('--out <file>', `key file to write (default: $SOPS_AGE_KEY_FILE, else ${DEFAULT_AGE_KEY_FILE}; required with --pgp)`)
    .option('--append', 'add a new identity to an existing age key file (key rotation) instead of refusing')
    .option('--pq', 'post-quantum hybrid age identity (age1pq1…); needs Flux >= 2.9 and sops >= 3.12 to decrypt')
    .option('--pgp', 'generate an OpenPGP key instead of an age identity')
    .option('--type <type>', 'OpenPGP key type: rsa4096 (default, as in the Flux guide) or ed25519')
    .option('--name <name>', 'OpenPGP user ID name', 'fluxstrap')
    .option('--email <email>', 'OpenPGP user ID email')
    .addHelpText(
      'after',
      '\nExamples:\n  fluxstrap keys new\n  fluxstrap keys new --out ./age.agekey --append\n  fluxstrap keys new --pgp --out ~/.config/sops/pgp/prod.asc',
    )
    .action(async (opts: KeysNewOptions, cmd: Command) => {
      const { keysNew } = await import('../../flows/keys.ts');
      await keysNew(opts, commandIo(cmd));
    });

  keys
    .command('pub')
    .argument('[file]', 'age key file or armored OpenPGP key (default: SOPS_AGE_KEY, SOPS_AGE_KEY_FILE and the sops default file, as sops reads them)')
    .description('print the public key(s): age recipients one per line, or an OpenPGP fingerprint (--armor: the armored public key)')
    .option('--armor', 'for an OpenPGP key file: print the armored public key instead of the fingerprint')
    .addHelpText(
      'after',
      '\nExamples:\n  fluxstrap keys pub\n  fluxstrap keys pub ./age.agekey\n  fluxstrap keys pub --armor prod.asc > clusters/prod/.sops.pub.asc',
    )
    .action(async (file: string | undefined, opts: KeysPubOptions, cmd: Command) => {
      const { keysPub } = await import('../../flows/keys.ts');
      await keysPub(file, opts, commandIo(cmd));
    });

  keys
    .command('backup')
    .argument('[file]', `age key file to back up (default: SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, else ${DEFAULT_AGE_KEY_FILE})`)
    .summary('write the age key encrypted with a passphrase (or into an Ansible Vault), for disaster recovery')
    .description(
      'Write the age key file encrypted with a passphrase (age scrypt, ASCII-armored: `age -d FILE` opens it), or into a whole-file ' +
        'Ansible Vault (`ansible-vault view` opens it). The passphrase is typed twice at a terminal, or read from --passphrase-file or ' +
        '$FLUXSTRAP_BACKUP_PASSPHRASE; never a flag. A backup file is never overwritten. Prints the public keys backed up.',
    )
    .option('--out <file>', 'backup file, age-encrypted with a passphrase')
    .option('--passphrase-file <file>', 'passphrase on the first line of this file (else $FLUXSTRAP_BACKUP_PASSPHRASE, else typed)')
    .option('--ansible-vault <file>', 'write an Ansible Vault (format 1.1, AES256) instead of --out')
    .option('--vault-password-file <file>', 'with --ansible-vault: the vault password file (an executable one is run, as Ansible does)')
    .option('--also-recipient <age1…>', 'also write FILE.recipients.age encrypted to this age recipient, e.g. an offline or hardware key (repeatable)', collect)
    .addHelpText(
      'after',
      '\nExamples:\n  fluxstrap keys backup --out homelab-key.age\n  fluxstrap keys backup prod.agekey --out prod-key.age --passphrase-file ~/.prod-pass --also-recipient age1…\n' +
        '  fluxstrap keys backup --ansible-vault group_vars/all/age-key.vault --vault-password-file ~/.vault_pass',
    )
    .action(async (file: string | undefined, opts: KeysBackupOptions, cmd: Command) => {
      const { keysBackup } = await import('../../flows/keys-backup.ts');
      await keysBackup(file, opts, commandIo(cmd));
    });

  keys
    .command('restore')
    .argument('<backup>', 'a `fluxstrap keys backup` file, an `age -p` file, or an Ansible Vault holding the key file')
    .summary('write an age key back from a backup, where sops looks for it')
    .description(
      'Open a key backup and write the age key file where sops looks ($SOPS_AGE_KEY_FILE, else the default file) or to --out, mode 0600. ' +
        'An existing key file is never overwritten. Prints the public keys restored.',
    )
    .option('--out <file>', `key file to write (default: $SOPS_AGE_KEY_FILE, else ${DEFAULT_AGE_KEY_FILE})`)
    .option('--passphrase-file <file>', 'passphrase on the first line of this file (else $FLUXSTRAP_BACKUP_PASSPHRASE, else typed)')
    .option('--vault-password-file <file>', 'for an Ansible Vault backup: the vault password file')
    .addHelpText(
      'after',
      '\nExamples:\n  fluxstrap keys restore homelab-key.age\n  fluxstrap keys restore prod-key.age --out ./prod.agekey --passphrase-file ~/.prod-pass',
    )
    .action(async (file: string, opts: KeysRestoreOptions, cmd: Command) => {
      const { keysRestore } = await import('../../flows/keys-backup.ts');
      await keysRestore(file, opts, commandIo(cmd));
    });

  keys
    .command('rotate')
    .summary("rotate a cluster's age key in two phases, so Flux can decrypt every file throughout")
    .description(
      'Phase 1 (default): make sure the key file holds a new identity (appended; one not yet in .sops.yaml is reused), ' +
        "add its recipient to the cluster's creation rule next to the old one, and re-encrypt the data key of every SOPS file " +
        'under the cluster folder for both (updatekeys: values and MAC unchanged). ' +
        'Phase 2 (--finish): remove the old recipient and give every file a new data key, so the old key opens nothing. ' +
        'Files only: after each phase, run `fluxstrap bootstrap --cluster NAME --rotate-secrets`. Private keys are never removed unless --drop-old-identity. ' +
        'With Shamir key groups the new recipient joins each group that holds the old one; phase 2 splits the new data key again, so it needs keys for enough groups: ' +
        'the key file, plus SOPS_AGE_KEY / SOPS_AGE_KEY_FILE for the other groups.',
    )
    .requiredOption('--cluster <name>', 'cluster whose key is rotated (its folder: the fluxstrap config entry, else clusters/<name>)')
    .option('--repo <dir>', 'repository root (default: $FLUXSTRAP_REPO, else the nearest folder up holding fluxstrap.yaml)')
    .option(
      '--age-key-file <file>',
      `the cluster's age key file ($FLUXSTRAP_AGE_KEY_FILE; default from fluxstrap.yaml, then $SOPS_AGE_KEY_FILE, else ${DEFAULT_AGE_KEY_FILE})`,
    )
    .addOption(new Option('--key-file <file>', 'old name of --age-key-file').hideHelp())
    .option('--finish', 'phase 2: remove the old recipient and rotate the data key of every file')
    .option('--drop-old-identity', 'with --finish: remove the old identity from the key file, refused while a file is still encrypted to it')
    .option('--check', 'change nothing: show what would change (exit 3 if anything would)')
    .option('--diff', 'show before/after of each change')
    .addHelpText(
      'after',
      '\nRunbook:\n  fluxstrap keys rotate --cluster prod --age-key-file prod.agekey\n  fluxstrap bootstrap --cluster prod --rotate-secrets\n' +
        '  fluxstrap keys rotate --cluster prod --age-key-file prod.agekey --finish\n  fluxstrap bootstrap --cluster prod --rotate-secrets\n' +
        '  fluxstrap keys rotate --cluster prod --age-key-file prod.agekey --finish --drop-old-identity\n  fluxstrap bootstrap --cluster prod --rotate-secrets',
    )
    .action(async (opts: KeysRotateOptions, cmd: Command) => {
      const { keysRotate } = await import('../../flows/keys-rotate.ts');
      process.exitCode = await keysRotate(opts, commandIo(cmd));
    });
}
