import { z } from 'zod';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import type { TaskContext } from './context.ts';
import { applySecret, observeSecret, planSecret } from './secret.ts';
import type { SecretFacts, SecretSpec } from './secret.ts';
import { decryptionSecretName } from './source.ts';

const Params = z.strictObject({
  namespace: z.string().min(1).default('flux-system'),
  name: z.string().min(1).optional().describe('Secret name; default: the secretRef of the flux-system decryption patch, else sops-hcvault.'),
});
type Params = z.infer<typeof Params>;

/** The Secret's name in the Flux SOPS guide, which init's decryption patch names. */
export const HC_VAULT_SECRET = 'sops-hcvault';

/** The key kustomize-controller reads a Vault token from (Flux SOPS guide, HashiCorp Vault). */
export const VAULT_TOKEN_KEY = 'sops.vault-token';

/** The token for kustomize-controller from the variable `sopsKey.vault.tokenEnv` names. Secret: never print. */
export function vaultToken(ctx: Pick<TaskContext, 'cluster' | 'env'>): string {
  const vault = ctx.cluster.vault;
  const token = vault ? ctx.env[vault.tokenEnv]?.trim() : undefined;
  if (!vault || !token) {
    throw new FluxstrapError('E_NOT_FOUND', `${vault?.tokenEnv ?? 'the token variable'} is not set: no Vault token for kustomize-controller`, {
      location: { field: 'sopsKey.vault.tokenEnv' },
      hint: `export ${vault?.tokenEnv ?? 'it'} with a token allowed to decrypt with the transit key (e.g. vault token create -policy=sops-decrypt)`,
    });
  }
  return token;
}

type Facts = SecretFacts | { none: true };

/**
 * The `sops-hcvault` Secret the Flux SOPS guide makes by hand (`kubectl create secret generic
 * sops-hcvault --from-literal=sops.vault-token=…`), when fluxstrap.yaml sets `sopsKey.vault`.
 */
export const sopsHcVaultSecretKind: TaskKind<Params, Facts, TaskContext, SecretSpec> = {
  kind: 'sops-hcvault-secret',
  params: Params,
  async observe(p, ctx) {
    if (!ctx.cluster.vault) return { none: true };
    const data = { [VAULT_TOKEN_KEY]: vaultToken(ctx) };
    const name = p.name ?? decryptionSecretName(await ctx.fluxBuild()) ?? HC_VAULT_SECRET;
    return observeSecret(await ctx.kube(), { namespace: p.namespace, name, data }, ctx.rotateSecrets);
  },
  plan(_p, facts): Change<SecretSpec>[] {
    return 'none' in facts ? [] : planSecret(facts);
  },
  async apply(change, _p, ctx) {
    await applySecret(await ctx.kube(), change, ctx.rotateSecrets);
  },
};
