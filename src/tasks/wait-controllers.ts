import { z } from 'zod';
import type { KubeObject, ObjectRef, WaitState } from '../adapters/kube/port.ts';
import { describeRef, refOf } from '../adapters/kube/port.ts';
import { deploymentAvailable } from '../adapters/kube/readiness.ts';
import { dataOf } from '../core/change.ts';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import type { TaskContext } from './context.ts';

const Params = z.strictObject({});
type Params = z.infer<typeof Params>;

interface DeploymentFacts {
  ref: ObjectRef;
  state: WaitState;
}

export function planWaits(facts: DeploymentFacts[]): Change<ObjectRef>[] {
  return facts
    .filter((f) => !f.state.done)
    .map((f) => ({ action: 'run', target: describeRef(f.ref), summary: `wait until Available (now: ${f.state.reason})`, data: f.ref }));
}

/**
 * Every Deployment of the flux-system build Available (kstatus rules), event-driven: a watch per
 * Deployment rather than `kubectl wait pod`, which fails outright while no pod exists yet.
 */
export const waitControllersKind: TaskKind<Params, DeploymentFacts[], TaskContext, ObjectRef> = {
  kind: 'wait-controllers',
  params: Params,
  async observe(_p, ctx) {
    const kube = await ctx.kube();
    const deployments = (await ctx.fluxBuild()).components.filter((o) => o.kind === 'Deployment');
    return Promise.all(
      deployments.map(async (d: KubeObject) => {
        const ref = refOf(d);
        return { ref, state: deploymentAvailable(await kube.get(ref)) };
      }),
    );
  },
  plan(_p, facts) {
    return planWaits(facts);
  },
  async apply(change, _p, ctx) {
    const ref = dataOf(change);
    await (
      await ctx.kube()
    ).waitFor(ref, deploymentAvailable, { timeoutMs: ctx.timeoutMs, what: 'Available', onProgress: (r) => ctx.log(`${describeRef(ref)}: ${r}`) });
  },
};
