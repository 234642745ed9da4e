import { FluxstrapError } from '../../core/errors.ts';

/** Failed requests mapped to the taxonomy: by HTTP status code and errno, never by matching message text. */

export interface ApiStatus {
  kind?: string;
  reason?: string;
  message?: string;
  details?: { causes?: { field?: string; reason?: string }[] };
}

/** A response outside 2xx, with the apiserver's Status body when it sent one. */
export class HttpError extends Error {
  readonly status: number;
  readonly body: ApiStatus | undefined;
  constructor(status: number, body: ApiStatus | undefined) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

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
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
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
export function kubeError(e: unknown, doing: string, server: string, sensitive = false): FluxstrapError {
  if (e instanceof FluxstrapError) return e;
  const mapped = mapKubeError(e, doing, server, sensitive);
  if (isTransient(e)) transientErrors.add(mapped);
  return mapped;
}

function mapKubeError(e: unknown, doing: string, server: string, sensitive: boolean): FluxstrapError {
  if (e instanceof HttpError) {
    const b = e.body;
    const fields = (b?.details?.causes ?? []).map((c) => c.field).filter((f): f is string => typeof f === 'string');
    const detail = sensitive
      ? [b?.reason, fields.length ? `fields: ${fields.join(', ')}` : undefined].filter(Boolean).join('; ')
      : (b?.message ?? b?.reason ?? '');
    const message = `cannot ${doing}: HTTP ${e.status}${detail ? `: ${detail}` : ''}`;
    if (e.status === 404) return new FluxstrapError('E_NOT_FOUND', message);
    const hint =
      e.status === 401
        ? 'the credentials of the kube context were refused; log in again or pick another --context'
        : e.status === 403
          ? 'the kube context lacks a permission; use a context with cluster-admin rights for bootstrap'
          : e.status === 409
            ? 'someone else changed the object at the same time; run again'
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

/** Did a wait outlive this failure (the API server restarting or throttling)? Keep watching then. */
export function isTransientFailure(e: unknown): e is FluxstrapError {
  return e instanceof FluxstrapError && transientErrors.has(e);
}

/** The apiserver's Status document in an error response; undefined when the body is not JSON (a proxy's page). */
export function parseStatus(text: string): ApiStatus | undefined {
  try {
    return JSON.parse(text) as ApiStatus;
  } catch {
    return undefined;
  }
}
