import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { GitRemote } from '../adapters/git.ts';
import { exists } from '../adapters/files.ts';
import type { AgentKey } from '../adapters/ssh-agent.ts';
import { publicKeyOfPrivate } from '../keys/ssh.ts';
import type { ResolvedCluster } from '../cluster/config.ts';
import { gitRemoteOf } from '../cluster/remote.ts';
import { githubRepoOf } from '../cluster/config.ts';
import type { GitHubAppAuth } from '../cluster/config.ts';
import type { GitCredentials } from '../adapters/git.ts';
import type { KubeObject } from '../adapters/kube/port.ts';
import type { KustomizeResult } from '../adapters/kustomize.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { ReachRoot } from '../flux/reach.ts';
import { GOTK_FILES, missingGotkFiles } from './gotk-files.ts';

/**
 * What is being bootstrapped: the commit the branch points at on the Git server (what Flux will
 * fetch), and a directory holding the repository at that commit. The local checkout is used when
 * it is that commit and the cluster folder is clean; otherwise a shallow clone of the branch, so
 * the objects applied are exactly the ones Flux will reconcile (never unpushed edits, never `main`
 * of another environment). Resolved once per run, on first use, and shared by the tasks: the
 * TaskContext owns it (`ctx.source()`, `ctx.fluxBuild()`).
 */
export interface BootstrapSource {
  remote: GitRemote;
  branch: string;
  commit: string;
  /** How Flux spells it in status: `main@sha1:<commit>`. */
  revision: string;
  /** Repository root at `commit`. */
  dir: string;
  clusterDir: string;
  fluxSystemDir: string;
  /** `local checkout` or `fresh clone`, for notes. */
  origin: string;
}

/** The flux-system build, split the way it is applied: components, then the sync objects. */
export interface FluxBuild {
  result: KustomizeResult;
  components: KubeObject[];
  sync: { gitRepository: KubeObject; kustomization: KubeObject };
}

/**
 * What resolving the source and its build needs of the run: the part of a TaskContext they use,
 * named here so that the context, which owns both, does not import itself back.
 */
export interface SourceRun {
  readonly cluster: ResolvedCluster;
  readonly paths: { readonly repo: string };
  readonly env: NodeJS.ProcessEnv;
  gitCredentials(): Promise<GitCredentials>;
  log(message: string): void;
  /** Remove the clone when the run is over. */
  defer(cleanup: () => void): void;
}

/** The remote of the cluster with its configured credentials (read from their sources on first use). */
export async function gitRemote(ctx: Pick<SourceRun, 'cluster' | 'env' | 'log' | 'gitCredentials' | 'defer'>): Promise<GitRemote> {
  const { url, auth } = ctx.cluster.git;
  if (url === undefined) {
    throw new FluxstrapError('E_USAGE', `no Git URL for cluster "${ctx.cluster.name}"`, {
      hint: `set clusters.${ctx.cluster.name}.git.url in fluxstrap.yaml, pass --git-url, or set FLUXSTRAP_GIT_URL`,
    });
  }
  if (auth.type === 'github-app') {
    // An App's installation token is minted here, for this run only.
    const token = await appToken(ctx, url, auth);
    return gitRemoteOf(url, auth, () => token);
  }
  // Only HTTPS needs the secret in memory; SSH hands git the key file's path.
  const creds = auth.type === 'https' || auth.sopsFile !== undefined ? await ctx.gitCredentials() : undefined;
  // From the encrypted Secret (git.auth.sopsFile): no file to hand git, the token goes in its environment…
  if (creds?.type === 'https') return { url, auth: { kind: 'basic', username: creds.username, password: creds.password } };
  // …and the deploy key to a private ssh-agent, on its stdin.
  if (creds?.type === 'ssh' && !(auth.type === 'ssh' && (await exists(auth.keyFile)))) {
    const agent = await agentFor(ctx, creds);
    return { url, auth: { kind: 'ssh', identityFile: agent.publicKeyFile, knownHostsFile: agent.knownHostsFile, agentSocket: agent.socket } };
  }
  return gitRemoteOf(url, auth, () => '');
}

async function appToken(ctx: Pick<SourceRun, 'cluster' | 'env' | 'log'>, url: string, auth: GitHubAppAuth): Promise<string> {
  const target = githubRepoOf(url);
  if (target === undefined) {
    throw new FluxstrapError('E_USAGE', `git.auth.githubApp needs a GitHub repository URL, not ${url}`, {
      location: { field: 'git.url' },
      hint: "https://github.com/OWNER/REPO.git (or your GitHub Enterprise Server's)",
    });
  }
  const { githubAppSession } = await import('./github-app.ts');
  const apiUrl = ctx.cluster.git.github?.apiUrl;
  return (await githubAppSession(auth, { ...target, env: ctx.env, log: (m: string) => ctx.log(m), ...(apiUrl !== undefined ? { apiUrl } : {}) })).token;
}

const agents = new WeakMap<object, Promise<AgentKey>>();

/** One agent per run, stopped when the run is over. */
function agentFor(ctx: Pick<SourceRun, 'cluster' | 'defer'>, creds: { identity: string; knownHosts: string }): Promise<AgentKey> {
  let p = agents.get(ctx);
  if (!p) {
    p = import('../adapters/ssh-agent.ts').then(async ({ agentWithKey }) => {
      const agent = await agentWithKey(creds.identity, publicKeyOfPrivate(creds.identity, ctx.cluster.git.auth.sopsFile ?? 'the deploy key'), creds.knownHosts);
      ctx.defer(agent.stop);
      return agent;
    });
    agents.set(ctx, p);
  }
  return p;
}

/** Resolve the source (called once per run, by the TaskContext's `source()` handle). */
export async function resolveSource(ctx: SourceRun): Promise<BootstrapSource> {
  const git = await import('../adapters/git.ts');
  const remote = await gitRemote(ctx);
  const branch = ctx.cluster.git.branch;
  const [commit, local, clean] = await Promise.all([
    git.remoteBranchHead(remote, branch),
    git.revParse(ctx.paths.repo).catch(() => undefined),
    git.isClean(ctx.paths.repo, ctx.cluster.path),
  ]);
  let dir = ctx.paths.repo;
  let origin = ctx.cluster.temporaryClone === true ? 'temporary clone' : 'local checkout';
  if (local !== commit || !clean) {
    const checkout = await git.cloneBranch(remote, branch);
    // The clone lives as long as the run; an interrupt removes it too, a SIGKILL leaves a temp dir.
    ctx.defer(checkout.remove);
    if (checkout.commit !== commit) {
      throw new FluxstrapError('E_GIT', `branch ${branch} moved while bootstrapping (${commit.slice(0, 12)} → ${checkout.commit.slice(0, 12)})`, {
        hint: 'run again',
      });
    }
    dir = checkout.dir;
    origin = local === undefined ? 'fresh clone' : `fresh clone (the local checkout is at ${local.slice(0, 12)} or has changes under ${ctx.cluster.path})`;
  }
  const clusterDir = join(dir, ...ctx.cluster.path.split('/'));
  return { remote, branch, commit, revision: `${branch}@sha1:${commit}`, dir, clusterDir, fluxSystemDir: join(clusterDir, 'flux-system'), origin };
}

const SYNC_NAME = 'flux-system';

function isFluxResource(obj: KubeObject): boolean {
  return obj.apiVersion.split('/')[0]?.endsWith('.toolkit.fluxcd.io') === true;
}

/** A flux-system build split into components and sync objects; undefined when it has no sync objects. */
export function splitBuild(result: KustomizeResult): FluxBuild | undefined {
  const find = (kind: string) => result.objects.find((o) => o.kind === kind && o.metadata.name === SYNC_NAME && isFluxResource(o));
  const gitRepository = find('GitRepository');
  const kustomization = find('Kustomization');
  if (!gitRepository || !kustomization) return undefined;
  return { result, components: result.objects.filter((o) => !isFluxResource(o)), sync: { gitRepository, kustomization } };
}

/** Build the source's flux-system folder (called once per run, by the TaskContext's `fluxBuild()` handle). */
export async function buildFluxSystem(ctx: SourceRun, src: BootstrapSource): Promise<FluxBuild> {
  const { kustomizeBuild } = await import('../adapters/kustomize.ts');
  // A build that fails, or lacks the sync objects, most often lacks a file the flux CLI generates: say that first.
  const result = await kustomizeBuild(src.fluxSystemDir, { env: ctx.env }).catch(async (e: unknown) => {
    throw (await missingGotk(ctx, src)) ?? e;
  });
  const build = splitBuild(result);
  if (!build) {
    throw (
      (await missingGotk(ctx, src)) ??
      new FluxstrapError('E_CONFIG', `the flux-system build has no GitRepository and Kustomization named ${SYNC_NAME}`, {
        location: { file: join(ctx.cluster.path, 'flux-system', 'kustomization.yaml') },
        hint: 'list gotk-sync.yaml under resources',
      })
    );
  }
  return build;
}

/**
 * Where the walk of what the cluster reaches starts: the cluster folder, as the sync
 * Kustomization of the flux-system build (its decryption after the patch, its GitRepository as
 * the source other Kustomizations must name to be followed). Without a build, Flux's defaults.
 */
export function reachRoot(clusterPath: string, build: Pick<FluxBuild, 'sync'> | undefined): ReachRoot {
  if (!build) return { path: clusterPath };
  const { kustomization: ks, gitRepository: repo } = build.sync;
  const decryption = (ks.spec as { decryption?: { provider?: string } } | undefined)?.decryption?.provider;
  return {
    path: clusterPath,
    name: ks.metadata.name,
    namespace: ks.metadata.namespace ?? SYNC_NAME,
    at: { file: `${clusterPath}/flux-system/gotk-sync.yaml` },
    ...(decryption !== undefined ? { decryption } : {}),
    source: { name: repo.metadata.name, namespace: repo.metadata.namespace ?? SYNC_NAME },
  };
}

/** The error for the flux-generated files missing at the commit being bootstrapped; undefined when both are there. */
async function missingGotk(ctx: Pick<SourceRun, 'cluster'>, src: BootstrapSource): Promise<FluxstrapError | undefined> {
  const folder = !(await stat(src.fluxSystemDir).then(
    (st) => st.isDirectory(),
    () => false,
  ));
  const present = await Promise.all(
    GOTK_FILES.map((f) =>
      stat(join(src.fluxSystemDir, f)).then(
        (st) => st.isFile(),
        () => false,
      ),
    ),
  );
  const missing = GOTK_FILES.filter((_, i) => !present[i]);
  if (missing.length === 0) return undefined;
  const { url, branch } = ctx.cluster.git;
  const { what, fix } = missingGotkFiles(missing, { cluster: ctx.cluster.name, clusterPath: ctx.cluster.path, url, branch }, folder);
  return new FluxstrapError('E_NOT_FOUND', `${what} (at ${src.revision})`, { hint: fix });
}

/**
 * The Secret the flux-system decryption patch points at, else the one kustomize-controller's
 * `--sops-age-secret` names (controller-level decryption), if the build carries either.
 */
export function decryptionSecretName(build: FluxBuild): string | undefined {
  const spec = build.sync.kustomization.spec as { decryption?: { secretRef?: { name?: string } } } | undefined;
  return spec?.decryption?.secretRef?.name ?? controllerSecretName(build);
}

/** The value of kustomize-controller's `--sops-age-secret` in the build. */
export function controllerSecretName(build: FluxBuild): string | undefined {
  return sopsAgeSecretFlag(kustomizeController(build.components));
}

const kustomizeController = (components: KubeObject[]) => components.find((o) => o.kind === 'Deployment' && o.metadata.name === 'kustomize-controller');

/** The Secret a kustomize-controller Deployment's `--sops-age-secret` names, if it has the flag. */
export function sopsAgeSecretFlag(deployment: KubeObject | undefined): string | undefined {
  const containers = (deployment?.spec as { template?: { spec?: { containers?: { args?: unknown[] }[] } } } | undefined)?.template?.spec?.containers ?? [];
  const flag = '--sops-age-secret=';
  for (const c of containers) {
    for (const a of c.args ?? []) if (typeof a === 'string' && a.startsWith(flag)) return a.slice(flag.length);
  }
  return undefined;
}
