import http from 'node:http';
import https from 'node:https';
import { FluxstrapError } from '../core/errors.ts';
import { getOwn, setOwn } from '../core/own.ts';
import { loadKubeContext } from './kubeconfig.ts';
import type { Delegated, KubeconfigOptions, KubeContext } from './kubeconfig.ts';

/**
 * The Kubernetes edge. Objects travel as plain JSON (no typed models: the client's serializer
 * renames `x-kubernetes-*` keys and turns timestamps into Dates, which breaks comparing what we
 * want with what is there). kubeconfig.ts reads the kubeconfig as kubectl does; contexts with a
 * token, a client certificate or basic auth are served over `node:https` with one keep-alive pool
 * (one TLS context, few handshakes); only exec plugins, auth providers and proxies need
 * `@kubernetes/client-node`, which costs ~0.4 s to import and is therefore loaded only then.
 */

const FIELD_MANAGER = 'fluxstrap';

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
  list(apiVersion: string, kind: string, opts?: { namespace?: string; allNamespaces?: boolean; labelSelector?: string; fieldSelector?: string }): Promise<KubeObject[]>;
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

export interface KubeOptions extends KubeconfigOptions {
  /** Per-request timeout, so an unreachable API fails instead of hanging. */
  requestTimeoutMs?: number;
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

// ---------------------------------------------------------------------------------------------
// Pure status helpers (kstatus-like), shared by the waits and by tasks' observe/plan.

function conditionsOf(obj: KubeObject | undefined): Condition[] {
  const status = obj?.status as { conditions?: unknown } | undefined;
  return Array.isArray(status?.conditions) ? (status.conditions as Condition[]) : [];
}

export function conditionOf(obj: KubeObject | undefined, type: string): Condition | undefined {
  return conditionsOf(obj).find((c) => c.type === type);
}

export function formatConditions(obj: KubeObject | undefined): string {
  const conds = conditionsOf(obj);
  if (conds.length === 0) return 'no conditions';
  return conds.map((c) => `${c.type}=${c.status}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}`).join('; ');
}

function statusField<T>(obj: KubeObject | undefined, field: string): T | undefined {
  return (obj?.status as Record<string, unknown> | undefined)?.[field] as T | undefined;
}

/** kstatus "Current" for a Deployment: observed, all replicas updated and available, Available=True. */
export function deploymentAvailable(obj: KubeObject | undefined): WaitState {
  if (!obj) return { done: false, reason: 'does not exist' };
  const want = ((obj.spec as { replicas?: number } | undefined)?.replicas) ?? 1;
  const observed = statusField<number>(obj, 'observedGeneration');
  if (observed === undefined || observed < (obj.metadata.generation ?? 0)) return { done: false, reason: 'not yet observed by the controller manager' };
  const updated = statusField<number>(obj, 'updatedReplicas') ?? 0;
  const available = statusField<number>(obj, 'availableReplicas') ?? 0;
  const progressing = conditionOf(obj, 'Progressing');
  if (progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded') {
    return { done: false, failed: true, reason: `progress deadline exceeded: ${progressing.message ?? ''}` };
  }
  if (updated < want || available < want) return { done: false, reason: `${available}/${want} replicas available, ${updated}/${want} updated` };
  if (conditionOf(obj, 'Available')?.status !== 'True') return { done: false, reason: 'condition Available is not True' };
  return { done: true, reason: 'available' };
}

export function crdEstablished(obj: KubeObject | undefined): WaitState {
  if (!obj) return { done: false, reason: 'does not exist' };
  if (conditionOf(obj, 'Established')?.status === 'True') return { done: true, reason: 'established' };
  const names = conditionOf(obj, 'NamesAccepted');
  if (names?.status === 'False') return { done: false, failed: true, reason: `names not accepted: ${names.message ?? ''}` };
  return { done: false, reason: 'not established yet' };
}

export interface FluxReadyOptions {
  /** `status.lastHandledReconcileAt` before our reconcile request: a different value means handled. */
  handledBefore?: string | undefined;
  /** The revision the controller last tried (Kustomization `lastAttemptedRevision`). */
  attemptedOf?: (obj: KubeObject) => string | undefined;
}

/**
 * A Flux object has reached `revision` when it has observed its current generation, `revisionOf`
 * (artifact revision for sources, lastAppliedRevision for Kustomizations) equals it, and it does
 * not report Ready=False. Ready=False after the controller handled a reconcile request (and,
 * when known, attempted this very revision) is final for this wait: Flux would only retry the
 * same thing. Comparing with the value before the request, not with our own token, keeps two
 * concurrent bootstraps from waiting for each other's request.
 */
export function fluxReadyAt(revision: string, revisionOf: (obj: KubeObject) => string | undefined, opts: FluxReadyOptions = {}) {
  return (obj: KubeObject | undefined): WaitState => {
    if (!obj) return { done: false, reason: 'does not exist' };
    if ((obj.spec as { suspend?: boolean } | undefined)?.suspend === true) {
      return { done: false, failed: true, reason: 'is suspended; resume it with `flux resume`' };
    }
    const observed = statusField<number>(obj, 'observedGeneration');
    if (observed === undefined || observed < (obj.metadata.generation ?? 0)) return { done: false, reason: 'not yet reconciled by its controller' };
    const ready = conditionOf(obj, 'Ready');
    const at = revisionOf(obj);
    // Flux sets Ready=Unknown (Progressing) at the start of every reconcile, including the ones
    // our own apply triggers; the revision only advances on success, so it is the goal.
    if (at === revision && ready?.status !== 'False') return { done: true, reason: `at ${revision}` };
    const handled = 'handledBefore' in opts && statusField<string>(obj, 'lastHandledReconcileAt') !== opts.handledBefore;
    if (ready?.status === 'False' && handled && (!opts.attemptedOf || opts.attemptedOf(obj) === revision)) {
      return { done: false, failed: true, reason: `not ready: ${ready.reason ?? ''}: ${ready.message ?? ''}` };
    }
    return { done: false, reason: `${ready ? `Ready=${ready.status}${ready.message ? ` (${ready.message})` : ''}` : 'no Ready condition'}, at ${at ?? 'no revision'}` };
  };
}

export const lastHandledReconcileAt = (obj: KubeObject | undefined): string | undefined => statusField<string>(obj, 'lastHandledReconcileAt');

export const lastAttemptedRevision = (obj: KubeObject): string | undefined => statusField<string>(obj, 'lastAttemptedRevision');

export const artifactRevision = (obj: KubeObject): string | undefined =>
  (statusField<{ revision?: string }>(obj, 'artifact'))?.revision;

export const lastAppliedRevision = (obj: KubeObject): string | undefined => statusField<string>(obj, 'lastAppliedRevision');

// ---------------------------------------------------------------------------------------------
// Errors: by HTTP status code and errno, never by matching message text.

interface ApiStatus {
  kind?: string;
  reason?: string;
  message?: string;
  details?: { causes?: { field?: string; reason?: string }[] };
}

class HttpError extends Error {
  readonly status: number;
  readonly body: ApiStatus | undefined;
  constructor(status: number, body: ApiStatus | undefined) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID']);

function errnoOf(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if ((cur as { name?: unknown }).name === 'TimeoutError') return 'ETIMEDOUT';
  }
  return undefined;
}

/**
 * Failures a wait outlives: the API server restarting (connection refused or reset, 5xx while
 * it comes back) or throttling. A wait keeps watching through them until its deadline.
 */
const TRANSIENT_STATUS = new Set([429, 500, 502, 503, 504]);
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const transientErrors = new WeakSet<FluxstrapError>();

function isTransient(e: unknown): boolean {
  if (e instanceof HttpError) return TRANSIENT_STATUS.has(e.status);
  const errno = errnoOf(e);
  return errno !== undefined && TRANSIENT_CODES.has(errno);
}

/**
 * Map a failed request to the taxonomy. Secret objects get the status reason and field names
 * only: an apiserver message may quote what was sent.
 */
function kubeError(e: unknown, doing: string, server: string, sensitive = false): FluxstrapError {
  if (e instanceof FluxstrapError) return e;
  const mapped = mapKubeError(e, doing, server, sensitive);
  if (isTransient(e)) transientErrors.add(mapped);
  return mapped;
}

function mapKubeError(e: unknown, doing: string, server: string, sensitive: boolean): FluxstrapError {
  if (e instanceof HttpError) {
    const b = e.body;
    const fields = (b?.details?.causes ?? []).map((c) => c.field).filter((f): f is string => typeof f === 'string');
    const detail = sensitive ? [b?.reason, fields.length ? `fields: ${fields.join(', ')}` : undefined].filter(Boolean).join('; ') : (b?.message ?? b?.reason ?? '');
    const message = `cannot ${doing}: HTTP ${e.status}${detail ? `: ${detail}` : ''}`;
    if (e.status === 404) return new FluxstrapError('E_NOT_FOUND', message);
    const hint =
      e.status === 401 ? 'the credentials of the kube context were refused; log in again or pick another --context'
      : e.status === 403 ? 'the kube context lacks a permission; use a context with cluster-admin rights for bootstrap'
      : e.status === 409 ? 'someone else changed the object at the same time; run again'
      : undefined;
    return new FluxstrapError('E_KUBE', message, hint ? { hint } : {});
  }
  const errno = errnoOf(e);
  if (errno !== undefined && (NETWORK_CODES.has(errno) || errno.startsWith('UND_ERR') || errno.startsWith('ERR_TLS'))) {
    return new FluxstrapError('E_KUBE', `cannot ${doing}: the Kubernetes API at ${server} is unreachable (${errno})`, {
      hint: 'check that the cluster is running and that --context/--kubeconfig point at it',
    });
  }
  // A fetch failure wraps the reason (e.g. "bad port") in its cause.
  let reason: unknown = e;
  while ((reason as { cause?: unknown } | undefined)?.cause instanceof Error) reason = (reason as { cause: Error }).cause;
  const detail = errno ?? (reason instanceof Error ? reason.message : 'unknown error');
  return new FluxstrapError('E_KUBE', `cannot ${doing}: ${detail}`, sensitive ? {} : { cause: e });
}

// ---------------------------------------------------------------------------------------------
// The implementation.

interface ResourceInfo {
  plural: string;
  namespaced: boolean;
}

const SECRET_KINDS = new Set(['Secret']);

function parseStatus(text: string): ApiStatus | undefined {
  try {
    return JSON.parse(text) as ApiStatus;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Load the kubeconfig and return an adapter bound to one context. */
/** `env` is the command's environment ($KUBECONFIG), handed down; without it only `opts` name the kubeconfig. */
export async function connectKube(opts: KubeOptions = {}, env: NodeJS.ProcessEnv = {}): Promise<KubeAdapter> {
  const timeoutMs = opts.requestTimeoutMs ?? 30_000;
  const kc = loadKubeContext(opts, env);
  const transport = kc.delegate ? await clientNodeTransport(kc, kc.delegate) : nativeTransport(kc);
  return new RestKube(transport, kc, timeoutMs);
}

interface HttpResponse {
  status: number;
  body: AsyncIterable<Uint8Array | string>;
  text(): Promise<string>;
}

/** One HTTP exchange with the API server, authenticated. */
type Transport = (method: string, url: URL, headers: Record<string, string>, body: string | undefined, signal: AbortSignal) => Promise<HttpResponse>;

/** The context's own headers (Authorization, Impersonate-*), a repeated name as a list, as node:http sends it. */
function contextHeaders(kc: KubeContext): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const authorization = kc.authorization();
  if (authorization !== undefined) out.Authorization = authorization;
  for (const [name, value] of kc.impersonation) {
    const had = getOwn(out, name) as string | string[] | undefined;
    setOwn(out, name, had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value]);
  }
  return out;
}

/** Tokens, client certificates, basic auth: served over `node:https` with one keep-alive pool. */
function nativeTransport(kc: KubeContext): Transport {
  const tls: https.AgentOptions = {
    keepAlive: true,
    // A handful of connections serve the parallel reads; each new one costs a TLS handshake.
    maxSockets: 6,
    rejectUnauthorized: !kc.tls.insecure,
    ...(kc.tls.serverName !== undefined ? { servername: kc.tls.serverName } : {}),
    ...(kc.tls.ca ? { ca: kc.tls.ca } : {}),
    ...(kc.tls.cert ? { cert: kc.tls.cert } : {}),
    ...(kc.tls.key ? { key: kc.tls.key } : {}),
  };
  const plain = kc.server.startsWith('http:');
  const agent = plain ? new http.Agent({ keepAlive: true, maxSockets: 6 }) : new https.Agent(tls);
  return (method, url, headers, body, signal) =>
    new Promise((resolvePromise, reject) => {
      const req = (plain ? http : https).request(url, {
        method,
        agent,
        signal,
        headers: { ...headers, ...contextHeaders(kc), ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) },
      }, (res) => {
        resolvePromise({
          status: res.statusCode ?? 0,
          body: res,
          text: async () => {
            const chunks: Buffer[] = [];
            for await (const c of res) chunks.push(c as Buffer);
            return Buffer.concat(chunks).toString('utf8');
          },
        });
      });
      req.on('error', reject);
      req.end(body);
    });
}

/**
 * Exec plugins, auth providers and proxies: `@kubernetes/client-node` authenticates and connects,
 * given the context kubeconfig.ts resolved (so merging, paths and checks are the same); the
 * context's static credentials and impersonation are added here, since the client sends only `as`.
 */
async function clientNodeTransport(kc: KubeContext, delegate: Delegated): Promise<Transport> {
  // The client's TLS dispatcher belongs to its own undici, which Node's built-in fetch rejects;
  // use that undici's fetch, as the client itself does.
  const [k8s, undici] = await Promise.all([import('@kubernetes/client-node'), import('undici')]);
  const config = new k8s.KubeConfig();
  const b64 = (b: Buffer | undefined) => b?.toString('base64');
  config.loadFromOptions({
    clusters: [{
      name: 'cluster',
      server: kc.server,
      skipTLSVerify: kc.tls.insecure,
      ...(kc.tls.ca ? { caData: b64(kc.tls.ca) } : {}),
      ...(kc.tls.serverName !== undefined ? { tlsServerName: kc.tls.serverName } : {}),
      ...(delegate.proxyUrl !== undefined ? { proxyUrl: delegate.proxyUrl } : {}),
    }],
    users: [{
      name: 'user',
      ...(kc.tls.cert ? { certData: b64(kc.tls.cert) } : {}),
      ...(kc.tls.key ? { keyData: b64(kc.tls.key) } : {}),
      ...(delegate.exec ? { exec: delegate.exec } : {}),
      ...(delegate.authProvider ? { authProvider: delegate.authProvider } : {}),
    }],
    contexts: [{ name: kc.context, cluster: 'cluster', user: 'user', namespace: kc.namespace }],
    currentContext: kc.context,
  });
  return async (method, url, headers, body, signal) => {
    // The client's RequestContext carries auth headers (exec plugins) and the TLS dispatcher.
    const ctx = new k8s.RequestContext(url.toString(), method as never);
    try {
      await config.applySecurityAuthentication(ctx);
    } catch (e) {
      throw new FluxstrapError('E_KUBE', `the ${delegate.reason} of kube context "${kc.context}" failed: ${(e instanceof Error ? e.message : String(e)).trim().split('\n')[0] ?? ''}`, {
        location: { file: kc.file },
        ...(delegate.exec?.installHint !== undefined ? { hint: delegate.exec.installHint } : {}),
      });
    }
    const all = new undici.Headers({ ...ctx.getHeaders(), ...headers, ...(kc.disableCompression ? { 'Accept-Encoding': 'identity' } : {}) });
    for (const [name, value] of Object.entries(contextHeaders(kc))) {
      all.delete(name);
      for (const v of Array.isArray(value) ? value : [value]) all.append(name, v);
    }
    const res = await undici.fetch(url, { method, headers: all, signal, ...(body !== undefined ? { body } : {}), dispatcher: ctx.getDispatcher() as never });
    return { status: res.status, body: (res.body ?? []) as AsyncIterable<Uint8Array>, text: () => res.text() };
  };
}

interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

class RestKube implements KubeAdapter {
  readonly server: string;
  readonly context: string;
  readonly #namespace: string;
  readonly #transport: Transport;
  readonly #timeoutMs: number;
  readonly #discovery = new Map<string, Promise<Map<string, ResourceInfo>>>();

  constructor(transport: Transport, kc: KubeContext, timeoutMs: number) {
    this.#transport = transport;
    this.server = kc.server;
    this.context = kc.context;
    this.#namespace = kc.namespace;
    this.#timeoutMs = timeoutMs;
  }

  #request(method: string, path: string, opts: RequestOptions = {}): Promise<HttpResponse> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (opts.body !== undefined) headers['Content-Type'] = opts.contentType ?? 'application/json';
    return this.#transport(method, url, headers, opts.body !== undefined ? JSON.stringify(opts.body) : undefined, opts.signal ?? AbortSignal.timeout(this.#timeoutMs));
  }

  async #json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.#request(method, path, opts);
    const text = await res.text();
    if (res.status < 200 || res.status > 299) throw new HttpError(res.status, parseStatus(text));
    return JSON.parse(text) as T;
  }

  async #call<T>(doing: string, sensitive: boolean, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw kubeError(e, doing, this.server, sensitive);
    }
  }

  #discover(apiVersion: string, fresh: boolean): Promise<Map<string, ResourceInfo>> {
    const cached = this.#discovery.get(apiVersion);
    if (cached && !fresh) return cached;
    const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const p = this.#json<{ resources: { name: string; kind: string; namespaced: boolean }[] }>('GET', path).then(
      (list) => new Map(list.resources.filter((r) => !r.name.includes('/')).map((r) => [r.kind, { plural: r.name, namespaced: r.namespaced }])),
    );
    this.#discovery.set(apiVersion, p);
    p.catch(() => this.#discovery.delete(apiVersion));
    return p;
  }

  async #resource(apiVersion: string, kind: string): Promise<ResourceInfo | undefined> {
    try {
      const found = (await this.#discover(apiVersion, false)).get(kind);
      // A kind missing from a cached list may belong to a CRD established since: ask once more.
      return found ?? (await this.#discover(apiVersion, true)).get(kind);
    } catch (e) {
      if (e instanceof HttpError && e.status === 404) return undefined;
      throw e;
    }
  }

  async #path(ref: { apiVersion: string; kind: string; namespace?: string | undefined; name?: string; allNamespaces?: boolean }): Promise<string> {
    const info = await this.#resource(ref.apiVersion, ref.kind);
    if (!info) {
      throw new FluxstrapError('E_NOT_FOUND', `the API server does not serve ${ref.kind} (${ref.apiVersion})`, {
        hint: 'install its CustomResourceDefinition first (the Flux components task does) and wait until it is Established',
      });
    }
    const base = ref.apiVersion.includes('/') ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`;
    // As kubectl: an object without a namespace goes to the context's.
    const ns = info.namespaced && ref.allNamespaces !== true ? `/namespaces/${encodeURIComponent(ref.namespace ?? this.#namespace)}` : '';
    return `${base}${ns}/${info.plural}${ref.name !== undefined ? `/${encodeURIComponent(ref.name)}` : ''}`;
  }

  serverVersion(): Promise<ServerVersion> {
    return this.#call('read the server version', false, async () => {
      const v = await this.#json<{ gitVersion: string; major: string; minor: string }>('GET', '/version');
      return { gitVersion: v.gitVersion, major: Number.parseInt(v.major, 10), minor: Number.parseInt(v.minor, 10) };
    });
  }

  hasKind(apiVersion: string, kind: string): Promise<boolean> {
    return this.#call(`discover ${kind} (${apiVersion})`, false, async () => (await this.#resource(apiVersion, kind)) !== undefined);
  }

  get(ref: ObjectRef): Promise<KubeObject | undefined> {
    return this.#call(`read ${describeRef(ref)}`, SECRET_KINDS.has(ref.kind), async () => {
      // An object of a kind the server does not serve (its CRD not installed yet) does not exist.
      if (!(await this.#resource(ref.apiVersion, ref.kind))) return undefined;
      try {
        return await this.#json<KubeObject>('GET', await this.#path(ref));
      } catch (e) {
        if (e instanceof HttpError && e.status === 404) return undefined;
        throw e;
      }
    });
  }

  list(apiVersion: string, kind: string, opts: { namespace?: string; allNamespaces?: boolean; labelSelector?: string; fieldSelector?: string } = {}): Promise<KubeObject[]> {
    return this.#call(`list ${kind}`, SECRET_KINDS.has(kind), async () => {
      const path = await this.#path({ apiVersion, kind, namespace: opts.namespace, allNamespaces: opts.allNamespaces === true });
      const list = await this.#json<{ items: KubeObject[] }>('GET', path, {
        query: { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector },
      });
      // Items of a list carry no apiVersion/kind; give them back so they can be named and compared.
      return list.items.map((item) => ({ ...item, apiVersion, kind }));
    });
  }

  apply(obj: KubeObject, opts: { dryRun?: boolean } = {}): Promise<KubeObject> {
    return this.#call(`apply ${describeRef(refOf(obj))}`, SECRET_KINDS.has(obj.kind), async () =>
      this.#json<KubeObject>('PATCH', await this.#path(refOf(obj)), {
        query: { fieldManager: FIELD_MANAGER, force: 'true', dryRun: opts.dryRun ? 'All' : undefined },
        body: obj,
        contentType: 'application/apply-patch+yaml',
      }),
    );
  }

  create(obj: KubeObject): Promise<boolean> {
    const ref = refOf(obj);
    return this.#call(`create ${describeRef(ref)}`, SECRET_KINDS.has(obj.kind), async () => {
      try {
        await this.#json('POST', await this.#path({ apiVersion: ref.apiVersion, kind: ref.kind, namespace: ref.namespace }), { query: { fieldManager: FIELD_MANAGER }, body: obj });
        return true;
      } catch (e) {
        if (e instanceof HttpError && e.status === 409 && e.body?.reason === 'AlreadyExists') return false;
        throw e;
      }
    });
  }

  patchMerge(ref: ObjectRef, patch: Record<string, unknown>, opts: { dryRun?: boolean } = {}): Promise<KubeObject> {
    return this.#call(`patch ${describeRef(ref)}`, SECRET_KINDS.has(ref.kind), async () =>
      this.#json<KubeObject>('PATCH', await this.#path(ref), {
        query: { fieldManager: FIELD_MANAGER, dryRun: opts.dryRun ? 'All' : undefined },
        body: patch,
        contentType: 'application/merge-patch+json',
      }),
    );
  }

  replace(obj: KubeObject): Promise<'replaced' | 'conflict' | 'gone'> {
    return this.#call(`replace ${describeRef(refOf(obj))}`, SECRET_KINDS.has(obj.kind), async () => {
      try {
        await this.#json('PUT', await this.#path(refOf(obj)), { query: { fieldManager: FIELD_MANAGER }, body: obj });
        return 'replaced';
      } catch (e) {
        if (e instanceof HttpError && e.status === 409) return 'conflict';
        if (e instanceof HttpError && e.status === 404) return 'gone';
        throw e;
      }
    });
  }

  patchStatus(ref: ObjectRef, patch: Record<string, unknown>): Promise<KubeObject> {
    return this.#call(`patch the status of ${describeRef(ref)}`, SECRET_KINDS.has(ref.kind), async () =>
      this.#json<KubeObject>('PATCH', `${await this.#path(ref)}/status`, {
        query: { fieldManager: FIELD_MANAGER },
        body: patch,
        contentType: 'application/merge-patch+json',
      }),
    );
  }

  delete(ref: ObjectRef): Promise<boolean> {
    return this.#call(`delete ${describeRef(ref)}`, SECRET_KINDS.has(ref.kind), async () => {
      try {
        await this.#json('DELETE', await this.#path(ref));
        return true;
      } catch (e) {
        if (e instanceof HttpError && e.status === 404) return false;
        throw e;
      }
    });
  }

  events(ref: ObjectRef, limit = 5): Promise<string[]> {
    return this.#call(`list events of ${describeRef(ref)}`, false, async () => {
      const list = await this.#json<{ items: { type?: string; reason?: string; message?: string; lastTimestamp?: string; eventTime?: string; count?: number }[] }>(
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(ref.namespace ?? 'default')}/events`,
        { query: { fieldSelector: `involvedObject.name=${ref.name},involvedObject.kind=${ref.kind}` } },
      );
      const at = (e: { lastTimestamp?: string; eventTime?: string }) => e.lastTimestamp ?? e.eventTime ?? '';
      return list.items
        .sort((a, b) => at(a).localeCompare(at(b)))
        .slice(-limit)
        .map((e) => `${at(e)} ${e.type ?? ''} ${e.reason ?? ''}: ${e.message ?? ''}`.trim());
    });
  }

  accessReview(checks: AccessCheck[]): Promise<AccessResult[]> {
    return this.#call('ask the API server what the kube context may do', false, () =>
      Promise.all(
        checks.map(async (c) => {
          const review = await this.#json<{ status?: { allowed?: boolean; reason?: string } }>(
            'POST',
            '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
            {
              body: {
                apiVersion: 'authorization.k8s.io/v1',
                kind: 'SelfSubjectAccessReview',
                spec: { resourceAttributes: { verb: c.verb, group: c.group, resource: c.resource, ...(c.namespace !== undefined ? { namespace: c.namespace } : {}) } },
              },
            },
          );
          return { ...c, allowed: review.status?.allowed === true, ...(review.status?.reason ? { reason: review.status.reason } : {}) };
        }),
      ),
    );
  }

  async waitFor(ref: ObjectRef, check: (obj: KubeObject | undefined) => WaitState, opts: WaitOptions): Promise<KubeObject> {
    const deadline = Date.now() + opts.timeoutMs;
    let last: KubeObject | undefined;
    let state: WaitState = { done: false, reason: 'not checked yet' };
    const sensitive = SECRET_KINDS.has(ref.kind);
    const collection = await this.#call(`wait for ${describeRef(ref)}`, sensitive, () => this.#path({ apiVersion: ref.apiVersion, kind: ref.kind, namespace: ref.namespace }));
    let unavailable: string | undefined;
    while (Date.now() < deadline) {
      let outcome: 'matched' | 'ended' | 'gone';
      try {
        last = await this.get(ref);
        unavailable = undefined;
        state = check(last);
        opts.onProgress?.(state.reason);
        if (state.done && last) return last;
        if (state.failed) break;
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        outcome = await this.#call(`watch ${describeRef(ref)}`, sensitive, () =>
          this.#watchUntil(collection, ref, last?.metadata.resourceVersion, Math.min(remaining, 60_000), (obj) => {
            last = obj;
            state = check(obj);
            opts.onProgress?.(state.reason);
            return state.done || state.failed === true;
          }),
        );
      } catch (e) {
        // A restarting API server ends the watch and refuses reads for a while; the object's
        // state is still the controller's to reach, so read and watch again until the deadline.
        if (!(e instanceof FluxstrapError && transientErrors.has(e))) throw e;
        unavailable = e.message;
        opts.onProgress?.(`${e.message}; retrying`);
        await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
        continue;
      }
      if (outcome === 'matched') {
        if (state.done && last) return last;
        break;
      }
      // The watch ended without a verdict (server timeout, expired resourceVersion): read again.
      if (outcome === 'gone') await sleep(200);
    }
    if (unavailable !== undefined) {
      throw new FluxstrapError('E_KUBE', `timed out after ${Math.round(opts.timeoutMs / 1000)}s waiting for ${describeRef(ref)} to be ${opts.what}: ${unavailable}`, {
        hint: 'check that the cluster is running and that --context/--kubeconfig point at it',
      });
    }
    const events = await this.events(ref).catch(() => []);
    throw new FluxstrapError(
      'E_TIMEOUT',
      `${state.failed ? 'gave up' : `timed out after ${Math.round(opts.timeoutMs / 1000)}s`} waiting for ${describeRef(ref)} to be ${opts.what}: ${state.reason}; conditions: ${formatConditions(last)}`,
      { hint: events.length > 0 ? `last events: ${events.join(' | ')}` : 'no events recorded for it; check the controller logs' },
    );
  }

  /**
   * Stream a watch of one object (by field selector) until `stop` returns true ('matched'), the
   * window ends ('ended'), or the server says the resourceVersion is too old ('gone').
   */
  async #watchUntil(collection: string, ref: ObjectRef, resourceVersion: string | undefined, windowMs: number,
    stop: (obj: KubeObject | undefined) => boolean): Promise<'matched' | 'ended' | 'gone'> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), windowMs + 5_000);
    try {
      const res = await this.#request('GET', collection, {
        query: {
          watch: 'true',
          fieldSelector: `metadata.name=${ref.name}`,
          resourceVersion,
          allowWatchBookmarks: 'true',
          timeoutSeconds: String(Math.max(1, Math.ceil(windowMs / 1000))),
        },
        signal: controller.signal,
      });
      if (res.status !== 200) {
        if (res.status === 410) return 'gone';
        throw new HttpError(res.status, parseStatus(await res.text()));
      }
      let buffered = '';
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        buffered += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.trim() === '') continue;
          const event = JSON.parse(line) as { type: string; object: KubeObject };
          if (event.type === 'ERROR') return 'gone';
          if (event.type === 'BOOKMARK') continue;
          if (stop(event.type === 'DELETED' ? undefined : { ...event.object, apiVersion: ref.apiVersion, kind: ref.kind })) return 'matched';
        }
      }
      return 'ended';
    } catch (e) {
      if (controller.signal.aborted) return 'ended';
      throw e;
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }
}
