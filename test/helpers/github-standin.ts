// A local stand-in for GitHub's REST API that validates every request and every response against
// GitHub's published OpenAPI description (@octokit/openapi, pinned in package.json): an unknown
// path, a wrong method, a missing or extra body field, an undeclared status or a response body
// that breaks the schema is recorded as a violation, which the tests assert to be empty. It keeps
// state (releases, repositories, deploy keys, GitHub Apps and their installations) so whole flows run against it.
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';

type Json = Record<string, unknown>;
interface Operation {
  method: string;
  template: string;
  regex: RegExp;
  params: string[];
  op: Json;
  literal: number;
}
export interface StandInRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
}
export interface StandInResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  raw?: Buffer;
}
export type Handler = (req: StandInRequest) => StandInResponse;

const specPath = createRequire(import.meta.url).resolve('@octokit/openapi/generated/api.github.com.json');
let cached: { spec: Json; ops: Operation[]; ajv: Ajv } | undefined;

function load() {
  if (cached) return cached;
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as Json & { paths: Record<string, Record<string, Json>> };
  const ops: Operation[] = [];
  for (const [template, methods] of Object.entries(spec.paths)) {
    const params: string[] = [];
    const regex = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_, p: string) => (params.push(p), '([^/]+)'))}$`);
    const literal = template.split('/').filter((s) => s !== '' && !s.startsWith('{')).length;
    for (const [method, op] of Object.entries(methods)) {
      if (['get', 'post', 'put', 'patch', 'delete'].includes(method)) ops.push({ method: method.toUpperCase(), template, regex, params, op, literal });
    }
  }
  // Literal segments win over parameters (/repos/{o}/{r}/releases/latest over …/releases/{release_id}).
  ops.sort((a, b) => b.literal - a.literal);
  openApiNullable(spec);
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema(spec, 'gh');
  cached = { spec, ops, ajv };
  return cached;
}

/**
 * OpenAPI 3.0's `nullable: true` beside `anyOf`/`oneOf`/`allOf`/`$ref` (no `type`), which Ajv
 * refuses, as the JSON Schema it means: one more alternative, `null`.
 */
function openApiNullable(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(openApiNullable);
  if (typeof node !== 'object' || node === null) return;
  const o = node as Json;
  for (const v of Object.values(o)) openApiNullable(v);
  if (o.nullable !== true || o.type !== undefined) return;
  delete o.nullable;
  const alternatives = Array.isArray(o.anyOf) ? o.anyOf : Array.isArray(o.oneOf) ? o.oneOf : undefined;
  if (alternatives) return void alternatives.push({ type: 'null' });
  const inner: Json = {};
  for (const k of ['allOf', '$ref']) {
    if (o[k] !== undefined) {
      inner[k] = o[k];
      delete o[k];
    }
  }
  o.anyOf = [inner, { type: 'null' }];
}

const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

export class GitHubStandIn {
  readonly violations: string[] = [];
  /** Each request answered: its operation (`GET /repos/{owner}/{repo}/…`) and status. */
  readonly requests: { method: string; template: string; status: number }[] = [];
  private readonly handlers = new Map<string, Handler>();
  private readonly downloads = new Map<string, Buffer>();
  private server: Server | undefined;
  private validators = new Map<string, ValidateFunction>();
  url = '';

  /** Answer an operation, named as in the spec: `GET /repos/{owner}/{repo}/releases/tags/{tag}`. */
  on(operation: string, handler: Handler): this {
    const [method, template] = operation.split(' ');
    if (!load().ops.some((o) => o.method === method && o.template === template)) throw new Error(`not an operation of GitHub's API: ${operation}`);
    this.handlers.set(operation, handler);
    return this;
  }

  /** A file served outside the API, as GitHub serves release downloads from another host. */
  download(name: string, bytes: Buffer): string {
    const path = `/_downloads/${createHash('sha256').update(name).digest('hex').slice(0, 12)}/${encodeURIComponent(name)}`;
    this.downloads.set(path, bytes);
    return `${this.url}${path}`;
  }

  async start(): Promise<this> {
    load();
    // A stand-in that breaks answers 500 and records why: a request left unanswered would hang the test.
    this.server = createServer(
      (req, res) =>
        void this.handle(req, res).catch((e: unknown) => {
          this.violations.push(`${req.method ?? ''} ${req.url ?? ''}: the stand-in failed: ${e instanceof Error ? e.message : String(e)}`);
          if (!res.headersSent) res.writeHead(500).end();
        }),
    );
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private validator(ref: string): ValidateFunction {
    let v = this.validators.get(ref);
    if (!v) {
      v = load().ajv.compile({ $ref: `gh#/${ref}` });
      this.validators.set(ref, v);
    }
    return v;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const download = this.downloads.get(url.pathname);
    if (download && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': download.length }).end(download);
      return;
    }
    const send = (r: StandInResponse, template: string) => {
      this.requests.push({ method: req.method ?? '', template, status: r.status });
      const body = r.raw ?? (r.body === undefined ? undefined : Buffer.from(JSON.stringify(r.body)));
      res.writeHead(r.status, { ...(r.raw || r.body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }), ...r.headers }).end(body);
    };
    const violate = (what: string, template = url.pathname) => {
      this.violations.push(`${req.method ?? ''} ${url.pathname}: ${what}`);
      send({ status: 400, body: { message: `stand-in: ${what}`, documentation_url: 'https://docs.github.com/rest' } }, template);
    };
    const { ops } = load();
    const onPath = ops.filter((o) => o.regex.test(url.pathname));
    if (onPath.length === 0) return violate("no such path in GitHub's API");
    const op = onPath.find((o) => o.method === req.method);
    if (!op) return violate(`method not in GitHub's API for ${onPath[0]?.template ?? ''}`);
    const name = `${op.method} ${op.template}`;
    const m = op.regex.exec(url.pathname) ?? [];
    const params = Object.fromEntries(op.params.map((p, i) => [p, decodeURIComponent(m[i + 1] ?? '')]));
    const specOp = op.op as {
      requestBody?: { content?: Record<string, { schema?: Json }> };
      parameters?: { $ref?: string; name?: string; in?: string }[];
      responses: Record<string, unknown>;
    };

    let body: unknown;
    const text = Buffer.concat(chunks).toString('utf8');
    if (specOp.requestBody) {
      const base = pointer('paths', op.template, op.method.toLowerCase(), 'requestBody', 'content', 'application/json', 'schema');
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        return violate('request body is not JSON', name);
      }
      // go-github encodes absent options (a nil pointer) as `null`, which GitHub takes as no body;
      // only an optional body may be left out that way.
      if (body === null && (specOp.requestBody as { required?: boolean }).required !== true) body = undefined;
      if (body !== undefined || (specOp.requestBody as { required?: boolean }).required === true) {
        const v = this.validator(base);
        if (!v(body)) return violate(`request body: ${load().ajv.errorsText(v.errors)}`, name);
        const declared = (specOp.requestBody.content?.['application/json']?.schema as { properties?: Json } | undefined)?.properties;
        const extra = declared && typeof body === 'object' && body !== null ? Object.keys(body).filter((k) => !Object.hasOwn(declared, k)) : [];
        if (extra.length > 0) return violate(`request body: fields not in the schema: ${extra.join(', ')}`, name);
      }
    } else if (text !== '') {
      return violate('a body where the operation takes none', name);
    }

    const handler = this.handlers.get(name);
    if (!handler) return violate(`the stand-in does not answer ${name}`, name);
    const r = handler({ method: op.method, path: url.pathname, params, query: url.searchParams, headers: req.headers, body });
    const declared = Object.hasOwn(specOp.responses, String(r.status)) ? String(r.status) : Object.hasOwn(specOp.responses, 'default') ? 'default' : undefined;
    if (declared === undefined) {
      this.violations.push(`${name}: response status ${r.status} is not declared`);
    } else if (r.body !== undefined && r.raw === undefined) {
      let resp = specOp.responses[declared] as { $ref?: string; content?: Record<string, unknown> };
      let ref = pointer('paths', op.template, op.method.toLowerCase(), 'responses', declared);
      if (resp.$ref) {
        ref = resp.$ref.replace(/^#\//, '');
        resp = ref.split('/').reduce<Json>((o, k) => o[k.replaceAll('~1', '/').replaceAll('~0', '~')] as Json, load().spec);
      }
      if (resp.content?.['application/json']) {
        const v = this.validator(`${ref}/content/${pointer('application/json')}/schema`);
        if (!v(r.body)) this.violations.push(`${name}: response ${r.status} breaks the schema: ${load().ajv.errorsText(v.errors)}`);
      } else {
        this.violations.push(`${name}: response ${r.status} declares no JSON body`);
      }
    }
    send(r, name);
  }
}

/** Schema-valid resources, as GitHub returns them, for handlers to start from. */
export const resources = {
  user(login: string, id: number): Json {
    const html = `https://github.com/${login}`;
    const api = `https://api.github.com/users/${login}`;
    return {
      login,
      id,
      node_id: `U_${id}`,
      avatar_url: `https://avatars.githubusercontent.com/u/${id}`,
      gravatar_id: '',
      url: api,
      html_url: html,
      followers_url: `${api}/followers`,
      following_url: `${api}/following{/other_user}`,
      gists_url: `${api}/gists{/gist_id}`,
      starred_url: `${api}/starred{/owner}{/repo}`,
      subscriptions_url: `${api}/subscriptions`,
      organizations_url: `${api}/orgs`,
      repos_url: `${api}/repos`,
      events_url: `${api}/events{/privacy}`,
      received_events_url: `${api}/received_events`,
      type: 'Organization',
      site_admin: false,
    };
  },
  asset(base: string, owner: string, repo: string, id: number, name: string, bytes: Buffer, downloadUrl: string, uploader: Json): Json {
    const now = '2026-11-20T10:00:00Z';
    return {
      url: `${base}/repos/${owner}/${repo}/releases/assets/${id}`,
      browser_download_url: downloadUrl,
      id,
      node_id: `RA_${id}`,
      name,
      label: '',
      state: 'uploaded',
      content_type: name.endsWith('.gz') ? 'application/gzip' : 'text/plain',
      size: bytes.length,
      digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
      download_count: 0,
      created_at: now,
      updated_at: now,
      uploader,
    };
  },
  release(base: string, owner: string, repo: string, id: number, tag: string, assets: Json[], author: Json): Json {
    const api = `${base}/repos/${owner}/${repo}`;
    return {
      url: `${api}/releases/${id}`,
      html_url: `https://github.com/${owner}/${repo}/releases/tag/${tag}`,
      assets_url: `${api}/releases/${id}/assets`,
      upload_url: `https://uploads.github.com/repos/${owner}/${repo}/releases/${id}/assets{?name,label}`,
      tarball_url: `${api}/tarball/${tag}`,
      zipball_url: `${api}/zipball/${tag}`,
      id,
      node_id: `RE_${id}`,
      tag_name: tag,
      target_commitish: 'main',
      name: tag,
      draft: false,
      prerelease: false,
      created_at: '2026-11-20T10:00:00Z',
      published_at: '2026-11-20T10:05:00Z',
      author,
      assets,
    };
  },
};

/** Every required field of full-repository, as GitHub fills it for a new repository. */
function repository(owner: Json, name: string, id: number, isPrivate: boolean, permissions: Json): Json {
  const login = owner.login as string;
  const full = `${login}/${name}`;
  const api = `https://api.github.com/repos/${full}`;
  const urls = Object.fromEntries(
    [
      'archive',
      'assignees',
      'blobs',
      'branches',
      'collaborators',
      'comments',
      'commits',
      'compare',
      'contents',
      'contributors',
      'deployments',
      'downloads',
      'events',
      'forks',
      'git_commits',
      'git_refs',
      'git_tags',
      'hooks',
      'issue_comment',
      'issue_events',
      'issues',
      'keys',
      'labels',
      'languages',
      'merges',
      'milestones',
      'notifications',
      'pulls',
      'releases',
      'stargazers',
      'statuses',
      'subscribers',
      'subscription',
      'tags',
      'teams',
      'trees',
    ].map((k) => [`${k}_url`, `${api}/${k}`]),
  );
  const now = '2026-12-01T10:00:00Z';
  return {
    ...urls,
    id,
    node_id: `R_${id}`,
    name,
    full_name: full,
    owner,
    private: isPrivate,
    html_url: `https://github.com/${full}`,
    description: null,
    fork: false,
    url: api,
    clone_url: `https://github.com/${full}.git`,
    git_url: `git://github.com/${full}.git`,
    ssh_url: `git@github.com:${full}.git`,
    svn_url: `https://github.com/${full}`,
    mirror_url: null,
    homepage: null,
    language: null,
    forks: 0,
    forks_count: 0,
    stargazers_count: 0,
    watchers_count: 0,
    watchers: 0,
    size: 0,
    default_branch: 'main',
    open_issues: 0,
    open_issues_count: 0,
    has_issues: true,
    has_projects: true,
    has_wiki: true,
    has_pages: false,
    has_discussions: false,
    archived: false,
    disabled: false,
    license: null,
    pushed_at: now,
    created_at: now,
    updated_at: now,
    network_count: 0,
    subscribers_count: 0,
    permissions,
  };
}

/** A token of a user; with `permissions`, a fine-grained one (GitHub then sends X-Accepted-GitHub-Permissions). */
export interface WorldToken {
  login: string;
  expired?: boolean;
  permissions?: Record<string, 'read' | 'write'>;
}
/** An installation of a GitHub App: the account it is on, the repositories it sees (`owner/name`), what it may do. */
export interface WorldInstallation {
  id: number;
  account: string;
  repos: string[];
  permissions: Record<string, 'read' | 'write'>;
}
interface WorldApp {
  id: number;
  slug: string;
  publicKey: KeyObject;
  installations: WorldInstallation[];
}
interface Principal {
  login: string;
  permissions?: Record<string, 'read' | 'write'>;
  installation?: WorldInstallation;
}
interface WorldRepo {
  owner: string;
  name: string;
  private: boolean;
  id: number;
  keys: { id: number; key: string; title: string; read_only: boolean; created_at: string }[];
  roles: Record<string, 'admin' | 'write' | 'read'>;
}

/**
 * A small GitHub behind the stand-in: users and organisations, repositories with per-user roles,
 * deploy keys (paged as GitHub pages them), and /meta's SSH host keys. Tokens map to users; an
 * expired one is refused with 401, a repository a user has no role on is a 404, as on GitHub.
 */
export class GitHubWorld {
  readonly repos = new Map<string, WorldRepo>();
  private nextId = 1000;
  readonly tokens: Record<string, WorldToken>;
  readonly orgs: Record<string, string[]>;
  readonly sshKeys: string[];
  constructor(tokens: Record<string, WorldToken>, orgs: Record<string, string[]> = {}, sshKeys: string[] = []) {
    this.tokens = tokens;
    this.orgs = orgs;
    this.sshKeys = sshKeys;
  }

  /**
   * Where each repository is also a bare Git repository (`<gitRoot>/<owner>/<name>.git`), for
   * git to reach through `url.<gitRoot>/.insteadOf https://github.com/` in the test's ~/.gitconfig.
   */
  gitRoot: string | undefined;

  addRepo(full: string, roles: WorldRepo['roles'], isPrivate = true): WorldRepo {
    const [owner = '', name = ''] = full.split('/');
    if (this.gitRoot !== undefined) execFileSync('git', ['init', '--quiet', '--bare', join(this.gitRoot, owner, `${name}.git`)]);
    const r: WorldRepo = { owner, name, private: isPrivate, id: this.nextId++, keys: [], roles };
    this.repos.set(full.toLowerCase(), r);
    return r;
  }

  private principal(req: StandInRequest): Principal | undefined {
    const token = /^(?:token|bearer) (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (token === undefined) return undefined;
    const installation = this.installationTokens.get(token);
    if (installation !== undefined) return { login: `installation:${installation.id}`, permissions: installation.permissions, installation };
    const t = Object.hasOwn(this.tokens, token) ? this.tokens[token] : undefined;
    return t === undefined || t.expired === true ? undefined : { login: t.login, ...(t.permissions ? { permissions: t.permissions } : {}) };
  }

  readonly apps = new Map<string, WorldApp>();
  private readonly installationTokens = new Map<string, WorldInstallation>();
  /** Each installation token minted: for which installation, and by which client (User-Agent). */
  readonly minted: { token: string; installationId: number; userAgent: string }[] = [];

  /**
   * Whether git over HTTPS may read `repo` (`acme/fleet.git`) with this basic-auth login, as
   * GitHub decides for an App: user `x-access-token`, a token minted here, an installation that
   * sees the repository with Contents access.
   */
  gitAccess(username: string, token: string, repo: string): boolean {
    const installation = this.installationTokens.get(token);
    const full = repo.replace(/\.git$/, '').toLowerCase();
    return (
      username === 'x-access-token' &&
      installation !== undefined &&
      installation.repos.some((r) => r.toLowerCase() === full) &&
      (installation.permissions.contents === 'read' || installation.permissions.contents === 'write')
    );
  }

  /** A GitHub App whose JWTs are checked against `publicKeyPem` (RS256), with its installations. */
  addApp(id: number, publicKeyPem: string, installations: WorldInstallation[]): WorldApp {
    const app = { id, slug: `app-${id}`, publicKey: createPublicKey(publicKeyPem), installations };
    this.apps.set(String(id), app);
    return app;
  }

  /**
   * The App a request's JWT proves, as GitHub checks it: three base64url parts, RS256, signed
   * by the key of the App its `iss` names, issued no later than now, expiring within 10 minutes.
   */
  private appOf(req: StandInRequest): WorldApp | undefined {
    const jwt = /^bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const [head = '', claims = '', sig = ''] = jwt.split('.');
    try {
      const h = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as { alg?: string; typ?: string };
      const c = JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as { iss?: unknown; iat?: number; exp?: number };
      const app = this.apps.get(String(c.iss));
      const now = Date.now() / 1000;
      if (h.alg !== 'RS256' || app === undefined || typeof c.iat !== 'number' || typeof c.exp !== 'number') return undefined;
      if (c.iat > now + 1 || c.exp <= now || c.exp - now > 600) return undefined;
      return verify('sha256', Buffer.from(`${head}.${claims}`), app.publicKey, Buffer.from(sig, 'base64url')) ? app : undefined;
    } catch {
      return undefined;
    }
  }

  private readonly badJwt: StandInResponse = {
    status: 401,
    body: { message: 'A JSON web token could not be decoded', documentation_url: 'https://docs.github.com/rest' },
  };

  private readonly unauthorized: StandInResponse = { status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } };
  private readonly notFound: StandInResponse = { status: 404, body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' } };

  private userJson(login: string, type = 'User'): Json {
    return { ...resources.user(login, 7), type, user_view_type: 'public' };
  }

  private repoJson(r: WorldRepo, login: string): Json {
    const role = Object.hasOwn(r.roles, login) ? r.roles[login] : undefined;
    const owner = this.userJson(r.owner, Object.hasOwn(this.orgs, r.owner) ? 'Organization' : 'User');
    return repository(owner, r.name, r.id, r.private, {
      admin: role === 'admin',
      maintain: role === 'admin',
      push: role === 'admin' || role === 'write',
      triage: role !== undefined,
      pull: role !== undefined,
    });
  }

  /** The repository a user (or an installation) may see, else undefined (GitHub answers 404 to anyone else). */
  private visible(req: StandInRequest, login: string): WorldRepo | undefined {
    const full = `${req.params.owner ?? ''}/${req.params.repo ?? ''}`.toLowerCase();
    const r = this.repos.get(full);
    const installation = login.startsWith('installation:')
      ? [...this.apps.values()].flatMap((a) => a.installations).find((i) => `installation:${i.id}` === login)
      : undefined;
    if (installation) return r !== undefined && installation.repos.some((x) => x.toLowerCase() === full) ? r : undefined;
    return r !== undefined && Object.hasOwn(r.roles, login) ? r : undefined;
  }

  /**
   * A handler for a token's calls. `needs` is what GitHub requires of a fine-grained token or an
   * installation for the operation (`administration=write`): as GitHub does, it is sent back in
   * X-Accepted-GitHub-Permissions on every answer to such a caller, and one lacking it gets a 403.
   */
  private authed(h: (req: StandInRequest, login: string) => StandInResponse, needs?: string): Handler {
    return (req) => {
      const who = this.principal(req);
      if (who === undefined) return this.unauthorized;
      if (needs === undefined || who.permissions === undefined) return h(req, who.login);
      const [perm = '', level = ''] = needs.split('=');
      const has = who.permissions[perm];
      const res =
        has === 'write' || has === level
          ? h(req, who.login)
          : {
              status: 403,
              body: {
                message: `Resource not accessible by ${who.installation ? 'integration' : 'personal access token'}`,
                documentation_url: 'https://docs.github.com/rest',
                status: '403',
              },
            };
      return { ...res, headers: { ...res.headers, 'x-accepted-github-permissions': needs } };
    };
  }

  /** `GET /user`, for a test that answers some calls otherwise first. */
  userHandler(): Handler {
    return this.authed((_req, login) => ({
      status: 200,
      body: {
        ...this.userJson(login),
        user_view_type: 'public',
        bio: null,
        blog: '',
        company: null,
        email: null,
        followers: 0,
        following: 0,
        hireable: null,
        location: null,
        name: login,
        public_gists: 0,
        public_repos: 0,
        created_at: '2020-01-01T00:00:00Z',
        updated_at: '2026-01-01T00:00:00Z',
      },
    }));
  }

  install(s: GitHubStandIn): this {
    const authed = (h: (req: StandInRequest, login: string) => StandInResponse, needs?: string): Handler => this.authed(h, needs);
    const app =
      (h: (req: StandInRequest, a: WorldApp) => StandInResponse): Handler =>
      (req) => {
        const a = this.appOf(req);
        return a === undefined ? this.badJwt : h(req, a);
      };
    const installationJson = (a: WorldApp, i: WorldInstallation): Json => {
      const type = Object.hasOwn(this.orgs, i.account) ? 'Organization' : 'User';
      return {
        id: i.id,
        app_id: a.id,
        app_slug: a.slug,
        target_id: 7,
        target_type: type,
        single_file_name: null,
        repository_selection: 'selected',
        access_tokens_url: `https://api.github.com/app/installations/${i.id}/access_tokens`,
        html_url: `https://github.com/settings/installations/${i.id}`,
        repositories_url: 'https://api.github.com/installation/repositories',
        events: [],
        account: this.userJson(i.account, type),
        permissions: i.permissions,
        created_at: '2026-11-01T10:00:00Z',
        updated_at: '2026-11-01T10:00:00Z',
        suspended_by: null,
        suspended_at: null,
      };
    };
    s.on(
      'POST /app/installations/{installation_id}/access_tokens',
      app((req, a) => {
        const i = a.installations.find((x) => String(x.id) === req.params.installation_id);
        if (i === undefined) return this.notFound;
        const token = `ghs_${randomBytes(18).toString('base64url')}`;
        this.installationTokens.set(token, i);
        this.minted.push({ token, installationId: i.id, userAgent: String(req.headers['user-agent'] ?? '') });
        return {
          status: 201,
          body: {
            token,
            expires_at: new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
            permissions: i.permissions,
            repository_selection: 'selected',
          },
        };
      }),
    );
    s.on(
      'GET /repos/{owner}/{repo}/installation',
      app((req, a) => {
        const full = `${req.params.owner ?? ''}/${req.params.repo ?? ''}`.toLowerCase();
        const i = this.repos.has(full) ? a.installations.find((x) => x.repos.some((r) => r.toLowerCase() === full)) : undefined;
        return i === undefined ? this.notFound : { status: 200, body: installationJson(a, i) };
      }),
    );
    // source-controller's lookup of an installationOwner: as an organisation, then as a user. The
    // spec declares only 200 for both, so GitHub's 404 for the wrong kind of account is a violation.
    const ownerInstallation = (param: 'org' | 'username'): Handler =>
      app((req, a) => {
        const owner = (req.params[param] ?? '').toLowerCase();
        const isOrg = Object.keys(this.orgs).some((o) => o.toLowerCase() === owner);
        const i = isOrg === (param === 'org') ? a.installations.find((x) => x.account.toLowerCase() === owner) : undefined;
        return i === undefined ? this.notFound : { status: 200, body: installationJson(a, i) };
      });
    s.on('GET /orgs/{org}/installation', ownerInstallation('org'));
    s.on('GET /users/{username}/installation', ownerInstallation('username'));
    s.on('GET /meta', () => ({ status: 200, body: { verifiable_password_authentication: true, ssh_keys: this.sshKeys } }));
    s.on('GET /user', this.userHandler());
    s.on(
      'GET /orgs/{org}',
      authed((req) => {
        const org = req.params.org ?? '';
        if (!Object.hasOwn(this.orgs, org)) return this.notFound;
        const u = this.userJson(org, 'Organization');
        return {
          status: 200,
          body: {
            login: org,
            id: u.id,
            node_id: u.node_id,
            url: `https://api.github.com/orgs/${org}`,
            repos_url: u.repos_url,
            events_url: `https://api.github.com/orgs/${org}/events`,
            hooks_url: `https://api.github.com/orgs/${org}/hooks`,
            issues_url: `https://api.github.com/orgs/${org}/issues`,
            members_url: `https://api.github.com/orgs/${org}/members{/member}`,
            public_members_url: `https://api.github.com/orgs/${org}/public_members{/member}`,
            avatar_url: u.avatar_url,
            description: null,
            html_url: `https://github.com/${org}`,
            has_organization_projects: true,
            has_repository_projects: true,
            public_repos: 0,
            public_gists: 0,
            followers: 0,
            following: 0,
            type: 'Organization',
            created_at: '2020-01-01T00:00:00Z',
            updated_at: '2026-01-01T00:00:00Z',
            archived_at: null,
          },
        };
      }),
    );
    s.on(
      'GET /repos/{owner}/{repo}',
      authed((req, login) => {
        const r = this.visible(req, login);
        return r === undefined ? this.notFound : { status: 200, body: this.repoJson(r, login) };
      }, 'metadata=read'),
    );
    const create = (owner: string, login: string, body: { name: string; private?: boolean }): StandInResponse => {
      if (this.repos.has(`${owner}/${body.name}`.toLowerCase()))
        return { status: 422, body: { message: 'Repository creation failed.', documentation_url: 'https://docs.github.com/rest' } };
      return { status: 201, body: this.repoJson(this.addRepo(`${owner}/${body.name}`, { [login]: 'admin' }, body.private ?? false), login) };
    };
    s.on(
      'POST /user/repos',
      authed((req, login) => create(login, login, req.body as { name: string }), 'administration=write'),
    );
    s.on(
      'POST /orgs/{org}/repos',
      authed((req, login) => {
        const org = req.params.org ?? '';
        if (!Object.hasOwn(this.orgs, org) || !this.orgs[org]?.includes(login))
          return {
            status: 403,
            body: { message: 'You need admin access to the organization before adding a repository to it.', documentation_url: 'https://docs.github.com/rest' },
          };
        return create(org, login, req.body as { name: string });
      }, 'administration=write'),
    );
    const keyJson = (r: WorldRepo, k: WorldRepo['keys'][number]) => ({
      ...k,
      url: `https://api.github.com/repos/${r.owner}/${r.name}/keys/${k.id}`,
      verified: true,
      added_by: null,
      last_used: null,
      enabled: true,
    });
    s.on(
      'GET /repos/{owner}/{repo}/keys',
      authed((req, login) => {
        const r = this.visible(req, login);
        // GitHub answers 404 without admin here; the spec declares only 200, so a test must never get there.
        if (r === undefined || r.roles[login] !== 'admin') return this.notFound;
        const perPage = Number(req.query.get('per_page') ?? '30');
        const page = Number(req.query.get('page') ?? '1');
        const last = Math.max(1, Math.ceil(r.keys.length / perPage));
        const link =
          page < last
            ? {
                link: `<${s.url}${req.path}?per_page=${perPage}&page=${page + 1}>; rel="next", <${s.url}${req.path}?per_page=${perPage}&page=${last}>; rel="last"`,
              }
            : undefined;
        return {
          status: 200,
          body: r.keys.slice((page - 1) * perPage, page * perPage).map((k) => keyJson(r, k)),
          headers: { 'x-accepted-github-permissions': 'administration=read', ...link },
        };
      }),
    );
    s.on(
      'POST /repos/{owner}/{repo}/keys',
      authed((req, login) => {
        const r = this.visible(req, login);
        if (r === undefined || r.roles[login] !== 'admin') return this.notFound;
        const b = req.body as { title: string; key: string; read_only?: boolean };
        const blob = b.key.split(' ')[1];
        if (r.keys.some((k) => k.key.split(' ')[1] === blob))
          return {
            status: 422,
            body: {
              message: 'Validation Failed',
              documentation_url: 'https://docs.github.com/rest',
              errors: [{ resource: 'PublicKey', code: 'custom', field: 'key', message: 'key is already in use' }],
            },
          };
        const k = {
          id: this.nextId++,
          key: b.key.split(' ').slice(0, 2).join(' '),
          title: b.title,
          read_only: b.read_only ?? false,
          created_at: '2026-12-01T10:00:00Z',
        };
        r.keys.push(k);
        return { status: 201, body: keyJson(r, k) };
      }),
    );
    s.on(
      'DELETE /repos/{owner}/{repo}/keys/{key_id}',
      authed((req, login) => {
        const r = this.visible(req, login);
        if (r === undefined) return this.notFound;
        r.keys = r.keys.filter((k) => String(k.id) !== req.params.key_id);
        return { status: 204 };
      }),
    );
    return this;
  }
}
