import type { Octokit } from '@octokit/rest';
import { z } from 'zod';
import { githubRepoOf } from '../cluster/config.ts';
import type { GitCredentials } from '../adapters/git.ts';
import type { ResolvedCluster } from '../cluster/config.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { version } from '../core/version.ts';
import type { AppSession } from './github-app.ts';

/**
 * The cluster's repository on GitHub, reachable with the token and with the access the run needs
 * (admin for deploy keys, read for HTTPS pulls); created when missing and asked for
 * (`init --create-repo`). Every refusal comes before anything is changed, as one line with the fix.
 */

/** Where the repository is and how fluxstrap reaches GitHub: from the params, else the cluster. */
export const GitHubTarget = z.strictObject({
  url: z.string().min(1).optional().describe("Git URL of the repository on GitHub; default the cluster's git.url."),
  apiUrl: z.string().min(1).optional().describe('GitHub REST API; default git.github.apiUrl, else https://api.github.com.'),
  tokenEnv: z.string().min(1).optional().describe('Environment variable holding the token; default git.github.tokenEnv.'),
});

export interface GitHubContext {
  readonly cluster?: ResolvedCluster;
  readonly env: NodeJS.ProcessEnv;
  readonly rotateSecrets?: boolean;
  log?(message: string): void;
  /** bootstrap's credentials: the deploy key when it is only in git.auth.sopsFile. */
  gitCredentials?(): Promise<GitCredentials>;
}

export interface GitHubRepo {
  gh: Octokit;
  owner: string;
  repo: string;
  tokenEnv: string;
  /** With `git.auth.githubApp`: the App's installation, whose token proved it reads the repository. */
  app?: AppSession;
}

const TOKEN_HINT = 'a fine-grained token with Administration (read and write) and Contents (read) on the repository, or a classic token with the repo scope';

/** Connect for the repository the params or the cluster name; the token must be set. */
export async function githubRepo(p: z.infer<typeof GitHubTarget>, ctx: GitHubContext): Promise<GitHubRepo> {
  const url = p.url ?? ctx.cluster?.git.url;
  const target = url === undefined ? undefined : githubRepoOf(url);
  if (url === undefined || target === undefined) {
    throw new FluxstrapError('E_USAGE', `no GitHub repository in the Git URL ${url ?? '(none)'}`, {
      hint: 'git.url must be https://github.com/OWNER/REPO(.git) or ssh://git@github.com/OWNER/REPO(.git)',
    });
  }
  const settings = ctx.cluster?.git.github;
  const auth = ctx.cluster?.git.auth;
  if (auth?.type === 'github-app' && p.tokenEnv === undefined) {
    const { githubAppSession } = await import('./github-app.ts');
    const apiUrl = p.apiUrl ?? settings?.apiUrl;
    const app = await githubAppSession(auth, {
      ...target,
      env: ctx.env,
      ...(apiUrl !== undefined ? { apiUrl } : {}),
      ...(ctx.log ? { log: (m: string) => ctx.log?.(m) } : {}),
    });
    return { gh: app.gh, ...target, tokenEnv: '', app };
  }
  const tokenEnv = p.tokenEnv ?? settings?.tokenEnv ?? 'GITHUB_TOKEN';
  if ((ctx.env[tokenEnv] ?? '') === '') {
    throw new FluxstrapError('E_NOT_FOUND', `environment variable ${tokenEnv} (the GitHub token) is not set`, { hint: `export ${tokenEnv}: ${TOKEN_HINT}` });
  }
  const { connectGitHub } = await import('../adapters/github.ts');
  const apiUrl = p.apiUrl ?? settings?.apiUrl;
  const gh = await connectGitHub({
    env: ctx.env,
    tokenEnv,
    userAgent: `fluxstrap/${version}`,
    ...(apiUrl !== undefined ? { baseUrl: apiUrl } : {}),
    ...(ctx.log ? { progress: (m: string) => ctx.log?.(m) } : {}),
    ...(ctx.env.FLUXSTRAP_GITHUB_RETRY_BASE_MS ? { retryAfterBaseMs: Number(ctx.env.FLUXSTRAP_GITHUB_RETRY_BASE_MS) } : {}),
  });
  return { gh, ...target, tokenEnv };
}

/** A failed call as the one error a user can act on: 401 → the token, 403 → permissions, 404 → the repository. */
export async function githubFailure(e: unknown, r: Pick<GitHubRepo, 'owner' | 'repo' | 'tokenEnv' | 'app'>, what: string): Promise<FluxstrapError> {
  const { githubError, githubStatus } = await import('../adapters/github.ts');
  if (r.app) return githubError(e, `${r.app.who}: ${what} (${r.owner}/${r.repo})`, "check the App's permissions and the installation's repository access");
  switch (githubStatus(e)) {
    case 401:
      return githubError(e, `the GitHub token in ${r.tokenEnv} is invalid or expired (${what})`, `create a new token, ${TOKEN_HINT}, and export ${r.tokenEnv}`);
    case 403:
      return githubError(e, `the GitHub token in ${r.tokenEnv} may not ${what}`, `give it ${TOKEN_HINT}`);
    case 404:
      return githubError(
        e,
        `GitHub repository ${r.owner}/${r.repo} not found, or the token in ${r.tokenEnv} cannot see it (${what})`,
        'check git.url; create it with `fluxstrap init --create-repo --yes`; a fine-grained token must list this repository',
      );
    default:
      return githubError(e, `GitHub: ${what} (${r.owner}/${r.repo})`, 'retry later; for GitHub Enterprise check --github-api-url');
  }
}

const Params = GitHubTarget.extend({
  create: z.boolean().default(false).describe("Create the repository when it does not exist (personal or organisation, after the URL's owner)."),
  private: z.boolean().default(true).describe('Visibility of a created repository.'),
  access: z
    .enum(['read', 'admin'])
    .optional()
    .describe("Access the token needs: admin to manage deploy keys (SSH auth), read otherwise; default from the cluster's auth."),
  confirmed: z
    .boolean()
    .default(true)
    .describe(
      'Creating was confirmed (init --create-repo: --yes, or asked at a terminal); unconfirmed, a missing repository is refused before anything changes.',
    ),
});
type Params = z.infer<typeof Params>;

type Facts =
  | { none: true }
  | { exists: true; owner: string; repo: string; login: string; access: string }
  | { exists: false; owner: string; repo: string; login: string; ownerType: 'user' | 'org'; private: boolean };

const accessOf = (perm: { admin?: boolean; push?: boolean; pull?: boolean } | undefined) =>
  perm?.admin ? 'admin' : perm?.push ? 'write' : perm?.pull ? 'read' : 'none';

export const githubRepositoryKind: TaskKind<Params, Facts, GitHubContext> = {
  kind: 'github-repository',
  params: Params,
  async observe(p, ctx) {
    // In a playbook for every cluster, a cluster not on GitHub has nothing to check here.
    if (p.url === undefined && ctx.cluster?.git.provider !== 'github') return { none: true };
    const r = await githubRepo(p, ctx);
    const { gh, owner, repo } = r;
    // The App's session has read the repository with the installation token (contents: read checked).
    if (r.app) return { exists: true, owner, repo, login: r.app.who, access: r.app.permissions.contents ?? 'read' };
    const login = await gh.rest.users.getAuthenticated().then(
      (res) => res.data.login,
      async (e: unknown) => {
        throw await githubFailure(e, r, 'read its own user (GET /user)');
      },
    );
    const found = await gh.rest.repos.get({ owner, repo }).then(
      (res) => res.data,
      async (e: unknown) => {
        const { githubStatus } = await import('../adapters/github.ts');
        if (githubStatus(e) === 404) return undefined;
        throw await githubFailure(e, r, `read the repository ${owner}/${repo}`);
      },
    );
    if (found === undefined) {
      if (!p.create) throw await githubFailure({ status: 404, message: 'Not Found' }, r, `GET /repos/${owner}/${repo}`);
      if (owner.toLowerCase() === login.toLowerCase()) return { exists: false, owner, repo, login, ownerType: 'user', private: p.private };
      const org = await gh.rest.orgs.get({ org: owner }).then(
        () => true,
        async (e: unknown) => {
          const { githubStatus } = await import('../adapters/github.ts');
          if (githubStatus(e) === 404) return false;
          throw await githubFailure(e, r, `read the organisation ${owner}`);
        },
      );
      if (!org) {
        throw new FluxstrapError(
          'E_PRECONDITION',
          `cannot create ${owner}/${repo}: ${owner} is not an organisation, and the token in ${r.tokenEnv} belongs to ${login}`,
          {
            location: { field: 'git.url' },
            hint: `a token can create repositories for its own user (github.com/${login}/…) or an organisation it belongs to: change --git-url, or use ${owner}'s token`,
          },
        );
      }
      return { exists: false, owner, repo, login, ownerType: 'org', private: p.private };
    }
    const access = accessOf(found.permissions);
    const need = p.access ?? (ctx.cluster?.git.auth.type === 'ssh' ? 'admin' : 'read');
    if ((need === 'admin' && access !== 'admin') || access === 'none') {
      throw new FluxstrapError(
        'E_PRECONDITION',
        `the GitHub token in ${r.tokenEnv} (${login}) has ${access} access to ${owner}/${repo}; ${need === 'admin' ? 'managing deploy keys needs admin' : 'pulling needs read'}`,
        {
          hint: `give it ${need === 'admin' ? 'Administration (read and write)' : 'Contents (read)'} on ${owner}/${repo} (fine-grained), or the repo scope and a ${need} role (classic)`,
        },
      );
    }
    return { exists: true, owner, repo, login, access };
  },
  plan(p, facts): Change[] {
    if ('none' in facts || facts.exists) return [];
    if (!p.confirmed)
      throw new FluxstrapError('E_USAGE', `--create-repo creates the repository ${facts.owner}/${facts.repo} on GitHub: confirm with --yes`, {
        hint: 'run with --check first to see what would be created',
      });
    const where = facts.ownerType === 'user' ? `personal account ${facts.owner}` : `organisation ${facts.owner}`;
    return [
      {
        action: 'create',
        target: `GitHub repository ${facts.owner}/${facts.repo}`,
        summary: `create ${facts.private ? 'private' : 'public'} repository in the ${where}`,
        data: facts,
      },
    ];
  },
  async apply(change, p, ctx) {
    const facts = change.data as Extract<Facts, { ownerType: string }>;
    const r = await githubRepo(p, ctx);
    const body = { name: facts.repo, private: facts.private, description: 'GitOps repository (Flux, bootstrapped by fluxstrap)' };
    try {
      if (facts.ownerType === 'user') await r.gh.rest.repos.createForAuthenticatedUser(body);
      else await r.gh.rest.repos.createInOrg({ org: facts.owner, ...body });
    } catch (e) {
      throw await githubFailure(e, r, `create the repository ${facts.owner}/${facts.repo}`);
    }
  },
  notes(_p, facts) {
    if (!('exists' in facts) || !facts.exists) return [];
    return [
      facts.login.startsWith('GitHub App ')
        ? `GitHub ${facts.owner}/${facts.repo}: ${facts.login} reads it (contents: ${facts.access})`
        : `GitHub ${facts.owner}/${facts.repo}: the token of ${facts.login} has ${facts.access} access`,
    ];
  },
};
