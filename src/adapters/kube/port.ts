/**
 * The Kubernetes port: what task kinds, status and the flows depend on. Objects travel as plain
 * JSON (no typed models: the client's serializer renames `x-kubernetes-*` keys and turns
 * timestamps into Dates, which breaks comparing what we want with what is there). The one
 * implementation is rest.ts, assembled by `connectKube` (../kube.ts).
 */

export interface KubeMetadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  generation?: number;
  uid?: string;
  creationTimestamp?: string;
  managedFields?: unknown[];
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: KubeMetadata;
  [key: string]: unknown;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
}

export interface ServerVersion {
  gitVersion: string;
  major: number;
  minor: number;
}

/** One SelfSubjectAccessReview question: may the caller `verb` `resource` (in `namespace`)? */
export interface AccessCheck {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
}

export interface AccessResult extends AccessCheck {
  allowed: boolean;
  reason?: string;
}

/** A wait's verdict on the object as it is now (`undefined` when it does not exist). */
export interface WaitState {
  done: boolean;
  /** Why not yet (or what was reached): shown in progress and in the timeout error. */
  reason: string;
  /** The wait cannot succeed any more (e.g. Ready=False with a terminal reason): stop early. */
  failed?: boolean;
}

export interface WaitOptions {
  timeoutMs: number;
  /** What is awaited, for messages: `Available`, `Established`, `Ready at main@sha1:…`. */
  what: string;
  onProgress?: (reason: string) => void;
}

export interface KubeAdapter {
  /** The API server URL and the kubeconfig context in use, for messages. */
  readonly server: string;
  readonly context: string;
  serverVersion(): Promise<ServerVersion>;
  /** `undefined` when the object does not exist, or its kind is not served (yet). */
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
  /** `allNamespaces`: every namespace's objects (else the namespace given, or the context's). */
  list(
    apiVersion: string,
    kind: string,
    opts?: { namespace?: string; allNamespaces?: boolean; labelSelector?: string; fieldSelector?: string },
  ): Promise<KubeObject[]>;
  /**
   * PUT the object as read (its resourceVersion included): the API server stores it again at the
   * storage version. `conflict` when it changed since it was read, `gone` when it was deleted.
   */
  replace(obj: KubeObject): Promise<'replaced' | 'conflict' | 'gone'>;
  /** JSON merge patch of the status subresource (a CRD's `status.storedVersions`). */
  patchStatus(ref: ObjectRef, patch: Record<string, unknown>): Promise<KubeObject>;
  /** Server-side apply with field manager `fluxstrap`, taking ownership of conflicting fields. */
  apply(obj: KubeObject, opts?: { dryRun?: boolean }): Promise<KubeObject>;
  /**
   * Create only (POST): false when the object exists already, so a writer that raced us is
   * seen instead of overwritten.
   */
  create(obj: KubeObject): Promise<boolean>;
  /** JSON merge patch (annotations such as `reconcile.fluxcd.io/requestedAt`). */
  patchMerge(ref: ObjectRef, patch: Record<string, unknown>, opts?: { dryRun?: boolean }): Promise<KubeObject>;
  /** True when something was deleted, false when it was already gone. */
  delete(ref: ObjectRef): Promise<boolean>;
  /** Watch one object until `check` says done; E_TIMEOUT names the object, its conditions and last events. */
  waitFor(ref: ObjectRef, check: (obj: KubeObject | undefined) => WaitState, opts: WaitOptions): Promise<KubeObject>;
  /** The last Events about an object, oldest first, as one-line strings. */
  events(ref: ObjectRef, limit?: number): Promise<string[]>;
  accessReview(checks: AccessCheck[]): Promise<AccessResult[]>;
  /** Does the server serve this kind (its CRD established and discovered)? */
  hasKind(apiVersion: string, kind: string): Promise<boolean>;
}

export function refOf(obj: KubeObject): ObjectRef {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: obj.metadata.name,
    ...(obj.metadata.namespace !== undefined ? { namespace: obj.metadata.namespace } : {}),
  };
}

/** `Deployment flux-system/source-controller`: how objects are named in messages and change targets. */
export function describeRef(ref: ObjectRef): string {
  return `${ref.kind} ${ref.namespace !== undefined ? `${ref.namespace}/` : ''}${ref.name}`;
}
