import { join } from 'node:path';
import type { KubeAdapter } from '../adapters/kube.ts';
import { readText } from '../adapters/files.ts';
import type { AgeKeySource, PgpKeySource, ResolvedCluster } from '../cluster/config.ts';
import { FluxstrapError } from '../core/errors.ts';
import { parseAgeKeyFile, recipientOf } from '../keys/age.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { readVaultVariable } from '../keys/ansible-vault.ts';
import { readBackupIdentities } from '../keys/backup.ts';
import { gitToken } from '../cluster/remote.ts';
import type { PgpPrivateKey } from '../keys/pgp.ts';

/**
 * What every task kind receives: the resolved cluster, paths, and lazy handles to the outside
 * world. Handles are functions so that a playbook of file tasks never loads the Kubernetes
 * client, never asks for a key it does not use, and a secret is read once, when first needed.
 */
export interface TaskContext {
  readonly cluster: ResolvedCluster;
  readonly paths: TaskPaths;
  /** Connect on first use (kubeconfig/context of the cluster); later calls share the adapter. */
  kube(): Promise<KubeAdapter>;
  /** Every identity of the cluster's age key. Secret: never log, print or put in an error. */
  ageIdentities(): Promise<AgeIdentity[]>;
  /** The cluster's OpenPGP private key when its key is PGP (`sopsKey.pgp`), else undefined. Secret. */
  pgpKey(): Promise<PgpPrivateKey | undefined>;
  /** The Git credentials named by the cluster's auth settings. Secret values: never print. */
  gitCredentials(): Promise<GitCredentials>;
  /** `--rotate-secrets`: a Secret whose content differs may be replaced instead of refused. */
  readonly rotateSecrets: boolean;
  /** Budget for each wait (controllers, reconcile), from `--timeout`. */
  readonly timeoutMs: number;
  /** Progress of the running task, shown by the renderers (never secret values). */
  log(message: string): void;
  /** The environment the command runs in (handed down by the CLI): never read `process.env` instead. */
  readonly env: NodeJS.ProcessEnv;
  /** Run `cleanup` when the run is over (a temporary clone is removed then). */
  defer(cleanup: () => void): void;
  /** The run is over: the deferred cleanups run, last first. The command flow that made the context calls it. */
  close(): void;
}

export interface TaskPaths {
  /** Absolute repository root. */
  readonly repo: string;
  /** Absolute cluster folder, e.g. `<repo>/clusters/prod`. */
  readonly cluster: string;
  /** `<cluster>/flux-system`, what the components task builds with kustomize. */
  readonly fluxSystem: string;
  /** `<repo>/.sops.yaml`. */
  readonly sopsConfig: string;
}

export type GitCredentials =
  | { type: 'https'; username: string; password: string }
  | { type: 'ssh'; identity: string; knownHosts: string }
  | { type: 'none' };

export interface ContextOptions {
  cluster: ResolvedCluster;
  rotateSecrets: boolean;
  timeoutMs: number;
  log: (message: string) => void;
  env: NodeJS.ProcessEnv;
  /** The age identities, already opened by the command (a key backup whose passphrase was typed at a terminal). */
  ageIdentities?: AgeIdentity[];
  /** Injected by tests; default: the real adapter, imported on first use. */
  connect?: (cluster: ResolvedCluster, env: NodeJS.ProcessEnv) => Promise<KubeAdapter>;
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

async function connectReal(cluster: ResolvedCluster, env: NodeJS.ProcessEnv): Promise<KubeAdapter> {
  const { connectKube } = await import('../adapters/kube.ts');
  return connectKube(cluster.kube, env);
}

export function createTaskContext(opts: ContextOptions): TaskContext {
  const { cluster } = opts;
  const { env } = opts;
  const clusterDir = join(cluster.repoDir, ...cluster.path.split('/'));
  const cleanups: (() => void)[] = [];
  return {
    cluster,
    paths: {
      repo: cluster.repoDir,
      cluster: clusterDir,
      fluxSystem: join(clusterDir, 'flux-system'),
      sopsConfig: join(cluster.repoDir, '.sops.yaml'),
    },
    kube: once(() => (opts.connect ?? connectReal)(cluster, env)),
    ageIdentities: once(async () => opts.ageIdentities ?? readAgeIdentities(cluster.ageKey, env)),
    pgpKey: once(async () => (cluster.pgpKey ? readPgpKeySource(cluster.pgpKey, env) : undefined)),
    gitCredentials: once(() => readGitCredentials(cluster, env)),
    rotateSecrets: opts.rotateSecrets,
    timeoutMs: opts.timeoutMs,
    log: opts.log,
    env,
    defer: (cleanup) => void cleanups.push(cleanup),
    close: () => {
      for (const cleanup of cleanups.splice(0).reverse()) cleanup();
    },
  };
}

/**
 * Read the age identities from wherever the cluster's settings say they are; with
 * `publicKeys`, only the identities of those recipients, each of which must be there.
 */
export async function readAgeIdentities(source: AgeKeySource, env: NodeJS.ProcessEnv): Promise<AgeIdentity[]> {
  const all = await readAllAgeIdentities(source, env);
  if (source.publicKeys === undefined) return all;
  const missing = source.publicKeys.filter((r) => !all.some((i) => i.recipient === r));
  if (missing.length > 0) {
    throw new FluxstrapError('E_CONFIG', `ageKey.publicKeys lists ${missing.join(', ')}, but the key source holds no identity for it`, {
      location: { field: 'ageKey.publicKeys' },
      hint: `the key source holds ${all.map((i) => i.recipient).join(', ') || 'no identity'}; list recipients of its identities (fluxstrap keys pub FILE)`,
    });
  }
  return all.filter((i) => source.publicKeys?.includes(i.recipient));
}

async function readAllAgeIdentities(source: AgeKeySource, env: NodeJS.ProcessEnv): Promise<AgeIdentity[]> {
  switch (source.type) {
    case 'file':
      return parseAgeKeyFile(await readText(source.file), source.file, recipientOf);
    case 'env': {
      const text = env[source.env];
      if (text === undefined || text.trim() === '') {
        throw new FluxstrapError('E_NOT_FOUND', `environment variable ${source.env} (the age key) is not set`, {
          hint: 'export it, or name a key file with --age-key-file',
        });
      }
      return parseAgeKeyFile(text, `$${source.env}`, recipientOf);
    }
    case 'cmd': {
      const { runKeyCommand } = await import('../keys/identities.ts');
      // Asked once per listed recipient, as sops asks SOPS_AGE_KEY_CMD, so a password manager can answer for each.
      const outputs = await Promise.all((source.publicKeys ?? [undefined]).map((r) => runKeyCommand(source.cmd, r === undefined ? env : { ...env, SOPS_AGE_RECIPIENT: r }, 'ageKey.cmd')));
      const ids = (await Promise.all(outputs.map((o) => parseAgeKeyFile(o, 'ageKey.cmd', recipientOf)))).flat();
      return ids.filter((id, i) => ids.findIndex((x) => x.secret === id.secret) === i);
    }
    case 'ansible-vault': {
      const text = await readVaultVariable(source.file, source.passwordFile, source.variable);
      return parseAgeKeyFile(text, source.variable !== undefined ? `${source.file} (${source.variable})` : source.file, recipientOf);
    }
    case 'backup':
      return readBackupIdentities(source.file, source.passphraseFile, env);
  }
}

/** The cluster's PGP private key from its file or the gpg keyring; openpgp loads only here. */
export async function readPgpKeySource(source: PgpKeySource, env: NodeJS.ProcessEnv): Promise<PgpPrivateKey> {
  const { exportGpgSecretKey, readPgpPrivateKey } = await import('../keys/pgp.ts');
  if (source.type === 'gpg') return exportGpgSecretKey(source.fingerprint, env);
  return readPgpPrivateKey(await readText(source.file), source.file, 'sopsKey.pgp.file');
}

async function readGitCredentials(cluster: ResolvedCluster, env: NodeJS.ProcessEnv): Promise<GitCredentials> {
  const auth = cluster.git.auth;
  switch (auth.type) {
    case 'none':
      return { type: 'none' };
    case 'https':
      return { type: 'https', username: auth.username, password: gitToken(auth, env, cluster.name) };
    case 'ssh':
      return { type: 'ssh', identity: await readText(auth.keyFile), knownHosts: await readText(auth.knownHostsFile) };
  }
}
