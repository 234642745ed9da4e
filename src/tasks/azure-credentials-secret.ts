import { relative } from 'node:path';
import { z } from 'zod';
import { readText } from '../adapters/files.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError, isFluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import type { TaskContext } from './context.ts';
import { applySecret, observeSecret, planSecret } from './secret.ts';
import type { SecretFacts, SecretSpec } from './secret.ts';

const Params = z.strictObject({
  namespace: z.string().min(1).default('flux-system'),
});
type Params = z.infer<typeof Params>;

/** What the Azure SDK in kustomize-controller reads from its environment for a Service Principal. */
export const SERVICE_PRINCIPAL_KEYS = ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET'] as const;

/**
 * The three values from a decrypted document: its top-level keys (a dotenv file, a flat YAML or
 * JSON map), else a Secret manifest's `stringData`. Secret: the values stay in memory, and an
 * error names only the keys that are missing.
 */
export function servicePrincipalValues(doc: unknown, from: string, field: string): Record<string, string> {
  const flat = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  const stringData = flat.stringData;
  const map =
    Object.hasOwn(flat, SERVICE_PRINCIPAL_KEYS[0]) || typeof stringData !== 'object' || stringData === null ? flat : (stringData as Record<string, unknown>);
  const missing = SERVICE_PRINCIPAL_KEYS.filter((k) => !Object.hasOwn(map, k) || typeof map[k] !== 'string' || map[k] === '');
  if (missing.length > 0) {
    throw new FluxstrapError(
      'E_PRECONDITION',
      `no Service Principal credentials: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing from ${from}`,
      {
        location: { field },
        hint: `${from.startsWith('the environment') ? 'export' : 'put into the file'} ${SERVICE_PRINCIPAL_KEYS.join(', ')} (the Service Principal kustomize-controller signs in to Key Vault as)${from.startsWith('the environment') ? ', or name a SOPS file holding them in servicePrincipal.file' : ''}`,
      },
    );
  }
  return Object.fromEntries(SERVICE_PRINCIPAL_KEYS.map((k) => [k, map[k] as string]));
}

/** The SOPS file opened in memory with the keys this machine has (the cluster's age key, AWS KMS). */
async function fromSopsFile(file: string, ctx: TaskContext, field: string): Promise<Record<string, string>> {
  const { decryptDocument } = await import('../sops/engine.ts');
  const { formatForPath } = await import('../sops/stores.ts');
  const name = relative(ctx.paths.repo, file);
  // No age key on this machine is fine when the file opens with AWS KMS.
  const age = await ctx.ageIdentities().catch((e: unknown) => {
    if (isFluxstrapError(e) && e.code === 'E_NOT_FOUND') return [];
    throw e;
  });
  const plain = await decryptDocument(
    Buffer.from(await readText(file), 'utf8'),
    formatForPath(file),
    name,
    { age, pgpFiles: [], gpg: false, env: ctx.env },
    { outputFormat: 'json' },
  );
  return servicePrincipalValues(JSON.parse(plain.toString('utf8')) as unknown, name, field);
}

/**
 * The Secret a Service Principal's credentials reach kustomize-controller through (`envFrom`, the
 * patch init writes): made from the SOPS file `sopsKey.azureKv.servicePrincipal.file` names, or
 * from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET in the environment; never from
 * argv. Like every Secret of fluxstrap, one that differs is drift, replaced only with --rotate-secrets.
 */
export const azureCredentialsSecretKind: TaskKind<Params, SecretFacts | undefined, TaskContext, SecretSpec> = {
  kind: 'azure-credentials-secret',
  params: Params,
  async observe(p, ctx) {
    const key = ctx.cluster.cloudKey;
    const sp = key?.type === 'azure-kv' ? key.servicePrincipal : undefined;
    if (!sp) return undefined;
    const field = `clusters.${ctx.cluster.name}.sopsKey.azureKv.servicePrincipal`;
    const data =
      sp.file !== undefined
        ? await fromSopsFile(sp.file, ctx, `${field}.file`)
        : servicePrincipalValues(Object.fromEntries(SERVICE_PRINCIPAL_KEYS.map((k) => [k, ctx.env[k]])), 'the environment', field);
    return observeSecret(await ctx.kube(), { namespace: p.namespace, name: sp.secretName, data }, ctx.rotateSecrets);
  },
  plan(_p, facts): Change<SecretSpec>[] {
    return facts ? planSecret(facts) : [];
  },
  async apply(change, _p, ctx) {
    await applySecret(await ctx.kube(), change, ctx.rotateSecrets);
  },
  notes(_p, facts) {
    return facts ? [] : ['no Azure Service Principal in fluxstrap.yaml (sopsKey.azureKv.servicePrincipal): nothing to create'];
  },
};
