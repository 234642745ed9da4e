import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, resolve, sep } from 'node:path';
import { yamlValues } from '../core/bounded-yaml.ts';
import { configError, FluxstrapError } from '../core/errors.ts';
import { readBytesSync } from './files.ts';
import { getOwn } from '../core/own.ts';

/**
 * The kubeconfig, read as kubectl (client-go's clientcmd) reads it. Every field of kubeconfig v1
 * is either honoured here, or handed to `@kubernetes/client-node` (exec plugins, auth providers,
 * proxies: `delegate`), or refused with an error naming the file and the field. Nothing of the
 * kubeconfig schema is dropped: a setting fluxstrap ignored would run the bootstrap as someone
 * else (impersonation) or against something else. Fields outside the schema are ignored, as
 * kubectl ignores them; so are `extensions` and `preferences`, which only plugins and old
 * kubectl versions read.
 *
 * As in kubectl: `--kubeconfig` names one file; else `$KUBECONFIG` lists files (missing ones
 * skipped) where the first file to define a cluster, user or context by a name wins, and the first
 * `current-context` wins; else `~/.kube/config`. Relative paths are relative to the file that
 * holds them. The checks of clientcmd's validation and of client-go's transport apply.
 */

export interface KubeconfigOptions {
  /** Kubeconfig file; default: $KUBECONFIG or ~/.kube/config. */
  kubeconfig?: string;
  /** Context name; default: the kubeconfig's current context. */
  context?: string;
}

export interface TlsSettings {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure: boolean;
  serverName?: string;
}

/** What only `@kubernetes/client-node` implements, with the context's settings it needs. */
export interface Delegated {
  /** Why, for messages: `exec plugin aws`, `proxy-url`. */
  reason: string;
  exec?: ExecSettings;
  authProvider?: { name: string; config: Record<string, string> };
  proxyUrl?: string;
}

export interface ExecSettings {
  command: string;
  args: string[];
  env: { name: string; value: string }[];
  apiVersion: string;
  installHint?: string;
}

export interface KubeContext {
  /** The file that defines the context, for messages. */
  file: string;
  context: string;
  /** Where namespaced objects without a namespace go, as with kubectl. */
  namespace: string;
  server: string;
  tls: TlsSettings;
  /** `disable-compression`: responses must not be compressed (node:http never asks; undici's fetch does). */
  disableCompression: boolean;
  /** The Authorization header for the next request (a token file is read again, as client-go does). */
  authorization(): string | undefined;
  /** `Impersonate-*` headers, in order; a name may repeat (groups, extra values). */
  impersonation: [string, string][];
  delegate?: Delegated;
}

type Raw = Record<string, unknown>;

/** One map of the kubeconfig (a cluster, a user, a context), with where it is, for errors. */
class Section {
  readonly file: string;
  readonly path: string;
  readonly raw: Raw;

  constructor(file: string, path: string, raw: unknown) {
    this.file = file;
    this.path = path;
    if (raw === undefined || raw === null) this.raw = {};
    else if (typeof raw === 'object' && !Array.isArray(raw)) this.raw = raw as Raw;
    else throw configError(path === '' ? 'a kubeconfig is a map' : `${path} must be a map`, path === '' ? { file } : { file, field: path });
  }

  fail(key: string, message: string, hint?: string): FluxstrapError {
    return configError(message, { file: this.file, field: this.field(key) }, hint);
  }

  field(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  has(key: string): boolean {
    const v = getOwn(this.raw, key);
    return v !== undefined && v !== null;
  }

  /** A string field; empty is unset, as Go's `len(s) == 0`. */
  str(key: string): string | undefined {
    const v = getOwn(this.raw, key);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw this.fail(key, `${key} must be a string`);
    return v;
  }

  bool(key: string): boolean {
    const v = getOwn(this.raw, key);
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw this.fail(key, `${key} must be true or false`);
    return v;
  }

  strings(key: string): string[] {
    const v = getOwn(this.raw, key);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw this.fail(key, `${key} must be a list of strings`);
    return v as string[];
  }

  /** `[]byte` in Go: standard base64 (line breaks allowed). */
  bytes(key: string): Buffer | undefined {
    const text = this.str(key)?.replace(/[\r\n]/g, '');
    if (text === undefined) return undefined;
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw this.fail(key, `${key} is not base64`);
    return Buffer.from(text, 'base64');
  }

  section(key: string): Section | undefined {
    return this.has(key) ? new Section(this.file, this.field(key), getOwn(this.raw, key)) : undefined;
  }

  /** A path field, made absolute against the file that holds it. */
  filePath(key: string): string | undefined {
    const p = this.str(key);
    return p === undefined ? undefined : resolve(dirname(this.file), p);
  }

  read(key: string): Buffer | undefined {
    const p = this.filePath(key);
    if (p === undefined) return undefined;
    try {
      return readBytesSync(p);
    } catch (e) {
      // The errno when there is one (ENOENT…), else what readBytesSync refused (a FIFO, a huge file).
      const cause = (e instanceof FluxstrapError ? e.cause : e) as NodeJS.ErrnoException | undefined;
      throw this.fail(key, `cannot read ${key} ${p}: ${cause?.code ?? (e instanceof Error ? e.message : String(e))}`);
    }
  }
}

interface Entry {
  file: string;
  value: unknown;
}

interface Merged {
  files: string[];
  currentContext?: string;
  clusters: Map<string, Entry>;
  users: Map<string, Entry>;
  contexts: Map<string, Entry>;
}

/** The files kubectl would read, most important first; whether a missing one is an error. */
function kubeconfigFiles(opts: KubeconfigOptions, env: NodeJS.ProcessEnv): { files: string[]; required: boolean } {
  if (opts.kubeconfig !== undefined) return { files: [resolve(opts.kubeconfig)], required: true };
  const list = env.KUBECONFIG;
  if (list !== undefined && list !== '')
    return {
      files: [
        ...new Set(
          list
            .split(delimiter)
            .filter((f) => f !== '')
            .map((f) => resolve(f)),
        ),
      ],
      required: false,
    };
  return { files: [resolve(homedir(), '.kube', 'config')], required: true };
}

const LISTS = [
  ['clusters', 'cluster'],
  ['users', 'user'],
  ['contexts', 'context'],
] as const;

function loadMerged(opts: KubeconfigOptions, env: NodeJS.ProcessEnv): Merged {
  const { files, required } = kubeconfigFiles(opts, env);
  const merged: Merged = { files: [], clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const file of files) {
    let text: string;
    try {
      // Bounded and non-blocking: a FIFO or a huge file named as a kubeconfig is an error, not a hang.
      text = readBytesSync(file, 'load kubeconfig').toString('utf8');
    } catch (e) {
      if (!(e instanceof FluxstrapError)) throw e;
      if (!required && e.code === 'E_NOT_FOUND') continue;
      throw configError(e.message.replace(/no such file or directory$/, 'no such file'), { file }, 'pass --kubeconfig or set KUBECONFIG');
    }
    let doc: unknown;
    try {
      doc = yamlValues(text, file)[0];
    } catch (e) {
      if (!(e instanceof FluxstrapError)) throw e;
      throw new FluxstrapError(e.code, `cannot load kubeconfig: ${e.message}`, e.location ? { location: e.location } : {});
    }
    merged.files.push(file);
    const top = new Section(file, '', doc);
    const current = top.str('current-context');
    if (merged.currentContext === undefined && current !== undefined) merged.currentContext = current;
    for (const [list, item] of LISTS) {
      const entries = getOwn(top.raw, list);
      if (entries === undefined || entries === null) continue;
      if (!Array.isArray(entries)) throw configError(`${list} must be a list`, { file, field: list });
      // Within a file a later entry of the same name replaces an earlier one; across files the first file wins.
      const inFile = new Map<string, Entry>();
      for (const [i, e] of entries.entries()) {
        const s = new Section(file, `${list}[${i}]`, e);
        const name = s.str('name');
        if (name === undefined) throw s.fail('name', 'an entry needs a name');
        inFile.set(name, { file, value: getOwn(s.raw, item) });
      }
      const target = merged[list];
      for (const [name, entry] of inFile) if (!target.has(name)) target.set(name, entry);
    }
  }
  return merged;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PROXY_SCHEMES = new Set(['http:', 'https:', 'socks5:']);

/** Resolve the context fluxstrap will use; every problem names the kubeconfig file and field. */
export function loadKubeContext(opts: KubeconfigOptions, env: NodeJS.ProcessEnv): KubeContext {
  const merged = loadMerged(opts, env);
  const anyFile = merged.files[0] ?? kubeconfigFiles(opts, env).files.join(delimiter);
  const contextName = opts.context ?? merged.currentContext;
  const entry = contextName === undefined ? undefined : merged.contexts.get(contextName);
  if (contextName === undefined || !entry) {
    throw new FluxstrapError(
      'E_NOT_FOUND',
      contextName === undefined ? 'the kubeconfig has no current context' : `kube context "${contextName}" is not in the kubeconfig`,
      {
        location: { file: anyFile },
        hint: `known contexts: ${[...merged.contexts.keys()].join(', ') || 'none'}; pass --context`,
      },
    );
  }
  const ctx = new Section(entry.file, `contexts[${contextName}].context`, entry.value);
  const clusterName = ctx.str('cluster');
  const userName = ctx.str('user');
  if (clusterName === undefined) throw ctx.fail('cluster', `kube context "${contextName}" names no cluster`);
  if (userName === undefined) throw ctx.fail('user', `kube context "${contextName}" names no user`);
  const clusterEntry = merged.clusters.get(clusterName);
  const userEntry = merged.users.get(userName);
  if (!clusterEntry) throw ctx.fail('cluster', `cluster "${clusterName}" of kube context "${contextName}" is not in the kubeconfig`);
  if (!userEntry) throw ctx.fail('user', `user "${userName}" of kube context "${contextName}" is not in the kubeconfig`);
  const namespace = ctx.str('namespace') ?? 'default';
  if (!DNS_LABEL.test(namespace)) throw ctx.fail('namespace', `namespace "${namespace}" is not a DNS label`);

  const cluster = new Section(clusterEntry.file, `clusters[${clusterName}].cluster`, clusterEntry.value);
  const user = new Section(userEntry.file, `users[${userName}].user`, userEntry.value);
  const server = cluster.str('server');
  if (server === undefined) throw cluster.fail('server', `cluster "${clusterName}" has no server`);
  // Not echoed: a URL may carry credentials.
  if (!URL.canParse(server)) throw cluster.fail('server', 'server is not a URL');

  const delegate = delegated(cluster, user);
  return {
    file: entry.file,
    context: contextName,
    namespace,
    server: server.replace(/(?<!\/)\/+$/, ''), // (?<!\/): linear on a long run of slashes
    tls: tlsOf(cluster, user),
    disableCompression: cluster.bool('disable-compression'),
    ...credentialsOf(user),
    impersonation: impersonationOf(user),
    ...(delegate ? { delegate } : {}),
  };
}

function tlsOf(cluster: Section, user: Section): TlsSettings {
  const either = (s: Section, file: string, data: string): Buffer | undefined => {
    if (s.has(file) && s.has(data)) throw s.fail(data, `${data} and ${file} are both set; kubectl refuses that`, `keep one of them`);
    return s.bytes(data) ?? s.read(file);
  };
  const ca = either(cluster, 'certificate-authority', 'certificate-authority-data');
  const insecure = cluster.bool('insecure-skip-tls-verify');
  if (insecure && ca)
    throw cluster.fail('insecure-skip-tls-verify', 'insecure-skip-tls-verify with a certificate authority: kubectl refuses both', 'remove one of them');
  const cert = either(user, 'client-certificate', 'client-certificate-data');
  const key = either(user, 'client-key', 'client-key-data');
  if (cert && !key) throw user.fail('client-certificate', 'a client certificate without client-key or client-key-data');
  if (key && !cert) throw user.fail('client-key', 'a client key without client-certificate or client-certificate-data');
  const serverName = cluster.str('tls-server-name');
  return { insecure, ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(serverName !== undefined ? { serverName } : {}) };
}

/** client-go re-reads a token file at most once a minute (projected tokens rotate). */
const TOKEN_FILE_TTL_MS = 60_000;

function credentialsOf(user: Section): Pick<KubeContext, 'authorization'> {
  const token = user.str('token');
  const tokenFile = user.filePath('tokenFile');
  const username = user.str('username');
  const password = user.str('password');
  if ((token !== undefined || tokenFile !== undefined) && (username !== undefined || password !== undefined)) {
    throw user.fail(token !== undefined ? 'token' : 'tokenFile', 'a token and a username/password: kubectl allows only one way to log in', 'keep one of them');
  }
  if (username !== undefined || password !== undefined) {
    const basic = `Basic ${Buffer.from(`${username ?? ''}:${password ?? ''}`).toString('base64')}`;
    return { authorization: () => basic };
  }
  if (tokenFile === undefined) return { authorization: () => (token === undefined ? undefined : `Bearer ${token}`) };
  // As client-go: the file wins; `token`, if set, is used while the file cannot be read.
  const readToken = (): string | undefined => {
    try {
      return readBytesSync(tokenFile).toString('utf8').trim() || undefined;
    } catch {
      return undefined;
    }
  };
  let cached = readToken() ?? token;
  if (cached === undefined) throw user.fail('tokenFile', `cannot read tokenFile ${tokenFile}`);
  let readAt = Date.now();
  return {
    authorization: () => {
      if (Date.now() - readAt > TOKEN_FILE_TTL_MS) {
        cached = readToken() ?? cached;
        readAt = Date.now();
      }
      return `Bearer ${cached ?? ''}`;
    },
  };
}

/** RFC 7230 token characters: what client-go leaves unescaped in an `Impersonate-Extra-` key. */
const HEADER_KEY_BYTE = /^[!#$&'*+\-.^_`|~0-9A-Za-z]$/;

/** client-go's headerKeyEscape: other bytes (and `%`) become `%XX` of their UTF-8 bytes. */
export function headerKeyEscape(key: string): string {
  return [...Buffer.from(key, 'utf8')]
    .map((b) => {
      const ch = String.fromCharCode(b);
      return b < 0x80 && HEADER_KEY_BYTE.test(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

function impersonationOf(user: Section): [string, string][] {
  const as = user.str('as');
  const uid = user.str('as-uid');
  const groups = user.strings('as-groups');
  const extraSection = user.section('as-user-extra');
  const extra = extraSection ? Object.keys(extraSection.raw).map((k): [string, string[]] => [k, extraSection.strings(k)]) : [];
  if (as === undefined) {
    const requested = uid !== undefined ? 'as-uid' : groups.length > 0 ? 'as-groups' : extra.length > 0 ? 'as-user-extra' : undefined;
    if (requested !== undefined)
      throw user.fail(
        requested,
        `${requested} without as: kubectl refuses to impersonate groups, a uid or extras without a user`,
        'set `as` to the user to impersonate',
      );
    return [];
  }
  const headers: [string, string][] = [['Impersonate-User', as]];
  if (uid !== undefined) headers.push(['Impersonate-Uid', uid]);
  for (const g of groups) headers.push(['Impersonate-Group', g]);
  for (const [k, values] of extra) for (const v of values) headers.push([`Impersonate-Extra-${headerKeyEscape(k)}`, v]);
  // A header value cannot hold line breaks or other control characters.
  const bad = headers.find(([, v]) => [...v].some((c) => (c < ' ' && c !== '\t') || c === '\x7f'));
  if (bad)
    throw user.fail(
      bad[0] === 'Impersonate-User' ? 'as' : bad[0] === 'Impersonate-Uid' ? 'as-uid' : bad[0] === 'Impersonate-Group' ? 'as-groups' : 'as-user-extra',
      'an impersonation value holds a control character',
    );
  // Go sends a value's UTF-8 bytes as they are; Node sends a string's characters as Latin-1 bytes.
  return headers.map(([name, v]) => [name, Buffer.from(v, 'utf8').toString('latin1')]);
}

function delegated(cluster: Section, user: Section): Delegated | undefined {
  const proxyUrl = cluster.str('proxy-url');
  if (proxyUrl !== undefined && !(URL.canParse(proxyUrl) && PROXY_SCHEMES.has(new URL(proxyUrl).protocol))) {
    throw cluster.fail('proxy-url', 'proxy-url is not an http, https or socks5 URL');
  }
  const exec = user.section('exec');
  const provider = user.section('auth-provider');
  if (exec && provider) throw user.fail('exec', 'exec and auth-provider are both set; kubectl refuses that', 'keep one of them');
  const base = proxyUrl !== undefined ? { proxyUrl } : {};
  if (exec) {
    const settings = execOf(exec);
    return { reason: `exec plugin ${settings.command}`, exec: settings, ...base };
  }
  if (provider) {
    const name = provider.str('name');
    if (name === undefined) throw provider.fail('name', 'auth-provider needs a name');
    const config = provider.section('config');
    const values = Object.fromEntries(Object.keys(config?.raw ?? {}).map((k) => [k, config?.str(k) ?? '']));
    return { reason: `auth provider ${name}`, authProvider: { name, config: values }, ...base };
  }
  return proxyUrl !== undefined ? { reason: 'proxy-url', proxyUrl } : undefined;
}

const INTERACTIVE = new Set(['Never', 'IfAvailable', 'Always']);
const EXEC_V1 = 'client.authentication.k8s.io/v1';
const EXEC_API_VERSIONS = new Set([EXEC_V1, 'client.authentication.k8s.io/v1beta1']);

function execOf(exec: Section): ExecSettings {
  const command = exec.str('command');
  const apiVersion = exec.str('apiVersion');
  if (command === undefined) throw exec.fail('command', 'an exec plugin needs a command');
  if (apiVersion === undefined) throw exec.fail('apiVersion', 'an exec plugin needs an apiVersion');
  if (!EXEC_API_VERSIONS.has(apiVersion)) throw exec.fail('apiVersion', `exec plugin apiVersion ${apiVersion} is not ${[...EXEC_API_VERSIONS].join(' or ')}`);
  const envList = getOwn(exec.raw, 'env');
  if (envList !== undefined && envList !== null && !Array.isArray(envList)) throw exec.fail('env', 'env must be a list of name/value');
  const env = ((envList ?? []) as unknown[]).map((e, i) => {
    const s = new Section(exec.file, `${exec.path}.env[${i}]`, e);
    const name = s.str('name');
    if (name === undefined) throw s.fail('name', 'an exec env entry needs a name');
    return { name, value: s.str('value') ?? '' };
  });
  const mode = exec.str('interactiveMode');
  if (mode !== undefined && !INTERACTIVE.has(mode)) throw exec.fail('interactiveMode', `interactiveMode ${mode} is not Never, IfAvailable or Always`);
  // v1beta1 defaults to IfAvailable; v1 must say (client-go's defaults).
  if (mode === undefined && apiVersion === EXEC_V1)
    throw exec.fail('interactiveMode', `an exec plugin of ${EXEC_V1} needs interactiveMode (Never or IfAvailable)`);
  // @kubernetes/client-node runs the plugin without a terminal and without KUBERNETES_EXEC_INFO.
  if (mode === 'Always')
    throw exec.fail(
      'interactiveMode',
      'interactiveMode Always: fluxstrap runs exec plugins without a terminal',
      'use a plugin mode that logs in without prompting (IfAvailable or Never)',
    );
  if (exec.bool('provideClusterInfo'))
    throw exec.fail(
      'provideClusterInfo',
      'provideClusterInfo: fluxstrap cannot pass the cluster to exec plugins',
      'configure the plugin by args or env instead',
    );
  const installHint = exec.str('installHint');
  // As client-go: a command with a path separator is relative to the kubeconfig; a bare name is looked up on PATH.
  const resolved = command.includes(sep) && !isAbsolute(command) ? resolve(dirname(exec.file), command) : command;
  return { command: resolved, args: exec.strings('args'), env, apiVersion, ...(installHint !== undefined ? { installHint } : {}) };
}
