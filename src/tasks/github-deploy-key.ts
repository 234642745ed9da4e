import { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { publicKeyOfPrivate, sshPublicKeyOf } from '../keys/ssh.ts';
import { githubFailure, githubRepo, GitHubTarget } from './github-repository.ts';
import type { GitHubContext } from './github-repository.ts';

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

interface Registered {
  id: number;
  key: string;
  readOnly: boolean;
  title: string;
}
type Facts = { none: true } | { owner: string; repo: string; title: string; readOnly: boolean; key?: string; registered?: Registered };

/** flux's deployKeyName: the non-empty parts joined with `-`, path separators kept. */
export function deployKeyTitle(namespace: string, branch: string, secret: string, path: string): string {
  return [namespace, branch, secret, path].filter((s) => s !== '').join('-');
}

const blobOf = (key: string) => sshPublicKeyOf(key)?.blob.toString('base64');

/** The deploy key of git.auth.sopsFile, for a machine without the key file (disaster recovery). */
async function deployKeyInRepository(ctx: GitHubContext): Promise<string | undefined> {
  if (ctx.cluster?.git.auth.sopsFile === undefined || ctx.gitCredentials === undefined) return undefined;
  const creds = await ctx.gitCredentials();
  return creds.type === 'ssh' ? creds.identity : undefined;
}

export const githubDeployKeyKind: TaskKind<Params, Facts, GitHubContext> = {
  kind: 'github-deploy-key',
  params: Params,
  async observe(p, ctx) {
    const auth = ctx.cluster?.git.auth;
    const keyFile = p.keyFile ?? (auth?.type === 'ssh' ? auth.keyFile : undefined);
    if (keyFile === undefined || (p.url === undefined && ctx.cluster?.git.provider !== 'github')) return { none: true };
    const r = await githubRepo(p, ctx);
    const title = p.title ?? deployKeyTitle('flux-system', ctx.cluster?.git.branch ?? 'main', 'flux-system', ctx.cluster?.path ?? '');
    const readOnly = p.readOnly ?? !(auth?.type === 'ssh' && auth.readWrite === true);
    const text = (await readTextIfExists(keyFile, 'read the deploy key')) ?? (await deployKeyInRepository(ctx));
    // Under --check the key may not exist yet: the ssh-deploy-key task would make it first.
    const key = text === undefined ? undefined : publicKeyOfPrivate(text, keyFile);
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
    let keys: { id: number; key: string; read_only: boolean; title: string }[] = [];
    try {
      if (exists) keys = await r.gh.paginate(r.gh.rest.repos.listDeployKeys, { owner: r.owner, repo: r.repo, per_page: 100 });
    } catch (e) {
      throw await githubFailure(e, r, `list the deploy keys of ${r.owner}/${r.repo}`);
    }
    const mine = keys.find((k) => k.title === title);
    if (key !== undefined) {
      const elsewhere = keys.find((k) => k.title !== title && blobOf(k.key) === blobOf(key));
      if (elsewhere) {
        throw new FluxstrapError('E_PRECONDITION', `the deploy key is already registered on ${r.owner}/${r.repo} under the title "${elsewhere.title}"`, {
          hint: `GitHub takes a key once per repository: delete "${elsewhere.title}" in the repository's settings, or pass that title to the github-deploy-key task`,
        });
      }
    }
    const registered = mine === undefined ? undefined : { id: mine.id, key: mine.key, readOnly: mine.read_only, title: mine.title };
    return { owner: r.owner, repo: r.repo, title, readOnly, ...(key !== undefined ? { key } : {}), ...(registered ? { registered } : {}) };
  },
  plan(_p, facts, ctx): Change[] {
    if ('none' in facts) return [];
    const target = `deploy key "${facts.title}" on ${facts.owner}/${facts.repo}`;
    const access = facts.readOnly ? 'read-only' : 'read-write';
    const { registered } = facts;
    if (registered === undefined) return [{ action: 'create', target, summary: `register the ${access} deploy key`, data: facts }];
    const sameKey = facts.key !== undefined && blobOf(registered.key) === blobOf(facts.key);
    if (sameKey && registered.readOnly === facts.readOnly) return [];
    const why = sameKey ? `registered ${registered.readOnly ? 'read-only' : 'read-write'}, wanted ${access}` : 'registered with another key';
    if (ctx.rotateSecrets !== true && facts.key !== undefined) {
      throw new FluxstrapError('E_PRECONDITION', `${target} is ${why}`, {
        hint: 'another cluster may use it: pass --rotate-secrets to replace it (delete + create, as flux bootstrap does), or name another title',
      });
    }
    return [{ action: 'update', target, summary: `replace the deploy key (${why})`, data: facts }];
  },
  async apply(change, p, ctx) {
    const facts = change.data as Extract<Facts, { title: string }>;
    const r = await githubRepo(p, ctx);
    const { key } = facts;
    // Only --check observes before the key exists, and --check applies nothing.
    if (key === undefined)
      throw new FluxstrapError('E_NOT_FOUND', `no deploy key to register for ${r.owner}/${r.repo}`, {
        hint: 'run the ssh-deploy-key task first (init and bootstrap do)',
      });
    try {
      if (facts.registered) await r.gh.rest.repos.deleteDeployKey({ owner: r.owner, repo: r.repo, key_id: facts.registered.id });
      await r.gh.rest.repos.createDeployKey({ owner: r.owner, repo: r.repo, title: facts.title, key, read_only: facts.readOnly });
    } catch (e) {
      throw await githubFailure(e, r, `register the deploy key on ${r.owner}/${r.repo}`);
    }
  },
  notes(_p, facts) {
    if ('none' in facts || facts.registered === undefined) return [];
    return [
      `deploy key "${facts.title}" on ${facts.owner}/${facts.repo} (${facts.registered.readOnly ? 'read-only' : 'read-write'}, ${sshPublicKeyOf(facts.registered.key)?.fingerprint ?? ''})`,
    ];
  },
};
