import type { Command } from 'commander';
import { globalOptions } from '../cli/context.ts';
import type { InitOptions } from '../init/run.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerInit(program: Command): void {
  program
    .command('init')
    .summary('make a GitOps repository ready for SOPS-encrypted secrets for one cluster')
    .description('Make a GitOps repository ready for SOPS-encrypted secrets for one cluster. Safe to run again: a second run changes nothing.')
    .requiredOption('--cluster <name>', 'cluster name')
    .option('--path <dir>', 'cluster folder in the repository (default: clusters/<name>)')
    .option('--key-file <file>', 'age key file or armored OpenPGP key to take the public key from (default: as sops finds age keys)')
    .option('--age <recipient>', 'age recipient instead of a key file (repeatable)', collect)
    .option('--repo <dir>', 'repository root (default: the current folder)')
    .option('--check', 'change nothing: show what would change as a diff (exit 3 if anything would)')
    .option('--diff', 'show before/after of each change')
    .addHelpText(
      'after',
      `
What it ensures (--check shows it as a diff first):
  .sops.yaml                          a creation rule for the cluster folder, before any rule that would
                                      catch its files; other rules, comments and order kept
  clusters/NAME/.sops.pub.age|.asc    the public key, for team members (age -R, gpg --import)
  clusters/NAME/flux-system/kustomization.yaml
                                      decryption {provider: sops, secretRef: sops-age} as a patch, where
                                      flux bootstrap never overwrites it; a block hand-added to
                                      gotk-sync.yaml is moved there and the generated file restored
  clusters/NAME/kustomization.yaml    lists flux-system (else Flux never applies its own config from Git)
  Makefile                            a provision target (only when there is no Makefile: else printed)
  .gitignore                          entries that keep private keys out of Git

Exit codes: 0 done or nothing to do, 1 failed, 2 bad usage, 3 --check found changes to make.

Examples:
  fluxstrap init --cluster prod
  fluxstrap init --cluster prod --key-file ~/.config/sops/age/keys.txt --check
  fluxstrap init --cluster staging --path clusters/stage --age age1… --repo ~/src/homelab`,
    )
    .action(async (opts: InitOptions, cmd: Command) => {
      if (opts.keyFile !== undefined && opts.age !== undefined) {
        const { usageError } = await import('../core/errors.ts');
        throw usageError('--key-file and --age are alternatives: pass one');
      }
      const { runInit } = await import('../init/run.ts');
      process.exitCode = await runInit(opts, globalOptions(cmd));
    });
}
