import { FluxstrapError } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';

/**
 * The few calls of Gitea's REST API (`/api/v1`, token auth) fluxstrap makes to keep a deploy key:
 * the repository, its deploy keys (all pages), create, delete. Each failure is one FluxstrapError
 * naming the call and, for 401/403, the token's variable; the token itself never appears.
 */

export interface GiteaDeployKey {
  id: number;
  key: string;
  title: string;
  read_only: boolean;
}

export interface GiteaClient {
  repoExists(owner: string, repo: string): Promise<boolean>;
  listDeployKeys(owner: string, repo: string): Promise<GiteaDeployKey[]>;
  createDeployKey(owner: string, repo: string, key: { title: string; key: string; read_only: boolean }): Promise<void>;
  deleteDeployKey(owner: string, repo: string, id: number): Promise<void>;
}

export interface GiteaOptions {
  /** e.g. https://gitea.example.com/api/v1 */
  apiUrl: string;
  token: string;
  /** The variable the token came from, for messages. */
  tokenEnv: string;
  userAgent: string;
  timeoutMs?: number;
}

/** Keys per page; Gitea caps `limit` at its MAX_RESPONSE_ITEMS (50 by default). */
const PAGE = 50;
/** Pages read at most: a repository with more than 5000 deploy keys is not one fluxstrap manages. */
const MAX_PAGES = 100;
const TOKEN_HINT = 'a Gitea access token with the write:repository scope from a user with admin access to the repository (Settings → Applications)';

export function connectGitea(o: GiteaOptions): GiteaClient {
  const base = o.apiUrl.replace(/\/+$/, '');
  const path = (owner: string, repo: string, rest = '') => `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}${rest}`;

  async function call(method: string, p: string, what: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    let res: Response;
    try {
      res = await fetch(`${base}${p}`, {
        method,
        headers: {
          authorization: `token ${o.token}`,
          accept: 'application/json',
          'user-agent': o.userAgent,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
      });
    } catch (e) {
      throw new FluxstrapError('E_GIT', `cannot reach Gitea at ${base} (${what}): ${e instanceof Error ? e.message : String(e)}`, {
        hint: 'check git.gitea.apiUrl (the API root, ending in /api/v1) and that the server is up',
      });
    }
    const text = await res.text();
    if (text.length > LIMITS.inputBytes) throw new FluxstrapError('E_GIT', `Gitea's answer to ${what} is larger than ${LIMITS.inputBytes} bytes`);
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json };
  }

  const failure = (status: number, json: unknown, what: string): FluxstrapError => {
    const said = typeof (json as { message?: unknown } | undefined)?.message === 'string' ? ` (${(json as { message: string }).message.slice(0, 200)})` : '';
    if (status === 401)
      return new FluxstrapError('E_GIT', `the Gitea token in ${o.tokenEnv} is invalid or expired (${what})`, {
        hint: `create ${TOKEN_HINT}, and export ${o.tokenEnv}`,
      });
    if (status === 403)
      return new FluxstrapError('E_GIT', `the Gitea token in ${o.tokenEnv} may not ${what}: Gitea answered 403${said}`, { hint: `use ${TOKEN_HINT}` });
    return new FluxstrapError(status === 404 ? 'E_NOT_FOUND' : 'E_GIT', `Gitea answered ${status}${said} to ${what}`, {
      hint: status === 404 ? 'check the owner and name in git.url, and that the token can see the repository' : 'see the Gitea server log',
    });
  };

  const expect = async (method: string, p: string, what: string, ok: number, body?: unknown): Promise<unknown> => {
    const r = await call(method, p, what, body);
    if (r.status !== ok) throw failure(r.status, r.json, what);
    return r.json;
  };

  return {
    async repoExists(owner, repo) {
      const what = `read the repository ${owner}/${repo}`;
      const r = await call('GET', path(owner, repo), what);
      if (r.status === 404) return false;
      if (r.status !== 200) throw failure(r.status, r.json, what);
      return true;
    },
    async listDeployKeys(owner, repo) {
      const keys: GiteaDeployKey[] = [];
      for (let page = 1; page <= MAX_PAGES; page++) {
        const json = await expect('GET', path(owner, repo, `/keys?page=${page}&limit=${PAGE}`), `list the deploy keys of ${owner}/${repo}`, 200);
        if (!Array.isArray(json)) throw new FluxstrapError('E_GIT', `Gitea's list of the deploy keys of ${owner}/${repo} is not a list`);
        for (const k of json as Partial<GiteaDeployKey>[]) {
          if (typeof k.id !== 'number' || typeof k.key !== 'string' || typeof k.title !== 'string') continue;
          keys.push({ id: k.id, key: k.key, title: k.title, read_only: k.read_only === true });
        }
        if (json.length < PAGE) return keys;
      }
      throw new FluxstrapError('E_GIT', `${owner}/${repo} has more than ${PAGE * MAX_PAGES} deploy keys`, {
        hint: 'remove unused deploy keys in the repository settings',
      });
    },
    async createDeployKey(owner, repo, key) {
      await expect('POST', path(owner, repo, '/keys'), `register a deploy key on ${owner}/${repo}`, 201, key);
    },
    async deleteDeployKey(owner, repo, id) {
      await expect('DELETE', path(owner, repo, `/keys/${id}`), `delete deploy key ${id} of ${owner}/${repo}`, 204);
    },
  };
}
