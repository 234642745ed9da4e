import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isScalar } from 'yaml';
import { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import { FluxstrapError, usageError } from '../core/errors.ts';
import { ageKeyFilePath } from '../keys/age.ts';
import { YamlSource } from '../adapters/yaml-source.ts';

/**
 * `fluxstrap.yaml`, at the repository root: one entry per cluster saying how to reach it, where
 * its Git source is and where its SOPS key comes from. Secrets are never in this file: it names
 * environment variables and files that hold them. One zod schema gives the TypeScript type, the
 * runtime check (errors at file:line) and schema/fluxstrap.schema.json.
 */

export const CONFIG_FILE = 'fluxstrap.yaml';

const path = z.string().min(1);
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

const GitAuthSchema = z.union([
  z.strictObject({
    https: z.strictObject({
      username: z.string().min(1).default('git').describe('User name sent with the token (GitHub accepts any; Gitea wants the account name).'),
      passwordEnv: envName.describe('Environment variable holding the token or password; the value is never written anywhere but the Secret.'),
    }),
  }).describe('HTTPS basic auth: Secret keys username/password.'),
  z.strictObject({
    ssh: z.strictObject({
      keyFile: path.describe('Private key file (the deploy key); stored in the Secret as `identity`.'),
      knownHostsFile: path.describe('known_hosts file holding the Git server host key; stored as `known_hosts`.'),
    }),
  }).describe('SSH: Secret keys identity/identity.pub/known_hosts.'),
]);

const AgeKeySchema = z.union([
  z.strictObject({ file: path.describe('age key file (age-keygen format); every identity in it goes to the sops-age Secret.') }),
  z.strictObject({ env: envName.describe('Environment variable holding the age identities, like SOPS_AGE_KEY.') }),
  z.strictObject({
    ansibleVault: z.strictObject({
      file: path.describe('Ansible vars file: a whole-file vault, or plain YAML with an inline !vault value.'),
      passwordFile: path.describe('Vault password file (as ansible-vault --vault-password-file).'),
      variable: z.string().min(1).optional().describe('Variable holding the age key, e.g. sops_age_private_key; omit when the whole vault is the key file.'),
    }),
  }),
]);

const SopsKeySchema = z.strictObject({
  vault: z.strictObject({
    address: z.string().regex(/^https?:\/\/[^/?#@\s]+\/?$/, 'must be an http(s):// address without a path').describe('Vault address, as in the hc_vault_transit_uri of .sops.yaml; kustomize-controller reaches the address each file names.'),
    tokenEnv: envName.describe('Environment variable holding the Vault token kustomize-controller decrypts with; written only to the sops-hcvault Secret (sops.vault-token).'),
  }),
}).describe('A key service that decrypts in the cluster instead of an age key: HashiCorp Vault transit.');

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
      url: z.string().regex(/^(https?|ssh):\/\/\S+$/, 'must be an http(s):// or ssh:// URL').optional().describe('URL Flux pulls from.'),
      branch: z.string().min(1).optional().describe('Branch Flux follows; default main.'),
      auth: GitAuthSchema.optional(),
    })
    .optional(),
  ageKey: AgeKeySchema.optional().describe('Where the SOPS age key comes from; default $SOPS_AGE_KEY, $SOPS_AGE_KEY_FILE, then sops\' default sops/age/keys.txt in the user config folder (~/.config on Linux).'),
  sopsKey: SopsKeySchema.optional(),
});

export const FluxstrapConfigSchema = z
  .strictObject({
    $schema: z.string().optional(),
    defaultCluster: z.string().min(1).optional().describe('Cluster used when neither --cluster nor FLUXSTRAP_CLUSTER names one.'),
    clusters: z.record(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'cluster names are lowercase DNS labels'), ClusterSchema),
  })
  .describe('fluxstrap.yaml: how fluxstrap reaches and bootstraps each cluster of this repository.');

export type FluxstrapConfig = z.infer<typeof FluxstrapConfigSchema>;
export type ClusterConfig = z.infer<typeof ClusterSchema>;

export type GitAuth =
  | { type: 'https'; username: string; passwordEnv: string }
  | { type: 'ssh'; keyFile: string; knownHostsFile: string }
  | { type: 'none' };

export type AgeKeySource =
  | { type: 'file'; file: string }
  | { type: 'env'; env: string }
  | { type: 'ansible-vault'; file: string; passwordFile: string; variable?: string };

/** A cluster with every source of settings applied: what a run works with. */
export interface ResolvedCluster {
  name: string;
  /** Absolute repository root. */
  repoDir: string;
  /** The fluxstrap.yaml read, if any. */
  configFile?: string;
  /** Repository-relative cluster folder, `/`-separated, without `./`. */
  path: string;
  kube: { kubeconfig?: string; context?: string };
  git: { url?: string; branch: string; auth: GitAuth };
  ageKey: AgeKeySource;
  /** Vault transit decrypts in the cluster (the sops-hcvault Secret) instead of the age key. */
  vault?: { address: string; tokenEnv: string };
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
  if (defaultCluster !== undefined && !Object.hasOwn(clusters, defaultCluster)) {
    throw src.error(`defaultCluster "${defaultCluster}" is not one of the clusters`, src.doc.get('defaultCluster', true), undefined, 'defaultCluster');
  }
  return parsed.data;
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
 *    _GIT_BRANCH, _PATH, _AGE_KEY_FILE), so `make provision CLUSTER=prod` needs no prompt;
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
  const url = pick(flags.gitUrl, 'FLUXSTRAP_GIT_URL', entry?.git?.url, false);
  const clusterPath = normalizeClusterPath(pick(flags.path, 'FLUXSTRAP_PATH', entry?.path, false) ?? `clusters/${name}`);

  return {
    name,
    repoDir,
    ...(where.configFile !== undefined && config ? { configFile: where.configFile } : {}),
    path: clusterPath,
    kube: { ...(kubeconfig !== undefined ? { kubeconfig } : {}), ...(context !== undefined ? { context } : {}) },
    git: {
      ...(url !== undefined ? { url } : {}),
      branch: pick(flags.branch, 'FLUXSTRAP_GIT_BRANCH', entry?.git?.branch, false) ?? 'main',
      auth: gitAuthOf(entry?.git?.auth, repoDir),
    },
    ageKey: configuredAgeKey(entry, flags.ageKeyFile, env, where) ?? sopsAgeKey(env),
    ...(entry?.sopsKey?.vault ? { vault: { address: entry.sopsKey.vault.address.replace(/\/$/, ''), tokenEnv: entry.sopsKey.vault.tokenEnv } } : {}),
  };
}

function normalizeClusterPath(p: string): string {
  // `(?<!\/)`: a match starts at a run's first slash, so a long run of slashes costs linear time, not quadratic.
  const clean = p.replace(/\\/g, '/').replace(/^\.\/+/, '').replace(/(?<!\/)\/+$/, '');
  if (clean === '' || clean.startsWith('/') || clean.split('/').includes('..')) {
    throw usageError(`cluster path "${p}" must be a folder inside the repository`, 'e.g. clusters/prod');
  }
  return clean;
}

function gitAuthOf(auth: z.infer<typeof GitAuthSchema> | undefined, repoDir: string): GitAuth {
  if (auth === undefined) return { type: 'none' };
  if ('https' in auth) return { type: 'https', username: auth.https.username, passwordEnv: auth.https.passwordEnv };
  return { type: 'ssh', keyFile: expandPath(auth.ssh.keyFile, repoDir), knownHostsFile: expandPath(auth.ssh.knownHostsFile, repoDir) };
}

/**
 * The cluster's key as configured for it: the --age-key-file flag, FLUXSTRAP_AGE_KEY_FILE (both
 * relative to cwd), then its fluxstrap.yaml entry (relative to the repository); undefined when
 * none names one, and the key is wherever sops looks (`sopsAgeKey`).
 */
export function configuredAgeKey(entry: ClusterConfig | undefined, flag: string | undefined, env: NodeJS.ProcessEnv, where: { repoDir: string; cwd: string }): AgeKeySource | undefined {
  const given = flag ?? nonEmpty(env.FLUXSTRAP_AGE_KEY_FILE);
  if (given !== undefined) return { type: 'file', file: expandPath(given, where.cwd) };
  const src = entry?.ageKey;
  const { repoDir } = where;
  if (src !== undefined) {
    if ('file' in src) return { type: 'file', file: expandPath(src.file, repoDir) };
    if ('env' in src) return { type: 'env', env: src.env };
    const v = src.ansibleVault;
    return {
      type: 'ansible-vault',
      file: expandPath(v.file, repoDir),
      passwordFile: expandPath(v.passwordFile, repoDir),
      ...(v.variable !== undefined ? { variable: v.variable } : {}),
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
