import { z } from 'zod';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import type { TaskContext } from './context.ts';
import { appliedObject, observeObjects, planObjects } from './objects.ts';
import type { KubeObject } from '../adapters/kube/port.ts';
import type { ObjectFacts } from './objects.ts';

const Params = z.strictObject({});
type Params = z.infer<typeof Params>;

/**
 * GitRepository and Kustomization `flux-system` as the flux-system build makes them, i.e. with the
 * decryption patch already applied: the first reconcile can decrypt, and a later run does not
 * take decryption away.
 */
export const fluxSyncKind: TaskKind<Params, ObjectFacts[], TaskContext, KubeObject> = {
  kind: 'flux-sync',
  params: Params,
  async observe(_p, ctx) {
    const { sync } = await ctx.fluxBuild();
    return observeObjects(await ctx.kube(), [sync.gitRepository, sync.kustomization]);
  },
  plan(_p, facts): Change<KubeObject>[] {
    return planObjects(facts);
  },
  async apply(change, _p, ctx) {
    await (await ctx.kube()).apply(appliedObject(change));
  },
};
