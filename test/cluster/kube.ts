// A minimal Kubernetes REST client for the harness's own frequent calls (readiness, status
// mirroring). Tests use kubectl or @kubernetes/client-node with the kubeconfig instead.
import { request } from 'node:https';

export interface KubeResponse<T> {
  status: number;
  body: T;
}

export class KubeClient {
  readonly server: string;
  readonly #ca: string;
  readonly #token: string;

  constructor(server: string, ca: string, token: string) {
    this.server = server;
    this.#ca = ca;
    this.#token = token;
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<KubeResponse<T>> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.server),
        {
          method,
          ca: this.#ca,
          timeout: 10_000,
          headers: {
            authorization: `Bearer ${this.#token}`,
            accept: 'application/json',
            ...(payload === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          let text = '';
          res
            .setEncoding('utf8')
            .on('data', (d: string) => {
              text += d;
            })
            .on('end', () => {
              let parsed: unknown = text;
              try {
                parsed = JSON.parse(text);
              } catch {
                // /readyz and friends answer in plain text.
              }
              resolve({ status: res.statusCode ?? 0, body: parsed as T });
            });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** GET that maps 404 to undefined and any other failure to an error. */
  async get<T>(path: string): Promise<T | undefined> {
    const res = await this.request<T>('GET', path);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async mergePatch(path: string, patch: unknown): Promise<void> {
    const res = await this.request('PATCH', path, patch, 'application/merge-patch+json');
    if (res.status !== 200) throw new Error(`PATCH ${path}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  }
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export function condition(obj: { status?: { conditions?: Condition[] } } | undefined, type: string): Condition | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}
