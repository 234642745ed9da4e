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
    .option(
      '--age-key-file <file>',
      'age key file (or armored OpenPGP key) to take the public key from ($FLUXSTRAP_AGE_KEY_FILE; default: from fluxstrap.yaml, then as sops finds age keys)',
    )
    .addOption(new Option('--key-file <file>', 'old name of --age-key-file').hideHelp())
    .option('--age <recipient>', 'age recipient instead of a key file (repeatable)', collect)
    .option('--repo <dir>', 'repository root (default: $FLUXSTRAP_REPO, else the nearest folder up holding fluxstrap.yaml, else the current folder)')
    .option('--git-url <url>', 'URL Flux pulls from, https:// or ssh:// (git@host:owner/repo is converted; default: the origin remote)')
    .option('--branch <name>', "branch Flux follows (default: the origin remote's default branch, else main)")
    .option('--git-token-env <var>', 'HTTPS auth: environment variable holding the Git token (only its name is written)')
    .option(
      '--git-username <name>',
      'HTTPS auth: the account name sent with the token (default: git, which GitHub accepts; Gitea, Forgejo and GitLab need the account name)',
    )
    .option('--git-ssh-key <file>', 'SSH auth: deploy key file (with --git-known-hosts)')
    .option(
      '--git-known-hosts <file>',
      "SSH auth: known_hosts file holding the Git server's host key (filled when missing: from GitHub's API for github.com, else a scan confirmed with --accept-host-key)",
    )
    .option(
      '--git-sops-file [file]',
      "keep the Git credentials (the token of --git-token-env, or the deploy key) SOPS-encrypted for the cluster's age key in this file, outside flux-system/ (default: bootstrap/<name>/git-credentials.sops.yaml); bootstrap applies them from there when no token or key file is given",
    )
    .addOption(new Option('--ssh-key-algorithm <algorithm>', 'SSH auth: type of a generated deploy key').choices(['ed25519', 'ecdsa-p384', 'rsa']))
    .option(
      '--accept-host-key <fingerprint>',
      "SSH auth: trust the scanned Git server host key with this fingerprint (SHA256:…, as ssh-keygen -l shows it), after checking it with the server's admin",
    )
    .option(
      '--create-repo',
      "create the GitHub repository of --git-url when it does not exist (personal or organisation, after the URL's owner; token from $GITHUB_TOKEN or git.github.tokenEnv), check the token's access, register the deploy key there and push the initial layout to the new branch (asked at a terminal unless --yes)",
    )
    .option('--public', 'with --create-repo: a public repository (default: private)')
    .option('--yes', 'confirm --create-repo without asking (scripts)')
    .option('--github-api-url <url>', 'GitHub Enterprise Server REST API, e.g. https://ghe.example.com/api/v3 (written to fluxstrap.yaml as git.github.apiUrl)')
    .addOption(
      new Option(
        '--git-provider <provider>',
        'Git hosting API bootstrap registers the deploy key through (written as git.provider; default github for github.com URLs, else generic): gitea for a Gitea or Forgejo server, with --gitea-api-url',
      ).choices(['github', 'gitea', 'generic']),
    )
    .option(
      '--gitea-api-url <url>',
      "Gitea's (or Forgejo's) REST API root, e.g. https://gitea.example.com/api/v1 (written as git.gitea.apiUrl, with git.provider gitea; token from $GITEA_TOKEN)",
    )
    .option(
      '--flux-version <version>',
      'Flux version of a generated flux-system/gotk-components.yaml (default: v2.9.5, the one fluxstrap ships and is tested with)',
    )
    .option('--flux-manifests <dir>', "a Flux release's manifests.tar.gz, unpacked: for other versions and air-gapped machines")
    .option('--components <list>', 'Flux controllers to install (default: source-controller,kustomize-controller,helm-controller,notification-controller)')
    .option('--components-extra <list>', 'extra controllers: image-reflector-controller,image-automation-controller,source-watcher')
    .option('--registry <address>', 'container registry of the Flux images (default: ghcr.io/fluxcd)')
    .option('--image-pull-secret <name>', 'Secret in flux-system the controllers pull their images with')
    .option('--watch-all-namespaces <bool>', 'controllers watch all namespaces (default: true)', parseBool)
    .option('--network-policy <bool>', 'deny ingress to the controllers from other namespaces (default: true)', parseBool)
    .option('--toleration-keys <list>', 'taint keys the controllers tolerate')
    .option('--cluster-domain <domain>', "the cluster's DNS domain (default: cluster.local)")
    .option('--log-level <level>', 'controller log level: debug, info or error (default: info)')
    .addOption(
      new Option(
        '--sops-backend <backend>',
        'what secrets are encrypted for: an age or OpenPGP key (a Secret in the cluster), HashiCorp Vault transit (a token in the sops-hcvault Secret), or a cloud key service kustomize-controller reaches with its own identity',
      )
        .choices(['age', 'pgp', 'vault', 'aws-kms', 'gcp-kms', 'azure-kv'])
        .default('age'),
    )
    .option(
      '--vault-transit-uri <uri>',
      'vault: transit key URI for the .sops.yaml rule, https://VAULT:8200/v1/ENGINE/keys/NAME (repeatable; keys of one Vault)',
      collect,
    )
    .option(
      '--vault-token-env <var>',
      'vault: the environment variable whose token bootstrap puts in the sops-hcvault Secret (written to fluxstrap.yaml as sopsKey.vault.tokenEnv; the token is never written to a file)',
    )
    .option(
      '--pgp-key-file <file>',
      'pgp: armored OpenPGP private key without a passphrase (gpg --export-secret-keys --armor FPR): its fingerprint goes into the .sops.yaml rule, the file into fluxstrap.yaml as sopsKey.pgp.file, and bootstrap stores it in the sops-gpg Secret',
    )
    .option(
      '--kms-arn <arn>',
      'aws-kms: AWS KMS key ARN for the .sops.yaml rule, optionally +arn:aws:iam::ACCOUNT:role/NAME for sops to assume (repeatable)',
      collect,
    )
    .option(
      '--aws-role-arn <arn>',
      "aws-kms: IAM role for kustomize-controller through IRSA (annotation eks.amazonaws.com/role-arn); omit when the nodes' role may use the key",
    )
    .option('--gcp-kms-key <id>', 'gcp-kms: projects/P/locations/L/keyRings/R/cryptoKeys/K for the .sops.yaml rule (repeatable)', collect)
    .option(
      '--gcp-service-account <email>',
      'gcp-kms: Google service account for kustomize-controller through GKE Workload Identity (iam.gke.io/gcp-service-account)',
    )
    .option('--azure-kv-key <url>', 'azure-kv: https://VAULT.vault.azure.net/keys/NAME/VERSION for the .sops.yaml rule (repeatable)', collect)
    .addOption(
      new Option('--azure-identity <how>', 'azure-kv: how kustomize-controller authenticates').choices([
        'workload-identity',
        'aad-pod-identity',
        'service-principal',
      ]),
    )
    .option('--azure-client-id <id>', "azure-kv workload-identity: the managed identity's client id (azure.workload.identity/client-id)")
    .option('--azure-tenant-id <id>', "azure-kv workload-identity: its tenant id, when not the cluster's")
    .option('--aad-pod-identity-binding <name>', 'azure-kv aad-pod-identity: the AzureIdentityBinding selector (label aadpodidbinding, AZURE_AUTH_METHOD=msi)')
    .option(
      '--azure-credentials-file <file>',
      'azure-kv service-principal: SOPS file in the repository holding AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET; bootstrap creates the Secret from it (default: from those environment variables)',
    )
    .option(
      '--azure-credentials-secret <name>',
      'azure-kv service-principal: Secret in flux-system holding AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, read through envFrom (default: sops-azure-credentials)',
    )
    .option(
      '--object-level-identity <serviceAccount>',
      'Flux >= 2.6 object-level workload identity: the flux-system Kustomization decrypts as this ServiceAccount (written to flux-system/sops-identity.yaml with the identity), kustomize-controller gets the feature gate',
    )
    .option('--force', 'replace a flux-system/gotk-components.yaml that differs from the generated one')
    .addOption(
      new Option(
        '--decryption <mode>',
        'where the key Secret is named: kustomization (decryption.secretRef of Kustomization flux-system) or controller (kustomize-controller --sops-age-secret, Flux >= 2.7; default: the mode the repository has, else kustomization)',
      ).choices(['kustomization', 'controller']),
    )
    .option(
      '--child-decryption',
      "write decryption {provider: sops} (plus secretRef in kustomization mode) into each Flux Kustomization the cluster applies that reaches SOPS files without it, in place (flux-system's own is the patch's)",
    )
    .option('--no-mac-only-encrypted', 'a new .sops.yaml rule without mac_only_encrypted: true (an existing rule keeps its choice)')
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
  deploy key, known_hosts             with an ssh:// URL: an SSH deploy key generated where git.auth.ssh.keyFile
                                      says (default ~/.config/fluxstrap/NAME-deploy-key, never overwritten; the
                                      public key is printed) and the server's host keys in clusters/NAME/known_hosts
  bootstrap/NAME/git-credentials.sops.yaml
                                      with --git-sops-file: the Git credentials (token or deploy key) as the
                                      flux-system Secret, SOPS-encrypted for the cluster's age key (written once,
                                      never in clear); bootstrap applies it when no token or key file is given
  .sops.yaml                          the cluster's key in the rules governing the SOPS files the cluster
                                      reaches (its Kustomizations' spec.path); if it reaches none yet, a
                                      creation rule for the cluster folder, before any rule that would
                                      catch its files; other rules, comments and order kept
  clusters/NAME/.sops.pub.age|.asc    the public key, for team members (age -R, gpg --import)
  clusters/NAME/flux-system/kustomization.yaml
                                      decryption {provider: sops, secretRef: sops-age} as a patch, where
                                      flux bootstrap never overwrites it; a block hand-added to
                                      gotk-sync.yaml is moved there and the generated file restored;
                                      --decryption controller: {provider: sops} and a patch adding
                                      --sops-age-secret=sops-age to kustomize-controller instead
                                      (--sops-backend vault: secretRef sops-hcvault)
  Kustomizations the cluster applies  with --child-decryption: decryption {provider: sops} (plus secretRef
                                      sops-age in kustomization mode) written into each one that reaches
                                      SOPS files without it, in its own file (comments, order, other
                                      documents kept); one whose spec.path does not exist stops init
  clusters/NAME/kustomization.yaml    lists flux-system (else Flux never applies its own config from Git)
  Makefile                            a provision target (only when there is no Makefile: else printed)
  .gitignore                          entries that keep private keys out of Git
  fluxstrap.yaml                      the cluster's entry, so bootstrap needs no flags: path (unless
                                      clusters/NAME), ageKey.file (an age --age-key-file), git.url and
                                      git.branch (flags, else the origin remote), git.auth (flags),
                                      sopsKey.vault (--sops-backend vault: address, token variable);
                                      comments and other clusters kept, a setting you wrote is never
                                      removed, a flag given now replaces a different value

Exit codes: 0 done or nothing to do, 1 failed, 2 bad usage, 3 --check found changes to make.

Examples:
  fluxstrap init --cluster prod
  fluxstrap init --cluster prod --age-key-file ~/.config/sops/age/keys.txt --check
  fluxstrap init --cluster prod --decryption controller --check
  fluxstrap init --cluster prod --child-decryption --check
  fluxstrap init --cluster home --git-url https://git.home/me/fleet.git --components-extra image-reflector-controller,image-automation-controller
  fluxstrap init --cluster staging --path clusters/stage --age age1… --repo ~/src/homelab
  fluxstrap init --cluster prod --git-url https://github.com/me/fleet.git --branch main --git-token-env GITHUB_TOKEN
  fluxstrap init --cluster home --git-url https://gitea.example.com/me/fleet.git --git-username me --git-token-env GITEA_TOKEN
  fluxstrap init --cluster lab --git-url git@github.com:me/lab.git --git-ssh-key ~/.ssh/flux-deploy --git-known-hosts ./known_hosts
  fluxstrap init --cluster lab --git-url git@github.com:me/lab.git          (generates the deploy key, host keys from GitHub)
  GITHUB_TOKEN=… fluxstrap init --cluster lab --git-url git@github.com:me/lab.git --create-repo --yes
  fluxstrap init --cluster nas --git-url ssh://git@nas.lan:2222/me/fleet.git --accept-host-key SHA256:…
  fluxstrap init --cluster prod --git-url https://git.example.com/me/fleet.git --git-token-env GIT_TOKEN --git-sops-file

  fluxstrap init --cluster prod --sops-backend vault --vault-transit-uri https://vault.example.com:8200/v1/transit/keys/flux --vault-token-env FLUX_VAULT_TOKEN
  fluxstrap init --cluster prod --sops-backend pgp --pgp-key-file ~/.config/fluxstrap/prod.asc
  fluxstrap init --cluster eks --sops-backend aws-kms --kms-arn arn:aws:kms:eu-west-1:111122223333:key/… --aws-role-arn arn:aws:iam::111122223333:role/flux-sops
  fluxstrap init --cluster gke --sops-backend gcp-kms --gcp-kms-key projects/p/locations/global/keyRings/flux/cryptoKeys/sops --gcp-service-account flux-sops@p.iam.gserviceaccount.com
  fluxstrap init --cluster aks --sops-backend azure-kv --azure-kv-key https://v.vault.azure.net/keys/sops/0123 --azure-identity workload-identity --azure-client-id 00000000-…`,
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
