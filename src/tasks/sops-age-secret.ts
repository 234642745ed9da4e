import { z } from 'zod';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import type { AgeIdentity } from '../keys/age.ts';
import type { TaskContext } from './context.ts';
import { applySecret, observeSecret, planSecret } from './secret.ts';
import type { SecretFacts, SecretSpec } from './secret.ts';
import { usesAgeSecret } from './cloud-key.ts';
import { decryptionSecretName } from './source.ts';

const Params = z.strictObject({
  namespace: z.string().min(1).default('flux-system'),
  name: z.string().min(1).optional().describe('Secret name; default: the secretRef of the flux-system decryption patch, else sops-age.'),
});
type Params = z.infer<typeof Params>;

/**
 * Every identity of the key file, each under its own key ending in `.agekey`: kustomize-controller
 * imports exactly those keys, and pushing only the first identity of a multi-key file is a known
 * way to end with "no identity matched any of the recipients".
 */
export function ageSecretData(identities: Pick<AgeIdentity, 'secret' | 'recipient'>[]): Record<string, string> {
  return Object.fromEntries(identities.map((id, i) => [i === 0 ? 'age.agekey' : `age-${i + 1}.agekey`, `# public key: ${id.recipient}\n${id.secret}\n`]));
}

/** A cluster whose key is OpenPGP or Vault has no age Secret to ensure (sops-gpg-secret, sops-hcvault-secret write theirs), nor one decrypting through its cloud identity alone. */
type Facts = SecretFacts | { none: true; why: string };

export const sopsAgeSecretKind: TaskKind<Params, Facts, TaskContext, SecretSpec> = {
  kind: 'sops-age-secret',
  params: Params,
  async observe(p, ctx) {
    if (ctx.cluster.pgpKey) return { none: true, why: 'the cluster key is OpenPGP (sopsKey.pgp): no sops-age Secret' };
    if (ctx.cluster.vault) return { none: true, why: 'the cluster decrypts with Vault transit (sopsKey.vault): no sops-age Secret' };
    // sopsKey names a key service and the build no Secret: no age key goes into the cluster.
    if (p.name === undefined && !usesAgeSecret(ctx.cluster, await ctx.fluxBuild()))
      return { none: true, why: 'the cluster decrypts through its cloud identity (fluxstrap.yaml sopsKey): no sops-age Secret' };
    const name = p.name ?? decryptionSecretName(await ctx.fluxBuild()) ?? 'sops-age';
    const data = ageSecretData(await ctx.ageIdentities());
    return observeSecret(await ctx.kube(), { namespace: p.namespace, name, data }, ctx.rotateSecrets);
  },
  plan(_p, facts): Change<SecretSpec>[] {
    return 'none' in facts ? [] : planSecret(facts);
  },
  async apply(change, _p, ctx) {
    await applySecret(await ctx.kube(), change, ctx.rotateSecrets);
  },
  notes(_p, facts) {
    return 'none' in facts ? [facts.why] : [];
  },
};
