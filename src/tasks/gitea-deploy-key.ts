import { z } from 'zod';
import { githubRepoOf } from '../cluster/config.ts';
import { FluxstrapError } from '../core/errors.ts';
import { version } from '../core/version.ts';
import { forgeDeployKeyKind } from './deploy-key.ts';
import type { DeployKeyForge } from './deploy-key.ts';
import type { GitHubContext } from './github-repository.ts';

/**
 * The cluster's SSH deploy key registered on its Gitea (or Forgejo) repository through Gitea's
 * REST API, kept as github-deploy-key keeps it on GitHub (same title, same replace rules). The
 * bootstrap playbook runs it for `git.provider: gitea`; with `apiUrl` it runs for any cluster.
 */
export const GiteaTarget = z.strictObject({
  apiUrl: z
    .string()
    .regex(/^https?:\/\/\S+$/, 'must be an http(s):// URL')
    .optional()
    .describe("Gitea's REST API root, e.g. https://gitea.example.com/api/v1; default git.gitea.apiUrl."),
  url: z.string().min(1).optional().describe("Git URL of the repository on Gitea; default the cluster's git.url."),
  tokenEnv: z
    .string()
    .min(1)
    .optional()
    .describe('Environment variable holding the Gitea access token (write:repository); default git.gitea.tokenEnv, else GITEA_TOKEN.'),
});

const Params = GiteaTarget.extend({
  keyFile: z.string().min(1).optional().describe("Private key file; default the cluster's git.auth.ssh.keyFile."),
  title: z.string().min(1).optional().describe('Deploy key title; default flux-system-<branch>-flux-system-<path>, as flux bootstrap names it.'),
  readOnly: z.boolean().optional().describe('Register read-only; default true unless git.auth.ssh.readWrite.'),
});

/** The deploy keys of the repository the params or the cluster name on Gitea; undefined when neither names a Gitea. */
export async function giteaForge(p: z.infer<typeof GiteaTarget>, ctx: GitHubContext): Promise<DeployKeyForge | undefined> {
  const settings = ctx.cluster?.git.gitea;
  const apiUrl = p.apiUrl ?? settings?.apiUrl;
  if (apiUrl === undefined) return undefined;
  const url = p.url ?? ctx.cluster?.git.url;
  const target = url === undefined ? undefined : githubRepoOf(url);
  if (target === undefined)
    throw new FluxstrapError('E_USAGE', `no Gitea repository in the Git URL ${url ?? '(none)'}`, {
      hint: 'the URL must end in /OWNER/REPO(.git), e.g. ssh://git@gitea.example.com/me/fleet.git',
    });
  const tokenEnv = p.tokenEnv ?? settings?.tokenEnv ?? 'GITEA_TOKEN';
  const token = ctx.env[tokenEnv] ?? '';
  if (token === '')
    throw new FluxstrapError('E_NOT_FOUND', `environment variable ${tokenEnv} (the Gitea token) is not set`, {
      hint: `export ${tokenEnv}: an access token with the write:repository scope (Settings → Applications)`,
    });
  const { connectGitea } = await import('../adapters/gitea.ts');
  const api = connectGitea({ apiUrl, token, tokenEnv, userAgent: `fluxstrap/${version}` });
  const { owner, repo } = target;
  return {
    name: 'Gitea',
    owner,
    repo,
    async listDeployKeys() {
      if (!(await api.repoExists(owner, repo)))
        throw new FluxstrapError('E_NOT_FOUND', `${owner}/${repo} is not on Gitea at ${apiUrl}, or the token in ${tokenEnv} cannot see it`, {
          hint: 'create the repository first, or check git.url and the token',
        });
      return api.listDeployKeys(owner, repo);
    },
    addDeployKey: (k) => api.createDeployKey(owner, repo, { title: k.title, key: k.key, read_only: k.readOnly }),
    deleteDeployKey: (id) => api.deleteDeployKey(owner, repo, id),
  };
}

export const giteaDeployKeyKind = forgeDeployKeyKind('gitea-deploy-key', Params, giteaForge);
