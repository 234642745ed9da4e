import { z } from 'zod';
import type { KubeObject } from '../adapters/kube/port.ts';
import { refOf } from '../adapters/kube/port.ts';
import { crdEstablished } from '../adapters/kube/readiness.ts';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import type { TaskContext } from './context.ts';
import { appliedObject, observeObjects, planObjects } from './objects.ts';
import type { ObjectFacts } from './objects.ts';

const Params = z.strictObject({});
type Params = z.infer<typeof Params>;

interface Facts {
  objects: ObjectFacts[];
  notes: string[];
}

/**
 * Namespaces first, then CRDs (each waited Established before anything else goes on), then the
 * rest in build order: applying a Deployment before its namespace, or a custom resource before
 * its CRD is served, fails with "no matches for kind".
 */
function applyOrder(obj: KubeObject): number {
  if (obj.kind === 'Namespace') return 0;
  if (obj.kind === 'CustomResourceDefinition') return 1;
  return 2;
}

export function planComponents(objects: ObjectFacts[]): Change<KubeObject>[] {
  return planObjects(objects).sort((a, b) => applyOrder(appliedObject(a)) - applyOrder(appliedObject(b)));
}

/**
 * The Flux controllers, CRDs and RBAC: `kustomize build <path>/flux-system` at the commit being
 * bootstrapped minus the sync objects (applied once the controllers run), server-side applied
 * as `fluxstrap`, so the patches in flux-system/kustomization.yaml are live from the first apply.
 */
export const fluxComponentsKind: TaskKind<Params, Facts, TaskContext, KubeObject> = {
  kind: 'flux-components',
  params: Params,
  async observe(_p, ctx) {
    const [src, build] = await Promise.all([ctx.source(), ctx.fluxBuild()]);
    const notes = [
      `built ${build.components.length} objects from ${src.origin} at ${src.commit.slice(0, 12)}`,
      build.result.engine === 'native'
        ? 'kustomize: native'
        : `kustomize: kubectl kustomize, because the native builder does not cover: ${build.result.fallbackReason ?? ''}`,
    ];
    return { objects: await observeObjects(await ctx.kube(), build.components), notes };
  },
  plan(_p, facts) {
    return planComponents(facts.objects);
  },
  async apply(change, _p, ctx) {
    const kube = await ctx.kube();
    const obj = appliedObject(change);
    await kube.apply(obj);
    if (obj.kind === 'CustomResourceDefinition') {
      await kube.waitFor(refOf(obj), crdEstablished, { timeoutMs: ctx.timeoutMs, what: 'Established' });
    }
  },
  notes(_p, facts) {
    return facts.notes;
  },
};
