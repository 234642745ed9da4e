import { join } from 'node:path';
import { FluxstrapError, isFluxstrapError, usageError } from '../core/errors.ts';
import { CONFIG_FILE, findRepo, loadConfig, resolveCluster } from './config.ts';
import type { ClusterFlags, ResolvedCluster } from './config.ts';

/** The cluster a command means: its flags, FLUXSTRAP_* variables and the repository's fluxstrap.yaml. */
export async function resolveClusterFlags(flags: ClusterFlags, env: NodeJS.ProcessEnv, cwd: string): Promise<ResolvedCluster> {
  const repoDir = findRepo(flags.repo, env, cwd);
  const configFile = join(repoDir, CONFIG_FILE);
  return resolveCluster(await loadConfig(configFile), flags, env, { repoDir, cwd, configFile });
}

/** How a command names its clusters when it can take several: `--cluster` repeatable, `--all-clusters`. */
export interface ClusterSelection extends Omit<ClusterFlags, 'cluster'> {
  /** `--cluster`, each value possibly comma-separated. */
  cluster?: string[];
  allClusters?: boolean;
  /** `--parallel N`: clusters running at once. */
  parallel?: string;
}

/**
 * The options with `--cluster` as one name, when they name at most one cluster: that case keeps
 * the single-cluster behaviour and output exactly. `undefined` when several are named.
 */
export function singleCluster<T extends ClusterSelection>(opts: T): (Omit<T, 'cluster'> & { cluster?: string }) | undefined {
  const { cluster, ...rest } = opts;
  const names = splitNames(cluster);
  if (opts.allClusters === true || names.length > 1) return undefined;
  return { ...rest, ...(names[0] !== undefined ? { cluster: names[0] } : {}) };
}

/** `--cluster a,b --cluster c`: the names in order, blanks dropped. */
export function splitNames(values: string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((v) => v.split(','))
    .map((n) => n.trim())
    .filter((n) => n !== '');
}

/**
 * Settings that describe one cluster. Given once for several clusters they would point every
 * run at the same API server or folder, so they are refused instead of applied to all.
 */
const PER_CLUSTER: [Exclude<keyof ClusterFlags, 'cluster'>, string, string][] = [
  ['kubeconfig', '--kubeconfig', 'FLUXSTRAP_KUBECONFIG'],
  ['context', '--context', 'FLUXSTRAP_CONTEXT'],
  ['gitUrl', '--git-url', 'FLUXSTRAP_GIT_URL'],
  ['branch', '--branch', 'FLUXSTRAP_GIT_BRANCH'],
  ['path', '--path', 'FLUXSTRAP_PATH'],
  ['ageKeyFile', '--age-key-file', 'FLUXSTRAP_AGE_KEY_FILE'],
  ['gitUsername', '--git-username', 'FLUXSTRAP_GIT_USERNAME'],
  ['gitTokenEnv', '--git-token-env', 'FLUXSTRAP_GIT_TOKEN_ENV'],
  ['gitSshKey', '--git-ssh-key', 'FLUXSTRAP_GIT_SSH_KEY'],
  ['gitKnownHosts', '--git-known-hosts', 'FLUXSTRAP_GIT_KNOWN_HOSTS'],
  ['ageKeyBackup', '--age-key-backup', 'FLUXSTRAP_AGE_KEY_BACKUP'],
  ['passphraseFile', '--passphrase-file', 'FLUXSTRAP_BACKUP_PASSPHRASE_FILE'],
];

/** Every selected cluster of fluxstrap.yaml, resolved; the first bad one is an error naming it. */
export async function resolveClusters(opts: ClusterSelection, env: NodeJS.ProcessEnv, cwd: string): Promise<ResolvedCluster[]> {
  if (opts.allClusters === true && opts.cluster !== undefined) throw usageError('--all-clusters and --cluster both name the clusters', 'pass one of them');
  for (const [key, flag, envVar] of PER_CLUSTER) {
    const given = opts[key] !== undefined ? flag : env[envVar] ? envVar : undefined;
    if (given !== undefined) {
      throw usageError(`${given} would apply to every cluster of the run`, `set it per cluster in ${CONFIG_FILE}, or run one cluster with --cluster NAME`);
    }
  }
  const repoDir = findRepo(opts.repo, env, cwd);
  const configFile = join(repoDir, CONFIG_FILE);
  const config = await loadConfig(configFile);
  if (config === undefined) throw usageError(`several clusters need ${configFile}`, 'describe each cluster there (fluxstrap init writes it)');
  const names = opts.allClusters === true ? Object.keys(config.clusters) : [...new Set(splitNames(opts.cluster))];
  if (names.length === 0) throw usageError(`no clusters in ${configFile}`);
  return names.map((name) => {
    try {
      return resolveCluster(config, { cluster: name }, env, { repoDir, cwd, configFile });
    } catch (e) {
      throw namingCluster(e, name);
    }
  });
}

/** A validation error of one cluster among several says which cluster it is about. */
export function namingCluster(e: unknown, name: string): unknown {
  if (!isFluxstrapError(e) || e.message.includes(`"${name}"`)) return e;
  return new FluxstrapError(e.code, `cluster "${name}": ${e.message}`, {
    ...(e.hint !== undefined ? { hint: e.hint } : {}),
    ...(e.location !== undefined ? { location: e.location } : {}),
    cause: e,
  });
}
