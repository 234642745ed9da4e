import { z } from 'zod';
import type { KubeObject, ObjectRef } from '../adapters/kube/port.ts';
import { describeRef, refOf } from '../adapters/kube/port.ts';
import { artifactRevision, conditionOf, fluxReadyAt, lastAppliedRevision, lastAttemptedRevision, lastHandledReconcileAt } from '../adapters/kube/readiness.ts';
import { dataOf } from '../core/change.ts';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import type { TaskContext } from './context.ts';

const Params = z.strictObject({});
type Params = z.infer<typeof Params>;

/** The annotation `flux reconcile` sets (fluxcd/pkg meta.ReconcileRequestAnnotation). */
const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';

interface ReconcileFacts {
  revision: string;
  source: { ref: ObjectRef; obj?: KubeObject };
  kustomization: { ref: ObjectRef; obj?: KubeObject };
}

const sourceReady = (f: ReconcileFacts) => fluxReadyAt(f.revision, artifactRevision)(f.source.obj).done;
const kustomizationReady = (f: ReconcileFacts) => fluxReadyAt(f.revision, lastAppliedRevision)(f.kustomization.obj).done;

/**
 * The controller is at work on it: a generation it has not observed yet (a new object), or
 * Ready=Unknown, which Flux sets while a reconcile runs.
 */
export function reconciling(obj: KubeObject | undefined): boolean {
  if (!obj) return false;
  const observed = (obj.status as { observedGeneration?: number } | undefined)?.observedGeneration ?? -1;
  if (observed < (obj.metadata.generation ?? 0)) return true;
  const ready = conditionOf(obj, 'Ready');
  return !ready || ready.status === 'Unknown';
}

/** Nothing to do once the source holds the expected commit and the Kustomization has applied it. */
export function planReconcile(f: ReconcileFacts): Change<'source' | 'kustomization'>[] {
  const changes: Change<'source' | 'kustomization'>[] = [];
  if (!sourceReady(f)) {
    changes.push({ action: 'run', target: describeRef(f.source.ref), summary: `reconcile until Ready at ${f.revision}`, data: 'source' });
  }
  if (!sourceReady(f) || !kustomizationReady(f)) {
    changes.push({ action: 'run', target: describeRef(f.kustomization.ref), summary: `reconcile until ${f.revision} is applied`, data: 'kustomization' });
  }
  return changes;
}

export const reconcileKind: TaskKind<Params, ReconcileFacts, TaskContext, 'source' | 'kustomization'> = {
  kind: 'reconcile',
  params: Params,
  async observe(_p, ctx) {
    const [src, build, kube] = await Promise.all([ctx.source(), ctx.fluxBuild(), ctx.kube()]);
    const ref = (o: KubeObject): ObjectRef => ({ namespace: 'flux-system', ...refOf(o) });
    const sourceRef = ref(build.sync.gitRepository);
    const ksRef = ref(build.sync.kustomization);
    const [source, ks] = await Promise.all([kube.get(sourceRef), kube.get(ksRef)]);
    return {
      revision: src.revision,
      source: { ref: sourceRef, ...(source ? { obj: source } : {}) },
      kustomization: { ref: ksRef, ...(ks ? { obj: ks } : {}) },
    };
  },
  plan(_p, facts) {
    return planReconcile(facts);
  },
  async apply(change, _p, ctx) {
    const kube = await ctx.kube();
    // Apply runs only outside check mode.
    const facts = await this.observe({}, ctx, { check: false });
    const isSource = dataOf(change) === 'source';
    const { ref } = isSource ? facts.source : facts.kustomization;
    let { obj } = isSource ? facts.source : facts.kustomization;
    const revisionOf = isSource ? artifactRevision : lastAppliedRevision;
    const progress = { timeoutMs: ctx.timeoutMs, onProgress: (r: string) => ctx.log(`${describeRef(ref)}: ${r}`) };
    if (fluxReadyAt(facts.revision, revisionOf)(obj).done) return;
    if (reconciling(obj)) {
      // A request now would queue a second reconcile right behind this one; let it finish first.
      obj = await kube.waitFor(ref, (o) => ({ done: !reconciling(o), reason: 'reconciling' }), { ...progress, what: 'done with its reconcile in progress' });
      if (fluxReadyAt(facts.revision, revisionOf)(obj).done) return;
    }
    const check = fluxReadyAt(facts.revision, revisionOf, {
      handledBefore: lastHandledReconcileAt(obj),
      ...(isSource ? {} : { attemptedOf: lastAttemptedRevision }),
    });
    // RFC 3339 with nanoseconds, as the flux CLI writes it; any new value triggers a reconcile.
    await kube.patchMerge(ref, { metadata: { annotations: { [REQUESTED_AT]: new Date().toISOString() } } });
    await kube.waitFor(ref, check, { ...progress, what: isSource ? `Ready at ${facts.revision}` : `applied at ${facts.revision}` });
  },
  notes(_p, facts) {
    return [`revision ${facts.revision}`];
  },
};
