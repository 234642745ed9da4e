import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { readText } from '../adapters/files.ts';
import type { Change } from '../core/change.ts';
import { yamlValues } from '../core/bounded-yaml.ts';
import { FluxstrapError, isFluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { formatForPath } from '../sops/stores.ts';
import type { TaskContext } from './context.ts';
import { applySecret, observeSecret, planSecret } from './secret.ts';
import type { SecretFacts, SecretSpec } from './secret.ts';
import { decryptSopsFile, readClusterKey } from './sops-files.ts';

/**
 * A bootstrap Secret kept SOPS-encrypted in the repository (beside git.auth.sopsFile, e.g.
 * `bootstrap/<cluster>/registry.sops.yaml`), for what must exist before Flux can decrypt anything
 * itself: opened in memory with the cluster's key (age or PGP; cloud KMS through the
 * environment) and applied like every Secret fluxstrap writes (created when missing, equal left
 * alone, drift refused unless --rotate-secrets). The plaintext is never written anywhere.
 */
const Params = z.strictObject({
  file: z
    .string()
    .min(1)
    .refine((f) => !isAbsolute(f) && !f.replace(/\\/g, '/').split('/').includes('..'), 'must be a path inside the repository')
    .describe('Repository-relative SOPS-encrypted file holding one Secret manifest (data and/or stringData), e.g. bootstrap/prod/registry.sops.yaml.'),
});
type Params = z.infer<typeof Params>;

const unusable = (file: string, what: string) =>
  new FluxstrapError('E_CONFIG', `${file} is not a usable Secret: ${what}`, {
    location: { file },
    hint: 'it must hold one `kind: Secret` with metadata.name and metadata.namespace and string values under data (base64) or stringData',
  });

/** The Secret in decrypted YAML: `stringData` over `data`, as the API server merges them. Errors name keys, never values. */
export function secretFromManifest(plain: string, file: string): SecretSpec {
  const docs = yamlValues(plain, file).filter((d) => d !== null && d !== undefined);
  if (docs.length !== 1) throw unusable(file, `${docs.length} documents, one Secret expected`);
  const doc = docs[0] as {
    apiVersion?: unknown;
    kind?: unknown;
    metadata?: { name?: unknown; namespace?: unknown };
    type?: unknown;
    data?: unknown;
    stringData?: unknown;
  };
  if (doc.kind !== 'Secret' || doc.apiVersion !== 'v1') throw unusable(file, 'not an apiVersion: v1, kind: Secret manifest');
  const { name, namespace } = doc.metadata ?? {};
  if (typeof name !== 'string' || name === '' || typeof namespace !== 'string' || namespace === '')
    throw unusable(file, 'metadata.name and metadata.namespace are needed');
  const values = (field: 'data' | 'stringData', decode: (v: string) => string): [string, string][] => {
    const map = doc[field];
    if (map === undefined || map === null) return [];
    if (typeof map !== 'object' || Array.isArray(map)) throw unusable(file, `${field} is not a map`);
    return Object.entries(map as Record<string, unknown>).map(([k, v]) => {
      if (typeof v !== 'string') throw unusable(file, `${field}.${k} is not a string`);
      return [k, decode(v)];
    });
  };
  const data = Object.fromEntries([...values('data', (v) => Buffer.from(v, 'base64').toString('utf8')), ...values('stringData', (v) => v)]);
  if (Object.keys(data).length === 0) throw unusable(file, 'no data or stringData');
  return { namespace, name, data, ...(typeof doc.type === 'string' && doc.type !== '' ? { type: doc.type } : {}) };
}

export const sopsSecretKind: TaskKind<Params, SecretFacts, TaskContext, SecretSpec> = {
  kind: 'sops-secret',
  params: Params,
  async observe(p, ctx) {
    const path = join(ctx.paths.repo, p.file);
    const text = await readText(path, 'read the encrypted Secret');
    // A cluster keyed by cloud KMS alone has no age key here: the file may open with KMS.
    const key = await readClusterKey(ctx).catch((e: unknown) => {
      if (isFluxstrapError(e) && e.code === 'E_NOT_FOUND') return { age: [], pgpFiles: [] };
      throw e;
    });
    const plain = await decryptSopsFile({ file: path, name: p.file, text, format: formatForPath(p.file), recipients: [] }, key, ctx.env);
    return observeSecret(await ctx.kube(), secretFromManifest(plain, p.file), ctx.rotateSecrets);
  },
  plan(_p, facts): Change<SecretSpec>[] {
    return planSecret(facts);
  },
  async apply(change, _p, ctx) {
    await applySecret(await ctx.kube(), change, ctx.rotateSecrets);
  },
};
