import { z } from 'zod';
import type { KubeObject } from '../adapters/kube/port.ts';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import type { TaskContext } from './context.ts';
import { appliedObject, observeObjects, planObjects } from './objects.ts';
import type { ObjectFacts } from './objects.ts';

const Params = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    .default('flux-system')
    .describe('Namespace to ensure.'),
});
type Params = z.infer<typeof Params>;

/**
 * The namespace Flux lives in. When the flux-system build defines it (gotk-components does, with
 * Flux's labels), that exact manifest is applied: one field manager applying two different
 * versions of the same object would strip the other's fields on every run.
 */
async function namespaceManifest(ctx: TaskContext, name: string): Promise<KubeObject> {
  const build = await ctx.fluxBuild();
  return build.result.objects.find((o) => o.kind === 'Namespace' && o.metadata.name === name) ?? { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
}

export const namespaceKind: TaskKind<Params, ObjectFacts[], TaskContext, KubeObject> = {
  kind: 'namespace',
  params: Params,
  async observe(p, ctx) {
    return observeObjects(await ctx.kube(), [await namespaceManifest(ctx, p.name)]);
  },
  plan(_p, facts): Change<KubeObject>[] {
    return planObjects(facts);
  },
  async apply(change, _p, ctx) {
    await (await ctx.kube()).apply(appliedObject(change));
  },
};
