import { join, relative } from 'node:path';
import type { KubeAdapter } from '../adapters/kube/port.ts';
import { exists, readBytes, readText } from '../adapters/files.ts';
import type { AgeKeySource, PgpKeySource, ResolvedCluster } from '../cluster/config.ts';
import { FluxstrapError } from '../core/errors.ts';
import { parseAgeKeyFile, recipientOf } from '../keys/age.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { readVaultVariable } from '../keys/ansible-vault.ts';
import { readBackupIdentities } from '../keys/backup.ts';
import { gitToken } from '../cluster/remote.ts';
import type { GitCredentials } from '../adapters/git.ts';
import type { PgpPrivateKey } from '../keys/pgp.ts';
import { buildFluxSystem, resolveSource } from './source.ts';
import type { BootstrapSource, FluxBuild, SourceRun } from './source.ts';

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
  pgpKey(): Promise<ClusterPgpKey | undefined>;
  /** The Git credentials named by the cluster's auth settings. Secret values: never print. */
  gitCredentials(): Promise<GitCredentials>;
  /**
   * The commit being bootstrapped and a directory holding it (a clone when the local checkout is
   * not that commit): resolved when a task first asks, shared by the others, the clone removed
   * by `close`.
   */
  source(): Promise<BootstrapSource>;
  /** The flux-system build of `source()`, split into components and sync objects: built once, on first use. */
  fluxBuild(): Promise<FluxBuild>;
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
  /** Injected by tests; default: the remote branch's head, checked out (`resolveSource`). */
  resolveSource?: (run: SourceRun) => Promise<BootstrapSource>;
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

/** As `once`, but a failure is not kept: the repository, refused before its deploy key is registered, is read again after. */
function onceOk<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () =>
    (p ??= fn().catch((e: unknown) => {
      p = undefined;
      throw e;
    }));
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
  const ageIdentities = once(async () => opts.ageIdentities ?? readAgeIdentities(cluster.ageKey, env));
  const ctx: TaskContext = {
    cluster,
    paths: {
      repo: cluster.repoDir,
      cluster: clusterDir,
      fluxSystem: join(clusterDir, 'flux-system'),
      sopsConfig: join(cluster.repoDir, '.sops.yaml'),
    },
    kube: once(() => (opts.connect ?? connectReal)(cluster, env)),
    ageIdentities,
    pgpKey: once(async () => (cluster.pgpKey ? readClusterPgpKey(cluster.pgpKey, cluster.pgpRetiring, env) : undefined)),
    gitCredentials: once(() => readGitCredentials(cluster, env, ageIdentities)),
    source: onceOk(() => (opts.resolveSource ?? resolveSource)(ctx)),
    fluxBuild: once(async () => buildFluxSystem(ctx, await ctx.source())),
    rotateSecrets: opts.rotateSecrets,
    timeoutMs: opts.timeoutMs,
    log: opts.log,
    env,
    defer: (cleanup) => void cleanups.push(cleanup),
    close: () => {
      for (const cleanup of cleanups.splice(0).reverse()) cleanup();
    },
  };
  return ctx;
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
      const outputs = await Promise.all(
        (source.publicKeys ?? [undefined]).map((r) => runKeyCommand(source.cmd, r === undefined ? env : { ...env, SOPS_AGE_RECIPIENT: r }, 'ageKey.cmd')),
      );
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

/** The cluster's PGP key, and while `keys rotate` replaces one, the key it replaces (kept in the sops-gpg Secret until then). */
export interface ClusterPgpKey extends PgpPrivateKey {
  retiring?: PgpPrivateKey;
}

export async function readClusterPgpKey(source: PgpKeySource, retiring: PgpKeySource | undefined, env: NodeJS.ProcessEnv): Promise<ClusterPgpKey> {
  const key = await readPgpKeySource(source, env);
  return retiring ? { ...key, retiring: await readPgpKeySource(retiring, env, 'sopsKey.pgp.retiring') } : key;
}

/** The cluster's PGP private key from its file or the gpg keyring; openpgp loads only here. */
export async function readPgpKeySource(source: PgpKeySource, env: NodeJS.ProcessEnv, field = 'sopsKey.pgp'): Promise<PgpPrivateKey> {
  const { exportGpgSecretKey, readPgpPrivateKey } = await import('../keys/pgp.ts');
  if (source.type === 'gpg') return exportGpgSecretKey(source.fingerprint, env, `${field}.fingerprint`);
  return readPgpPrivateKey(await readText(source.file), source.file, `${field}.file`);
}

/**
 * The credentials from what the run was given (flags, the token variable, the key file) and, when
 * those are missing, from the encrypted Secret in the repository (`git.auth.sopsFile`), opened in
 * memory with the cluster's age key: flag > environment > sopsFile.
 */
async function readGitCredentials(cluster: ResolvedCluster, env: NodeJS.ProcessEnv, identities: () => Promise<AgeIdentity[]>): Promise<GitCredentials> {
  const auth = cluster.git.auth;
  const { sopsFile } = auth;
  switch (auth.type) {
    case 'none':
      if (sopsFile === undefined) return { type: 'none' };
      break;
    case 'https':
      if (sopsFile === undefined || (env[auth.passwordEnv] ?? '') !== '')
        return { type: 'https', username: auth.username, password: gitToken(auth, env, cluster.name) };
      break;
    case 'ssh':
      if (sopsFile === undefined || (await exists(auth.keyFile)))
        return { type: 'ssh', identity: await readText(auth.keyFile), knownHosts: await readText(auth.knownHostsFile) };
      break;
    case 'github-app': {
      const { checkAppPrivateKey } = await import('../adapters/github.ts');
      const { type: _, privateKeyFile, ...ids } = auth;
      return {
        type: 'github-app',
        ...ids,
        privateKey: checkAppPrivateKey(await readText(privateKeyFile), { file: privateKeyFile, field: 'git.auth.githubApp.privateKeyFile' }),
      };
    }
  }
  const { decryptGitSecret } = await import('../flux/git-secret.ts');
  const name = relative(cluster.repoDir, sopsFile);
  return decryptGitSecret(await readBytes(sopsFile, 'read the encrypted Git credentials'), name.startsWith('..') ? sopsFile : name, await identities());
}
