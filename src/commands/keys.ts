import type { Command } from 'commander';
import { globalOptions } from '../cli/context.ts';
import type { KeysNewOptions, KeysPubOptions } from '../keys/actions.ts';

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
    .option('--out <file>', 'key file to write (default: $SOPS_AGE_KEY_FILE, else ~/.config/sops/age/keys.txt; required with --pgp)')
    .option('--append', 'add a new identity to an existing age key file (key rotation) instead of refusing')
    .option('--pq', 'post-quantum hybrid age identity (age1pq1…); needs Flux >= 2.9 and sops >= 3.12 to decrypt')
    .option('--pgp', 'generate an OpenPGP key instead of an age identity')
    .option('--type <type>', 'OpenPGP key type: rsa4096 (default, as in the Flux guide) or ed25519')
    .option('--name <name>', 'OpenPGP user ID name', 'fluxstrap')
    .option('--email <email>', 'OpenPGP user ID email')
    .addHelpText('after', '\nExamples:\n  fluxstrap keys new\n  fluxstrap keys new --out ./age.agekey --append\n  fluxstrap keys new --pgp --out ~/.config/sops/pgp/prod.asc')
    .action(async (opts: KeysNewOptions, cmd: Command) => {
      const { keysNew } = await import('../keys/actions.ts');
      await keysNew(opts, globalOptions(cmd));
    });

  keys
    .command('pub')
    .argument('[file]', 'age key file or armored OpenPGP key (default: SOPS_AGE_KEY, SOPS_AGE_KEY_FILE and the sops default file, as sops reads them)')
    .description('print the public key(s): age recipients one per line, or an OpenPGP fingerprint (--armor: the armored public key)')
    .option('--armor', 'for an OpenPGP key file: print the armored public key instead of the fingerprint')
    .addHelpText('after', '\nExamples:\n  fluxstrap keys pub\n  fluxstrap keys pub ./age.agekey\n  fluxstrap keys pub --armor prod.asc > clusters/prod/.sops.pub.asc')
    .action(async (file: string | undefined, opts: KeysPubOptions, cmd: Command) => {
      const { keysPub } = await import('../keys/actions.ts');
      await keysPub(file, opts, globalOptions(cmd));
    });
}
