import { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import { githubRepoOf } from '../cluster/config.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { version } from '../core/version.ts';
import { deployKeyFile, deployKeyNotes, keyToRegister, observedDeployKey, planDeployKey } from './deploy-key.ts';
import type { DeployKeyFacts } from './deploy-key.ts';
import type { GitHubContext } from './github-repository.ts';

/**
 * The cluster's SSH deploy key registered on its Gitea (or Forgejo) repository through Gitea's
 * REST API, kept as github-deploy-key keeps it on GitHub (same title, same replace rules).
 */
const Params = z.strictObject({
  apiUrl: z
    .string()
    .regex(/^https?:\/\/\S+$/, 'must be an http(s):// URL')
    .describe("Gitea's REST API root, e.g. https://gitea.example.com/api/v1."),
  url: z.string().min(1).optional().describe("Git URL of the repository on Gitea; default the cluster's git.url."),
  tokenEnv: z.string().min(1).default('GITEA_TOKEN').describe('Environment variable holding the Gitea access token (write:repository).'),
  keyFile: z.string().min(1).optional().describe("Private key file; default the cluster's git.auth.ssh.keyFile."),
  title: z.string().min(1).optional().describe('Deploy key title; default flux-system-<branch>-flux-system-<path>, as flux bootstrap names it.'),
  readOnly: z.boolean().optional().describe('Register read-only; default true unless git.auth.ssh.readWrite.'),
});
type Params = z.infer<typeof Params>;

async function gitea(p: Params, ctx: GitHubContext) {
  const url = p.url ?? ctx.cluster?.git.url;
  const target = url === undefined ? undefined : githubRepoOf(url);
  if (target === undefined)
    throw new FluxstrapError('E_USAGE', `no Gitea repository in the Git URL ${url ?? '(none)'}`, {
      hint: 'the URL must end in /OWNER/REPO(.git), e.g. ssh://git@gitea.example.com/me/fleet.git',
    });
  const token = ctx.env[p.tokenEnv] ?? '';
  if (token === '')
    throw new FluxstrapError('E_NOT_FOUND', `environment variable ${p.tokenEnv} (the Gitea token) is not set`, {
      hint: `export ${p.tokenEnv}: an access token with the write:repository scope (Settings → Applications)`,
    });
  const { connectGitea } = await import('../adapters/gitea.ts');
  return { ...target, api: connectGitea({ apiUrl: p.apiUrl, token, tokenEnv: p.tokenEnv, userAgent: `fluxstrap/${version}` }) };
}

export const giteaDeployKeyKind: TaskKind<Params, DeployKeyFacts, GitHubContext> = {
  kind: 'gitea-deploy-key',
  params: Params,
  async observe(p, ctx) {
    const keyFile = deployKeyFile(p.keyFile, ctx.cluster);
    if (keyFile === undefined) return { none: true };
    const r = await gitea(p, ctx);
    const text = await readTextIfExists(keyFile, 'read the deploy key');
    if (!(await r.api.repoExists(r.owner, r.repo)))
      throw new FluxstrapError('E_NOT_FOUND', `${r.owner}/${r.repo} is not on Gitea at ${p.apiUrl}, or the token in ${p.tokenEnv} cannot see it`, {
        hint: 'create the repository first, or check git.url and the token',
      });
    const where = { owner: r.owner, repo: r.repo, forge: 'Gitea', task: 'gitea-deploy-key' };
    return observedDeployKey(p, ctx, { text, file: keyFile }, await r.api.listDeployKeys(r.owner, r.repo), where);
  },
  plan(_p, facts, ctx): Change[] {
    return planDeployKey(facts, ctx.rotateSecrets);
  },
  async apply(change, p, ctx) {
    const facts = change.data as Extract<DeployKeyFacts, { title: string }>;
    const key = keyToRegister(facts);
    const r = await gitea(p, ctx);
    if (facts.registered) await r.api.deleteDeployKey(r.owner, r.repo, facts.registered.id);
    await r.api.createDeployKey(r.owner, r.repo, { title: facts.title, key, read_only: facts.readOnly });
  },
  notes(_p, facts) {
    return deployKeyNotes(facts);
  },
};
