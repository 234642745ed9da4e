import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { commandIo } from '../context.ts';
import type { InitOptions } from '../../flows/init.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];
function parseBool(value: string): boolean {
  if (value === 'true' || value === 'false') return value === 'true';
  throw new InvalidArgumentError('true or false');
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .summary('make a GitOps repository ready for SOPS-encrypted secrets for one cluster')
    .description('Make a GitOps repository ready for SOPS-encrypted secrets for one cluster. Safe to run again: a second run changes nothing.')
    .requiredOption('--cluster <name>', 'cluster name')
    .option('--path <dir>', 'cluster folder in the repository (default: clusters/<name>)')
    .option('--age-key-file <file>', 'age key file (or armored OpenPGP key) to take the public key from ($FLUXSTRAP_AGE_KEY_FILE; default: from fluxstrap.yaml, then as sops finds age keys)')
    .addOption(new Option('--key-file <file>', 'old name of --age-key-file').hideHelp())
    .option('--age <recipient>', 'age recipient instead of a key file (repeatable)', collect)
    .option('--repo <dir>', 'repository root (default: $FLUXSTRAP_REPO, else the nearest folder up holding fluxstrap.yaml, else the current folder)')
    .option('--git-url <url>', 'URL Flux pulls from, https:// or ssh:// (git@host:owner/repo is converted; default: the origin remote)')
    .option('--branch <name>', 'branch Flux follows (default: the origin remote\'s default branch, else main)')
    .option('--git-token-env <var>', 'HTTPS auth: environment variable holding the Git token (only its name is written)')
    .option('--git-username <name>', 'HTTPS auth: the account name sent with the token (default: git, which GitHub accepts; Gitea, Forgejo and GitLab need the account name)')
    .option('--git-ssh-key <file>', 'SSH auth: deploy key file (with --git-known-hosts)')
    .option('--git-known-hosts <file>', 'SSH auth: known_hosts file holding the Git server\'s host key')
    .option('--flux-version <version>', 'Flux version of a generated flux-system/gotk-components.yaml (default: v2.9.5, the one fluxstrap ships and is tested with)')
    .option('--flux-manifests <dir>', 'a Flux release\'s manifests.tar.gz, unpacked: for other versions and air-gapped machines')
    .option('--components <list>', 'Flux controllers to install (default: source-controller,kustomize-controller,helm-controller,notification-controller)')
    .option('--components-extra <list>', 'extra controllers: image-reflector-controller,image-automation-controller,source-watcher')
    .option('--registry <address>', 'container registry of the Flux images (default: ghcr.io/fluxcd)')
    .option('--image-pull-secret <name>', 'Secret in flux-system the controllers pull their images with')
    .option('--watch-all-namespaces <bool>', 'controllers watch all namespaces (default: true)', parseBool)
    .option('--network-policy <bool>', 'deny ingress to the controllers from other namespaces (default: true)', parseBool)
    .option('--toleration-keys <list>', 'taint keys the controllers tolerate')
    .option('--cluster-domain <domain>', 'the cluster\'s DNS domain (default: cluster.local)')
    .option('--log-level <level>', 'controller log level: debug, info or error (default: info)')
    .option('--force', 'replace a flux-system/gotk-components.yaml that differs from the generated one')
    .option('--check', 'change nothing: show what would change as a diff (exit 3 if anything would)')
    .option('--diff', 'show before/after of each change')
    .addHelpText(
      'after',
      `
What it ensures (--check shows it as a diff first):
  clusters/NAME/flux-system/gotk-components.yaml, gotk-sync.yaml
                                      when missing: Flux's manifests and sync objects as flux install
                                      --export and flux bootstrap write them (gotk-sync.yaml needs the
                                      Git URL: --git-url or the origin remote); an existing file is
                                      kept unless --flux-version/options are given (then --force)
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
                                      clusters/NAME), ageKey.file (an age --age-key-file), git.url and
                                      git.branch (flags, else the origin remote), git.auth (flags);
                                      comments and other clusters kept, a setting you wrote is never
                                      removed, a flag given now replaces a different value

Exit codes: 0 done or nothing to do, 1 failed, 2 bad usage, 3 --check found changes to make.

Examples:
  fluxstrap init --cluster prod
  fluxstrap init --cluster prod --age-key-file ~/.config/sops/age/keys.txt --check
  fluxstrap init --cluster home --git-url https://git.home/me/fleet.git --components-extra image-reflector-controller,image-automation-controller
  fluxstrap init --cluster staging --path clusters/stage --age age1… --repo ~/src/homelab
  fluxstrap init --cluster prod --git-url https://github.com/me/fleet.git --branch main --git-token-env GITHUB_TOKEN
  fluxstrap init --cluster home --git-url https://gitea.example.com/me/fleet.git --git-username me --git-token-env GITEA_TOKEN
  fluxstrap init --cluster lab --git-url git@github.com:me/lab.git --git-ssh-key ~/.ssh/flux-deploy --git-known-hosts ./known_hosts`,
    )
    .action(async ({ ageKeyFile, ...rest }: InitOptions & { ageKeyFile?: string }, cmd: Command) => {
      const keyFile = ageKeyFile ?? rest.keyFile;
      if (keyFile !== undefined && rest.age !== undefined) {
        const { usageError } = await import('../../core/errors.ts');
        throw usageError('--age-key-file and --age are alternatives: pass one');
      }
      const { runInit } = await import('../../flows/init.ts');
      process.exitCode = await runInit({ ...rest, ...(keyFile !== undefined ? { keyFile } : {}) }, commandIo(cmd));
    });
}
