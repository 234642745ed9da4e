import { FluxstrapError } from '../../core/errors.ts';
import type { Delegated, KubeContext } from '../kubeconfig.ts';
import { contextHeaders } from './transport.ts';
import type { Transport } from './transport.ts';

/**
 * Exec plugins, auth providers and proxies: `@kubernetes/client-node` authenticates and connects,
 * given the context kubeconfig.ts resolved (so merging, paths and checks are the same); the
 * context's static credentials and impersonation are added here, since the client sends only `as`.
 */
export async function clientNodeTransport(kc: KubeContext, delegate: Delegated): Promise<Transport> {
  // The client's TLS dispatcher belongs to its own undici, which Node's built-in fetch rejects;
  // use that undici's fetch, as the client itself does.
  const [k8s, undici] = await Promise.all([import('@kubernetes/client-node'), import('undici')]);
  const config = new k8s.KubeConfig();
  const b64 = (b: Buffer | undefined) => b?.toString('base64');
  config.loadFromOptions({
    clusters: [
      {
        name: 'cluster',
        server: kc.server,
        skipTLSVerify: kc.tls.insecure,
        ...(kc.tls.ca ? { caData: b64(kc.tls.ca) } : {}),
        ...(kc.tls.serverName !== undefined ? { tlsServerName: kc.tls.serverName } : {}),
        ...(delegate.proxyUrl !== undefined ? { proxyUrl: delegate.proxyUrl } : {}),
      },
    ],
    users: [
      {
        name: 'user',
        ...(kc.tls.cert ? { certData: b64(kc.tls.cert) } : {}),
        ...(kc.tls.key ? { keyData: b64(kc.tls.key) } : {}),
        ...(delegate.exec ? { exec: delegate.exec } : {}),
        ...(delegate.authProvider ? { authProvider: delegate.authProvider } : {}),
      },
    ],
    contexts: [{ name: kc.context, cluster: 'cluster', user: 'user', namespace: kc.namespace }],
    currentContext: kc.context,
  });
  return async (method, url, headers, body, signal) => {
    // The client's RequestContext carries auth headers (exec plugins) and the TLS dispatcher.
    const ctx = new k8s.RequestContext(url.toString(), method as never);
    try {
      await config.applySecurityAuthentication(ctx);
    } catch (e) {
      throw new FluxstrapError(
        'E_KUBE',
        `the ${delegate.reason} of kube context "${kc.context}" failed: ${(e instanceof Error ? e.message : String(e)).trim().split('\n')[0] ?? ''}`,
        {
          location: { file: kc.file },
          ...(delegate.exec?.installHint !== undefined ? { hint: delegate.exec.installHint } : {}),
        },
      );
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
