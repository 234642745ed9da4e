import { z } from 'zod';
import type { KubeAdapter, KubeObject } from '../adapters/kube/port.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { isFluxGroup, storedVersionFindings } from '../flux/upgrade.ts';
import type { CrdVersions, LiveCrd, StoredVersionFinding } from '../flux/upgrade.ts';
import type { TaskContext } from './context.ts';

/** The Flux CRDs of the version being upgraded to, as params (what the new gotk-components.yaml holds). */
export const targetCrds = z.array(z.strictObject({ name: z.string(), group: z.string(), kind: z.string(), served: z.array(z.string()), storage: z.string() }));

const Params = z.strictObject({ targetCrds });
type Params = z.infer<typeof Params>;

const CRD = { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition' } as const;

export interface StaleCrd extends StoredVersionFinding {
  /** `namespace/name` of every object of the CRD: all of them may be stored at a stale version. */
  objects: string[];
}

/** The live Flux CRDs whose status.storedVersions the target CRDs do not all serve, with their objects. */
export async function observeStoredVersions(kube: KubeAdapter, target: readonly CrdVersions[]): Promise<StaleCrd[]> {
  const live: LiveCrd[] = (await kube.list(CRD.apiVersion, CRD.kind)).flatMap((crd) => {
    const spec = crd.spec as { group?: string; versions?: { name: string; storage?: boolean }[] } | undefined;
    if (!isFluxGroup(spec?.group ?? '')) return [];
    const status = crd.status as { storedVersions?: string[] } | undefined;
    return [{ name: crd.metadata.name, storage: spec?.versions?.find((v) => v.storage === true)?.name ?? '', storedVersions: status?.storedVersions ?? [] }];
  });
  const findings = storedVersionFindings(live, new Map(target.map((c) => [c.name, c])));
  return Promise.all(findings.map(async (f) => ({ ...f, objects: (await objectsOf(kube, f)).map(objectName) })));
}

const objectsOf = (kube: KubeAdapter, f: StoredVersionFinding): Promise<KubeObject[]> => kube.list(`${f.group}/${f.storage}`, f.kind, { allNamespaces: true });
const objectName = (o: KubeObject) => (o.metadata.namespace === undefined ? o.metadata.name : `${o.metadata.namespace}/${o.metadata.name}`);

/** `CRD (v1beta2 stored; 3 objects: a/x, a/y, b/z)`, for messages. */
export function describeStale(s: StaleCrd): string {
  const shown = s.objects.slice(0, 5).join(', ');
  const more = s.objects.length > 5 ? ` and ${s.objects.length - 5} more` : '';
  return `${s.crd} (stored ${s.stale.join(', ')}; ${s.objects.length} object(s)${s.objects.length > 0 ? `: ${shown}${more}` : ''})`;
}

/**
 * Every live Flux CRD's status.storedVersions served by the target CRDs, as the new CRDs need:
 * each object of a CRD that has stored a version being removed is written again (a PUT of the
 * object as read, which the API server encodes at the current storage version; generation and
 * spec unchanged, so nothing reconciles), then storedVersions is trimmed to the storage version
 * through the status subresource. The trim comes last, so a run stopped half-way leaves the CRD
 * still listing the old version, and the next run re-writes and trims (re-writing is idempotent).
 */
export const fluxStorageVersionsKind: TaskKind<Params, StaleCrd[], TaskContext> = {
  kind: 'flux-storage-versions',
  params: Params,
  async observe(p, ctx) {
    return observeStoredVersions(await ctx.kube(), p.targetCrds);
  },
  plan(_p, stale): Change<StoredVersionFinding>[] {
    const stuck = stale.filter((s) => !s.migratable);
    if (stuck.length > 0) {
      throw new FluxstrapError(
        'E_PRECONDITION',
        `the new Flux does not serve the version these CRDs store objects at now: ${stuck.map((s) => `${s.crd} (${s.storage})`).join(', ')}`,
        {
          hint: 'upgrade to an intermediate Flux version that serves both first, then to this one',
        },
      );
    }
    return stale.map((s) => ({
      action: 'update',
      target: `CustomResourceDefinition ${s.crd}`,
      summary: `re-write ${s.objects.length} ${s.kind} object(s) at ${s.storage}, then trim status.storedVersions to [${s.storage}] (drops ${s.stale.join(', ')})`,
      data: s,
    }));
  },
  async apply(change, _p, ctx) {
    const s = change.data as StoredVersionFinding;
    const kube = await ctx.kube();
    const objects = await objectsOf(kube, s);
    let done = 0;
    for (const o of objects) {
      // A conflict means the object was written since it was listed: stored at the storage version already.
      await kube.replace(o);
      done++;
      if (done % 25 === 0 || done === objects.length) ctx.log(`${s.crd}: ${done}/${objects.length} re-written at ${s.storage}`);
    }
    await kube.patchStatus({ ...CRD, name: s.crd }, { status: { storedVersions: [s.storage] } });
  },
};
