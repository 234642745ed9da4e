import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { GitRemote } from '../adapters/git.ts';
import { gitRemoteOf } from '../cluster/remote.ts';
import type { KubeObject } from '../adapters/kube.ts';
import type { KustomizeResult } from '../adapters/kustomize.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { ReachRoot } from '../flux/reach.ts';
import type { TaskContext } from './context.ts';
import { GOTK_FILES, missingGotkFiles } from './gotk-files.ts';

/**
 * What is being bootstrapped: the commit the branch points at on the Git server (what Flux will
 * fetch), and a directory holding the repository at that commit. The local checkout is used when
 * it is that commit and the cluster folder is clean; otherwise a shallow clone of the branch, so
 * the objects applied are exactly the ones Flux will reconcile (never unpushed edits, never `main`
 * of another environment). Resolved once per run and shared by the tasks.
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

const sources = new WeakMap<TaskContext, Promise<BootstrapSource>>();
const builds = new WeakMap<TaskContext, Promise<FluxBuild>>();

/** The remote of the cluster with its configured credentials (read from their sources on first use). */
export async function gitRemote(ctx: TaskContext): Promise<GitRemote> {
  const { url, auth } = ctx.cluster.git;
  if (url === undefined) {
    throw new FluxstrapError('E_USAGE', `no Git URL for cluster "${ctx.cluster.name}"`, {
      hint: `set clusters.${ctx.cluster.name}.git.url in fluxstrap.yaml, pass --git-url, or set FLUXSTRAP_GIT_URL`,
    });
  }
  // Only HTTPS needs the secret in memory; SSH hands git the key file's path.
  const creds = auth.type === 'https' ? await ctx.gitCredentials() : undefined;
  return gitRemoteOf(url, auth, () => (creds?.type === 'https' ? creds.password : ''));
}

export function bootstrapSource(ctx: TaskContext): Promise<BootstrapSource> {
  let p = sources.get(ctx);
  if (!p) {
    p = resolveSource(ctx);
    sources.set(ctx, p);
  }
  return p;
}

async function resolveSource(ctx: TaskContext): Promise<BootstrapSource> {
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
      throw new FluxstrapError('E_GIT', `branch ${branch} moved while bootstrapping (${commit.slice(0, 12)} → ${checkout.commit.slice(0, 12)})`, { hint: 'run again' });
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

export function fluxBuild(ctx: TaskContext): Promise<FluxBuild> {
  let p = builds.get(ctx);
  if (!p) {
    p = (async () => {
      const src = await bootstrapSource(ctx);
      const { kustomizeBuild } = await import('../adapters/kustomize.ts');
      // A build that fails, or lacks the sync objects, most often lacks a file the flux CLI generates: say that first.
      const result = await kustomizeBuild(src.fluxSystemDir, { env: ctx.env }).catch(async (e: unknown) => {
        throw (await missingGotk(ctx, src)) ?? e;
      });
      const build = splitBuild(result);
      if (!build) {
        throw (await missingGotk(ctx, src)) ?? new FluxstrapError('E_CONFIG', `the flux-system build has no GitRepository and Kustomization named ${SYNC_NAME}`, {
          location: { file: join(ctx.cluster.path, 'flux-system', 'kustomization.yaml') },
          hint: 'list gotk-sync.yaml under resources',
        });
      }
      return build;
    })();
    builds.set(ctx, p);
  }
  return p;
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
async function missingGotk(ctx: TaskContext, src: BootstrapSource): Promise<FluxstrapError | undefined> {
  const folder = !(await stat(src.fluxSystemDir).then((st) => st.isDirectory(), () => false));
  const present = await Promise.all(GOTK_FILES.map((f) => stat(join(src.fluxSystemDir, f)).then((st) => st.isFile(), () => false)));
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
export async function decryptionSecretName(ctx: TaskContext): Promise<string | undefined> {
  const build = await fluxBuild(ctx);
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
