import http from 'node:http';
import https from 'node:https';
import { getOwn, setOwn } from '../../core/own.ts';
import type { KubeContext } from '../kubeconfig.ts';

/** How requests reach the API server: one HTTP exchange, authenticated as the context says. */

export interface HttpResponse {
  status: number;
  body: AsyncIterable<Uint8Array | string>;
  text(): Promise<string>;
}

/** One HTTP exchange with the API server, authenticated. */
export type Transport = (method: string, url: URL, headers: Record<string, string>, body: string | undefined, signal: AbortSignal) => Promise<HttpResponse>;

/** The context's own headers (Authorization, Impersonate-*), a repeated name as a list, as node:http sends it. */
export function contextHeaders(kc: KubeContext): Record<string, string | string[]> {
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
export function nativeTransport(kc: KubeContext): Transport {
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
      const req = (plain ? http : https).request(
        url,
        {
          method,
          agent,
          signal,
          headers: { ...headers, ...contextHeaders(kc), ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) },
        },
        (res) => {
          resolvePromise({
            status: res.statusCode ?? 0,
            body: res,
            text: async () => {
              const chunks: Buffer[] = [];
              for await (const c of res) chunks.push(c as Buffer);
              return Buffer.concat(chunks).toString('utf8');
            },
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
}
