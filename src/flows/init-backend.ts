import { AZURE_SP_SECRET } from '../cluster/config.ts';
import { FluxstrapError, usageError } from '../core/errors.ts';
import {
  identityDecryption,
  identityPatches,
  identityServiceAccount,
  type CloudIdentity,
  type IdentityOptions,
  type KustomizePatch,
} from '../flux/workload-identity.ts';
import { ARN_HINT, arnProblem, parseArnSpec } from '../sops/aws-kms.ts';
import { parseVaultUri, VaultUriError, vaultStanza, type VaultKeyRef } from '../sops/hc-vault-uri.ts';
import { stanzaName } from '../sops/metadata.ts';
import { HC_VAULT_SECRET } from '../tasks/sops-hcvault-secret.ts';

/**
 * `init --sops-backend`: which key service the cluster's secrets are encrypted for, and what
 * kustomize-controller needs to reach it. age and pgp are the key-file backends init always had;
 * the cloud ones write their key into the .sops.yaml rule and the controller's identity as patches;
 * Vault transit its key into the rule and the token's variable into fluxstrap.yaml, for bootstrap's
 * sops-hcvault Secret.
 */

export const SOPS_BACKENDS = ['age', 'pgp', 'vault', 'aws-kms', 'gcp-kms', 'azure-kv'] as const;
export type SopsBackendName = (typeof SOPS_BACKENDS)[number];
export const AZURE_IDENTITIES = ['workload-identity', 'aad-pod-identity', 'service-principal'] as const;

export interface SopsBackendFlags {
  sopsBackend?: string;
  /** pgp: the cluster's armored private key (sopsKey.pgp.file). */
  pgpKeyFile?: string;
  kmsArn?: string[];
  awsRoleArn?: string;
  gcpKmsKey?: string[];
  gcpServiceAccount?: string;
  azureKvKey?: string[];
  azureIdentity?: string;
  azureClientId?: string;
  azureTenantId?: string;
  aadPodIdentityBinding?: string;
  azureCredentialsSecret?: string;
  /** service-principal: a SOPS file of the repository holding the three values (else bootstrap reads the environment). */
  azureCredentialsFile?: string;
  objectLevelIdentity?: string;
  vaultTransitUri?: string[];
  vaultTokenEnv?: string;
}

export interface SopsBackend {
  name: SopsBackendName;
  /** A key service decrypts, so no age or PGP key is needed (one given as well is a second way in). */
  cloud: boolean;
  ruleKeys: { kms?: string[]; gcpKms?: string[]; azureKeyvault?: string[]; hcVaultTransitUri?: string[] };
  patches: KustomizePatch[];
  /** The flux-system Kustomization's decryption block, when it is not the sops-age Secret. */
  decryption?: Record<string, string>;
  /** Object-level identity: the ServiceAccount manifest carrying the identity. */
  serviceAccount?: string;
  /** The Secret the decryption names instead of sops-age (Vault's token). */
  secretName?: string;
  /** The cluster's `sopsKey` for fluxstrap.yaml (as written there), so that bootstrap and status know the key. */
  sopsKey?: Record<string, Record<string, unknown>>;
}

const GCP_KEY = /^projects\/[^/\s]+\/locations\/[^/\s]+\/keyRings\/[^/\s]+\/cryptoKeys\/[^/\s]+$/;
const AZURE_KEY = /^(https:\/\/[^/\s]+)\/keys\/([0-9A-Za-z-]+)\/([0-9A-Za-z]+)$/;

function checked(values: string[], pattern: RegExp, flag: string, what: string, example: string): string[] {
  for (const v of values) {
    if (!pattern.test(v))
      throw new FluxstrapError('E_USAGE', `not ${what}: ${v.length > 100 ? `${v.slice(0, 97)}...` : v}`, {
        location: { field: flag },
        hint: `e.g. ${example}`,
      });
  }
  return values;
}

const need = (value: string | undefined, flag: string, backend: string): string => {
  if (value === undefined || value === '') throw usageError(`--sops-backend ${backend} needs ${flag}`, `fluxstrap init --help lists the ${backend} options`);
  return value;
};

function needList(values: string[] | undefined, flag: string, backend: string): string[] {
  const list = (values ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  if (list.length === 0) need(undefined, flag, backend);
  return list;
}

function identityFor(name: SopsBackendName, f: SopsBackendFlags): CloudIdentity | undefined {
  if (name === 'aws-kms') {
    if (f.awsRoleArn === undefined) return undefined;
    if (!/^arn:aws[\w-]*:iam::[0-9]+:role\/\S+$/.test(f.awsRoleArn)) {
      throw new FluxstrapError('E_USAGE', `not an IAM role ARN: ${f.awsRoleArn}`, {
        location: { field: '--aws-role-arn' },
        hint: 'arn:aws:iam::111122223333:role/NAME, the role EKS hands kustomize-controller (IRSA)',
      });
    }
    return { type: 'aws-irsa', roleArn: f.awsRoleArn };
  }
  if (name === 'gcp-kms') {
    if (f.gcpServiceAccount === undefined) return undefined;
    if (!/^[a-z][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.]+\.iam\.gserviceaccount\.com$/.test(f.gcpServiceAccount)) {
      throw new FluxstrapError('E_USAGE', `not a Google service account e-mail: ${f.gcpServiceAccount}`, {
        location: { field: '--gcp-service-account' },
        hint: 'NAME@PROJECT.iam.gserviceaccount.com',
      });
    }
    return { type: 'gcp-workload-identity', serviceAccount: f.gcpServiceAccount };
  }
  if (name === 'azure-kv') {
    const how = f.azureIdentity ?? 'workload-identity';
    if (how === 'workload-identity') {
      return {
        type: 'azure-workload-identity',
        clientId: need(f.azureClientId, '--azure-client-id', 'azure-kv'),
        ...(f.azureTenantId ? { tenantId: f.azureTenantId } : {}),
      };
    }
    if (how === 'aad-pod-identity') return { type: 'azure-aad-pod-identity', binding: need(f.aadPodIdentityBinding, '--aad-pod-identity-binding', 'azure-kv') };
    if (how === 'service-principal') return { type: 'azure-service-principal', secretName: f.azureCredentialsSecret ?? AZURE_SP_SECRET };
    throw new FluxstrapError('E_USAGE', `unknown Azure identity ${how}`, {
      location: { field: '--azure-identity' },
      hint: `one of ${AZURE_IDENTITIES.join(', ')}`,
    });
  }
  return undefined;
}

function checkedArns(values: string[]): string[] {
  for (const spec of values) {
    const problem = arnProblem(parseArnSpec(spec));
    if (problem !== undefined) throw new FluxstrapError('E_USAGE', problem, { location: { field: '--kms-arn' }, hint: ARN_HINT });
  }
  return values;
}

/**
 * Transit keys in sops' URI form, which is also how sops names their entries (so that a second
 * init finds them in the rule); all of one Vault, since the cluster gets one token.
 */
function vaultBackend(f: SopsBackendFlags): SopsBackend {
  const refs = needList(f.vaultTransitUri, '--vault-transit-uri', 'vault').map((uri): VaultKeyRef => {
    try {
      return parseVaultUri(uri);
    } catch (e) {
      if (!(e instanceof VaultUriError)) throw e;
      throw new FluxstrapError('E_USAGE', `malformed Vault transit URI: ${e.message}`, {
        location: { field: '--vault-transit-uri' },
        hint: 'write it as https://vault.example.com:8200/v1/<engine>/keys/<name>',
      });
    }
  });
  const address = refs[0]?.address ?? '';
  if (refs.some((r) => r.address !== address)) {
    throw new FluxstrapError('E_USAGE', `the transit keys are on different Vaults (${[...new Set(refs.map((r) => r.address))].join(', ')})`, {
      location: { field: '--vault-transit-uri' },
      hint: 'kustomize-controller gets one Vault token: give keys of one Vault',
    });
  }
  const tokenEnv = need(f.vaultTokenEnv, '--vault-token-env', 'vault');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(tokenEnv)) {
    // Never echoed: it may be the token itself, typed where its variable's name belongs.
    throw new FluxstrapError('E_USAGE', '--vault-token-env takes the name of an environment variable holding the token, not the token', {
      location: { field: '--vault-token-env' },
      hint: 'e.g. export FLUX_VAULT_TOKEN=… (a token allowed to decrypt with the transit key), then --vault-token-env FLUX_VAULT_TOKEN',
    });
  }
  return {
    name: 'vault',
    cloud: true,
    ruleKeys: { hcVaultTransitUri: refs.map((r) => stanzaName(vaultStanza(r))) },
    patches: [],
    secretName: HC_VAULT_SECRET,
    sopsKey: { vault: { address, tokenEnv } },
  };
}

export function sopsBackend(f: SopsBackendFlags): SopsBackend {
  const name = (f.sopsBackend ?? 'age') as SopsBackendName;
  if (!SOPS_BACKENDS.includes(name))
    throw new FluxstrapError('E_USAGE', `unknown SOPS backend ${f.sopsBackend ?? ''}`, {
      location: { field: '--sops-backend' },
      hint: `one of ${SOPS_BACKENDS.join(', ')}`,
    });
  if (f.pgpKeyFile !== undefined && name !== 'pgp')
    throw new FluxstrapError('E_USAGE', `--pgp-key-file is the key of --sops-backend pgp, not ${name}`, {
      location: { field: '--pgp-key-file' },
      hint: 'add --sops-backend pgp',
    });
  if (name === 'age' || name === 'pgp') return { name, cloud: false, ruleKeys: {}, patches: [] };
  if (name === 'vault') return vaultBackend(f);
  const ruleKeys =
    name === 'aws-kms'
      ? { kms: checkedArns(needList(f.kmsArn, '--kms-arn', name)) }
      : name === 'gcp-kms'
        ? {
            gcpKms: checked(
              needList(f.gcpKmsKey, '--gcp-kms-key', name),
              GCP_KEY,
              '--gcp-kms-key',
              'a Cloud KMS key resource id',
              'projects/P/locations/global/keyRings/R/cryptoKeys/K',
            ),
          }
        : {
            azureKeyvault: checked(
              needList(f.azureKvKey, '--azure-kv-key', name),
              AZURE_KEY,
              '--azure-kv-key',
              'a Key Vault key URL with its version',
              'https://VAULT.vault.azure.net/keys/NAME/VERSION',
            ),
          };
  const identity = identityFor(name, f);
  const opts: IdentityOptions = f.objectLevelIdentity ? { objectLevel: { serviceAccountName: f.objectLevelIdentity } } : {};
  if (opts.objectLevel && !identity)
    throw usageError(
      '--object-level-identity needs the identity to give that ServiceAccount',
      'with aws-kms: --aws-role-arn; with gcp-kms: --gcp-service-account; with azure-kv: --azure-client-id',
    );
  if (f.azureCredentialsFile !== undefined && identity?.type !== 'azure-service-principal')
    throw usageError('--azure-credentials-file is for --azure-identity service-principal', 'drop it, or pass --azure-identity service-principal');
  return {
    name,
    cloud: true,
    ruleKeys,
    patches: identity ? identityPatches(identity, opts) : [],
    decryption: identityDecryption(opts),
    sopsKey: sopsKeyEntry(ruleKeys, identity, f),
    ...(identity && opts.objectLevel ? { serviceAccount: identityServiceAccount(identity, opts.objectLevel.serviceAccountName) } : {}),
  };
}

/** The first key of the rule and the identity, as fluxstrap.yaml `sopsKey` spells them. */
function sopsKeyEntry(keys: SopsBackend['ruleKeys'], id: CloudIdentity | undefined, f: SopsBackendFlags): Record<string, Record<string, unknown>> {
  const [arn] = keys.kms ?? [];
  if (arn !== undefined) return { awsKms: { arn: parseArnSpec(arn).arn, ...(id?.type === 'aws-irsa' ? { roleArn: id.roleArn } : {}) } };
  const [gcp] = keys.gcpKms ?? [];
  if (gcp !== undefined) return { gcpKms: { resourceId: gcp, ...(id?.type === 'gcp-workload-identity' ? { serviceAccount: id.serviceAccount } : {}) } };
  const [, vaultUrl, key, version] = AZURE_KEY.exec(keys.azureKeyvault?.[0] ?? '') ?? [];
  return {
    azureKv: {
      vaultUrl,
      key,
      version,
      ...(id?.type === 'azure-workload-identity'
        ? { workloadIdentity: { clientId: id.clientId, ...(id.tenantId !== undefined ? { tenantId: id.tenantId } : {}) } }
        : {}),
      ...(id?.type === 'azure-aad-pod-identity' ? { aadPodIdentity: { binding: id.binding } } : {}),
      ...(id?.type === 'azure-service-principal'
        ? { servicePrincipal: { secretName: id.secretName, ...(f.azureCredentialsFile !== undefined ? { file: f.azureCredentialsFile } : {}) } }
        : {}),
    },
  };
}
