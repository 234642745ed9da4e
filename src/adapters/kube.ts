import { loadKubeContext } from './kubeconfig.ts';
import type { KubeconfigOptions } from './kubeconfig.ts';
import { clientNodeTransport } from './kube/client-node-transport.ts';
import type { KubeAdapter } from './kube/port.ts';
import { RestKube } from './kube/rest.ts';
import { nativeTransport } from './kube/transport.ts';

/**
 * The Kubernetes edge, assembled: kubeconfig.ts reads the kubeconfig as kubectl does; contexts
 * with a token, a client certificate or basic auth are served over `node:https` with one
 * keep-alive pool (kube/transport.ts: one TLS context, few handshakes); only exec plugins, auth
 * providers and proxies need `@kubernetes/client-node` (kube/client-node-transport.ts), which
 * costs ~0.4 s to import and is therefore loaded only then. What callers program against is the
 * port (kube/port.ts) and the readiness rules (kube/readiness.ts).
 */

export interface KubeOptions extends KubeconfigOptions {
  /** Per-request timeout, so an unreachable API fails instead of hanging. */
  requestTimeoutMs?: number;
}

/**
 * Load the kubeconfig and return an adapter bound to one context. `env` is the command's
 * environment ($KUBECONFIG), handed down; without it only `opts` name the kubeconfig.
 */
export async function connectKube(opts: KubeOptions = {}, env: NodeJS.ProcessEnv = {}): Promise<KubeAdapter> {
  const timeoutMs = opts.requestTimeoutMs ?? 30_000;
  const kc = loadKubeContext(opts, env);
  const transport = kc.delegate ? await clientNodeTransport(kc, kc.delegate) : nativeTransport(kc);
  return new RestKube(transport, kc, timeoutMs);
}
