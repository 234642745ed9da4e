import { z } from 'zod';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import type { PgpPrivateKey } from '../keys/pgp.ts';
import type { TaskContext } from './context.ts';
import { applySecret, observeSecret, planSecret } from './secret.ts';
import type { SecretFacts, SecretSpec } from './secret.ts';
import { decryptionSecretName } from './source.ts';

const Params = z.strictObject({
  namespace: z.string().min(1).default('flux-system'),
  name: z.string().min(1).optional().describe('Secret name; default: the secretRef of the flux-system decryption patch, else sops-gpg.'),
});
type Params = z.infer<typeof Params>;

/** A cluster whose key is age has no PGP Secret to ensure (sops-age-secret writes its Secret). */
type Facts = SecretFacts | { none: true };

/**
 * The armored private key under `<FINGERPRINT>.asc`: kustomize-controller imports into its
 * keyring every key of the Secret whose name ends in `.asc` (the Flux guide names it sops.asc;
 * the fingerprint says which key it is without opening it).
 */
export function gpgSecretData(key: Pick<PgpPrivateKey, 'fingerprint' | 'armored'>): Record<string, string> {
  return { [`${key.fingerprint}.asc`]: key.armored.endsWith('\n') ? key.armored : `${key.armored}\n` };
}

export const sopsGpgSecretKind: TaskKind<Params, Facts, TaskContext, SecretSpec> = {
  kind: 'sops-gpg-secret',
  params: Params,
  async observe(p, ctx) {
    const key = await ctx.pgpKey();
    if (!key) return { none: true };
    const name = p.name ?? decryptionSecretName(await ctx.fluxBuild()) ?? 'sops-gpg';
    return observeSecret(await ctx.kube(), { namespace: p.namespace, name, data: gpgSecretData(key) }, ctx.rotateSecrets);
  },
  plan(_p, facts): Change<SecretSpec>[] {
    return 'none' in facts ? [] : planSecret(facts);
  },
  async apply(change, _p, ctx) {
    await applySecret(await ctx.kube(), change, ctx.rotateSecrets);
  },
};
