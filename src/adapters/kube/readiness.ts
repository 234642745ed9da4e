import type { Condition, KubeObject, WaitState } from './port.ts';

/**
 * Readiness rules (kstatus-like): pure functions of an object as read, shared by the waits and
 * by tasks' observe/plan and by status. `undefined` is an object that does not exist.
 */

function conditionsOf(obj: KubeObject | undefined): Condition[] {
  const status = obj?.status as { conditions?: unknown } | undefined;
  return Array.isArray(status?.conditions) ? (status.conditions as Condition[]) : [];
}

export function conditionOf(obj: KubeObject | undefined, type: string): Condition | undefined {
  return conditionsOf(obj).find((c) => c.type === type);
}

export function formatConditions(obj: KubeObject | undefined): string {
  const conds = conditionsOf(obj);
  if (conds.length === 0) return 'no conditions';
  return conds.map((c) => `${c.type}=${c.status}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}`).join('; ');
}

function statusField<T>(obj: KubeObject | undefined, field: string): T | undefined {
  return (obj?.status as Record<string, unknown> | undefined)?.[field] as T | undefined;
}

/** kstatus "Current" for a Deployment: observed, all replicas updated and available, Available=True. */
export function deploymentAvailable(obj: KubeObject | undefined): WaitState {
  if (!obj) return { done: false, reason: 'does not exist' };
  const want = (obj.spec as { replicas?: number } | undefined)?.replicas ?? 1;
  const observed = statusField<number>(obj, 'observedGeneration');
  if (observed === undefined || observed < (obj.metadata.generation ?? 0)) return { done: false, reason: 'not yet observed by the controller manager' };
  const updated = statusField<number>(obj, 'updatedReplicas') ?? 0;
  const available = statusField<number>(obj, 'availableReplicas') ?? 0;
  const progressing = conditionOf(obj, 'Progressing');
  if (progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded') {
    return { done: false, failed: true, reason: `progress deadline exceeded: ${progressing.message ?? ''}` };
  }
  if (updated < want || available < want) return { done: false, reason: `${available}/${want} replicas available, ${updated}/${want} updated` };
  if (conditionOf(obj, 'Available')?.status !== 'True') return { done: false, reason: 'condition Available is not True' };
  return { done: true, reason: 'available' };
}

export function crdEstablished(obj: KubeObject | undefined): WaitState {
  if (!obj) return { done: false, reason: 'does not exist' };
  if (conditionOf(obj, 'Established')?.status === 'True') return { done: true, reason: 'established' };
  const names = conditionOf(obj, 'NamesAccepted');
  if (names?.status === 'False') return { done: false, failed: true, reason: `names not accepted: ${names.message ?? ''}` };
  return { done: false, reason: 'not established yet' };
}

export interface FluxReadyOptions {
  /** `status.lastHandledReconcileAt` before our reconcile request: a different value means handled. */
  handledBefore?: string | undefined;
  /** The revision the controller last tried (Kustomization `lastAttemptedRevision`). */
  attemptedOf?: (obj: KubeObject) => string | undefined;
}

/**
 * A Flux object has reached `revision` when it has observed its current generation, `revisionOf`
 * (artifact revision for sources, lastAppliedRevision for Kustomizations) equals it, and it does
 * not report Ready=False. Ready=False after the controller handled a reconcile request (and,
 * when known, attempted this very revision) is final for this wait: Flux would only retry the
 * same thing. Comparing with the value before the request, not with our own token, keeps two
 * concurrent bootstraps from waiting for each other's request.
 */
export function fluxReadyAt(revision: string, revisionOf: (obj: KubeObject) => string | undefined, opts: FluxReadyOptions = {}) {
  return (obj: KubeObject | undefined): WaitState => {
    if (!obj) return { done: false, reason: 'does not exist' };
    if ((obj.spec as { suspend?: boolean } | undefined)?.suspend === true) {
      return { done: false, failed: true, reason: 'is suspended; resume it with `flux resume`' };
    }
    const observed = statusField<number>(obj, 'observedGeneration');
    if (observed === undefined || observed < (obj.metadata.generation ?? 0)) return { done: false, reason: 'not yet reconciled by its controller' };
    const ready = conditionOf(obj, 'Ready');
    const at = revisionOf(obj);
    // Flux sets Ready=Unknown (Progressing) at the start of every reconcile, including the ones
    // our own apply triggers; the revision only advances on success, so it is the goal.
    if (at === revision && ready?.status !== 'False') return { done: true, reason: `at ${revision}` };
    const handled = 'handledBefore' in opts && statusField<string>(obj, 'lastHandledReconcileAt') !== opts.handledBefore;
    if (ready?.status === 'False' && handled && (!opts.attemptedOf || opts.attemptedOf(obj) === revision)) {
      return { done: false, failed: true, reason: `not ready: ${ready.reason ?? ''}: ${ready.message ?? ''}` };
    }
    return {
      done: false,
      reason: `${ready ? `Ready=${ready.status}${ready.message ? ` (${ready.message})` : ''}` : 'no Ready condition'}, at ${at ?? 'no revision'}`,
    };
  };
}

export const lastHandledReconcileAt = (obj: KubeObject | undefined): string | undefined => statusField<string>(obj, 'lastHandledReconcileAt');

export const lastAttemptedRevision = (obj: KubeObject): string | undefined => statusField<string>(obj, 'lastAttemptedRevision');

export const artifactRevision = (obj: KubeObject): string | undefined => statusField<{ revision?: string }>(obj, 'artifact')?.revision;

export const lastAppliedRevision = (obj: KubeObject): string | undefined => statusField<string>(obj, 'lastAppliedRevision');
