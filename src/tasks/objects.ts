import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { KubeAdapter, KubeObject } from '../adapters/kube/port.ts';
import { describeRef, refOf } from '../adapters/kube/port.ts';
import { dataOf } from '../core/change.ts';
import type { Change } from '../core/change.ts';
import { isFluxstrapError } from '../core/errors.ts';
import { getOwn, setOwn } from '../core/own.ts';

/**
 * Ensuring plain (non-secret) objects by server-side apply, shared by the namespace, components
 * and sync kinds. Deciding "nothing to do" must be exact and cheap:
 * - each object carries an annotation with the hash of the manifest fluxstrap last applied;
 *   when it matches and every field we want is already there, applying again is a no-op (our
 *   field set is unchanged, so SSA would neither set nor remove anything): one GET per object;
 * - otherwise the server answers with a dry-run apply, and the change is whatever differs
 *   between that answer and the live object (defaults, normalisation and removals included).
 * Two bootstraps at once need no lock: both apply the same manifests under the same field
 * manager, and a server-side apply of what is already there is a no-op, so whichever order the
 * writes land in, the objects end the same (the cluster test runs two and compares).
 */

export const APPLIED_ANNOTATION = 'fluxstrap.dev/applied-hash';

export interface ObjectFacts {
  /** The manifest as it will be applied (with the hash annotation). */
  desired: KubeObject;
  live?: KubeObject;
  /** What the server would make of it; absent when no apply is needed or none could be tried. */
  dryRun?: KubeObject;
  /** The kind is not served yet (its CRD comes with this very apply), so no dry-run was possible. */
  kindMissing?: boolean;
}

export function manifestHash(obj: KubeObject): string {
  return createHash('sha256').update(canonical(obj)).digest('hex').slice(0, 32);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function withAppliedHash(obj: KubeObject): KubeObject {
  const hash = manifestHash(obj);
  return { ...obj, metadata: { ...obj.metadata, annotations: { ...obj.metadata.annotations, [APPLIED_ANNOTATION]: hash } } };
}

/** Every field of `want` is in `have` with the same value (lists compared whole). */
export function contains(have: unknown, want: unknown): boolean {
  if (Array.isArray(want)) {
    return Array.isArray(have) && have.length === want.length && want.every((w, i) => contains(have[i], w));
  }
  if (want !== null && typeof want === 'object') {
    if (have === null || typeof have !== 'object' || Array.isArray(have)) return false;
    return Object.entries(want).every(([k, w]) => contains(getOwn(have, k), w));
  }
  return have === want;
}

async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export async function observeObjects(kube: KubeAdapter, manifests: KubeObject[]): Promise<ObjectFacts[]> {
  return pool(manifests, 8, async (manifest) => {
    const desired = withAppliedHash(manifest);
    if (!(await kube.hasKind(desired.apiVersion, desired.kind))) return { desired, kindMissing: true };
    const live = await kube.get(refOf(desired));
    if (live && live.metadata.annotations?.[APPLIED_ANNOTATION] === desired.metadata.annotations?.[APPLIED_ANNOTATION] && contains(live, desired)) {
      return { desired, live };
    }
    try {
      return { desired, ...(live ? { live } : {}), dryRun: await kube.apply(desired, { dryRun: true }) };
    } catch (e) {
      // A namespaced object whose namespace is created earlier in the same run cannot be
      // dry-run yet (check mode on an empty cluster): it is a plain create.
      if (!live && isFluxstrapError(e) && e.code === 'E_NOT_FOUND') return { desired };
      throw e;
    }
  });
}

const VOLATILE_METADATA = ['managedFields', 'resourceVersion', 'generation'];

/** The object without what changes on every write: the part a user would call its content. */
function content(obj: KubeObject): Record<string, unknown> {
  const { status: _status, metadata, ...rest } = obj;
  const meta = Object.fromEntries(Object.entries(metadata).filter(([k]) => !VOLATILE_METADATA.includes(k)));
  return { ...rest, metadata: meta };
}

function withoutHash(obj: Record<string, unknown>): Record<string, unknown> {
  const meta = obj.metadata as { annotations?: Record<string, string> };
  const { [APPLIED_ANNOTATION]: _hash, ...annotations } = meta.annotations ?? {};
  const { annotations: _all, ...rest } = meta;
  return { ...obj, metadata: Object.keys(annotations).length > 0 ? { ...rest, annotations } : rest };
}

/** Top-level-ish paths (as key lists: label keys hold dots) where two values differ. */
export function differingPaths(a: unknown, b: unknown, prefix: string[] = [], depth = 3): string[][] {
  if (canonical(a) === canonical(b)) return [];
  const isMap = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (depth === 0 || !isMap(a) || !isMap(b)) return [prefix];
  const am = a as Record<string, unknown>;
  const bm = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(am), ...Object.keys(bm)])].sort();
  return keys.flatMap((k) => differingPaths(getOwn(am, k), getOwn(bm, k), [...prefix, k], depth - 1));
}

function pick(obj: Record<string, unknown>, paths: string[][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of paths) {
    let v: unknown = obj;
    for (const k of p) v = v !== null && typeof v === 'object' ? getOwn(v, k) : undefined;
    if (v !== undefined) setOwn(out, p.join('.'), v);
  }
  return out;
}

export function planObjects(facts: ObjectFacts[]): Change<KubeObject>[] {
  const changes: Change<KubeObject>[] = [];
  for (const f of facts) {
    const target = describeRef(refOf(f.desired));
    if (!f.live) {
      changes.push({ action: 'create', target, summary: 'server-side apply as fluxstrap', after: stringify(content(f.desired)), data: f.desired });
      continue;
    }
    if (!f.dryRun) continue;
    const before = content(f.live);
    const after = content(f.dryRun);
    const paths = differingPaths(withoutHash(before), withoutHash(after));
    if (paths.length === 0) {
      // Only our bookkeeping annotation differs (an object adopted from an earlier install).
      if (canonical(before) === canonical(after)) continue;
      changes.push({ action: 'update', target, summary: 'record the applied manifest', data: f.desired });
      continue;
    }
    changes.push({
      action: 'update',
      target,
      summary: `fields ${paths
        .slice(0, 4)
        .map((p) => p.join('.'))
        .join(', ')}${paths.length > 4 ? `, +${paths.length - 4} more` : ''}`,
      before: stringify(pick(before, paths)),
      after: stringify(pick(after, paths)),
      data: f.desired,
    });
  }
  return changes;
}

export function appliedObject(change: Change<KubeObject>): KubeObject {
  return dataOf(change);
}
