import { join } from 'node:path';
import type { GitRemote } from '../adapters/git.ts';
import { FluxstrapError } from '../core/errors.ts';
import { CONFIG_FILE, findRepo, loadConfig, resolveCluster, resolveGit } from './config.ts';
import type { ClusterFlags, GitAuth, ResolvedCluster } from './config.ts';

/**
 * A run that starts from nothing but flags: no checkout, no fluxstrap.yaml (the machine that had
 * them is gone). The branch is cloned into a private temporary folder, its fluxstrap.yaml read
 * (flags still win) and the run works from that commit; the folder goes when the run ends.
 */

/** The token of HTTPS auth, from the variable the settings name; unset or empty is an error naming the variable only. */
export function gitToken(auth: { passwordEnv: string }, env: NodeJS.ProcessEnv, cluster: string | undefined): string {
  const token = env[auth.passwordEnv];
  if (token === undefined || token === '') {
    const of = cluster === undefined ? 'the Git token' : `the Git token of cluster "${cluster}"`;
    throw new FluxstrapError('E_NOT_FOUND', `environment variable ${auth.passwordEnv} (${of}) is ${token === undefined ? 'not set' : 'empty'}`, {
      hint: `export ${auth.passwordEnv}=<token> before running, e.g. from your password manager`,
    });
  }
  return token;
}

/**
 * The remote git talks to, with the secret it needs (a token in memory; an SSH key stays a file).
 * A GitHub App pulls over HTTPS with an installation token as the password of `x-access-token`,
 * as source-controller does; `token` gives it (minted by the caller, who has the App's key).
 */
export function gitRemoteOf(url: string, auth: GitAuth, token: (auth: Extract<GitAuth, { type: 'https' | 'github-app' }>) => string): GitRemote {
  switch (auth.type) {
    case 'none':
      return { url, auth: { kind: 'none' } };
    case 'https':
      return { url, auth: { kind: 'basic', username: auth.username, password: token(auth) } };
    case 'ssh':
      return { url, auth: { kind: 'ssh', identityFile: auth.keyFile, knownHostsFile: auth.knownHostsFile } };
    case 'github-app':
      return { url, auth: { kind: 'basic', username: 'x-access-token', password: token(auth) } };
  }
}

/** A resolved cluster and what to do when the run is over (remove a temporary clone). */
export interface RunCluster {
  cluster: ResolvedCluster;
  close: () => void;
}

/**
 * The cluster a run means. With a fluxstrap.yaml (or --repo, or a Git work tree here) as
 * resolveClusterFlags; in a folder that is none of these but with a Git URL given, from a
 * temporary clone of the branch.
 */
export async function resolveRunCluster(flags: ClusterFlags, env: NodeJS.ProcessEnv, cwd: string): Promise<RunCluster> {
  const repoDir = findRepo(flags.repo, env, cwd);
  const configFile = join(repoDir, CONFIG_FILE);
  const config = await loadConfig(configFile);
  const local = (): RunCluster => ({ cluster: resolveCluster(config, flags, env, { repoDir, cwd, configFile }), close: () => undefined });
  const repoGiven = flags.repo !== undefined || (env.FLUXSTRAP_REPO ?? '') !== '';
  if (config !== undefined || repoGiven) return local();
  const git = resolveGit(undefined, flags, env, { repoDir: cwd, cwd });
  const { cloneBranch, isWorkTree } = await import('../adapters/git.ts');
  if (git.url === undefined || (await isWorkTree(cwd))) return local();

  // Flags and FLUXSTRAP_* variables name no App: its settings live in fluxstrap.yaml only.
  const checkout = await cloneBranch(
    gitRemoteOf(git.url, git.auth, (auth) => (auth.type === 'https' ? gitToken(auth, env, flags.cluster) : '')),
    git.branch,
  );
  try {
    const cloned = join(checkout.dir, CONFIG_FILE);
    const cluster = resolveCluster(await loadConfig(cloned), flags, env, { repoDir: checkout.dir, cwd, configFile: cloned });
    return { cluster: { ...cluster, temporaryClone: true }, close: checkout.remove };
  } catch (e) {
    checkout.remove();
    throw e;
  }
}
