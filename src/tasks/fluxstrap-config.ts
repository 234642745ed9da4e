import { execFile } from 'node:child_process';
import { homedir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { isAlias, isMap, isScalar } from 'yaml';
import { isDeepStrictEqual } from 'node:util';
import type { Document, YAMLMap } from 'yaml';
import { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import { version } from '../core/version.ts';
import { checkGiteaApiUrl, clusterEntryOf, CONFIG_FILE, expandPath, FluxstrapConfigSchema, parseConfig } from '../cluster/config.ts';
import type { ClusterConfig } from '../cluster/config.ts';
import type { SshKeyAlgorithm } from '../keys/ssh.ts';
import { configError, isFluxstrapError, usageError } from '../core/errors.ts';
import { fileKind } from './file-content.ts';
import type { FileState } from './file-content.ts';
import { parseEditable, rootMap, str } from './yaml-edit.ts';

/**
 * The cluster's entry in `fluxstrap.yaml`, so that `fluxstrap bootstrap` (and `make provision`)
 * find the cluster folder, the Git source and the age key without flags. The file is the user's:
 * comments, order and other clusters stay as they are, a setting they wrote is never removed,
 * and only what is missing is added — except a value given now (a flag), which wins.
 */

const clusterName = FluxstrapConfigSchema.shape.clusters.keyType;
const clusterEntry = FluxstrapConfigSchema.shape.clusters.valueType;

export const fluxstrapConfigParams = z.object({
  cluster: z.string(),
  /** Given now (flags): written, replacing a different value of the same setting. */
  set: clusterEntry.default({}),
  /** Found rather than given (the origin remote): written only where the entry has no value. */
  fill: clusterEntry.default({}),
});
/** As written, before the schema's defaults: a username init was not given must not be written. */
export type FluxstrapConfigParams = z.input<typeof fluxstrapConfigParams>;
type Entry = z.input<typeof clusterEntry>;

/** Where an installed fluxstrap keeps the schema; editors can read it offline and it matches that version. */
const LOCAL_SCHEMA = 'node_modules/fluxstrap/schema/fluxstrap.schema.json';

/** Settings that are one of several shapes (`ageKey: {file} | {env} | {ansibleVault}`, `auth: {https} | {ssh}`). */
const ONE_OF = new Set(['ageKey', 'auth', 'pgp', 'sopsKey']);
/** Settings beside the shape in a one-of setting (`auth: {https, sopsFile}`). */
const SHARED = new Set(['sopsFile', 'publicKeys']);

/** New keys go in the schema's order (path, kube, git, ageKey; url, branch, auth), as the README shows them. */
const KEY_ORDER = [...Object.keys(clusterEntry.shape), ...Object.keys(clusterEntry.shape.git.unwrap().shape)];
const rank = (key: string) => (KEY_ORDER.includes(key) ? KEY_ORDER.indexOf(key) : KEY_ORDER.length);

type Tree = { readonly [key: string]: unknown };
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null;

interface Merge {
  /** `git.url`-style paths of the settings added. */
  added: string[];
  /** `git.branch to dev (was main)`. */
  updated: string[];
  /** Settings of another shape the user chose, kept instead of ours. */
  kept: string[];
}

/**
 * Add `set` and `fill` to the entry map. A setting of a one-of shape that the user chose
 * differently (an age key from `env` where we know a `file`) is kept: replacing it would remove
 * what they wrote, and `--key-file` may be only where init takes the public key from.
 */
function merge(doc: Document, map: YAMLMap, set: Tree, fill: Tree, at: string, out: Merge): void {
  const keys = [...new Set([...Object.keys(set), ...Object.keys(fill)])].sort((a, b) => rank(a) - rank(b));
  for (const key of keys) {
    const given = set[key];
    const want = given ?? fill[key];
    if (want === undefined) continue;
    const path = at === '' ? key : `${at}.${key}`;
    const node = own(doc, map, key);
    const absent = node === undefined || (isScalar(node) && node.value === null);
    if (isTree(want)) {
      // `auth.sopsFile` goes with either shape, so it alone is no other choice of shape.
      const shapes = Object.keys(want).filter((k) => !SHARED.has(k));
      if (isMap(node) && ONE_OF.has(key) && shapes.length > 0 && !shapes.some((k) => node.has(k))) {
        out.kept.push(`${path}.${node.items.map((p) => str(p.key)).join(',')}`);
        continue;
      }
      merge(doc, mapAt(doc, map, key), isTree(given) ? given : {}, isTree(fill[key]) ? fill[key] : {}, path, out);
    } else if (absent) {
      map.set(key, want);
      out.added.push(path);
    } else if (typeof given === 'string' && str(node) !== given) {
      out.updated.push(`${path} to ${given} (was ${str(node) ?? 'a value'})`);
      // Changing the scalar in place keeps the comment written next to it.
      if (isScalar(node)) node.value = given;
      else map.set(key, given);
    }
  }
}

/**
 * The node under `key`. An alias (`git: *shared`, common when clusters share settings) becomes the
 * entry's own copy, so that editing it neither drops what the anchor holds nor changes the other
 * entries that share it.
 */
function own(doc: Document, map: YAMLMap, key: string): unknown {
  const node = map.get(key, true);
  if (!isAlias(node)) return node;
  const target = node.resolve(doc);
  if (target === undefined) return node;
  const copy = target.clone() as typeof target;
  delete copy.anchor;
  map.set(key, copy);
  return copy;
}

/** The map under `key`, created when absent (the file was validated: nothing else can be there). */
function mapAt(doc: Document, map: YAMLMap, key: string): YAMLMap {
  const node = own(doc, map, key);
  if (isMap(node)) return node;
  const created = doc.createNode({}) as YAMLMap;
  map.set(key, created);
  return created;
}

/** The file as it would be, with what changed; undefined when the cluster cannot have an entry. */
function plan(p: FluxstrapConfigParams, state: FileState): { text: string; merge: Merge; created: boolean } | undefined {
  const { content } = state;
  const y = parseEditable(content ?? '', CONFIG_FILE);
  const existing = rootMap(y, CONFIG_FILE, CONFIG_FILE);
  // The loader's own check: what it rejects, bootstrap would reject too, at the same line.
  if (existing !== undefined) parseConfig(content ?? '', CONFIG_FILE);
  if (!clusterName.safeParse(p.cluster).success) return undefined;

  const root = existing ?? (y.doc.contents = y.doc.createNode({}) as YAMLMap);
  if (content === undefined) root.commentBefore = ` yaml-language-server: $schema=${schemaRef(state)}`;
  const clusters = mapAt(y.doc, root, 'clusters');
  const created = !clusters.has(p.cluster);
  const entry = mapAt(y.doc, clusters, p.cluster);
  // The default folder is not written: the entry then follows the convention, as the README shows.
  const given = p.set ?? {};
  const { path: folder, ...rest } = given;
  const set = folder === `clusters/${p.cluster}` && !entry.has('path') ? rest : given;
  const out: Merge = { added: [], updated: [], kept: [] };
  merge(y.doc, entry, set, p.fill ?? {}, '', out);
  const edited = y.toString();
  let after;
  try {
    after = parseConfig(edited, CONFIG_FILE);
  } catch (e) {
    if (!isFluxstrapError(e)) throw e;
    throw configError(`the entry for cluster ${p.cluster} would be invalid: ${e.message}`, {
      file: CONFIG_FILE,
      ...(e.location?.field ? { field: e.location.field } : {}),
    });
  }
  // Copying an alias to edit it changes the text, not the settings: then the file stays as written.
  const text = existing !== undefined && isDeepStrictEqual(after, parseConfig(content ?? '', CONFIG_FILE)) ? (content ?? '') : edited;
  return { text, merge: out, created };
}

function schemaRef(state: FileState): string {
  return state.inputs[LOCAL_SCHEMA] !== undefined ? `./${LOCAL_SCHEMA}` : `https://unpkg.com/fluxstrap@${version}/schema/fluxstrap.schema.json`;
}

export const fluxstrapConfigKind = fileKind<FluxstrapConfigParams>({
  kind: 'fluxstrap-config',
  params: fluxstrapConfigParams,
  file: () => CONFIG_FILE,
  inputs: () => [LOCAL_SCHEMA],
  desired(p, state) {
    const planned = plan(p, state);
    if (planned === undefined || planned.text === state.content) return undefined;
    const { added, updated } = planned.merge;
    const parts = [
      ...(added.length > 0 ? [`${planned.created ? 'add cluster' : 'add to cluster'} ${p.cluster}: ${added.join(', ')}`] : []),
      ...updated.map((u) => `set clusters.${p.cluster}.${u}`),
    ];
    return { content: planned.text, summary: parts.join('; ') || `add cluster ${p.cluster}` };
  },
  notes(p, state) {
    if (!clusterName.safeParse(p.cluster).success) {
      return [
        `cluster "${p.cluster}" is not in ${CONFIG_FILE}, whose cluster names are lowercase DNS labels: run init with --cluster ${p.cluster.toLowerCase().replace(/[^a-z0-9-]/g, '-')} --path ${p.set?.path ?? `clusters/${p.cluster}`}`,
      ];
    }
    const planned = plan(p, state);
    const kept = (planned?.merge.kept ?? []).map((k) => `kept clusters.${p.cluster}.${k} as written in ${CONFIG_FILE}`);
    const git = planned === undefined ? undefined : clusterEntryOf(parseConfig(planned.text, CONFIG_FILE), p.cluster)?.git;
    // Flux uses a token only over HTTPS and a deploy key only over SSH; bootstrap would fail late.
    const scheme = git?.url?.startsWith('ssh://') ? 'ssh' : 'https';
    const mismatch = git?.url !== undefined && git.auth !== undefined && ('https' in git.auth || 'ssh' in git.auth) && !Object.hasOwn(git.auth, scheme);
    return mismatch ? [...kept, `git.auth of cluster ${p.cluster} does not fit its ${scheme} URL ${git.url ?? ''}: Flux would not use it`] : kept;
  },
});

/** The init flags that describe the cluster's Git source in fluxstrap.yaml. */
export interface GitFlags {
  gitUrl?: string;
  branch?: string;
  gitTokenEnv?: string;
  gitUsername?: string;
  gitSshKey?: string;
  gitKnownHosts?: string;
  /** Algorithm of a deploy key generated for an ssh:// URL (ed25519 when not given). */
  sshKeyAlgorithm?: SshKeyAlgorithm;
  /** GitHub Enterprise Server's API: written as git.github.apiUrl, with provider github. */
  githubApiUrl?: string;
  /** git.provider, for a host its URL does not tell (a self-hosted Gitea or Forgejo). */
  gitProvider?: 'github' | 'gitea' | 'generic';
  /** Gitea's API root: written as git.gitea.apiUrl, with provider gitea. */
  giteaApiUrl?: string;
  /** git.auth.sopsFile: the Git credential Secret encrypted in the repository (true: the default path). */
  gitSopsFile?: string | true;
}

/** Where init keeps the encrypted Git credentials by default: outside flux-system/, which must hold no SOPS file. */
export const defaultGitSopsFile = (cluster: string) => `bootstrap/${cluster}/git-credentials.sops.yaml`;

/**
 * Where init puts a deploy key it generates: the private key under the user's config folder (never
 * in the repository), the host keys (public) next to the cluster's manifests, committed.
 */
export const defaultDeployKeyFiles = (cluster: string, clusterPath: string) => ({
  keyFile: `~/.config/fluxstrap/${cluster}-deploy-key`,
  knownHostsFile: `${clusterPath}/known_hosts`,
});

/**
 * The params of init's fluxstrap.yaml task: the flags as `set`, the origin remote as `fill`.
 * `ageKeyFile` is the --key-file when it holds age identities (a PGP key is no sops-age source);
 * `pgpKeyFile` the cluster's PGP private key (`--sops-backend pgp --pgp-key-file`).
 * `vaultKey` the Vault that decrypts in the cluster instead (`--sops-backend vault`).
 */
export async function fluxstrapConfigTaskParams(
  repo: string,
  cluster: string,
  clusterPath: string,
  flags: GitFlags & { path?: string; ageKeyFile?: string | undefined; pgpKeyFile?: string | undefined; sopsKey?: Entry['sopsKey'] | undefined },
  cwd: string,
): Promise<FluxstrapConfigParams> {
  if (flags.gitSshKey !== undefined && flags.gitTokenEnv !== undefined) throw usageError('--git-token-env and --git-ssh-key are alternatives: pass one');
  if (flags.gitUsername !== undefined && flags.gitSshKey !== undefined)
    throw usageError('--git-username is for HTTPS auth: SSH takes the user from --git-url (ssh://USER@host/…)');
  // HTTP basic auth joins user and token with a colon: a colon in the user name would cut it short.
  if (flags.gitUsername !== undefined && !/^[^:\s]+$/.test(flags.gitUsername)) {
    throw usageError(
      `--git-username ${JSON.stringify(flags.gitUsername)}: a user name has no colon or whitespace`,
      'the account name on the Git server, e.g. flux-bot',
    );
  }
  const url = flags.gitUrl === undefined ? undefined : fluxGitUrl(flags.gitUrl);
  if (flags.gitUrl !== undefined && url === undefined) {
    throw usageError(
      `--git-url ${flags.gitUrl}: Flux pulls from https:// or ssh:// URLs`,
      'e.g. https://github.com/me/fleet.git or git@github.com:me/fleet.git',
    );
  }
  if (flags.gitUrl !== undefined && hasPassword(flags.gitUrl)) {
    throw usageError(
      `--git-url must not carry a password: ${CONFIG_FILE} is committed`,
      'name the environment variable holding the token with --git-token-env',
    );
  }
  const current = await configuredEntry(repo, cluster);
  // A file the entry already names, however it is spelt there, is no change to make.
  const keep = (written: string | undefined, file: string, spelt: string) => (written !== undefined && expandPath(written, repo) === file ? written : spelt);
  const stored = (file: string, written: string | undefined) => keep(written, expandPath(file, cwd), configPath(file, repo, cwd));
  const ssh = current?.git?.auth !== undefined && 'ssh' in current.git.auth ? current.git.auth.ssh : undefined;
  const age = current?.ageKey !== undefined && 'file' in current.ageKey ? current.ageKey.file : undefined;
  const pgp = current?.sopsKey?.pgp !== undefined && 'file' in current.sopsKey.pgp ? current.sopsKey.pgp.file : undefined;
  const https = current?.git?.auth !== undefined && 'https' in current.git.auth ? current.git.auth.https : undefined;
  // The user name alone completes HTTPS auth the entry already has; without it, it needs the token.
  const tokenEnv = flags.gitTokenEnv ?? (flags.gitUsername !== undefined ? https?.passwordEnv : undefined);
  if (flags.gitUsername !== undefined && tokenEnv === undefined) {
    throw usageError('--git-username needs --git-token-env', 'HTTPS auth is a user name and a token: name the environment variable holding the token');
  }
  // An ssh:// URL given now with no key named gets a generated deploy key (the init tasks make it).
  const generated = url?.startsWith('ssh://') === true && tokenEnv === undefined && ssh === undefined ? defaultDeployKeyFiles(cluster, clusterPath) : undefined;
  if (flags.sshKeyAlgorithm !== undefined && (url ?? current?.git?.url)?.startsWith('ssh://') !== true) {
    throw usageError('--ssh-key-algorithm is for an ssh:// Git URL', 'pass --git-url ssh://git@host/owner/repo.git (or git@host:owner/repo.git)');
  }
  const sshFlags = flags.gitSshKey !== undefined || flags.gitKnownHosts !== undefined || generated !== undefined || flags.sshKeyAlgorithm !== undefined;
  const auth =
    tokenEnv !== undefined
      ? { https: { ...(flags.gitUsername !== undefined ? { username: flags.gitUsername } : {}), passwordEnv: tokenEnv } }
      : sshFlags
        ? {
            ssh: {
              keyFile:
                flags.gitSshKey !== undefined
                  ? stored(flags.gitSshKey, ssh?.keyFile)
                  : (ssh?.keyFile ?? generated?.keyFile ?? defaultDeployKeyFiles(cluster, clusterPath).keyFile),
              knownHostsFile:
                flags.gitKnownHosts !== undefined
                  ? stored(flags.gitKnownHosts, ssh?.knownHostsFile)
                  : (ssh?.knownHostsFile ?? defaultDeployKeyFiles(cluster, clusterPath).knownHostsFile),
              ...(flags.sshKeyAlgorithm !== undefined ? { keyAlgorithm: flags.sshKeyAlgorithm } : {}),
            },
          }
        : undefined;
  if (typeof flags.gitSopsFile === 'string' && flags.gitSopsFile.replace(/\\/g, '/').split('/').includes('flux-system')) {
    throw usageError(
      `--git-sops-file ${flags.gitSopsFile} must be outside flux-system/: kustomize-controller would apply it before it has the key`,
      `e.g. --git-sops-file ${defaultGitSopsFile(cluster)}`,
    );
  }
  const writtenAuth = current?.git?.auth;
  const writtenSopsFile = writtenAuth !== undefined && 'sopsFile' in writtenAuth ? writtenAuth.sopsFile : undefined;
  const sopsFile =
    flags.gitSopsFile === undefined
      ? undefined
      : flags.gitSopsFile === true
        ? (writtenSopsFile ?? defaultGitSopsFile(cluster))
        : stored(flags.gitSopsFile, writtenSopsFile);
  const withSops = sopsFile === undefined ? auth : { ...auth, sopsFile };
  const git = {
    ...(url !== undefined ? { url } : {}),
    ...(flags.branch !== undefined ? { branch: flags.branch } : {}),
    ...(withSops ? { auth: withSops } : {}),
    ...providerFlags(flags, current?.git?.gitea !== undefined),
  };
  const set: Entry = {
    ...(flags.path !== undefined ? { path: keep(current?.path, join(repo, clusterPath), clusterPath) } : {}),
    ...(Object.keys(git).length > 0 ? { git } : {}),
    ...(flags.ageKeyFile !== undefined ? { ageKey: { file: stored(flags.ageKeyFile, age) } } : {}),
    ...(flags.pgpKeyFile !== undefined ? { sopsKey: { pgp: { file: stored(flags.pgpKeyFile, pgp) } } } : {}),
    ...(flags.sopsKey !== undefined ? { sopsKey: withStoredFile(flags.sopsKey, (f) => configPath(f, repo, cwd)) } : {}),
  };
  const checked = clusterEntry.safeParse(set);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw usageError(`invalid ${issue?.path.join('.') ?? 'value'} for ${CONFIG_FILE}: ${issue?.message ?? ''}`);
  }
  return { cluster, set, fill: url === undefined ? await fromOrigin(repo) : {} };
}

/** git.provider and its API settings from --git-provider, --github-api-url and --gitea-api-url. */
function providerFlags(flags: GitFlags, giteaWritten: boolean): Pick<NonNullable<Entry['git']>, 'provider' | 'github' | 'gitea'> {
  const provider = flags.gitProvider ?? (flags.githubApiUrl !== undefined ? 'github' : flags.giteaApiUrl !== undefined ? 'gitea' : undefined);
  for (const [flag, value, of] of [
    ['--github-api-url', flags.githubApiUrl, 'github'],
    ['--gitea-api-url', flags.giteaApiUrl, 'gitea'],
  ] as const) {
    if (value !== undefined && provider !== of)
      throw usageError(`${flag} is for --git-provider ${of}, not ${provider ?? ''}`, `drop ${flag}, or pass --git-provider ${of}`);
  }
  if (flags.giteaApiUrl !== undefined) checkGiteaApiUrl(flags.giteaApiUrl);
  if (provider === 'gitea' && flags.giteaApiUrl === undefined && !giteaWritten) {
    throw usageError(
      '--git-provider gitea needs --gitea-api-url',
      "fluxstrap calls Gitea's API at the root it is given, e.g. --gitea-api-url https://gitea.example.com/api/v1",
    );
  }
  return {
    ...(provider !== undefined ? { provider } : {}),
    ...(flags.githubApiUrl !== undefined ? { github: { apiUrl: flags.githubApiUrl } } : {}),
    ...(flags.giteaApiUrl !== undefined ? { gitea: { apiUrl: flags.giteaApiUrl } } : {}),
  };
}

/** A Service Principal's credentials file, typed relative to cwd, as fluxstrap.yaml holds paths. */
function withStoredFile(key: NonNullable<Entry['sopsKey']>, store: (file: string) => string): NonNullable<Entry['sopsKey']> {
  const sp = key.azureKv?.servicePrincipal;
  if (!key.azureKv || sp?.file === undefined) return key;
  return { azureKv: { ...key.azureKv, servicePrincipal: { ...sp, file: store(sp.file) } } };
}

/** The cluster's entry in the repository's fluxstrap.yaml, errors naming the file as the repository knows it. */
export async function configuredEntry(repo: string, cluster: string): Promise<ClusterConfig | undefined> {
  const text = await readTextIfExists(join(repo, CONFIG_FILE));
  return text === undefined ? undefined : clusterEntryOf(parseConfig(text, CONFIG_FILE), cluster);
}

/**
 * A path as fluxstrap.yaml should hold it. The loader reads `~/` as the home folder and relative
 * paths against the repository, so: `~` is kept, a relative path (typed relative to where the user
 * stands) is re-anchored on the repository, and an absolute path inside the repository or the home
 * folder is written relative to it — the committed file then works in every clone and for teammates.
 */
export function configPath(given: string, repo: string, cwd: string, home = homedir()): string {
  if (given === '~' || given.startsWith('~/')) return given;
  const abs = resolve(cwd, given);
  const under = (dir: string) => {
    const rel = relative(dir, abs);
    return rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel) ? rel.split(sep).join('/') : undefined;
  };
  if (!isAbsolute(given)) return relative(repo, abs).split(sep).join('/');
  const inRepo = under(repo);
  if (inRepo !== undefined) return inRepo;
  const inHome = under(home);
  return inHome !== undefined ? `~/${inHome}` : abs;
}

/**
 * A Git remote URL as Flux's GitRepository accepts it: http(s):// or ssh://. The scp-like form
 * git users type (`git@host:owner/repo.git`) becomes `ssh://git@host/owner/repo.git`; credentials
 * are dropped (Flux takes them from the Secret, and this file is committed). Local paths, file://
 * and git:// are nothing Flux can pull from: undefined.
 */
export function fluxGitUrl(remote: string): string | undefined {
  const raw = remote.trim().replace(/^(git\+ssh|ssh\+git):\/\//, 'ssh://');
  // git's rule: a colon before any slash, and no scheme, is the scp-like syntax.
  const scp = /^(?:([^@/:]+)@)?([^/:]+):(?!\/\/)(.+)$/.exec(raw);
  if (!raw.includes('://') && scp) {
    const [, user, host, path] = scp;
    return `ssh://${user !== undefined ? `${user}@` : ''}${host ?? ''}/${(path ?? '').replace(/^\/+/, '')}`;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:' && url.protocol !== 'ssh:') return undefined;
  url.password = '';
  if (url.protocol !== 'ssh:') url.username = '';
  return url.href;
}

function hasPassword(raw: string): boolean {
  try {
    return new URL(raw).password !== '';
  } catch {
    return false;
  }
}

const run = promisify(execFile);

/** git's answer, or undefined when there is none (no git, not a repository, no such remote). */
async function gitOutput(repo: string, args: string[]): Promise<string | undefined> {
  try {
    const out = (await run('git', ['-C', repo, ...args], { timeout: 10_000 })).stdout.trim();
    return out === '' ? undefined : out;
  } catch {
    return undefined;
  }
}

/**
 * The `origin` remote as Flux would pull it, and its default branch when the clone recorded it
 * (origin/HEAD). The current branch is not used: init may well run on a feature branch.
 */
async function fromOrigin(repo: string): Promise<Entry> {
  const remote = await gitOutput(repo, ['remote', 'get-url', 'origin']);
  const url = remote === undefined ? undefined : fluxGitUrl(remote);
  if (url === undefined) return {};
  const head = await gitOutput(repo, ['symbolic-ref', '--quiet', '--short', 'refs/remotes/origin/HEAD']);
  const branch = head?.startsWith('origin/') ? head.slice('origin/'.length) : undefined;
  return { git: { url, ...(branch !== undefined ? { branch } : {}) } };
}
