import type { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import type { ResolvedCluster } from '../cluster/config.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
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

export interface KeyWhere {
  owner: string;
  repo: string;
  /** The forge, for messages: GitHub, Gitea. */
  forge: string;
  /** What else the user can do than delete the other entry. */
  remedy: string;
}

/** Refuses `key` registered under a title other than `titles`: a forge takes a key once per repository. */
export function refuseKeyElsewhere(keys: readonly { key: string; title: string }[], titles: readonly string[], key: string | undefined, where: KeyWhere): void {
  if (key === undefined) return;
  const elsewhere = keys.find((k) => !titles.includes(k.title) && blobOf(k.key) === blobOf(key));
  if (elsewhere) {
    throw new FluxstrapError('E_PRECONDITION', `the deploy key is already registered on ${where.owner}/${where.repo} under the title "${elsewhere.title}"`, {
      hint: `${where.forge} takes a key once per repository: delete "${elsewhere.title}" in the repository's settings, ${where.remedy}`,
    });
  }
}

/** A deploy key as GitHub's and Gitea's APIs list it. */
export interface ListedKey {
  id: number;
  key: string;
  read_only: boolean;
  title: string;
}

/** One repository's deploy keys on a forge: what the deploy-key kinds and the rotation ask of GitHub's and Gitea's APIs. */
export interface DeployKeyForge {
  /** For messages: GitHub, Gitea. */
  name: string;
  owner: string;
  repo: string;
  /** Every page; none for a repository the forge does not have yet when it may be created later in the run. */
  listDeployKeys(): Promise<ListedKey[]>;
  addDeployKey(key: { title: string; key: string; readOnly: boolean }): Promise<void>;
  deleteDeployKey(id: number): Promise<void>;
}

/** The deploy key of git.auth.sopsFile, for a machine without the key file (disaster recovery). */
async function deployKeyInRepository(ctx: GitHubContext): Promise<string | undefined> {
  if (ctx.cluster?.git.auth.sopsFile === undefined || ctx.gitCredentials === undefined) return undefined;
  const creds = await ctx.gitCredentials();
  return creds.type === 'ssh' ? creds.identity : undefined;
}

/** The params every forge's deploy-key kind takes. */
export interface DeployKeyParams {
  keyFile?: string | undefined;
  title?: string | undefined;
  readOnly?: boolean | undefined;
}

/**
 * A forge's deploy-key kind: `connect` is the forge the params or the cluster name, undefined
 * when the cluster is on another one (the task is then a no-op, so one playbook serves all).
 */
export function forgeDeployKeyKind<P extends DeployKeyParams>(
  kind: string,
  params: z.ZodType<P>,
  connect: (p: P, ctx: GitHubContext) => Promise<DeployKeyForge | undefined>,
): TaskKind<P, DeployKeyFacts, GitHubContext> {
  return {
    kind,
    params,
    async observe(p, ctx) {
      const keyFile = deployKeyFile(p.keyFile, ctx.cluster);
      const forge = keyFile === undefined ? undefined : await connect(p, ctx);
      if (keyFile === undefined || forge === undefined) return { none: true };
      const text = (await readTextIfExists(keyFile, 'read the deploy key')) ?? (await deployKeyInRepository(ctx));
      const where = { owner: forge.owner, repo: forge.repo, forge: forge.name, task: kind };
      return observedDeployKey(p, ctx, { text, file: keyFile }, await forge.listDeployKeys(), where);
    },
    plan(_p, facts, ctx): Change[] {
      return planDeployKey(facts, ctx.rotateSecrets);
    },
    async apply(change, p, ctx) {
      const facts = change.data as Extract<DeployKeyFacts, { title: string }>;
      const key = keyToRegister(facts);
      const forge = await connect(p, ctx);
      if (forge === undefined) return;
      if (facts.registered) await forge.deleteDeployKey(facts.registered.id);
      await forge.addDeployKey({ title: facts.title, key, readOnly: facts.readOnly });
    },
    notes(_p, facts) {
      return deployKeyNotes(facts);
    },
  };
}

/**
 * What a forge kind observed: the cluster's key (the public half of `privateKey`, absent under
 * --check before ssh-deploy-key made it) and the forge's key under the title, title and access as
 * the task's params or the cluster's config give them.
 */
function observedDeployKey(
  p: { title?: string | undefined; readOnly?: boolean | undefined },
  ctx: GitHubContext,
  privateKey: { text: string | undefined; file: string },
  listed: readonly ListedKey[],
  where: { owner: string; repo: string; forge: string; task: string },
): DeployKeyFacts {
  const title = p.title ?? clusterDeployKeyTitle(ctx);
  const readOnly = p.readOnly ?? registeredReadOnly(ctx);
  const key = privateKey.text === undefined ? undefined : publicKeyOfPrivate(privateKey.text, privateKey.file);
  refuseKeyElsewhere(listed, [title], key, { ...where, remedy: `or pass that title to the ${where.task} task` });
  const found = listed.find((k) => k.title === title);
  const mine = found && { id: found.id, key: found.key, readOnly: found.read_only, title: found.title };
  return { owner: where.owner, repo: where.repo, title, readOnly, ...(key !== undefined ? { key } : {}), ...(mine ? { registered: mine } : {}) };
}

function planDeployKey(facts: DeployKeyFacts, rotateSecrets: boolean | undefined): Change[] {
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
function keyToRegister(facts: Extract<DeployKeyFacts, { title: string }>): string {
  if (facts.key === undefined)
    throw new FluxstrapError('E_NOT_FOUND', `no deploy key to register for ${facts.owner}/${facts.repo}`, {
      hint: 'run the ssh-deploy-key task first (init and bootstrap do)',
    });
  return facts.key;
}

function deployKeyNotes(facts: DeployKeyFacts): string[] {
  if ('none' in facts || facts.registered === undefined) return [];
  return [
    `deploy key "${facts.title}" on ${facts.owner}/${facts.repo} (${facts.registered.readOnly ? 'read-only' : 'read-write'}, ${sshPublicKeyOf(facts.registered.key)?.fingerprint ?? ''})`,
  ];
}
