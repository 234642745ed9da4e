import type { ResolvedCluster } from '../cluster/config.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import { publicKeyOfPrivate, sshPublicKeyOf } from '../keys/ssh.ts';
import type { GitHubContext } from './github-repository.ts';

/**
 * A deploy key on a forge (GitHub, Gitea), as `flux bootstrap` keeps it: found by title among
 * every key of the repository, left alone when the key and its access match, replaced (delete +
 * create) otherwise — only with --rotate-secrets, since the key under that title may be another
 * cluster's. The forge kinds observe and apply through their APIs; what to do is decided here.
 */

/** flux's deployKeyName: the non-empty parts joined with `-`, path separators kept. */
export function deployKeyTitle(namespace: string, branch: string, secret: string, path: string): string {
  return [namespace, branch, secret, path].filter((s) => s !== '').join('-');
}

/** The title flux bootstrap gives the cluster's key. */
export const clusterDeployKeyTitle = (ctx: GitHubContext) =>
  deployKeyTitle('flux-system', ctx.cluster?.git.branch ?? 'main', 'flux-system', ctx.cluster?.path ?? '');

/** The private key file: the task's own, else git.auth.ssh.keyFile; none when the cluster pulls over HTTPS. */
export function deployKeyFile(keyFile: string | undefined, cluster: ResolvedCluster | undefined): string | undefined {
  const auth = cluster?.git.auth;
  return keyFile ?? (auth?.type === 'ssh' ? auth.keyFile : undefined);
}

/** Read-only unless git.auth.ssh.readWrite. */
export const registeredReadOnly = (ctx: GitHubContext) => !(ctx.cluster?.git.auth.type === 'ssh' && ctx.cluster.git.auth.readWrite === true);

export interface ForgeKey {
  id: number;
  key: string;
  readOnly: boolean;
  title: string;
}

export type DeployKeyFacts = { none: true } | { owner: string; repo: string; title: string; readOnly: boolean; key?: string; registered?: ForgeKey };

export const blobOf = (key: string) => sshPublicKeyOf(key)?.blob.toString('base64');

/** The key under `title`; the same key under another title is refused (a forge takes a key once per repository). */
export function registeredKey(
  keys: ForgeKey[],
  title: string,
  key: string | undefined,
  where: { owner: string; repo: string; forge: string; task: string },
): ForgeKey | undefined {
  if (key !== undefined) {
    const elsewhere = keys.find((k) => k.title !== title && blobOf(k.key) === blobOf(key));
    if (elsewhere) {
      throw new FluxstrapError('E_PRECONDITION', `the deploy key is already registered on ${where.owner}/${where.repo} under the title "${elsewhere.title}"`, {
        hint: `${where.forge} takes a key once per repository: delete "${elsewhere.title}" in the repository's settings, or pass that title to the ${where.task} task`,
      });
    }
  }
  return keys.find((k) => k.title === title);
}

/** A deploy key as GitHub's and Gitea's APIs list it. */
export interface ListedKey {
  id: number;
  key: string;
  read_only: boolean;
  title: string;
}

/**
 * What a forge kind observed: the cluster's key (the public half of `privateKey`, absent under
 * --check before ssh-deploy-key made it) and the forge's key under the title, title and access as
 * the task's params or the cluster's config give them.
 */
export function observedDeployKey(
  p: { title?: string | undefined; readOnly?: boolean | undefined },
  ctx: GitHubContext,
  privateKey: { text: string | undefined; file: string },
  listed: readonly ListedKey[],
  where: { owner: string; repo: string; forge: string; task: string },
): DeployKeyFacts {
  const title = p.title ?? clusterDeployKeyTitle(ctx);
  const readOnly = p.readOnly ?? registeredReadOnly(ctx);
  const key = privateKey.text === undefined ? undefined : publicKeyOfPrivate(privateKey.text, privateKey.file);
  const mine = registeredKey(
    listed.map((k) => ({ id: k.id, key: k.key, readOnly: k.read_only, title: k.title })),
    title,
    key,
    where,
  );
  return { owner: where.owner, repo: where.repo, title, readOnly, ...(key !== undefined ? { key } : {}), ...(mine ? { registered: mine } : {}) };
}

export function planDeployKey(facts: DeployKeyFacts, rotateSecrets: boolean | undefined): Change[] {
  if ('none' in facts) return [];
  const target = `deploy key "${facts.title}" on ${facts.owner}/${facts.repo}`;
  const access = facts.readOnly ? 'read-only' : 'read-write';
  const { registered } = facts;
  if (registered === undefined) return [{ action: 'create', target, summary: `register the ${access} deploy key`, data: facts }];
  const sameKey = facts.key !== undefined && blobOf(registered.key) === blobOf(facts.key);
  if (sameKey && registered.readOnly === facts.readOnly) return [];
  const why = sameKey ? `registered ${registered.readOnly ? 'read-only' : 'read-write'}, wanted ${access}` : 'registered with another key';
  if (rotateSecrets !== true && facts.key !== undefined) {
    throw new FluxstrapError('E_PRECONDITION', `${target} is ${why}`, {
      hint: 'another cluster may use it: pass --rotate-secrets to replace it (delete + create, as flux bootstrap does), or name another title',
    });
  }
  return [{ action: 'update', target, summary: `replace the deploy key (${why})`, data: facts }];
}

/** The key to register, present unless --check observed before ssh-deploy-key made it (and --check applies nothing). */
export function keyToRegister(facts: Extract<DeployKeyFacts, { title: string }>): string {
  if (facts.key === undefined)
    throw new FluxstrapError('E_NOT_FOUND', `no deploy key to register for ${facts.owner}/${facts.repo}`, {
      hint: 'run the ssh-deploy-key task first (init and bootstrap do)',
    });
  return facts.key;
}

export function deployKeyNotes(facts: DeployKeyFacts): string[] {
  if ('none' in facts || facts.registered === undefined) return [];
  return [
    `deploy key "${facts.title}" on ${facts.owner}/${facts.repo} (${facts.registered.readOnly ? 'read-only' : 'read-write'}, ${sshPublicKeyOf(facts.registered.key)?.fingerprint ?? ''})`,
  ];
}
