import { stringify } from 'yaml';

/**
 * How kustomize-controller gets a cloud identity for SOPS key services, as the Flux SOPS guide
 * describes it by hand: each choice becomes kustomize patches for `flux-system/kustomization.yaml`
 * (where `flux bootstrap` never overwrites them) plus the `decryption` block the flux-system
 * Kustomization needs. Pure: the task that writes them is tasks/workload-identity-patch.ts.
 */

export type CloudIdentity =
  /** IRSA: the controller's ServiceAccount names the IAM role EKS hands it. */
  | { type: 'aws-irsa'; roleArn: string }
  /** GKE Workload Identity: the controller's ServiceAccount names the Google service account. */
  | { type: 'gcp-workload-identity'; serviceAccount: string }
  /** Azure Workload Identity: client id on the ServiceAccount, the `use` label on the pods. */
  | { type: 'azure-workload-identity'; clientId: string; tenantId?: string }
  /** AAD pod identity (deprecated by Azure, still in the guide): a binding label and MSI auth. */
  | { type: 'azure-aad-pod-identity'; binding: string }
  /** Service Principal: the controller reads AZURE_TENANT_ID/CLIENT_ID/CLIENT_SECRET from a Secret. */
  | { type: 'azure-service-principal'; secretName: string };

export interface IdentityOptions {
  /**
   * Flux's object-level workload identity (Flux ≥ 2.6, feature gate ObjectLevelWorkloadIdentity):
   * the flux-system Kustomization decrypts as this ServiceAccount of flux-system, which carries
   * the identity instead of the controller's own.
   */
  objectLevel?: { serviceAccountName: string };
}

export interface KustomizePatch {
  target: { kind: string; name: string; namespace?: string };
  patch: string;
}

const CONTROLLER = 'kustomize-controller';
export const OBJECT_LEVEL_GATE = '--feature-gates=ObjectLevelWorkloadIdentity=true';

const ops = (list: { op: string; path: string; value: unknown }[]): string => stringify(list);
/** A JSON pointer segment: `/` and `~` in annotation and label names are escaped (RFC 6901). */
const seg = (s: string): string => s.replaceAll('~', '~0').replaceAll('/', '~1');

function serviceAccountAnnotations(annotations: Record<string, string>, name: string): KustomizePatch {
  return {
    target: { kind: 'ServiceAccount', name },
    patch: stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, annotations } }),
  };
}

function podLabels(labels: Record<string, string>): KustomizePatch {
  return {
    target: { kind: 'Deployment', name: CONTROLLER },
    patch: ops(Object.entries(labels).map(([k, v]) => ({ op: 'add', path: `/spec/template/metadata/labels/${seg(k)}`, value: v }))),
  };
}

/** The annotations a ServiceAccount needs to carry the identity, when the identity lives on one. */
export function identityAnnotations(id: CloudIdentity): Record<string, string> | undefined {
  switch (id.type) {
    case 'aws-irsa':
      return { 'eks.amazonaws.com/role-arn': id.roleArn };
    case 'gcp-workload-identity':
      return { 'iam.gke.io/gcp-service-account': id.serviceAccount };
    case 'azure-workload-identity':
      return { 'azure.workload.identity/client-id': id.clientId, ...(id.tenantId ? { 'azure.workload.identity/tenant-id': id.tenantId } : {}) };
    default:
      return undefined;
  }
}

/**
 * The patches, in a stable order. With object-level identity the annotations go on the named
 * ServiceAccount (a manifest the caller writes, see `identityServiceAccount`), and the controller
 * only gets the feature gate; pod-level identities (labels, env) stay on the controller.
 */
export function identityPatches(id: CloudIdentity, opts: IdentityOptions = {}): KustomizePatch[] {
  const out: KustomizePatch[] = [];
  const annotations = identityAnnotations(id);
  if (annotations && !opts.objectLevel) out.push(serviceAccountAnnotations(annotations, CONTROLLER));
  if (id.type === 'azure-workload-identity') out.push(podLabels({ 'azure.workload.identity/use': 'true' }));
  if (id.type === 'azure-aad-pod-identity') {
    out.push(podLabels({ aadpodidbinding: id.binding }));
    out.push({
      target: { kind: 'Deployment', name: CONTROLLER },
      patch: ops([{ op: 'add', path: '/spec/template/spec/containers/0/env/-', value: { name: 'AZURE_AUTH_METHOD', value: 'msi' } }]),
    });
  }
  if (id.type === 'azure-service-principal') {
    out.push({
      target: { kind: 'Deployment', name: CONTROLLER },
      patch: ops([{ op: 'add', path: '/spec/template/spec/containers/0/envFrom', value: [{ secretRef: { name: id.secretName } }] }]),
    });
  }
  if (opts.objectLevel) {
    out.push({
      target: { kind: 'Deployment', name: CONTROLLER },
      patch: ops([{ op: 'add', path: '/spec/template/spec/containers/0/args/-', value: OBJECT_LEVEL_GATE }]),
    });
  }
  return out;
}

/** The ServiceAccount object-level identity decrypts as, with the identity's annotations. */
export function identityServiceAccount(id: CloudIdentity, name: string): string {
  return stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: 'flux-system', annotations: identityAnnotations(id) ?? {} } });
}

/** The flux-system Kustomization's `decryption`: no Secret for a cloud identity, the ServiceAccount at object level. */
export function identityDecryption(opts: IdentityOptions = {}): Record<string, string> {
  return { provider: 'sops', ...(opts.objectLevel ? { serviceAccountName: opts.objectLevel.serviceAccountName } : {}) };
}

interface BuiltObject {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: unknown;
}

interface ControllerPod {
  template?: {
    metadata?: { labels?: Record<string, string> };
    spec?: { containers?: { env?: { name?: string; value?: string }[]; envFrom?: { secretRef?: { name?: string } }[] }[] };
  };
}

/**
 * What a built flux-system folder lacks of an identity's wiring, one line each (none: wired).
 * `serviceAccountName` is the sync Kustomization's decryption ServiceAccount (object level), which
 * then carries the annotations instead of the controller's own.
 */
export function missingWiring(id: CloudIdentity, objects: readonly BuiltObject[], serviceAccountName?: string): string[] {
  const out: string[] = [];
  const annotations = identityAnnotations(id);
  if (annotations) {
    const name = serviceAccountName ?? CONTROLLER;
    const sa = objects.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === name);
    for (const [k, v] of Object.entries(annotations)) {
      if (sa?.metadata.annotations?.[k] !== v) out.push(`ServiceAccount ${name} lacks the annotation ${k}: ${v}`);
    }
  }
  const pod = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === CONTROLLER)?.spec as ControllerPod | undefined;
  const labels = pod?.template?.metadata?.labels ?? {};
  const containers = pod?.template?.spec?.containers ?? [];
  const label = (k: string, v: string): void => {
    if (labels[k] !== v) out.push(`Deployment ${CONTROLLER} lacks the pod label ${k}: ${v}`);
  };
  if (id.type === 'azure-workload-identity') label('azure.workload.identity/use', 'true');
  if (id.type === 'azure-aad-pod-identity') {
    label('aadpodidbinding', id.binding);
    if (!containers.some((c) => c.env?.some((e) => e.name === 'AZURE_AUTH_METHOD' && e.value === 'msi')))
      out.push(`Deployment ${CONTROLLER} lacks the env AZURE_AUTH_METHOD=msi`);
  }
  if (id.type === 'azure-service-principal' && !containers.some((c) => c.envFrom?.some((e) => e.secretRef?.name === id.secretName))) {
    out.push(`Deployment ${CONTROLLER} lacks envFrom the Secret ${id.secretName}`);
  }
  return out;
}
