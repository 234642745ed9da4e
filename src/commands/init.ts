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
    .option('--git-url <url>', 'URL Flux pulls from, https:// or ssh:// (git@host:owner/repo is converted; default: the origin remote)')
    .option('--branch <name>', 'branch Flux follows (default: the origin remote\'s default branch, else main)')
    .option('--git-token-env <var>', 'HTTPS auth: environment variable holding the Git token (only its name is written)')
    .option('--git-ssh-key <file>', 'SSH auth: deploy key file (with --git-known-hosts)')
    .option('--git-known-hosts <file>', 'SSH auth: known_hosts file holding the Git server\'s host key')
    .option('--check', 'change nothing: show what would change as a diff (exit 3 if anything would)')
    .option('--diff', 'show before/after of each change')
    .addHelpText(
      'after',
      `
What it ensures (--check shows it as a diff first):
  .sops.yaml                          the cluster's key in the rules governing the SOPS files the cluster
                                      reaches (its Kustomizations' spec.path); if it reaches none yet, a
                                      creation rule for the cluster folder, before any rule that would
                                      catch its files; other rules, comments and order kept
  clusters/NAME/.sops.pub.age|.asc    the public key, for team members (age -R, gpg --import)
  clusters/NAME/flux-system/kustomization.yaml
                                      decryption {provider: sops, secretRef: sops-age} as a patch, where
                                      flux bootstrap never overwrites it; a block hand-added to
                                      gotk-sync.yaml is moved there and the generated file restored
  clusters/NAME/kustomization.yaml    lists flux-system (else Flux never applies its own config from Git)
  Makefile                            a provision target (only when there is no Makefile: else printed)
  .gitignore                          entries that keep private keys out of Git
  fluxstrap.yaml                      the cluster's entry, so bootstrap needs no flags: path (unless
                                      clusters/NAME), ageKey.file (an age --key-file), git.url and
                                      git.branch (flags, else the origin remote), git.auth (flags);
                                      comments and other clusters kept, a setting you wrote is never
                                      removed, a flag given now replaces a different value

Exit codes: 0 done or nothing to do, 1 failed, 2 bad usage, 3 --check found changes to make.

Examples:
  fluxstrap init --cluster prod
  fluxstrap init --cluster prod --key-file ~/.config/sops/age/keys.txt --check
  fluxstrap init --cluster staging --path clusters/stage --age age1… --repo ~/src/homelab
  fluxstrap init --cluster prod --git-url https://github.com/me/fleet.git --branch main --git-token-env GITHUB_TOKEN
  fluxstrap init --cluster lab --git-url git@github.com:me/lab.git --git-ssh-key ~/.ssh/flux-deploy --git-known-hosts ./known_hosts`,
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
