import { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import type { Change } from '../core/change.ts';
import { dataOf } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { publicKeyOfPrivate, sshPublicKeyOf } from '../keys/ssh.ts';
import { blobOf, clusterDeployKeyTitle, refuseKeyElsewhere, registeredReadOnly } from './deploy-key.ts';
import type { DeployKeyForge, ListedKey } from './deploy-key.ts';
import type { GitHubContext } from './github-repository.ts';

/**
 * A rotation of the cluster's deploy key on its forge (git.provider github or gitea), in the two
 * steps the swap needs. `register`: the new key next to the old one, under the standard title plus
 * `-next` (the old one keeps Flux pulling until the Secret changes). `finish`, once Flux has
 * fetched with the new key: the old key deleted and the new one under the standard title, the
 * `-next` entry gone; GitHub and Gitea take a key once per repository, so it is deleted there
 * before it is added under the title. Both are read from the forge's list, so a run stopped
 * between calls is finished by the next one.
 */
const Params = z.strictObject({
  keyFile: z.string().min(1).describe('The new private key file (`<keyFile>.next` during a rotation).'),
  phase: z.enum(['register', 'finish']).describe('register: add the new key beside the old; finish: the new key alone, under the standard title.'),
  title: z.string().min(1).optional().describe('Standard title; default flux-system-<branch>-flux-system-<path>, as flux bootstrap names it.'),
});
type Params = z.infer<typeof Params>;

export const NEXT_SUFFIX = '-next';

type Facts = { none: true } | { owner: string; repo: string; title: string; readOnly: boolean; key?: string; keys: ListedKey[] };

/** One call to the forge, in the order the plan lists them. */
export type KeyCall = { delete: { id: number; title: string } } | { create: { title: string } };

/** What is left to do for `phase`, from the repository's keys; undefined `key` is a key --check has not generated yet. */
export function rotationCalls(phase: Params['phase'], title: string, readOnly: boolean, key: string | undefined, keys: readonly ListedKey[]): KeyCall[] {
  const next = `${title}${NEXT_SUFFIX}`;
  const isNew = (k: ListedKey) => key !== undefined && blobOf(k.key) === blobOf(key) && k.read_only === readOnly;
  const under = (t: string) => keys.filter((k) => k.title === t);
  const del = (k: ListedKey): KeyCall => ({ delete: { id: k.id, title: k.title } });
  if (phase === 'register') {
    // Already where finish puts it: a later run of the same rotation.
    if (under(title).some(isNew) || under(next).some(isNew)) return [];
    return [...under(next).map(del), { create: { title: next } }];
  }
  const done = under(title).length === 1 && under(title).every(isNew) && under(next).length === 0;
  if (done) return [];
  // The new key is registered once: its -next entry goes before it is added under the title.
  const stale = [...under(title).filter((k) => !isNew(k)), ...under(next)];
  return [...stale.map(del), ...(under(title).some(isNew) ? [] : [{ create: { title } }])];
}

const describeCall = (c: KeyCall) => ('delete' in c ? `delete "${c.delete.title}"` : `add "${c.create.title}"`);

/** The cluster's forge: GitHub or Gitea by git.provider; undefined on a host fluxstrap does not call. */
async function clusterForge(ctx: GitHubContext): Promise<DeployKeyForge | undefined> {
  const provider = ctx.cluster?.git.provider;
  if (provider === 'github') return (await import('./github-deploy-key.ts')).githubForge({}, ctx);
  if (provider === 'gitea') return (await import('./gitea-deploy-key.ts')).giteaForge({}, ctx);
  return undefined;
}

export const deployKeyRotationKind: TaskKind<Params, Facts, GitHubContext, KeyCall[]> = {
  kind: 'deploy-key-rotation',
  params: Params,
  async observe(p, ctx) {
    const r = await clusterForge(ctx);
    if (r === undefined) return { none: true };
    const title = p.title ?? clusterDeployKeyTitle(ctx);
    const text = await readTextIfExists(p.keyFile, 'read the new deploy key');
    // Under --check the new key may not exist yet: staging it comes first.
    const key = text === undefined ? undefined : publicKeyOfPrivate(text, p.keyFile);
    const keys = await r.listDeployKeys();
    refuseKeyElsewhere(keys, [title, `${title}${NEXT_SUFFIX}`], key, { owner: r.owner, repo: r.repo, forge: r.name, remedy: 'then run again' });
    return { owner: r.owner, repo: r.repo, title, readOnly: registeredReadOnly(ctx), ...(key !== undefined ? { key } : {}), keys };
  },
  plan(p, facts): Change<KeyCall[]>[] {
    if ('none' in facts) return [];
    const calls = rotationCalls(p.phase, facts.title, facts.readOnly, facts.key, facts.keys);
    if (calls.length === 0) return [];
    const access = facts.readOnly ? 'read-only' : 'read-write';
    const summary =
      p.phase === 'register'
        ? `register the new ${access} deploy key beside the old one (${calls.map(describeCall).join(', ')})`
        : `retire the old deploy key, the new one under the standard title (${calls.map(describeCall).join(', ')})`;
    return [
      { action: p.phase === 'register' ? 'create' : 'update', target: `deploy keys "${facts.title}" on ${facts.owner}/${facts.repo}`, summary, data: calls },
    ];
  },
  async apply(change, p, ctx) {
    const r = await clusterForge(ctx);
    if (r === undefined) return;
    const text = await readTextIfExists(p.keyFile, 'read the new deploy key');
    // Only --check observes before the key exists, and --check applies nothing.
    if (text === undefined) throw new FluxstrapError('E_NOT_FOUND', `no new deploy key at ${p.keyFile}`, { hint: 'run fluxstrap git rotate-key again' });
    const key = publicKeyOfPrivate(text, p.keyFile);
    const readOnly = registeredReadOnly(ctx);
    for (const call of dataOf(change)) {
      if ('delete' in call) await r.deleteDeployKey(call.delete.id);
      else await r.addDeployKey({ title: call.create.title, key, readOnly });
    }
  },
  notes(_p, facts) {
    if ('none' in facts) return [];
    return facts.keys
      .filter((k) => k.title.startsWith(facts.title))
      .map(
        (k) =>
          `deploy key "${k.title}" on ${facts.owner}/${facts.repo} (${k.read_only ? 'read-only' : 'read-write'}, ${sshPublicKeyOf(k.key)?.fingerprint ?? ''})`,
      );
  },
};
