import { stringify } from 'yaml';
import type { KubeAdapter, KubeObject } from '../adapters/kube/port.ts';
import { describeRef } from '../adapters/kube/port.ts';
import { dataOf } from '../core/change.ts';
import type { Change } from '../core/change.ts';
import { maskValues } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';

/**
 * The one way fluxstrap ensures a Secret (Git credentials, sops-age): created when missing, left
 * alone when equal, and when it differs the drift is reported and only `--rotate-secrets` replaces
 * it, because a silently overwritten deploy key or age key breaks a cluster in ways that surface
 * much later. Values stay in memory: diffs, summaries and errors carry key names only.
 */

export interface SecretSpec {
  namespace: string;
  name: string;
  /** Plain values (secret). */
  data: Record<string, string>;
  /** The Secret's `type`; default Opaque. */
  type?: string;
  /**
   * Keys another tool may have added that are not drift when present: `flux bootstrap` stores
   * `identity.pub` beside the deploy key, and refusing that Secret would block every migration.
   */
  optionalKeys?: readonly string[];
}

export interface SecretFacts {
  spec: SecretSpec;
  /** Decoded live values by key (secret), or undefined when the Secret does not exist. */
  live?: Record<string, string>;
  /** The live Secret carries kubectl's last-applied annotation, i.e. its values in clear. */
  lastApplied?: boolean;
  rotate: boolean;
}

/** Client-side `kubectl apply` copies the whole object, values included, into this annotation. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

interface SecretDrift {
  added: string[];
  removed: string[];
  changed: string[];
}

const ref = (s: SecretSpec) => ({ apiVersion: 'v1', kind: 'Secret', namespace: s.namespace, name: s.name });

export async function observeSecret(kube: KubeAdapter, spec: SecretSpec, rotate: boolean): Promise<SecretFacts> {
  const live = await kube.get(ref(spec));
  if (!live) return { spec, rotate };
  const data = (live.data ?? {}) as Record<string, string>;
  return {
    spec,
    rotate,
    lastApplied: live.metadata.annotations?.[LAST_APPLIED] !== undefined,
    live: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])),
  };
}

export function secretDrift(want: Record<string, string>, have: Record<string, string>, optionalKeys: readonly string[] = []): SecretDrift {
  return {
    // Own keys only: a live key named `constructor` or `toString` is not in every object.
    added: Object.keys(want)
      .filter((k) => !Object.hasOwn(have, k))
      .sort(),
    removed: Object.keys(have)
      .filter((k) => !Object.hasOwn(want, k) && !optionalKeys.includes(k))
      .sort(),
    changed: Object.keys(want)
      .filter((k) => Object.hasOwn(have, k) && have[k] !== want[k])
      .sort(),
  };
}

function describeDrift(d: SecretDrift): string {
  return [
    d.changed.length ? `changed ${d.changed.join(', ')}` : '',
    d.added.length ? `missing ${d.added.join(', ')}` : '',
    d.removed.length ? `extra ${d.removed.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
}

export function planSecret(f: SecretFacts): Change<SecretSpec>[] {
  const target = describeRef(ref(f.spec));
  const after = stringify({ data: maskValues(f.spec.data) });
  if (!f.live) {
    return [{ action: 'create', target, summary: `keys ${Object.keys(f.spec.data).sort().join(', ')}`, after, sensitive: true, data: f.spec }];
  }
  const drift = secretDrift(f.spec.data, f.live, f.spec.optionalKeys);
  if (drift.added.length + drift.removed.length + drift.changed.length === 0) {
    // The seed's `kubectl create secret … | kubectl apply -f -` left the values in an annotation.
    return f.lastApplied ? [{ action: 'update', target, summary: `remove ${LAST_APPLIED} (it holds the values in clear)`, sensitive: true, data: f.spec }] : [];
  }
  if (!f.rotate) {
    throw new FluxstrapError('E_PRECONDITION', `${target} differs from what this bootstrap would write (${describeDrift(drift)})`, {
      hint: 'if the new credentials are right, run again with --rotate-secrets to replace it; otherwise fix the key or token you passed',
    });
  }
  return [
    {
      action: 'update',
      target,
      summary: `rotate: ${describeDrift(drift)}`,
      before: stringify({ data: maskValues(f.live) }),
      after,
      sensitive: true,
      data: f.spec,
    },
  ];
}

export function secretManifest(spec: SecretSpec): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: spec.name, namespace: spec.namespace },
    type: spec.type ?? 'Opaque',
    data: Object.fromEntries(Object.entries(spec.data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')])),
  };
}

/**
 * Someone else may write the Secret between our observe and this apply. A create therefore
 * never overwrites: when the Secret appeared meanwhile it is observed and planned again (equal:
 * nothing to do; different: the drift error, as on a fresh run). An update is applied only over
 * the version it was computed from (resourceVersion precondition: a conflict is one E_KUBE line).
 */
export async function applySecret(kube: KubeAdapter, change: Change<SecretSpec>, rotate = false): Promise<void> {
  const spec = dataOf(change);
  const live = change.action === 'update' ? await kube.get(ref(spec)) : undefined;
  if (live) {
    const extra = Object.keys(live.data ?? {}).some((k) => !Object.hasOwn(spec.data, k));
    if (!extra) {
      let version = live.metadata.resourceVersion;
      if (live.metadata.annotations?.[LAST_APPLIED] !== undefined) {
        version = (await kube.patchMerge(ref(spec), { metadata: { resourceVersion: version, annotations: { [LAST_APPLIED]: null } } })).metadata
          .resourceVersion;
      }
      const manifest = secretManifest(spec);
      await kube.apply({ ...manifest, metadata: { ...manifest.metadata, ...(version !== undefined ? { resourceVersion: version } : {}) } });
      return;
    }
    // Keys another writer owns survive a server-side apply; a rotation must leave exactly ours.
    await kube.delete(ref(spec));
  }
  if (await kube.create(secretManifest(spec))) return;
  for (const again of planSecret(await observeSecret(kube, spec, rotate))) await applySecret(kube, again, rotate);
}
