import { FluxstrapError } from '../../core/errors.ts';
import type { KubeContext } from '../kubeconfig.ts';
import { HttpError, isTransientFailure, kubeError, parseStatus } from './errors.ts';
import { describeRef, refOf } from './port.ts';
import type { AccessCheck, AccessResult, KubeAdapter, KubeObject, ObjectRef, ServerVersion, WaitOptions, WaitState } from './port.ts';
import { formatConditions } from './readiness.ts';
import type { HttpResponse, Transport } from './transport.ts';
import { watchEvents } from './watch.ts';

/** The KubeAdapter over the API server's REST interface, whatever the transport. */

const FIELD_MANAGER = 'fluxstrap';

interface ResourceInfo {
  plural: string;
  namespaced: boolean;
}

const SECRET_KINDS = new Set(['Secret']);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

export class RestKube implements KubeAdapter {
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
    return this.#transport(
      method,
      url,
      headers,
      opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      opts.signal ?? AbortSignal.timeout(this.#timeoutMs),
    );
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

  list(
    apiVersion: string,
    kind: string,
    opts: { namespace?: string; allNamespaces?: boolean; labelSelector?: string; fieldSelector?: string } = {},
  ): Promise<KubeObject[]> {
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
        await this.#json('POST', await this.#path({ apiVersion: ref.apiVersion, kind: ref.kind, namespace: ref.namespace }), {
          query: { fieldManager: FIELD_MANAGER },
          body: obj,
        });
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
      const list = await this.#json<{
        items: { type?: string; reason?: string; message?: string; lastTimestamp?: string; eventTime?: string; count?: number }[];
      }>('GET', `/api/v1/namespaces/${encodeURIComponent(ref.namespace ?? 'default')}/events`, {
        query: { fieldSelector: `involvedObject.name=${ref.name},involvedObject.kind=${ref.kind}` },
      });
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
                spec: {
                  resourceAttributes: { verb: c.verb, group: c.group, resource: c.resource, ...(c.namespace !== undefined ? { namespace: c.namespace } : {}) },
                },
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
    const collection = await this.#call(`wait for ${describeRef(ref)}`, sensitive, () =>
      this.#path({ apiVersion: ref.apiVersion, kind: ref.kind, namespace: ref.namespace }),
    );
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
        if (!isTransientFailure(e)) throw e;
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
      throw new FluxstrapError(
        'E_KUBE',
        `timed out after ${Math.round(opts.timeoutMs / 1000)}s waiting for ${describeRef(ref)} to be ${opts.what}: ${unavailable}`,
        {
          hint: 'check that the cluster is running and that --context/--kubeconfig point at it',
        },
      );
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
  async #watchUntil(
    collection: string,
    ref: ObjectRef,
    resourceVersion: string | undefined,
    windowMs: number,
    stop: (obj: KubeObject | undefined) => boolean,
  ): Promise<'matched' | 'ended' | 'gone'> {
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
      for await (const event of watchEvents(res.body)) {
        if (event.type === 'ERROR') return 'gone';
        if (event.type === 'BOOKMARK') continue;
        if (stop(event.type === 'DELETED' ? undefined : { ...event.object, apiVersion: ref.apiVersion, kind: ref.kind })) return 'matched';
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
