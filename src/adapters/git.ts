import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FluxstrapError } from '../core/errors.ts';
import { pendingTemps, removeTempDir } from './temp-files.ts';

/**
 * git through its CLI with argument arrays (no shell). Credentials never reach argv or a URL:
 * HTTPS basic auth travels as an `http.extraHeader` set through `GIT_CONFIG_*` environment
 * variables of the child only; SSH uses `GIT_SSH_COMMAND` with the key file, a pinned
 * known_hosts file and no agent or default identities.
 */

/** The Git credentials a cluster's auth settings name, read from their sources. Secret values: never print. */
export type GitCredentials =
  | { type: 'https'; username: string; password: string }
  | { type: 'ssh'; identity: string; knownHosts: string }
  | { type: 'github-app'; appId: string; installationId?: string; installationOwner?: string; privateKey: string; baseUrl?: string }
  | { type: 'none' };

export type GitAuth =
  | { kind: 'none' }
  /** `password` is a secret (a token): kept in memory, handed to git in its environment only. */
  | { kind: 'basic'; username: string; password: string }
  /** With `agentSocket`, `identityFile` is the public key of the agent's key to use (the private key is in no file). */
  | { kind: 'ssh'; identityFile: string; knownHostsFile: string; agentSocket?: string };

export interface GitRemote {
  url: string;
  auth: GitAuth;
}

export interface Checkout {
  dir: string;
  commit: string;
  /** Remove the clone (synchronous, so a run's last cleanup can call it). */
  remove: () => void;
}

const TIMEOUT_MS = 120_000;

/** A single-quoted word for the shell git runs GIT_SSH_COMMAND with. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function gitEnv(auth: GitAuth): Record<string, string> {
  const env: Record<string, string> = {
    // Fail instead of prompting: fluxstrap runs from make and CI.
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    SSH_ASKPASS: '',
  };
  const config: [string, string][] = [['credential.helper', '']];
  if (auth.kind === 'basic') {
    const token = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
    config.push(['http.extraHeader', `Authorization: Basic ${token}`]);
  }
  if (auth.kind === 'ssh') {
    env.GIT_SSH_COMMAND = [
      'ssh',
      '-F',
      '/dev/null',
      '-i',
      shQuote(auth.identityFile),
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `IdentityAgent=${auth.agentSocket === undefined ? 'none' : shQuote(auth.agentSocket)}`,
      '-o',
      `UserKnownHostsFile=${shQuote(auth.knownHostsFile)}`,
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=15',
    ].join(' ');
  }
  env.GIT_CONFIG_COUNT = String(config.length);
  for (const [i, [k, v]] of config.entries()) {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  }
  return env;
}

/** What went wrong talking to a remote, with a fix that fits the kind of credentials. */
function remoteError(stderr: string, remote: GitRemote, doing: string): FluxstrapError {
  // git's own last "fatal:" line names the cause (auth failed, not found, host key); it never
  // contains the credentials because they are in neither argv nor the URL.
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const fatal = [...lines].reverse().find((l) => l.startsWith('fatal:')) ?? lines[lines.length - 1] ?? 'git failed';
  const hint = /Remote branch .* not found/i.test(fatal)
    ? `name an existing branch with --branch (\`git ls-remote --heads ${remote.url}\` lists them)`
    : remote.auth.kind === 'basic'
      ? `check the username and that the token can read ${remote.url} (and has not expired)`
      : remote.auth.kind === 'ssh'
        ? `check that the deploy key ${remote.auth.identityFile} is allowed on the repository and that ${remote.auth.knownHostsFile} holds the server's host key`
        : 'the repository may need credentials: pass --git-token-env VAR (HTTPS; --git-username NAME if the server wants the account) or --git-ssh-key FILE --git-known-hosts FILE, or configure git.auth in fluxstrap.yaml';
  return new FluxstrapError('E_GIT', `cannot ${doing} ${remote.url}: ${fatal.replace(/^fatal:\s*/, '')}`, { hint });
}

async function git(args: string[], opts: { cwd?: string; auth?: GitAuth } = {}) {
  const { execa } = await import('execa');
  try {
    return await execa('git', args, {
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      env: gitEnv(opts.auth ?? { kind: 'none' }),
      reject: false,
      timeout: TIMEOUT_MS,
      stdin: 'ignore',
    });
  } catch (e) {
    throw new FluxstrapError('E_PROCESS', 'cannot run git', { hint: 'install git', cause: e });
  }
}

/** The refs a remote advertises (`refs/heads/main` → sha); proves the credentials can read it. */
async function lsRemote(remote: GitRemote, refs: string[] = []): Promise<Map<string, string>> {
  const res = await git(['ls-remote', '--', remote.url, ...refs], { auth: remote.auth });
  if (res.exitCode !== 0) {
    if (res.code === 'ENOENT') throw new FluxstrapError('E_PROCESS', 'git is not installed', { hint: 'install git' });
    if (res.timedOut) throw new FluxstrapError('E_GIT', `git ls-remote ${remote.url} timed out`, { hint: 'check that the Git server is reachable' });
    throw remoteError(res.stderr, remote, 'read');
  }
  const out = new Map<string, string>();
  for (const line of res.stdout.split('\n')) {
    const [sha, ref] = line.split('\t');
    if (sha && ref) out.set(ref, sha);
  }
  return out;
}

/** The commit a branch points at on the remote. */
export async function remoteBranchHead(remote: GitRemote, branch: string): Promise<string> {
  const ref = `refs/heads/${branch}`;
  const sha = (await lsRemote(remote, [ref])).get(ref);
  if (!sha) {
    throw new FluxstrapError('E_NOT_FOUND', `branch ${branch} does not exist in ${remote.url}`, {
      hint: 'push the branch first, or name the right one in fluxstrap.yaml (branch)',
    });
  }
  return sha;
}

/**
 * Clone one branch, shallow, into a new temp dir: mode 0700 (mkdtemp), removed by `remove()` or,
 * if the process is stopped first, by the signal handler. The credentials are in git's
 * environment only, so nothing in the clone (.git/config included) holds them.
 */
export async function cloneBranch(remote: GitRemote, branch: string): Promise<Checkout> {
  // Synchronous, so that no signal can be handled between the folder appearing and its registration.
  const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-clone-'));
  pendingTemps.add(dir);
  const remove = () => removeTempDir(dir);
  try {
    const res = await git(['clone', '--quiet', '--depth', '1', '--single-branch', '--no-tags', '--branch', branch, '--', remote.url, dir], {
      auth: remote.auth,
    });
    if (res.exitCode !== 0) throw remoteError(res.stderr, remote, `clone branch ${branch} of`);
    return { dir, commit: await revParse(dir), remove };
  } catch (e) {
    remove();
    throw e;
  }
}

export async function revParse(dir: string, rev = 'HEAD'): Promise<string> {
  const res = await git(['rev-parse', '--verify', '--end-of-options', `${rev}^{commit}`], { cwd: dir });
  if (res.exitCode !== 0) {
    throw new FluxstrapError('E_GIT', `cannot resolve ${rev}: ${res.stderr.split('\n')[0] ?? ''}`, { location: { file: dir } });
  }
  return res.stdout.trim();
}

/** Whether `dir` is inside a Git work tree (commits or not). */
export async function isWorkTree(dir: string): Promise<boolean> {
  const res = await git(['rev-parse', '--is-inside-work-tree'], { cwd: dir });
  return res.exitCode === 0 && res.stdout.trim() === 'true';
}

/** No uncommitted or untracked changes under `path` (relative to the repository root). */
export async function isClean(dir: string, path: string): Promise<boolean> {
  const res = await git(['status', '--porcelain', '--untracked-files=all', '--', path], { cwd: dir });
  return res.exitCode === 0 && res.stdout.trim() === '';
}

/** Whether the remote has the branch (an empty repository has none). */
export async function hasRemoteBranch(remote: GitRemote, branch: string): Promise<boolean> {
  return (await lsRemote(remote, [`refs/heads/${branch}`])).has(`refs/heads/${branch}`);
}

/**
 * Commit `files` (relative to `dir`, those that exist) on the current branch, making `dir` a
 * repository on `branch` first when it is none. Only the named files are staged, so nothing else
 * of the work tree (a plaintext Secret, a key) is swept in. Undefined when there was nothing to commit.
 */
export async function commitFiles(dir: string, files: string[], message: string, branch: string): Promise<string | undefined> {
  const run = async (args: string[], doing: string) => {
    const res = await git(args, { cwd: dir });
    if (res.exitCode !== 0)
      throw new FluxstrapError('E_GIT', `cannot ${doing}: ${res.stderr.split('\n').find((l) => l.trim() !== '') ?? 'git failed'}`, { location: { file: dir } });
    return res.stdout;
  };
  if (!(await isWorkTree(dir))) await run(['init', '--quiet', '--initial-branch', branch], 'create the Git repository');
  if (files.length > 0) await run(['add', '--', ...files], 'stage the layout');
  const staged = await git(['diff', '--cached', '--quiet'], { cwd: dir });
  if (staged.exitCode === 0) return undefined;
  // Without a configured identity (a fresh machine, CI) git refuses to commit: sign as fluxstrap then.
  const named = (await git(['config', 'user.email'], { cwd: dir })).exitCode === 0;
  await run(
    [...(named ? [] : ['-c', 'user.name=fluxstrap', '-c', 'user.email=fluxstrap@localhost']), 'commit', '--quiet', '--no-verify', '-m', message],
    'commit the layout',
  );
  return revParse(dir);
}

/** Push HEAD to a new branch of the remote; never forced, so a branch that appeared meanwhile is left alone. */
export async function pushNewBranch(remote: GitRemote, dir: string, branch: string): Promise<void> {
  const res = await git(['push', '--quiet', '--', remote.url, `HEAD:refs/heads/${branch}`], { cwd: dir, auth: remote.auth });
  if (res.exitCode !== 0) throw remoteError(res.stderr, remote, `push branch ${branch} to`);
}
