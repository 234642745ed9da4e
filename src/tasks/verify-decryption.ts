import { z } from 'zod';
import { describeRef } from '../adapters/kube/port.ts';
import { conditionOf, fluxReadyAt, lastAppliedRevision, lastAttemptedRevision } from '../adapters/kube/readiness.ts';
import type { KubeObject, WaitState } from '../adapters/kube/port.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError, isFluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { describeKustomization } from '../flux/reach.ts';
import type { TaskContext } from './context.ts';
import { SERVICE_NAMES } from './cloud-key.ts';
import { ageClusterKey, clusterSops, decryptSopsFile, readClusterKey, secretDigests, sha256 } from './sops-files.ts';
import type { SecretDigest } from './sops-files.ts';
import { vaultToken } from './sops-hcvault-secret.ts';
import { reachRoot } from './source.ts';
import { tokenOnlyEnv } from './vault-preflight.ts';

const Params = z.strictObject({});
type Params = z.infer<typeof Params>;

interface VerifyFacts {
  kustomization: string;
  /** `undefined` when the Kustomization does not exist (yet). */
  decryption?: { provider?: string; secretRef?: { name?: string } } | null;
  want: SecretDigest[];
  /** Live hashes per `namespace/name`; missing when the Secret does not exist. */
  have: Record<string, Record<string, string> | undefined>;
  check: boolean;
  /** The other Kustomizations that apply SOPS files, as they are in the cluster. */
  children?: ChildFacts[];
  /** Files only a key service fluxstrap cannot reach opens: their Secrets were not compared. */
  unverified?: { service: string; files: string[] };
}

interface ChildFacts {
  /** `Kustomization flux-system/apps (clusters/prod/apps.yaml:1)` */
  ref: string;
  exists: boolean;
  decryption?: string;
  /** Ready=False, with the controller's message. */
  failing?: string;
}

const keyOf = (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`;

/**
 * Pure: the problems, each naming the Secret and its file and only key names. Empty when every
 * SOPS-encrypted Secret the cluster reaches is in the cluster with the decrypted values.
 */
export function verificationProblems(f: VerifyFacts): string[] {
  if (f.decryption === undefined) return f.check ? [] : [`${f.kustomization} does not exist`];
  const problems: string[] = [];
  if (f.decryption?.provider !== 'sops') problems.push(`${f.kustomization} has no spec.decryption (provider sops)`);
  for (const c of f.children ?? []) {
    if (!c.exists) problems.push(`${c.ref} is not in the cluster`);
    else if (c.decryption !== 'sops') problems.push(`${c.ref} has no spec.decryption (provider sops)`);
    if (c.failing !== undefined) problems.push(`${c.ref} is not Ready: ${c.failing}`);
  }
  for (const w of f.want) {
    const have = f.have[keyOf(w)];
    if (!have) {
      problems.push(`Secret ${keyOf(w)} (from ${w.file}${w.by ? `, applied by ${w.by}` : ''}) is not in the cluster`);
      continue;
    }
    // Own keys only: a Secret key named `constructor` is not in every object.
    const missing = Object.keys(w.hashes).filter((k) => !Object.hasOwn(have, k));
    const differ = Object.keys(w.hashes).filter((k) => Object.hasOwn(have, k) && have[k] !== w.hashes[k]);
    if (missing.length) problems.push(`Secret ${keyOf(w)} lacks ${missing.join(', ')}`);
    if (differ.length) problems.push(`Secret ${keyOf(w)} holds other values (still encrypted?) under ${differ.join(', ')}`);
  }
  return problems;
}

/** A child Kustomization is done with the bootstrapped revision: applied it, or failed at it. */
function settledAt(revision: string): (obj: KubeObject | undefined) => WaitState {
  const applied = fluxReadyAt(revision, lastAppliedRevision);
  return (obj) => {
    const state = applied(obj);
    if (state.done || !obj) return state;
    const ready = conditionOf(obj, 'Ready');
    return ready?.status === 'False' && lastAttemptedRevision(obj) === revision ? { done: true, reason: 'failed' } : state;
  };
}

/**
 * The proof that decryption works end to end: every Kustomization that applies SOPS files
 * decrypts, and each SOPS-encrypted Secret the cluster reaches (through the Kustomizations the
 * cluster folder applies) is in the cluster holding the decrypted values.
 * It changes nothing; a mismatch fails the task.
 */
export const verifyDecryptionKind: TaskKind<Params, VerifyFacts, TaskContext> = {
  kind: 'verify-decryption',
  params: Params,
  async observe(_p, ctx, run) {
    const [src, build, kube] = await Promise.all([ctx.source(), ctx.fluxBuild(), ctx.kube()]);
    const ks = build.sync.kustomization;
    const ref = { apiVersion: ks.apiVersion, kind: ks.kind, name: ks.metadata.name, namespace: ks.metadata.namespace ?? 'flux-system' };
    const live = await kube.get(ref);
    const cloud = ctx.cluster.cloudKey;
    // Vault files open with the token the cluster got (sops-hcvault), not the user's own.
    const serviceEnv = cloud ? ctx.env : ctx.cluster.vault ? tokenOnlyEnv(ctx, vaultToken(ctx)) : undefined;
    // A cluster keyed by a key service needs no age key here: its files open with the service, if at all.
    const key = serviceEnv
      ? await readClusterKey(ctx).catch((e: unknown) => {
          if (isFluxstrapError(e) && e.code === 'E_NOT_FOUND') return ageClusterKey([]);
          throw e;
        })
      : await readClusterKey(ctx);
    const unverified: string[] = [];
    const { reach, files } = await clusterSops(src.dir, reachRoot(ctx.cluster.path, build));
    const want: SecretDigest[] = [];
    for (const f of files) {
      if (f.format !== 'yaml') continue;
      let plain;
      try {
        plain = await decryptSopsFile(f, key, serviceEnv);
      } catch (e) {
        // Google Cloud KMS and Azure Key Vault: fluxstrap has no client, so their files are not compared.
        if (cloud === undefined || cloud.type === 'aws-kms' || !isFluxstrapError(e) || e.code !== 'E_DECRYPT') throw e;
        unverified.push(f.name);
        continue;
      }
      // The first Kustomization that applies the file; its targetNamespace moves the Secrets.
      const by = reach.kustomizations.find((k) => k.sops.some((s) => s.file === f.name));
      for (const d of secretDigests(plain, f.name)) {
        want.push({ ...d, ...(by?.targetNamespace !== undefined ? { namespace: by.targetNamespace } : {}), ...(by ? { by: describeKustomization(by) } : {}) });
      }
    }
    const children: ChildFacts[] = [];
    if (live) {
      // Flux applies the children after the sync Kustomization: wait for each to have applied
      // (or failed at) the bootstrapped revision before looking at its Secrets.
      for (const k of reach.kustomizations.slice(1).filter((c) => c.sops.length > 0)) {
        const childRef = { apiVersion: ks.apiVersion, kind: 'Kustomization', name: k.name, namespace: k.namespace };
        const obj = run.check
          ? await kube.get(childRef)
          : await kube
              .waitFor(childRef, settledAt(src.revision), {
                timeoutMs: ctx.timeoutMs,
                what: `applied at ${src.revision}`,
                onProgress: (r) => ctx.log(`${describeKustomization(k)}: ${r}`),
              })
              .catch((e: unknown) => {
                if (e instanceof FluxstrapError && e.code === 'E_TIMEOUT') return kube.get(childRef);
                throw e;
              });
        const ready = conditionOf(obj, 'Ready');
        const provider = (obj?.spec as { decryption?: { provider?: string } } | undefined)?.decryption?.provider;
        children.push({
          ref: describeKustomization(k),
          exists: obj !== undefined,
          ...(provider !== undefined ? { decryption: provider } : {}),
          ...(ready?.status === 'False' ? { failing: `${ready.reason ?? ''}: ${ready.message ?? ''}` } : {}),
        });
      }
    }
    const have: VerifyFacts['have'] = {};
    await Promise.all(
      want.map(async (w) => {
        const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: w.namespace, name: w.name });
        have[keyOf(w)] = secret
          ? Object.fromEntries(Object.entries((secret.data ?? {}) as Record<string, string>).map(([k, v]) => [k, sha256(Buffer.from(v, 'base64'))]))
          : undefined;
      }),
    );
    const decryption = live ? ((live.spec as { decryption?: VerifyFacts['decryption'] } | undefined)?.decryption ?? null) : undefined;
    return {
      kustomization: describeRef(ref),
      ...(decryption !== undefined ? { decryption } : {}),
      want,
      have,
      check: run.check,
      children,
      ...(unverified.length > 0 && cloud ? { unverified: { service: SERVICE_NAMES[cloud.type], files: unverified } } : {}),
    };
  },
  plan(_p, facts): Change[] {
    const problems = verificationProblems(facts);
    if (problems.length > 0) {
      throw new FluxstrapError('E_DECRYPT', `decryption is not working: ${problems.join('; ')}`, {
        hint: "see `kubectl -n flux-system describe kustomization flux-system` for the controller's message; the sops-age Secret must hold an identity of a recipient the files are encrypted for",
      });
    }
    return [];
  },
  apply() {
    return Promise.reject(new FluxstrapError('E_INTERNAL', 'verify-decryption never plans a change'));
  },
  notes(_p, facts) {
    if (facts.decryption === undefined) return ['nothing to verify yet (check mode before the first bootstrap)'];
    const u = facts.unverified;
    const skipped = u ? [`warning: fluxstrap cannot reach ${u.service} to open ${u.files.join(', ')}: the Secrets in them were not compared`] : [];
    if (facts.want.length === 0) return [...skipped, ...(u ? [] : ['warning: the cluster reaches no SOPS-encrypted Secret: nothing was verified'])];
    // Per Kustomization, in the order the walk found them.
    const groups = new Map<string, SecretDigest[]>();
    for (const w of facts.want) groups.set(w.by ?? facts.kustomization, [...(groups.get(w.by ?? facts.kustomization) ?? []), w]);
    return [
      ...skipped,
      ...[...groups].map(
        ([by, ws]) =>
          `${by}: ${ws.length} SOPS-encrypted Secret(s) decrypted in the cluster: ${ws.map((w) => `${keyOf(w)} [${Object.keys(w.hashes).sort().join(', ')}]`).join(', ')}`,
      ),
    ];
  },
};
