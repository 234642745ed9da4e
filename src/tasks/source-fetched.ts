import { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import type { KubeObject, WaitState } from '../adapters/kube/port.ts';
import { describeRef } from '../adapters/kube/port.ts';
import { conditionOf, lastHandledReconcileAt } from '../adapters/kube/readiness.ts';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import { publicKeyOfPrivate, sshPublicKeyOf } from '../keys/ssh.ts';
import type { TaskContext } from './context.ts';
import { gitRepositoryRef } from './git-identity-secret.ts';

/**
 * GitRepository flux-system has fetched with a given deploy key: a reconcile requested after its
 * Secret holds the key, handled, and Ready. The request carries the key's fingerprint in an
 * annotation of ours, so a later run sees that this key was proven and does not ask again; the
 * old key may be retired only then. source-controller reads Secrets from the API server, not its
 * cache (unless its CacheSecretsAndConfigMaps feature gate is on), so the reconcile requested
 * after the Secret changed is the one that uses the new key.
 */
const Params = z.strictObject({
  keyFile: z.string().min(1).describe('Private key file the source must have fetched with.'),
  namespace: z.string().min(1).default('flux-system'),
  gitRepository: z.string().min(1).default('flux-system'),
});
type Params = z.infer<typeof Params>;

/** The annotation `flux reconcile` sets (fluxcd/pkg meta.ReconcileRequestAnnotation). */
const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';
/** Which deploy key the last reconcile fluxstrap requested was for. */
export const FETCHED_WITH = 'fluxstrap.dev/deploy-key';

interface Facts {
  fingerprint?: string;
  obj?: KubeObject;
}

/** The reconcile requested for `fingerprint` was handled and the source is Ready. */
export function fetchedWith(fingerprint: string | undefined, obj: KubeObject | undefined): WaitState {
  if (!obj) return { done: false, reason: 'does not exist' };
  const annotations = obj.metadata.annotations ?? {};
  if (fingerprint === undefined || annotations[FETCHED_WITH] !== fingerprint) return { done: false, reason: 'no reconcile requested with the new key yet' };
  const requested = annotations[REQUESTED_AT];
  if (requested === undefined || lastHandledReconcileAt(obj) !== requested) return { done: false, reason: 'reconcile requested, not handled yet' };
  const observed = (obj.status as { observedGeneration?: number } | undefined)?.observedGeneration ?? -1;
  const ready = conditionOf(obj, 'Ready');
  if (observed >= (obj.metadata.generation ?? 0) && ready?.status === 'True') return { done: true, reason: 'fetched' };
  // The request was handled and failed: the controller reports why (the key refused, most likely).
  const failed = ready?.status === 'False';
  return { done: false, failed, reason: `Ready=${ready?.status ?? 'none'}${ready?.message ? ` (${ready.message})` : ''}` };
}

export const sourceFetchedKind: TaskKind<Params, Facts, TaskContext> = {
  kind: 'source-fetched',
  params: Params,
  async observe(p, ctx) {
    const text = await readTextIfExists(p.keyFile, 'read the deploy key');
    const fingerprint = text === undefined ? undefined : sshPublicKeyOf(publicKeyOfPrivate(text, p.keyFile))?.fingerprint;
    const obj = await (await ctx.kube()).get(gitRepositoryRef(p));
    return { ...(fingerprint !== undefined ? { fingerprint } : {}), ...(obj ? { obj } : {}) };
  },
  plan(p, facts): Change[] {
    if (fetchedWith(facts.fingerprint, facts.obj).done) return [];
    return [{ action: 'run', target: describeRef(gitRepositoryRef(p)), summary: 'reconcile and wait until Ready: source-controller fetches with the new key' }];
  },
  async apply(_change, p, ctx) {
    const kube = await ctx.kube();
    const { fingerprint } = await this.observe(p, ctx, { check: false });
    const ref = gitRepositoryRef(p);
    // RFC 3339 with nanoseconds, as the flux CLI writes it; any new value triggers a reconcile.
    await kube.patchMerge(ref, { metadata: { annotations: { [REQUESTED_AT]: new Date().toISOString(), [FETCHED_WITH]: fingerprint ?? null } } });
    await kube.waitFor(ref, (o) => fetchedWith(fingerprint, o), {
      timeoutMs: ctx.timeoutMs,
      what: 'Ready after fetching with the new deploy key',
      onProgress: (r) => ctx.log(`${describeRef(ref)}: ${r}`),
    });
  },
  notes(_p, facts) {
    return facts.fingerprint === undefined ? [] : [`source-controller fetched with ${facts.fingerprint}`];
  },
};
