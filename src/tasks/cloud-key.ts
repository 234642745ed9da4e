import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { exists } from '../adapters/files.ts';
import type { CloudSopsKey, ResolvedCluster } from '../cluster/config.ts';
import { formatLocation, isFluxstrapError } from '../core/errors.ts';
import { missingWiring } from '../flux/workload-identity.ts';
import type { CloudIdentity } from '../flux/workload-identity.ts';
import { loadConfig, matchRule } from '../sops/config.ts';
import { stanzaField } from '../sops/metadata.ts';
import type { Stanza } from '../sops/metadata.ts';
import { clusterSops } from './sops-files.ts';
import type { SopsFile } from './sops-files.ts';
import { controllerSecretName, reachRoot } from './source.ts';
import type { FluxBuild } from './source.ts';

/**
 * A cluster that decrypts through a key service (fluxstrap.yaml `sopsKey`): what preflight and
 * status check of it. Statically, for every service: the `.sops.yaml` rule of each file the
 * cluster reaches lists the key, each file is encrypted for it, and the flux-system build gives
 * kustomize-controller the identity. AWS KMS is also asked: the key must open every reached file
 * (or, with none yet, encrypt). Google Cloud KMS and Azure Key Vault have no client here, and the
 * checks say so rather than pass for more than they are.
 */

export const SERVICE_NAMES: Record<CloudSopsKey['type'], string> = { 'aws-kms': 'AWS KMS', 'gcp-kms': 'Google Cloud KMS', 'azure-kv': 'Azure Key Vault' };

const BACKEND_FLAGS: Record<CloudSopsKey['type'], string> = {
  'aws-kms': '--sops-backend aws-kms --kms-arn',
  'gcp-kms': '--sops-backend gcp-kms --gcp-kms-key',
  'azure-kv': '--sops-backend azure-kv --azure-kv-key',
};

/** How the key is named in `.sops.yaml` and in a file's metadata. */
export function keyName(k: CloudSopsKey): string {
  if (k.type === 'aws-kms') return k.arn;
  if (k.type === 'gcp-kms') return k.resourceId;
  return `${k.vaultUrl}/keys/${k.key}/${k.version}`;
}

export const describeKey = (k: CloudSopsKey): string => `${SERVICE_NAMES[k.type]} key ${keyName(k)}`;

/** A metadata or rule entry of this key (a kms entry's role and context may be anything). */
export function isKeyEntry(k: CloudSopsKey, s: Stanza): boolean {
  if (k.type === 'aws-kms') return s.type === 'kms' && stanzaField(s, 'arn') === k.arn;
  if (k.type === 'gcp-kms') return s.type === 'gcp_kms' && stanzaField(s, 'resource_id') === k.resourceId;
  return (
    s.type === 'azure_kv' &&
    stanzaField(s, 'vault_url').replace(/\/+$/, '') === k.vaultUrl &&
    stanzaField(s, 'name') === k.key &&
    stanzaField(s, 'version') === k.version
  );
}

/** The identity kustomize-controller gets for the key, when `sopsKey` names one. */
export function cloudIdentity(k: CloudSopsKey): CloudIdentity | undefined {
  if (k.type === 'aws-kms') return k.roleArn !== undefined ? { type: 'aws-irsa', roleArn: k.roleArn } : undefined;
  if (k.type === 'gcp-kms') return k.serviceAccount !== undefined ? { type: 'gcp-workload-identity', serviceAccount: k.serviceAccount } : undefined;
  if (k.workloadIdentity) return { type: 'azure-workload-identity', ...k.workloadIdentity };
  if (k.aadPodIdentity) return { type: 'azure-aad-pod-identity', binding: k.aadPodIdentity.binding };
  if (k.servicePrincipal) return { type: 'azure-service-principal', secretName: k.servicePrincipal.secretName };
  return undefined;
}

/**
 * Whether the cluster still decrypts with the age key in a Secret: always without `sopsKey`;
 * with one, only when the flux-system build names a Secret (init with a cloud backend and an age
 * key keeps `secretRef: sops-age` as a second way in).
 */
export function usesAgeSecret(cluster: Pick<ResolvedCluster, 'cloudKey'>, build: FluxBuild | undefined): boolean {
  if (!cluster.cloudKey || !build) return true;
  const spec = build.sync.kustomization.spec as { decryption?: { secretRef?: { name?: string } } } | undefined;
  return spec?.decryption?.secretRef?.name !== undefined || controllerSecretName(build) !== undefined;
}

export interface KeyCheck {
  problems: { what: string; fix: string }[];
  /** What was checked and held, for status. */
  passed: string[];
  /** Warnings: what could not be checked. */
  notes: string[];
}

/** Every check of the cloud key against the repository at `dir` (the commit being bootstrapped, or the checkout). */
export async function cloudKeyCheck(
  cluster: Pick<ResolvedCluster, 'name' | 'path'>,
  key: CloudSopsKey,
  dir: string,
  build: FluxBuild | undefined,
  env: NodeJS.ProcessEnv,
): Promise<KeyCheck> {
  const out: KeyCheck = { problems: [], passed: [], notes: [] };
  const name = describeKey(key);
  const updatekeys = `\`fluxstrap updatekeys --cluster ${cluster.name}\``;
  const sopsConfig = join(dir, '.sops.yaml');
  const { files } = await clusterSops(dir, reachRoot(cluster.path, build));
  if (!(await exists(sopsConfig))) {
    out.problems.push({ what: 'the repository has no .sops.yaml', fix: `run \`fluxstrap init --cluster ${cluster.name} ${BACKEND_FLAGS[key.type]} …\`` });
  } else {
    const config = await loadConfig(sopsConfig);
    const targets =
      files.length > 0
        ? files.map((f) => ({ file: f.file, name: f.name }))
        : [{ file: join(dir, ...cluster.path.split('/'), 'secret.sops.yaml'), name: `files under ${cluster.path}` }];
    const missing = new Map<string, string[]>();
    for (const t of targets) {
      const rule = matchRule(config, t.file, dir);
      if (rule?.keyGroups.flat().some((s) => isKeyEntry(key, s))) continue;
      const where = rule ? `.sops.yaml:${rule.line}` : '';
      missing.set(where, [...(missing.get(where) ?? []), t.name]);
    }
    for (const [where, names] of missing) {
      out.problems.push({
        what:
          where === ''
            ? `no .sops.yaml creation rule matches ${names.join(', ')}`
            : `the .sops.yaml rule at ${where} (for ${names.join(', ')}) does not list the ${name}`,
        fix: `add it to that rule (\`fluxstrap init --cluster ${cluster.name} ${BACKEND_FLAGS[key.type]} …\`), then re-encrypt with ${updatekeys}`,
      });
    }
    if (missing.size === 0)
      out.passed.push(
        `the .sops.yaml rule for ${files.length > 0 ? `each of the ${files.length} SOPS file(s) the cluster reaches` : cluster.path} lists the ${name}`,
      );
  }

  const { parseEncrypted } = await import('../sops/engine.ts');
  const entryOf = (f: SopsFile): boolean =>
    parseEncrypted(Buffer.from(f.text, 'utf8'), f.format, f.name)
      .metadata.keyGroups.flat()
      .some((s) => isKeyEntry(key, s));
  const withKey = files.filter(entryOf);
  const without = files.filter((f) => !withKey.includes(f));
  if (without.length > 0) {
    out.problems.push({
      what: `${without.length} of the ${files.length} SOPS file(s) the cluster reaches are not encrypted for the ${name}: ${without.map((f) => f.name).join(', ')}`,
      fix: `add the key to their .sops.yaml rule, then ${updatekeys}`,
    });
  }

  if (build) {
    const identity = cloudIdentity(key);
    const decryption = (build.sync.kustomization.spec as { decryption?: { serviceAccountName?: string } } | undefined)?.decryption;
    const lacking = identity ? missingWiring(identity, build.result.objects, decryption?.serviceAccountName) : [];
    if (lacking.length > 0) {
      out.problems.push({
        what: `the flux-system build does not give kustomize-controller its identity for the ${name}: ${lacking.join('; ')}`,
        fix: `run \`fluxstrap init --cluster ${cluster.name} ${BACKEND_FLAGS[key.type]} …\` with the identity's options (it writes the patches into ${cluster.path}/flux-system/kustomization.yaml), commit and push`,
      });
    } else if (identity) {
      out.passed.push(`the flux-system build gives kustomize-controller the ${identity.type} identity`);
    } else {
      out.notes.push(
        `warning: sopsKey names no identity for kustomize-controller: it must reach the ${name} with credentials it gets another way (a node role, a decryption Secret)`,
      );
    }
  }

  if (key.type !== 'aws-kms') {
    out.notes.push(
      `warning: fluxstrap cannot reach ${SERVICE_NAMES[key.type]} (it has no client for it): the key was not tried; only the .sops.yaml rule, the files' entries and the identity wiring were checked`,
    );
    return out;
  }
  out.problems.push(...(await kmsReachable(key, withKey, env, out.passed)));
  return out;
}

/** AWS KMS itself: the key opens every reached file encrypted for it (KMS alone), or encrypts when none is. */
async function kmsReachable(
  key: Extract<CloudSopsKey, { type: 'aws-kms' }>,
  files: SopsFile[],
  env: NodeJS.ProcessEnv,
  passed: string[],
): Promise<{ what: string; fix: string }[]> {
  const problem = (e: unknown): { what: string; fix: string } => {
    if (!isFluxstrapError(e)) throw e;
    const where = formatLocation(e.location);
    return { what: `${e.message}${where ? ` (${where})` : ''}`, fix: e.hint ?? 'check the AWS credentials and the key policy' };
  };
  try {
    if (files.length === 0) {
      const { kmsEncrypt } = await import('../sops/aws-kms.ts');
      await kmsEncrypt({ arn: key.arn, role: '', context: {}, profile: '' }, randomBytes(32), { env }, { field: 'sopsKey.awsKms.arn' });
      passed.push(`AWS KMS key ${key.arn} encrypts with this machine's credentials (no file is encrypted for it yet)`);
      return [];
    }
    const { decryptDocument } = await import('../sops/engine.ts');
    for (const f of files) await decryptDocument(Buffer.from(f.text, 'utf8'), f.format, f.name, { age: [], pgpFiles: [], gpg: false, env });
    passed.push(`AWS KMS key ${key.arn} opens the ${files.length} SOPS file(s) the cluster reaches`);
    return [];
  } catch (e) {
    return [problem(e)];
  }
}
