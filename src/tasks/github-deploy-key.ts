import { z } from 'zod';
import { forgeDeployKeyKind } from './deploy-key.ts';
import type { DeployKeyForge, ListedKey } from './deploy-key.ts';
import { githubFailure, githubRepo, GitHubTarget } from './github-repository.ts';
import type { GitHubContext, GitHubRepo } from './github-repository.ts';

/**
 * The cluster's SSH deploy key registered on its GitHub repository, as `flux bootstrap github`
 * does: read-only unless asked, titled `<namespace>-<branch>-<secret>-<path>`, found by title
 * among every page of the repository's keys, replaced (delete + create) when the key or its
 * access differs — only with --rotate-secrets, since the key under that title may be another
 * cluster's: without it a clash is refused before anything changes.
 */
const Params = GitHubTarget.extend({
  keyFile: z.string().min(1).optional().describe("Private key file; default the cluster's git.auth.ssh.keyFile."),
  title: z.string().min(1).optional().describe('Deploy key title; default flux-system-<branch>-flux-system-<path>, as flux bootstrap names it.'),
  readOnly: z.boolean().optional().describe('Register read-only; default true unless git.auth.ssh.readWrite.'),
});

/** Every page of a repository's deploy keys; none for a repository not created yet. */
async function listDeployKeys(r: GitHubRepo): Promise<ListedKey[]> {
  const { githubStatus } = await import('../adapters/github.ts');
  // A repository not created yet (init --create-repo observes every task first) has no keys;
  // github-repository, which runs before, reports a repository that is really missing.
  const exists = await r.gh.rest.repos.get({ owner: r.owner, repo: r.repo }).then(
    () => true,
    async (e: unknown) => {
      if (githubStatus(e) === 404) return false;
      throw await githubFailure(e, r, `read the repository ${r.owner}/${r.repo}`);
    },
  );
  try {
    return exists ? await r.gh.paginate(r.gh.rest.repos.listDeployKeys, { owner: r.owner, repo: r.repo, per_page: 100 }) : [];
  } catch (e) {
    throw await githubFailure(e, r, `list the deploy keys of ${r.owner}/${r.repo}`);
  }
}

/** The deploy keys of the repository the params or the cluster name on GitHub. */
export async function githubForge(p: z.infer<typeof GitHubTarget>, ctx: GitHubContext): Promise<DeployKeyForge> {
  const r = await githubRepo(p, ctx);
  const { owner, repo } = r;
  const call = async (what: string, f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (e) {
      throw await githubFailure(e, r, `${what} on ${owner}/${repo}`);
    }
  };
  return {
    name: 'GitHub',
    owner,
    repo,
    listDeployKeys: () => listDeployKeys(r),
    addDeployKey: (k) =>
      call(`register the deploy key "${k.title}"`, () => r.gh.rest.repos.createDeployKey({ owner, repo, title: k.title, key: k.key, read_only: k.readOnly })),
    deleteDeployKey: (id) => call(`delete deploy key ${id}`, () => r.gh.rest.repos.deleteDeployKey({ owner, repo, key_id: id })),
  };
}

export const githubDeployKeyKind = forgeDeployKeyKind('github-deploy-key', Params, async (p, ctx) =>
  p.url === undefined && ctx.cluster?.git.provider !== 'github' ? undefined : githubForge(p, ctx),
);
