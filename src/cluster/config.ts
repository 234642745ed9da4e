import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isScalar } from 'yaml';
import { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import { FluxstrapError, usageError } from '../core/errors.ts';
import { ageKeyFilePath } from '../keys/age.ts';
import { SSH_KEY_ALGORITHMS } from '../keys/ssh.ts';
import type { SshKeyAlgorithm } from '../keys/ssh.ts';
import { YamlSource } from '../adapters/yaml-source.ts';

/**
 * `fluxstrap.yaml`, at the repository root: one entry per cluster saying how to reach it, where
 * its Git source is and where its SOPS key comes from. Secrets are never in this file: it names
 * environment variables and files that hold them. One zod schema gives the TypeScript type, the
 * runtime check (errors at file:line) and schema/fluxstrap.schema.json.
 */

export const CONFIG_FILE = 'fluxstrap.yaml';

const path = z.string().min(1);
const numericId = z.union([z.number().int().positive(), z.string().regex(/^[1-9][0-9]*$/, 'must be a number')]);
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

/** SOPS files in flux-system/ break bootstrap: kustomize-controller applies that folder before it has the key. */
const sopsFile = path
  .refine(
    (p) => !p.replace(/\\/g, '/').split('/').includes('flux-system'),
    'must be outside flux-system/ (kustomize-controller would apply it before it has the key)',
  )
  .describe(
    "SOPS-encrypted flux-system Git credential Secret in the repository (e.g. bootstrap/<cluster>/git-credentials.sops.yaml), written by init, decrypted in memory by bootstrap with the cluster's age key when no token variable or key file is at hand.",
  );

const GitAuthSchema = z.union([
  z
    .strictObject({
      https: z.strictObject({
        username: z.string().min(1).default('git').describe('User name sent with the token (GitHub accepts any; Gitea wants the account name).'),
        passwordEnv: envName.describe('Environment variable holding the token or password; the value is never written anywhere but the Secret.'),
      }),
      sopsFile: sopsFile.optional(),
    })
    .describe('HTTPS basic auth: Secret keys username/password.'),
  z
    .strictObject({
      ssh: z.strictObject({
        keyFile: path.describe('Private key file (the deploy key); stored in the Secret as `identity`.'),
        knownHostsFile: path.describe(
          "known_hosts file holding the Git server host key; stored as `known_hosts`. When missing, init and bootstrap fill it: from GitHub's /meta for github.com, else from a scan confirmed with --accept-host-key.",
        ),
        keyAlgorithm: z.enum(SSH_KEY_ALGORITHMS).optional().describe('Algorithm of a deploy key generated when keyFile does not exist yet; default ed25519.'),
        readWrite: z.boolean().optional().describe('Register the deploy key with write access (image automation pushes); default read-only.'),
      }),
      sopsFile: sopsFile.optional(),
    })
    .describe('SSH: Secret keys identity/identity.pub/known_hosts.'),
  z
    .strictObject({
      githubApp: z
        .strictObject({
          appId: numericId.describe("The GitHub App's ID (App settings → About → App ID)."),
          installationId: numericId
            .optional()
            .describe('The installation of the App on the account owning the repository (the number ending its settings URL); or installationOwner.'),
          installationOwner: z
            .string()
            .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,38}$/, 'must be a GitHub user or organisation name')
            .optional()
            .describe('The account the App is installed on, instead of installationId: its installation is looked up.'),
          privateKeyFile: path.describe(
            "The App's private key (.pem generated in the App's settings); stored in the Secret as `githubAppPrivateKey`, never printed.",
          ),
          baseUrl: z
            .string()
            .regex(/^https?:\/\/\S+$/, 'must be an http(s):// URL')
            .optional()
            .describe('REST API of GitHub Enterprise Server, e.g. https://ghe.example.com/api/v3 (Secret key githubAppBaseURL); default github.com.'),
        })
        .refine((a) => (a.installationId === undefined) !== (a.installationOwner === undefined), 'set one of installationId and installationOwner'),
    })
    .describe(
      'GitHub App over HTTPS: Secret keys githubAppID, githubAppInstallationID (or githubAppInstallationOwner), githubAppPrivateKey (githubAppBaseURL); GitRepository flux-system gets provider: github.',
    ),
  z.strictObject({ sopsFile }).describe('Only the encrypted Secret: HTTPS or SSH as it holds.'),
]);

const publicKeys = z
  .array(
    z
      .string()
      // kustomize-controller imports only native age identities (keys ending in .agekey), never an SSH key.
      .refine((s) => !s.startsWith('ssh-'), {
        message:
          'an SSH recipient cannot be the cluster key: kustomize-controller imports only age identities (AGE-SECRET-KEY-1…) from the sops-age Secret; list the age1… recipient of an age key here',
        abort: true,
      })
      .regex(/^age1[02-9ac-hj-np-z]+$/, 'must be an age recipient (age1…)'),
  )
  .min(1)
  .optional()
  .describe("Only the identities of these recipients go to the sops-age Secret: a key file shared between clusters must not give one cluster the other's key.");

const AgeKeySchema = z.union([
  z.strictObject({ file: path.describe('age key file (age-keygen format); every identity in it goes to the sops-age Secret.'), publicKeys }),
  z.strictObject({ env: envName.describe('Environment variable holding the age identities, like SOPS_AGE_KEY.'), publicKeys }),
  z.strictObject({
    cmd: z
      .string()
      .min(1)
      .describe(
        'Command printing the age identities (a password manager), run without a shell like SOPS_AGE_KEY_CMD; with publicKeys, once per recipient with SOPS_AGE_RECIPIENT set.',
      ),
    publicKeys,
  }),
  z.strictObject({
    ansibleVault: z.strictObject({
      file: path.describe('Ansible vars file: a whole-file vault, or plain YAML with an inline !vault value.'),
      passwordFile: path.describe('Vault password file (as ansible-vault --vault-password-file).'),
      variable: z.string().min(1).optional().describe('Variable holding the age key, e.g. sops_age_private_key; omit when the whole vault is the key file.'),
    }),
    publicKeys,
  }),
]);

const fingerprint = z
  .string()
  .transform((v) => v.replace(/\s+/g, '').toUpperCase())
  .pipe(z.string().regex(/^[0-9A-F]{40}$/, 'must be a 40-hex-digit OpenPGP v4 fingerprint'));

const VaultKeySchema = z.strictObject({
  address: z
    .string()
    .regex(/^https?:\/\/[^/?#@\s]+\/?$/, 'must be an http(s):// address without a path')
    .describe('Vault address, as in the hc_vault_transit_uri of .sops.yaml; kustomize-controller reaches the address each file names.'),
  tokenEnv: envName.describe(
    'Environment variable holding the Vault token kustomize-controller decrypts with; written only to the sops-hcvault Secret (sops.vault-token).',
  ),
});

/** sops' ARN check (sops/aws-kms.ts), bounded; the region is what `region` is compared with. */
const KMS_ARN = /^arn:aws[\w-]*:kms:([^:]{1,64}):[0-9]{1,20}:(key|alias)\/[^\s]{1,256}$/;
const IAM_ROLE = /^arn:aws[\w-]*:iam::[0-9]{1,20}:role\/[^\s]{1,512}$/;

const pgpFile = { file: path.describe('Armored OpenPGP private key file, without a passphrase (kustomize-controller cannot type one).') };
const pgpFingerprint = {
  fingerprint: fingerprint.describe(
    'Fingerprint of a key in your gpg keyring, exported with `gpg --export-secret-keys --armor` when needed; its private key must have no passphrase.',
  ),
};
/** Written by `keys rotate` phase 1 and removed by `--finish`: until then both keys go to the sops-gpg Secret. */
const retiring = z
  .union([z.strictObject(pgpFile), z.strictObject(pgpFingerprint)])
  .optional()
  .describe('The key being replaced (keys rotate), kept in the sops-gpg Secret until `keys rotate --finish`.');

const SopsKeySchema = z
  .strictObject({
    pgp: z
      .union([z.strictObject({ ...pgpFile, retiring }), z.strictObject({ ...pgpFingerprint, retiring })])
      .optional()
      .describe('An OpenPGP key, stored in the sops-gpg Secret.'),
    vault: VaultKeySchema.optional().describe('HashiCorp Vault transit: kustomize-controller decrypts with a token from the sops-hcvault Secret.'),
    awsKms: z
      .strictObject({
        arn: z
          .string()
          .regex(KMS_ARN, 'must be an AWS KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID or …:alias/NAME)')
          .describe("The KMS key the cluster's .sops.yaml rule lists."),
        roleArn: z
          .string()
          .regex(IAM_ROLE, 'must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)')
          .optional()
          .describe('IAM role EKS hands kustomize-controller (IRSA): `eks.amazonaws.com/role-arn` on its ServiceAccount.'),
        region: z
          .string()
          .regex(/^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$/, 'must be an AWS region such as eu-west-1')
          .optional()
          .describe('Region of the cluster; a key ARN naming another region is refused.'),
      })
      .optional()
      .describe("AWS KMS through the controller's AWS identity: no sops-age Secret."),
    gcpKms: z
      .strictObject({
        resourceId: z
          .string()
          .regex(
            /^projects\/[^/\s]{1,128}\/locations\/[^/\s]{1,64}\/keyRings\/[^/\s]{1,128}\/cryptoKeys\/[^/\s]{1,128}$/,
            'must be projects/P/locations/L/keyRings/R/cryptoKeys/K',
          )
          .describe("The Cloud KMS key the cluster's .sops.yaml rule lists."),
        serviceAccount: z
          .string()
          .regex(/^[a-z][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.]{1,128}\.iam\.gserviceaccount\.com$/, 'must be a Google service account e-mail')
          .optional()
          .describe("GKE Workload Identity: `iam.gke.io/gcp-service-account` on the controller's ServiceAccount."),
      })
      .optional()
      .describe('Google Cloud KMS through GKE Workload Identity: no sops-age Secret.'),
    azureKv: z
      .strictObject({
        vaultUrl: z
          .string()
          .regex(/^https:\/\/[^/\s]{1,253}$/, "must be the vault's https:// URL, without a path")
          .describe('e.g. https://my-vault.vault.azure.net'),
        key: z
          .string()
          .regex(/^[0-9A-Za-z-]{1,127}$/, 'must be a Key Vault key name')
          .describe('Key name in the vault.'),
        version: z
          .string()
          .regex(/^[0-9A-Za-z]{1,64}$/, 'must be a key version')
          .describe('Key version, as the .sops.yaml rule names it.'),
        workloadIdentity: z
          .strictObject({ clientId: z.string().min(1), tenantId: z.string().min(1).optional() })
          .optional()
          .describe("Azure Workload Identity: client id on the controller's ServiceAccount, `azure.workload.identity/use` on its pods."),
        aadPodIdentity: z
          .strictObject({ binding: z.string().min(1) })
          .optional()
          .describe('AAD pod identity: `aadpodidbinding` label and AZURE_AUTH_METHOD=msi.'),
        servicePrincipal: z
          .strictObject({
            secretName: z
              .string()
              .regex(/^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$/, 'must be a Secret name')
              .optional()
              .describe('Secret kustomize-controller takes its environment from (envFrom); default sops-azure-credentials.'),
            file: path
              .optional()
              .describe(
                'SOPS file in the repository holding AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (dotenv, YAML or JSON), opened in memory with the age key; without it they come from those environment variables.',
              ),
          })
          .optional()
          .describe('Service Principal: bootstrap creates the Secret, kustomize-controller reads it through envFrom.'),
      })
      .refine((a) => [a.workloadIdentity, a.aadPodIdentity, a.servicePrincipal].filter((x) => x !== undefined).length <= 1, {
        message: 'give at most one of workloadIdentity, aadPodIdentity, servicePrincipal',
        path: ['servicePrincipal'],
      })
      .optional()
      .describe('Azure Key Vault through an Azure identity: no sops-age Secret.'),
  })
  .refine((k) => Object.values(k).filter((v) => v !== undefined).length === 1, { message: 'give exactly one of pgp, vault, awsKms, gcpKms, azureKv' });

const ClusterSchema = z.strictObject({
  path: z.string().min(1).optional().describe('Cluster folder in the repository (holds flux-system/); default clusters/<name>.'),
  kube: z
    .strictObject({
      kubeconfig: path.optional().describe('Kubeconfig file; default $KUBECONFIG or ~/.kube/config.'),
      context: z.string().min(1).optional().describe('Kube context; default the current context.'),
    })
    .optional(),
  git: z
    .strictObject({
      url: z
        .string()
        .regex(/^(https?|ssh):\/\/\S+$/, 'must be an http(s):// or ssh:// URL')
        .optional()
        .describe('URL Flux pulls from.'),
      branch: z.string().min(1).optional().describe('Branch Flux follows; default main.'),
      auth: GitAuthSchema.optional(),
      provider: z
        .enum(['github', 'gitea', 'generic'])
        .optional()
        .describe(
          "Git hosting API fluxstrap talks to: github registers deploy keys and checks access through GitHub's REST API, gitea through Gitea's (or Forgejo's; with git.gitea.apiUrl, since a self-hosted URL does not tell); default github for github.com URLs, else generic (Git only).",
        ),
      github: z
        .strictObject({
          apiUrl: z
            .string()
            .regex(/^https?:\/\/\S+$/, 'must be an http(s):// URL')
            .optional()
            .describe('REST API of GitHub Enterprise Server, e.g. https://ghe.example.com/api/v3; default https://api.github.com.'),
          tokenEnv: envName
            .optional()
            .describe('Environment variable holding the GitHub token fluxstrap calls the API with; default the HTTPS passwordEnv, else GITHUB_TOKEN.'),
        })
        .optional(),
      gitea: z
        .strictObject({
          apiUrl: z
            .string()
            .regex(/^https?:\/\/\S+$/, 'must be an http(s):// URL')
            .describe("Gitea's (or Forgejo's) REST API root, e.g. https://gitea.example.com/api/v1."),
          tokenEnv: envName
            .optional()
            .describe('Environment variable holding the Gitea access token (write:repository) fluxstrap calls the API with; default GITEA_TOKEN.'),
        })
        .optional()
        .describe('How fluxstrap reaches Gitea, with provider gitea.'),
    })
    .optional(),
  ageKey: AgeKeySchema.optional().describe(
    "Where the SOPS age key comes from; default $SOPS_AGE_KEY, $SOPS_AGE_KEY_FILE, then sops' default sops/age/keys.txt in the user config folder (~/.config on Linux).",
  ),
  sopsKey: SopsKeySchema.optional().describe(
    "A cluster key other than age: an OpenPGP key, stored in the sops-gpg Secret as <FINGERPRINT>.asc (the Flux guide's `gpg --export-secret-keys | kubectl create secret … --from-file=sops.asc=/dev/stdin`); HashiCorp Vault transit (a token in the sops-hcvault Secret); or a key service (AWS KMS, Google Cloud KMS, Azure Key Vault) kustomize-controller reaches with its cloud identity, instead of or besides the age key in sops-age.",
  ),
});

export const FluxstrapConfigSchema = z
  .strictObject({
    $schema: z.string().optional(),
    defaultCluster: z.string().min(1).optional().describe('Cluster used when neither --cluster nor FLUXSTRAP_CLUSTER names one.'),
    clusters: z.record(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'cluster names are lowercase DNS labels'), ClusterSchema),
  })
  .describe('fluxstrap.yaml: how fluxstrap reaches and bootstraps each cluster of this repository.');

/** `git.auth.ssh` as written in fluxstrap.yaml (paths not yet expanded). */
export type SshAuth = Extract<z.infer<typeof GitAuthSchema>, { ssh: unknown }>['ssh'];
export type FluxstrapConfig = z.infer<typeof FluxstrapConfigSchema>;
export type ClusterConfig = z.infer<typeof ClusterSchema>;

/** `sopsFile` (absolute): the encrypted Secret bootstrap falls back on when the token variable or key file is missing. */
export type GitAuth = (
  | { type: 'https'; username: string; passwordEnv: string }
  | { type: 'ssh'; keyFile: string; knownHostsFile: string; keyAlgorithm?: SshKeyAlgorithm; readWrite?: boolean }
  | GitHubAppAuth
  | { type: 'none' }
) & { sopsFile?: string };

/** `git.auth.githubApp`, paths expanded, IDs as the strings the Secret holds. */
export interface GitHubAppAuth {
  type: 'github-app';
  appId: string;
  installationId?: string;
  installationOwner?: string;
  privateKeyFile: string;
  baseUrl?: string;
}

/** How fluxstrap reaches GitHub's API for a cluster on GitHub (token: only its variable's name). */
export interface GitHubSettings {
  apiUrl: string;
  tokenEnv: string;
}

/** How fluxstrap reaches Gitea's API for a cluster with `git.provider: gitea` (token: only its variable's name). */
export interface GiteaSettings {
  apiUrl: string;
  tokenEnv: string;
}

export type AgeKeySource = (
  | { type: 'file'; file: string }
  | { type: 'env'; env: string }
  | { type: 'cmd'; cmd: string }
  | { type: 'ansible-vault'; file: string; passwordFile: string; variable?: string }
  /**
   * A `fluxstrap keys backup` file (age passphrase or Ansible Vault), opened in memory: its
   * passphrase from `passphraseFile`, else $FLUXSTRAP_BACKUP_PASSPHRASE, else (the command) a terminal.
   */
  | { type: 'backup'; file: string; passphraseFile?: string }
) & { publicKeys?: string[] };

/**
 * The key service kustomize-controller decrypts through (`sopsKey`), with the identity that
 * reaches it. Only names, never a credential: a Service Principal's secret comes from `file`
 * (a SOPS file, absolute) or the environment when the Secret is made.
 */
export type CloudSopsKey =
  | { type: 'aws-kms'; arn: string; roleArn?: string; region?: string }
  | { type: 'gcp-kms'; resourceId: string; serviceAccount?: string }
  | {
      type: 'azure-kv';
      vaultUrl: string;
      key: string;
      version: string;
      workloadIdentity?: { clientId: string; tenantId?: string };
      aadPodIdentity?: { binding: string };
      servicePrincipal?: { secretName: string; file?: string };
    };

export const AZURE_SP_SECRET = 'sops-azure-credentials';

/** The cluster's OpenPGP key: an armored private key file, or a key of the user's gpg keyring. */
export type PgpKeySource = { type: 'file'; file: string } | { type: 'gpg'; fingerprint: string };

/** A cluster with every source of settings applied: what a run works with. */
export interface ResolvedCluster {
  name: string;
  /** Absolute repository root. */
  repoDir: string;
  /** The fluxstrap.yaml read, if any. */
  configFile?: string;
  /** `repoDir` is a temporary clone of the branch, made because no checkout was at hand. */
  temporaryClone?: boolean;
  /** Repository-relative cluster folder, `/`-separated, without `./`. */
  path: string;
  kube: { kubeconfig?: string; context?: string };
  git: { url?: string; branch: string; auth: GitAuth; provider: 'github' | 'gitea' | 'generic'; github?: GitHubSettings; gitea?: GiteaSettings };
  ageKey: AgeKeySource;
  /** Set when the cluster's key is OpenPGP (`sopsKey.pgp`); `ageKey` is then not the cluster's. */
  pgpKey?: PgpKeySource;
  /** The OpenPGP key `keys rotate` is replacing (`sopsKey.pgp.retiring`): still in the sops-gpg Secret. */
  pgpRetiring?: PgpKeySource;
  /** Vault transit decrypts in the cluster (the sops-hcvault Secret) instead of the age key. */
  vault?: { address: string; tokenEnv: string };
  /** Set when the cluster decrypts through a key service (`sopsKey.awsKms|gcpKms|azureKv`). */
  cloudKey?: CloudSopsKey;
}

/** Settings given on the command line; each wins over the environment and the file. */
export interface ClusterFlags {
  cluster?: string;
  repo?: string;
  kubeconfig?: string;
  context?: string;
  gitUrl?: string;
  branch?: string;
  path?: string;
  ageKeyFile?: string;
  /** HTTPS auth: the account name sent with the token. */
  gitUsername?: string;
  /** HTTPS auth: the environment variable holding the token (the token itself never is a flag). */
  gitTokenEnv?: string;
  /** SSH auth: the deploy key file, with `gitKnownHosts`. */
  gitSshKey?: string;
  gitKnownHosts?: string;
  /** An age key backup (`fluxstrap keys backup`) instead of a key file. */
  ageKeyBackup?: string;
  /** The backup's passphrase file (else $FLUXSTRAP_BACKUP_PASSPHRASE, else asked at a terminal by the command). */
  passphraseFile?: string;
  githubApiUrl?: string;
  /** Gitea's API root for a cluster with provider gitea, over git.gitea.apiUrl. */
  giteaApiUrl?: string;
}

/** Load and check fluxstrap.yaml; `undefined` when the file does not exist. */
export async function loadConfig(file: string): Promise<FluxstrapConfig | undefined> {
  const text = await readTextIfExists(file);
  return text === undefined ? undefined : parseConfig(text, file);
}

export function parseConfig(text: string, file: string): FluxstrapConfig {
  const src = YamlSource.parse(text, file);
  const parsed = FluxstrapConfigSchema.safeParse(src.toJS() ?? {});
  if (!parsed.success) throw src.schemaError(src.doc.contents, parsed.error, '');
  // zod leaves a `__proto__` key out of a record without an issue: a cluster so named would vanish.
  const names = src.doc.get('clusters', true);
  const proto = isMap(names) ? names.items.find((p) => isScalar(p.key) && p.key.value === '__proto__') : undefined;
  if (proto) throw src.error('key "__proto__": cluster names are lowercase DNS labels', proto.key, undefined, 'clusters.__proto__');
  const { defaultCluster, clusters } = parsed.data;
  for (const [name, entry] of Object.entries(clusters)) {
    if (entry.ageKey !== undefined && entry.sopsKey?.pgp !== undefined) {
      const at = ['clusters', name, 'sopsKey'];
      throw src.error(
        `cluster "${name}" names two keys, ageKey and sopsKey`,
        src.doc.getIn(at, true),
        'the cluster has one SOPS key Secret: keep the one its .sops.yaml rule lists',
        at.join('.'),
      );
    }
    giteaSettingsChecked(src, name, entry.git);
    const aws = entry.sopsKey?.awsKms;
    const arnRegion = aws ? KMS_ARN.exec(aws.arn)?.[1] : undefined;
    if (aws?.region !== undefined && arnRegion !== aws.region) {
      const field = `clusters.${name}.sopsKey.awsKms.region`;
      throw src.error(
        `the KMS key ${aws.arn} is in region ${arnRegion ?? '?'}, not in the cluster's region ${aws.region}`,
        src.doc.getIn(['clusters', name, 'sopsKey', 'awsKms', 'region'], true),
        "use a key of the cluster's region (a KMS key is regional), or correct region",
        field,
      );
    }
  }
  if (defaultCluster !== undefined && !Object.hasOwn(clusters, defaultCluster)) {
    throw src.error(`defaultCluster "${defaultCluster}" is not one of the clusters`, src.doc.get('defaultCluster', true), undefined, 'defaultCluster');
  }
  return parsed.data;
}

/** Gitea cannot be told from its URL: provider gitea and its API root come together. */
function giteaSettingsChecked(src: YamlSource, name: string, git: ClusterConfig['git']): void {
  const at = ['clusters', name, 'git'];
  if (git?.provider === 'gitea' && git.gitea === undefined) {
    throw src.error(
      `cluster "${name}" has git.provider gitea without git.gitea.apiUrl`,
      src.doc.getIn([...at, 'provider'], true),
      "add git.gitea.apiUrl: Gitea's API root, e.g. https://gitea.example.com/api/v1",
      [...at, 'provider'].join('.'),
    );
  }
  if (git?.gitea !== undefined && git.provider !== 'gitea') {
    throw src.error(
      `cluster "${name}" has git.gitea settings but git.provider is ${git.provider ?? 'not set'}`,
      src.doc.getIn([...at, 'gitea'], true),
      'set git.provider: gitea (a Gitea URL is not recognised by itself), or remove git.gitea',
      [...at, 'gitea'].join('.'),
    );
  }
}

/** The entry of cluster `name`: an own key only, since `constructor` is a valid cluster name and in every object. */
export function clusterEntryOf(config: FluxstrapConfig, name: string): ClusterConfig | undefined {
  return Object.hasOwn(config.clusters, name) ? config.clusters[name] : undefined;
}

/** The repository: --repo, else $FLUXSTRAP_REPO, else the nearest folder up from cwd holding fluxstrap.yaml, else cwd. */
export function findRepo(flag: string | undefined, env: NodeJS.ProcessEnv, cwd: string): string {
  const given = flag ?? nonEmpty(env.FLUXSTRAP_REPO);
  if (given !== undefined) return resolve(cwd, given);
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, CONFIG_FILE))) return dir;
    if (dirname(dir) === dir) return resolve(cwd);
  }
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s);

/** `~/x` → home; relative → against `base` (the repo for file values, cwd for flags and env). */
export function expandPath(p: string, base: string): string {
  if (p === '~' || p.startsWith('~/')) return join(homedir(), p.slice(1));
  return isAbsolute(p) ? p : resolve(base, p);
}

/**
 * Resolve one cluster's settings. Order, first found wins, per setting:
 * 1. the command-line flag;
 * 2. the FLUXSTRAP_* environment variable (FLUXSTRAP_CLUSTER, _KUBECONFIG, _CONTEXT, _GIT_URL,
 *    _GIT_BRANCH, _GIT_USERNAME, _GIT_TOKEN_ENV, _GIT_SSH_KEY, _GIT_KNOWN_HOSTS, _PATH,
 *    _AGE_KEY_FILE, _AGE_KEY_BACKUP, _BACKUP_PASSPHRASE_FILE), so `make provision CLUSTER=prod` needs no prompt;
 * 3. the cluster's entry in fluxstrap.yaml (relative paths are relative to the repository);
 * 4. the defaults: $KUBECONFIG / current context, branch main, path clusters/<name>, and for the
 *    age key $SOPS_AGE_KEY, $SOPS_AGE_KEY_FILE, sops' default key file (as sops does).
 */
export function resolveCluster(
  config: FluxstrapConfig | undefined,
  flags: ClusterFlags,
  env: NodeJS.ProcessEnv,
  where: { repoDir: string; cwd: string; configFile?: string },
): ResolvedCluster {
  const names = Object.keys(config?.clusters ?? {});
  const name = flags.cluster ?? nonEmpty(env.FLUXSTRAP_CLUSTER) ?? config?.defaultCluster ?? (names.length === 1 ? names[0] : undefined);
  if (name === undefined) {
    throw usageError(
      names.length === 0 ? 'no cluster named' : `several clusters in ${CONFIG_FILE} (${names.join(', ')}); which one?`,
      'pass --cluster NAME or set FLUXSTRAP_CLUSTER' + (names.length === 0 ? `, or describe the cluster in ${CONFIG_FILE} (fluxstrap init writes it)` : ''),
    );
  }
  const entry = config && clusterEntryOf(config, name);
  if (config && !entry) {
    throw usageError(`cluster "${name}" is not in ${where.configFile ?? CONFIG_FILE}`, `known clusters: ${names.join(', ') || 'none'}`);
  }
  const { repoDir, cwd } = where;
  // A flag or env value is typed relative to where the user stands; a file value to the repository.
  const pick = (flag: string | undefined, envKey: string, fromFile: string | undefined, isPath: boolean): string | undefined => {
    const cli = flag ?? nonEmpty(env[envKey]);
    if (cli !== undefined) return isPath ? expandPath(cli, cwd) : cli;
    if (fromFile !== undefined) return isPath ? expandPath(fromFile, repoDir) : fromFile;
    return undefined;
  };

  const kubeconfig = pick(flags.kubeconfig, 'FLUXSTRAP_KUBECONFIG', entry?.kube?.kubeconfig, true);
  const context = pick(flags.context, 'FLUXSTRAP_CONTEXT', entry?.kube?.context, false);
  const clusterPath = normalizeClusterPath(pick(flags.path, 'FLUXSTRAP_PATH', entry?.path, false) ?? `clusters/${name}`);
  const git = resolveGit(entry?.git, flags, env, where);
  // An App authenticates against GitHub only (github.com or Enterprise Server at its baseUrl).
  const provider = entry?.git?.provider ?? (git.auth.type === 'github-app' || (git.url !== undefined && isGitHubUrl(git.url)) ? 'github' : 'generic');

  return {
    name,
    repoDir,
    ...(where.configFile !== undefined && config ? { configFile: where.configFile } : {}),
    path: clusterPath,
    kube: { ...(kubeconfig !== undefined ? { kubeconfig } : {}), ...(context !== undefined ? { context } : {}) },
    git: {
      ...git,
      provider,
      ...(provider === 'github' ? { github: githubSettings(entry?.git?.github, git.auth, flags.githubApiUrl, env) } : {}),
      ...(provider === 'gitea' ? { gitea: giteaSettings(entry?.git?.gitea, flags.giteaApiUrl, env) } : {}),
    },
    ...resolvedKeys(entry, flags, env, where),
    ...(entry?.sopsKey?.vault ? { vault: { address: entry.sopsKey.vault.address.replace(/\/$/, ''), tokenEnv: entry.sopsKey.vault.tokenEnv } } : {}),
    ...cloudSopsKey(entry?.sopsKey, repoDir),
  };
}

function cloudSopsKey(k: ClusterConfig['sopsKey'], repoDir: string): { cloudKey?: CloudSopsKey } {
  // zod's optional fields read `T | undefined`; the resolved type has them absent instead.
  const opt = <K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } => (v === undefined ? {} : ({ [key]: v } as { [P in K]?: V }));
  if (k?.awsKms) return { cloudKey: { type: 'aws-kms', arn: k.awsKms.arn, ...opt('roleArn', k.awsKms.roleArn), ...opt('region', k.awsKms.region) } };
  if (k?.gcpKms) return { cloudKey: { type: 'gcp-kms', resourceId: k.gcpKms.resourceId, ...opt('serviceAccount', k.gcpKms.serviceAccount) } };
  if (!k?.azureKv) return {};
  const { vaultUrl, key, version, workloadIdentity: wi, aadPodIdentity, servicePrincipal: sp } = k.azureKv;
  return {
    cloudKey: {
      type: 'azure-kv',
      vaultUrl,
      key,
      version,
      ...(wi ? { workloadIdentity: { clientId: wi.clientId, ...opt('tenantId', wi.tenantId) } } : {}),
      ...(aadPodIdentity ? { aadPodIdentity } : {}),
      ...(sp
        ? {
            servicePrincipal: {
              secretName: sp.secretName ?? AZURE_SP_SECRET,
              ...opt('file', sp.file === undefined ? undefined : expandPath(sp.file, repoDir)),
            },
          }
        : {}),
    },
  };
}

/** The age key, and the PGP key when fluxstrap.yaml names one; an age key typed for this run wins over it. */
function resolvedKeys(
  entry: ClusterConfig | undefined,
  flags: ClusterFlags,
  env: NodeJS.ProcessEnv,
  where: { repoDir: string; cwd: string },
): Pick<ResolvedCluster, 'ageKey' | 'pgpKey' | 'pgpRetiring'> {
  const age = configuredAgeKey(entry, flags, env, where);
  const pgp = age === undefined ? configuredPgpKey(entry, where.repoDir) : undefined;
  const retiring = pgp && entry?.sopsKey?.pgp?.retiring ? pgpKeySource(entry.sopsKey.pgp.retiring, where.repoDir) : undefined;
  return { ageKey: age ?? sopsAgeKey(env), ...(pgp ? { pgpKey: pgp } : {}), ...(retiring ? { pgpRetiring: retiring } : {}) };
}

export function configuredPgpKey(entry: ClusterConfig | undefined, repoDir: string): PgpKeySource | undefined {
  const pgp = entry?.sopsKey?.pgp;
  return pgp === undefined ? undefined : pgpKeySource(pgp, repoDir);
}

function pgpKeySource(pgp: { file: string } | { fingerprint: string }, repoDir: string): PgpKeySource {
  return 'file' in pgp ? { type: 'file', file: expandPath(pgp.file, repoDir) } : { type: 'gpg', fingerprint: pgp.fingerprint };
}

/**
 * The Git source of a run: what the user typed (flags, then FLUXSTRAP_* variables, relative to
 * cwd) over the file's entry (relative to the repository). Without a checkout this is all there
 * is to clone with, before any fluxstrap.yaml can be read (`entryGit` undefined then).
 */
export function resolveGit(
  entryGit: ClusterConfig['git'],
  flags: ClusterFlags,
  env: NodeJS.ProcessEnv,
  where: { repoDir: string; cwd: string },
): Pick<ResolvedCluster['git'], 'url' | 'branch' | 'auth'> {
  const url = flags.gitUrl ?? nonEmpty(env.FLUXSTRAP_GIT_URL) ?? entryGit?.url;
  if (url !== undefined && hasPassword(url)) {
    // Not echoed: the URL holds the secret.
    throw usageError(
      'the Git URL carries a password or token',
      'drop it from the URL and pass it in an environment variable: --git-token-env VAR (and --git-username NAME)',
    );
  }
  const branch = flags.branch ?? nonEmpty(env.FLUXSTRAP_GIT_BRANCH) ?? entryGit?.branch ?? 'main';
  return { ...(url !== undefined ? { url } : {}), branch, auth: typedGitAuth(gitAuthOf(entryGit?.auth, where.repoDir), flags, env, where.cwd) };
}

/** A password in a URL would reach git's argv and every message that names the URL. */
function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

/** Token prefixes of GitHub and GitLab: a value like these given as a variable name is the token itself. */
const TOKEN_PREFIXES = ['ghp_', 'gho_', 'ghs_', 'ghu_', 'ghr_', 'github_pat_', 'glpat-'];

/**
 * Git auth given for this run (flags, FLUXSTRAP_GIT_* variables) over the file's: a token
 * variable makes it HTTPS (keeping the file's user name unless one is given), a deploy key SSH.
 */
function typedGitAuth(fromFile: GitAuth, flags: ClusterFlags, env: NodeJS.ProcessEnv, cwd: string): GitAuth {
  const username = flags.gitUsername ?? nonEmpty(env.FLUXSTRAP_GIT_USERNAME);
  const tokenEnv = flags.gitTokenEnv ?? nonEmpty(env.FLUXSTRAP_GIT_TOKEN_ENV);
  const sshKey = flags.gitSshKey ?? nonEmpty(env.FLUXSTRAP_GIT_SSH_KEY);
  const knownHosts = flags.gitKnownHosts ?? nonEmpty(env.FLUXSTRAP_GIT_KNOWN_HOSTS);
  const ssh = sshKey !== undefined || knownHosts !== undefined;
  if (tokenEnv !== undefined && ssh) {
    throw usageError(
      '--git-token-env (HTTPS) and --git-ssh-key/--git-known-hosts (SSH) are both given',
      'pass one kind: a token for an https:// URL, a deploy key for an ssh:// URL',
    );
  }
  if (ssh) {
    if (sshKey === undefined || knownHosts === undefined) {
      throw usageError(
        `${sshKey === undefined ? '--git-known-hosts' : '--git-ssh-key'} is given without ${sshKey === undefined ? '--git-ssh-key' : '--git-known-hosts'}`,
        "SSH auth needs the deploy key and a known_hosts file with the server's host key: pass both",
      );
    }
    if (username !== undefined) throw usageError('--git-username applies to HTTPS auth', 'drop it, or pass --git-token-env VAR instead of the SSH key');
    return { type: 'ssh', keyFile: expandPath(sshKey, cwd), knownHostsFile: expandPath(knownHosts, cwd) };
  }
  if (tokenEnv !== undefined) {
    if (TOKEN_PREFIXES.some((p) => tokenEnv.startsWith(p)) || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(tokenEnv)) {
      // Never echoed: it may be the token itself, typed where its variable's name belongs.
      throw usageError(
        '--git-token-env takes the name of an environment variable holding the token, not the token',
        'e.g. export GIT_TOKEN=… (from your password manager), then --git-token-env GIT_TOKEN',
      );
    }
    return { type: 'https', username: username ?? (fromFile.type === 'https' ? fromFile.username : 'git'), passwordEnv: tokenEnv };
  }
  if (username === undefined) return fromFile;
  if (fromFile.type !== 'https')
    throw usageError(
      '--git-username is given without --git-token-env',
      'HTTPS auth sends the user name with a token: pass --git-token-env VAR, the variable holding it',
    );
  return { ...fromFile, username };
}

function normalizeClusterPath(p: string): string {
  // `(?<!\/)`: a match starts at a run's first slash, so a long run of slashes costs linear time, not quadratic.
  const clean = p
    .replace(/\\/g, '/')
    .replace(/^\.\/+/, '')
    .replace(/(?<!\/)\/+$/, '');
  if (clean === '' || clean.startsWith('/') || clean.split('/').includes('..')) {
    throw usageError(`cluster path "${p}" must be a folder inside the repository`, 'e.g. clusters/prod');
  }
  return clean;
}

function gitAuthOf(auth: z.infer<typeof GitAuthSchema> | undefined, repoDir: string): GitAuth {
  if (auth === undefined) return { type: 'none' };
  const encrypted = 'sopsFile' in auth && auth.sopsFile !== undefined ? { sopsFile: expandPath(auth.sopsFile, repoDir) } : {};
  if ('https' in auth) return { type: 'https', username: auth.https.username, passwordEnv: auth.https.passwordEnv, ...encrypted };
  if ('githubApp' in auth) {
    const a = auth.githubApp;
    return {
      type: 'github-app',
      appId: String(a.appId),
      ...(a.installationId !== undefined ? { installationId: String(a.installationId) } : {}),
      ...(a.installationOwner !== undefined ? { installationOwner: a.installationOwner } : {}),
      privateKeyFile: expandPath(a.privateKeyFile, repoDir),
      ...(a.baseUrl !== undefined ? { baseUrl: a.baseUrl.replace(/\/+$/, '') } : {}),
    };
  }
  if (!('ssh' in auth)) return { type: 'none', ...encrypted };
  const { ssh } = auth;
  return {
    ...encrypted,
    type: 'ssh',
    keyFile: expandPath(ssh.keyFile, repoDir),
    knownHostsFile: expandPath(ssh.knownHostsFile, repoDir),
    ...(ssh.keyAlgorithm !== undefined ? { keyAlgorithm: ssh.keyAlgorithm } : {}),
    ...(ssh.readWrite !== undefined ? { readWrite: ssh.readWrite } : {}),
  };
}

/** A URL of github.com itself (https://github.com/…, ssh://git@github.com/…). */
export function isGitHubUrl(url: string): boolean {
  try {
    return new URL(url).hostname.toLowerCase() === 'github.com';
  } catch {
    return false;
  }
}

/** `owner` and `repo` of a GitHub URL's path (`/me/fleet.git`), undefined when it has no such path. */
export function githubRepoOf(url: string): { owner: string; repo: string } | undefined {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return undefined;
  }
  const m = /^\/([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?\/?$/.exec(path);
  return m ? { owner: m[1] ?? '', repo: m[2] ?? '' } : undefined;
}

function githubSettings(
  file: { apiUrl?: string | undefined; tokenEnv?: string | undefined } | undefined,
  auth: GitAuth,
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): GitHubSettings {
  return {
    apiUrl: (
      flag ??
      nonEmpty(env.FLUXSTRAP_GITHUB_API_URL) ??
      file?.apiUrl ??
      (auth.type === 'github-app' ? auth.baseUrl : undefined) ??
      'https://api.github.com'
    ).replace(/\/+$/, ''),
    tokenEnv: file?.tokenEnv ?? (auth.type === 'https' ? auth.passwordEnv : 'GITHUB_TOKEN'),
  };
}

/** Refuses a `--gitea-api-url` (or its variable) that is not an http(s):// URL. */
export function checkGiteaApiUrl(given: string): void {
  if (!/^https?:\/\/\S+$/.test(given)) {
    throw usageError(
      `--gitea-api-url ${JSON.stringify(given.slice(0, 200))} is not an http(s):// URL`,
      "Gitea's API root, e.g. https://gitea.example.com/api/v1",
    );
  }
}

function giteaSettings(file: { apiUrl: string; tokenEnv?: string | undefined } | undefined, flag: string | undefined, env: NodeJS.ProcessEnv): GiteaSettings {
  const given = flag ?? nonEmpty(env.FLUXSTRAP_GITEA_API_URL);
  if (given !== undefined) checkGiteaApiUrl(given);
  // parseConfig refuses provider gitea without git.gitea, so `file` is there whenever this runs.
  return {
    apiUrl: (given ?? file?.apiUrl ?? '').replace(/\/+$/, ''),
    tokenEnv: file?.tokenEnv ?? 'GITEA_TOKEN',
  };
}

/**
 * The cluster's key as configured for it: the --age-key-file or --age-key-backup flag,
 * FLUXSTRAP_AGE_KEY_FILE or FLUXSTRAP_AGE_KEY_BACKUP (all relative to cwd), then its fluxstrap.yaml entry (relative to the repository); undefined when
 * none names one, and the key is wherever sops looks (`sopsAgeKey`).
 */
export function configuredAgeKey(
  entry: ClusterConfig | undefined,
  flags: Pick<ClusterFlags, 'ageKeyFile' | 'ageKeyBackup' | 'passphraseFile'>,
  env: NodeJS.ProcessEnv,
  where: { repoDir: string; cwd: string },
): AgeKeySource | undefined {
  const given = flags.ageKeyFile ?? nonEmpty(env.FLUXSTRAP_AGE_KEY_FILE);
  const backup = flags.ageKeyBackup ?? nonEmpty(env.FLUXSTRAP_AGE_KEY_BACKUP);
  if (given !== undefined && backup !== undefined) throw usageError('--age-key-file and --age-key-backup both name the age key', 'pass one of them');
  if (backup !== undefined) {
    const passphraseFile = flags.passphraseFile ?? nonEmpty(env.FLUXSTRAP_BACKUP_PASSPHRASE_FILE);
    return {
      type: 'backup',
      file: expandPath(backup, where.cwd),
      ...(passphraseFile !== undefined ? { passphraseFile: expandPath(passphraseFile, where.cwd) } : {}),
    };
  }
  if (flags.passphraseFile !== undefined)
    throw usageError('--passphrase-file is given without --age-key-backup', 'it is the passphrase of a key backup: pass --age-key-backup FILE too');
  if (given !== undefined) return { type: 'file', file: expandPath(given, where.cwd) };
  const src = entry?.ageKey;
  const { repoDir } = where;
  if (src !== undefined) {
    const only = src.publicKeys !== undefined ? { publicKeys: src.publicKeys } : {};
    if ('file' in src) return { type: 'file', file: expandPath(src.file, repoDir), ...only };
    if ('env' in src) return { type: 'env', env: src.env, ...only };
    if ('cmd' in src) return { type: 'cmd', cmd: src.cmd, ...only };
    const v = src.ansibleVault;
    return {
      type: 'ansible-vault',
      file: expandPath(v.file, repoDir),
      passwordFile: expandPath(v.passwordFile, repoDir),
      ...(v.variable !== undefined ? { variable: v.variable } : {}),
      ...only,
    };
  }
  return undefined;
}

function sopsAgeKey(env: NodeJS.ProcessEnv): AgeKeySource {
  // Where sops itself looks, in sops' order, so a key that works for `sops -d` works here.
  if (nonEmpty(env.SOPS_AGE_KEY) !== undefined) return { type: 'env', env: 'SOPS_AGE_KEY' };
  return { type: 'file', file: ageKeyFilePath(env) };
}

/** A setting a command cannot do without, named with every way to give it. */
export function missingSetting(what: string, cluster: string, key: string, flag: string, envVar: string): FluxstrapError {
  return new FluxstrapError('E_USAGE', `no ${what} for cluster "${cluster}"`, {
    hint: `set clusters.${cluster}.${key} in ${CONFIG_FILE}, pass ${flag}, or set ${envVar}`,
  });
}
