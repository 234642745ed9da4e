import { join, relative, sep } from 'node:path';
import { z } from 'zod';
import { readText } from '../adapters/files.ts';
import type { KubeAdapter } from '../adapters/kube/port.ts';
import { FluxstrapError, isFluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { apiRemovalFindings, kubernetesSupport, objectDocs, postBuildKustomizations, strictSubstitution, substitutionFindings } from '../flux/upgrade.ts';
import type { PostBuildKustomization, RepoFile } from '../flux/upgrade.ts';
import type { TaskContext } from './context.ts';
import { describeStale, observeStoredVersions, targetCrds } from './flux-storage-versions.ts';
import { failOnProblems, problemOf } from './preflight.ts';
import type { Problem } from './preflight.ts';
import { yamlFiles } from './sops-files.ts';

const Params = z.strictObject({
  /** The Flux version in gotk-components.yaml now, and the one being upgraded to. */
  from: z.string(),
  to: z.string(),
  targetCrds,
  /** `--migrate-storage`: stale stored versions are the next task's work, not a problem. */
  migrateStorage: z.boolean().default(false),
});
type Params = z.infer<typeof Params>;

interface Facts {
  problems: Problem[];
  notes: string[];
}

const MAX_LISTED = 8;
const listed = <T>(items: T[], show: (t: T) => string) =>
  `${items.slice(0, MAX_LISTED).map(show).join('; ')}${items.length > MAX_LISTED ? `; and ${items.length - MAX_LISTED} more` : ''}`;

/** The YAML files under a folder of the repository, read, with repository-relative names; files that are not YAML are left out (kustomize would refuse them too) with a note. */
async function repoFiles(repo: string, dir: string, notes: string[]): Promise<RepoFile[]> {
  const out: RepoFile[] = [];
  for (const abs of await yamlFiles(join(repo, ...dir.split('/')))) {
    const file = relative(repo, abs).split(sep).join('/');
    out.push({ file, text: await readText(abs) });
  }
  return out.filter((f) => {
    try {
      objectDocs(f);
      return true;
    } catch (e) {
      if (!isFluxstrapError(e) || e.code !== 'E_CONFIG') throw e;
      notes.push(`not checked: ${f.file} (${e.message})`);
      return false;
    }
  });
}

/** The variable names a Kustomization's substituteFrom ConfigMaps and Secrets provide, read from the cluster (keys only). */
async function substituteFromKeys(kube: KubeAdapter, k: PostBuildKustomization): Promise<string[]> {
  const keys: string[] = [];
  for (const ref of k.substituteFrom) {
    if (ref.kind !== 'ConfigMap' && ref.kind !== 'Secret') continue;
    const obj = await kube.get({ apiVersion: 'v1', kind: ref.kind, name: ref.name, namespace: k.namespace });
    for (const field of ['data', 'stringData', 'binaryData']) {
      const values = obj?.[field];
      if (typeof values === 'object' && values !== null) keys.push(...Object.keys(values));
    }
  }
  return keys;
}

async function substitutionProblem(ctx: TaskContext, files: RepoFile[], kube: KubeAdapter | undefined, notes: string[]): Promise<Problem | undefined> {
  const found = [];
  for (const k of postBuildKustomizations(files)) {
    const id = `${k.namespace}/${k.name}`;
    if (!k.sameRepo) {
      notes.push(`strict substitution not checked for Kustomization ${id} (${k.file}:${k.line}): its source is not this repository`);
      continue;
    }
    if (k.substituteFrom.length > 0 && kube === undefined) {
      notes.push(`strict substitution not checked for Kustomization ${id}: its substituteFrom values are in the cluster, which is unreachable`);
      continue;
    }
    const defined = new Set([...k.substitute, ...(kube ? await substituteFromKeys(kube, k) : [])]);
    const built = (await repoFiles(ctx.paths.repo, k.path, notes)).filter((f) => !/(^|\/)(kustomization\.ya?ml|Kustomization)$/.test(f.file));
    found.push(...substitutionFindings(built, id, defined));
  }
  if (found.length === 0) return undefined;
  return {
    what: `strict post-build substitution (Flux ≥ 2.9) would fail ${found.length} variable(s) with no value and no default: ${listed(found, (f) => `${f.file}:${f.line} \${${f.variable}} (Kustomization ${f.kustomization})`)}`,
    fix: 'give each a value (postBuild.substitute or substituteFrom) or a default (${VAR:=value}), escape it as $${VAR}, or annotate its object kustomize.toolkit.fluxcd.io/substitute: disabled',
  };
}

/**
 * Before an upgrade writes anything: the live cluster's Kubernetes version against what the new
 * Flux supports, the CRDs' stored versions against what the new CRDs serve, the Flux objects of
 * the cluster path at API versions the new Flux removed, and (crossing into Flux 2.9) the
 * `${VAR}`s strict post-build substitution refuses. Every problem is collected; it changes nothing.
 */
export const fluxUpgradePreflightKind: TaskKind<Params, Facts, TaskContext> = {
  kind: 'flux-upgrade-preflight',
  params: Params,
  async observe(p, ctx) {
    const problems: Problem[] = [];
    const notes: string[] = [];
    const kube = await ctx.kube().catch((e: unknown) => {
      problems.push(problemOf(e, 'check --kubeconfig and --context'));
      return undefined;
    });
    const files = await repoFiles(ctx.paths.repo, ctx.cluster.path, notes);
    const removed = apiRemovalFindings(files, new Map(p.targetCrds.map((c) => [c.name, c])));
    if (removed.length > 0) {
      problems.push({
        what: `${removed.length} Flux object(s) in ${ctx.cluster.path} use API versions Flux ${p.to} no longer serves: ${listed(removed, (f) => `${f.file}:${f.line} ${f.kind} ${f.name} ${f.apiVersion} → ${f.newApiVersion}`)}`,
        fix: `change each apiVersion to the one named (\`flux migrate -f ${ctx.cluster.path}\` rewrites them), commit and push, then upgrade`,
      });
    }
    if (kube) {
      try {
        const v = await kube.serverVersion();
        const verdict = kubernetesSupport(p.to, v.major, v.minor);
        const range = verdict.range ? `${verdict.range[0]}–${verdict.range[1]}` : '';
        if (verdict.status === 'older')
          problems.push({
            what: `Kubernetes ${v.gitVersion} is older than Flux ${p.to} supports (${range})`,
            fix: `upgrade the cluster to Kubernetes ${verdict.range?.[0] ?? ''} or newer first, or choose an older --flux-version`,
          });
        else if (verdict.status === 'newer') notes.push(`Kubernetes ${v.gitVersion} is newer than Flux ${p.to} is tested with (${range})`);
        else if (verdict.status === 'unknown')
          notes.push(`the Kubernetes versions Flux ${p.to} supports are not known to fluxstrap; Kubernetes ${v.gitVersion} not checked`);
        else notes.push(`Kubernetes ${v.gitVersion}: within what Flux ${p.to} supports (${range})`);
        const stale = await observeStoredVersions(kube, p.targetCrds);
        if (stale.length > 0 && !p.migrateStorage) {
          problems.push({
            what: `Flux ${p.to} no longer serves versions these CRDs have stored objects at, so its CRDs would be refused (status.storedVersions missing from spec.versions): ${stale.map(describeStale).join('; ')}`,
            fix: 'run again with --migrate-storage: it re-writes those objects at the storage version and trims storedVersions (safe to interrupt and re-run)',
          });
        }
        if (stale.length === 0) notes.push('stored versions: every Flux CRD stores only versions the new CRDs serve');
      } catch (e) {
        problems.push(problemOf(e, 'check that the cluster is running and that --context/--kubeconfig point at it'));
      }
    }
    if (strictSubstitution(p.to) && !strictSubstitution(p.from)) {
      const q = await substitutionProblem(ctx, files, kube, notes);
      if (q) problems.push(q);
    }
    return { problems, notes };
  },
  plan(_p, facts) {
    return failOnProblems(facts.problems, 'upgrade preflight');
  },
  apply() {
    return Promise.reject(new FluxstrapError('E_INTERNAL', 'upgrade preflight never plans a change'));
  },
  notes(_p, facts) {
    return facts.notes;
  },
};
