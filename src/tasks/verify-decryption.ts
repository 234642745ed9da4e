import { z } from 'zod';
import { describeRef } from '../adapters/kube.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import type { TaskContext } from './context.ts';
import { decryptSopsFile, findSopsFiles, secretDigests, sha256 } from './sops-files.ts';
import type { SecretDigest } from './sops-files.ts';
import { bootstrapSource, fluxBuild } from './source.ts';

const Params = z.strictObject({});
type Params = z.infer<typeof Params>;

interface VerifyFacts {
  kustomization: string;
  /** `undefined` when the Kustomization does not exist (yet). */
  decryption?: { provider?: string; secretRef?: { name?: string } } | null;
  /** Controller-wide decryption (`--sops-age-secret`) in the kustomize-controller Deployment. */
  globalSecret: boolean;
  want: SecretDigest[];
  /** Live hashes per `namespace/name`; missing when the Secret does not exist. */
  have: Record<string, Record<string, string> | undefined>;
  check: boolean;
}

const keyOf = (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`;

/**
 * Pure: the problems, each naming the Secret and its file and only key names. Empty when every
 * SOPS-encrypted Secret under the cluster path is in the cluster with the decrypted values.
 */
export function verificationProblems(f: VerifyFacts): string[] {
  if (f.decryption === undefined) return f.check ? [] : [`${f.kustomization} does not exist`];
  const problems: string[] = [];
  if (f.decryption?.provider !== 'sops' && !f.globalSecret) problems.push(`${f.kustomization} has no spec.decryption (provider sops)`);
  for (const w of f.want) {
    const have = f.have[keyOf(w)];
    if (!have) {
      problems.push(`Secret ${keyOf(w)} (from ${w.file}) is not in the cluster`);
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

/**
 * The proof that decryption works end to end: the flux-system Kustomization decrypts, and each
 * SOPS-encrypted Secret under the cluster path is in the cluster holding the decrypted values.
 * It changes nothing; a mismatch fails the task.
 */
export const verifyDecryptionKind: TaskKind<Params, VerifyFacts, TaskContext> = {
  kind: 'verify-decryption',
  params: Params,
  async observe(_p, ctx, run) {
    const [src, build, kube] = await Promise.all([bootstrapSource(ctx), fluxBuild(ctx), ctx.kube()]);
    const ks = build.sync.kustomization;
    const ref = { apiVersion: ks.apiVersion, kind: ks.kind, name: ks.metadata.name, namespace: ks.metadata.namespace ?? 'flux-system' };
    const live = await kube.get(ref);
    const controller = await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: ref.namespace, name: 'kustomize-controller' });
    const globalSecret = JSON.stringify(controller?.spec ?? {}).includes('--sops-age-secret=');
    const identities = await ctx.ageIdentities();
    const want: SecretDigest[] = [];
    for (const f of await findSopsFiles(src.clusterDir, src.dir, [src.fluxSystemDir])) {
      want.push(...secretDigests(await decryptSopsFile(f, identities), f.name));
    }
    const have: VerifyFacts['have'] = {};
    await Promise.all(want.map(async (w) => {
      const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: w.namespace, name: w.name });
      have[keyOf(w)] = secret
        ? Object.fromEntries(Object.entries((secret.data ?? {}) as Record<string, string>).map(([k, v]) => [k, sha256(Buffer.from(v, 'base64'))]))
        : undefined;
    }));
    const decryption = live ? ((live.spec as { decryption?: VerifyFacts['decryption'] } | undefined)?.decryption ?? null) : undefined;
    return { kustomization: describeRef(ref), ...(decryption !== undefined ? { decryption } : {}), globalSecret, want, have, check: run.check };
  },
  plan(_p, facts): Change[] {
    const problems = verificationProblems(facts);
    if (problems.length > 0) {
      throw new FluxstrapError('E_DECRYPT', `decryption is not working: ${problems.join('; ')}`, {
        hint: 'see `kubectl -n flux-system describe kustomization flux-system` for the controller\'s message; the sops-age Secret must hold an identity of a recipient the files are encrypted for',
      });
    }
    return [];
  },
  apply() {
    return Promise.reject(new FluxstrapError('E_INTERNAL', 'verify-decryption never plans a change'));
  },
  notes(_p, facts) {
    if (facts.decryption === undefined) return ['nothing to verify yet (check mode before the first bootstrap)'];
    return [`${facts.want.length} SOPS-encrypted Secret(s) decrypted in the cluster: ${facts.want.map((w) => `${keyOf(w)} [${Object.keys(w.hashes).sort().join(', ')}]`).join(', ') || 'none under the path'}`];
  },
};
