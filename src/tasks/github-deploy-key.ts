import { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import { deployKeyFile, deployKeyNotes, keyToRegister, observedDeployKey, planDeployKey } from './deploy-key.ts';
import type { DeployKeyFacts, ListedKey } from './deploy-key.ts';
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
type Params = z.infer<typeof Params>;

/** Every page of a repository's deploy keys; none for a repository not created yet. */
export async function listDeployKeys(r: GitHubRepo): Promise<ListedKey[]> {
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

/** The deploy key of git.auth.sopsFile, for a machine without the key file (disaster recovery). */
async function deployKeyInRepository(ctx: GitHubContext): Promise<string | undefined> {
  if (ctx.cluster?.git.auth.sopsFile === undefined || ctx.gitCredentials === undefined) return undefined;
  const creds = await ctx.gitCredentials();
  return creds.type === 'ssh' ? creds.identity : undefined;
}

export const githubDeployKeyKind: TaskKind<Params, DeployKeyFacts, GitHubContext> = {
  kind: 'github-deploy-key',
  params: Params,
  async observe(p, ctx) {
    const keyFile = deployKeyFile(p.keyFile, ctx.cluster);
    if (keyFile === undefined || (p.url === undefined && ctx.cluster?.git.provider !== 'github')) return { none: true };
    const r = await githubRepo(p, ctx);
    const text = (await readTextIfExists(keyFile, 'read the deploy key')) ?? (await deployKeyInRepository(ctx));
    const where = { owner: r.owner, repo: r.repo, forge: 'GitHub', task: 'github-deploy-key' };
    return observedDeployKey(p, ctx, { text, file: keyFile }, await listDeployKeys(r), where);
  },
  plan(_p, facts, ctx): Change[] {
    return planDeployKey(facts, ctx.rotateSecrets);
  },
  async apply(change, p, ctx) {
    const facts = change.data as Extract<DeployKeyFacts, { title: string }>;
    const r = await githubRepo(p, ctx);
    const key = keyToRegister(facts);
    try {
      if (facts.registered) await r.gh.rest.repos.deleteDeployKey({ owner: r.owner, repo: r.repo, key_id: facts.registered.id });
      await r.gh.rest.repos.createDeployKey({ owner: r.owner, repo: r.repo, title: facts.title, key, read_only: facts.readOnly });
    } catch (e) {
      throw await githubFailure(e, r, `register the deploy key on ${r.owner}/${r.repo}`);
    }
  },
  notes(_p, facts) {
    return deployKeyNotes(facts);
  },
};
