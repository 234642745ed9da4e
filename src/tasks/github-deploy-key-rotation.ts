import { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import type { Change } from '../core/change.ts';
import { dataOf } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { publicKeyOfPrivate, sshPublicKeyOf } from '../keys/ssh.ts';
import { blobOf, clusterDeployKeyTitle, registeredReadOnly } from './deploy-key.ts';
import { listDeployKeys } from './github-deploy-key.ts';
import type { ListedKey } from './deploy-key.ts';
import { githubFailure, githubRepo, GitHubTarget } from './github-repository.ts';
import type { GitHubContext } from './github-repository.ts';

/**
 * A rotation of the cluster's GitHub deploy key, in the two steps the swap needs. `register`: the
 * new key next to the old one, under the standard title plus `-next` (GitHub takes a key once per
 * repository, and the old one keeps Flux pulling until the Secret changes). `finish`, once Flux
 * has fetched with the new key: the old key deleted and the new one under the standard title, the
 * `-next` entry gone. Both are read from GitHub's list, so a run stopped between calls is
 * finished by the next one.
 */
const Params = GitHubTarget.extend({
  keyFile: z.string().min(1).describe('The new private key file (`<keyFile>.next` during a rotation).'),
  phase: z.enum(['register', 'finish']).describe('register: add the new key beside the old; finish: the new key alone, under the standard title.'),
  title: z.string().min(1).optional().describe('Standard title; default flux-system-<branch>-flux-system-<path>, as flux bootstrap names it.'),
});
type Params = z.infer<typeof Params>;

export const NEXT_SUFFIX = '-next';

type Facts = { none: true } | { owner: string; repo: string; title: string; readOnly: boolean; key?: string; keys: ListedKey[] };

/** One call to GitHub, in the order the plan lists them. */
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

export const githubDeployKeyRotationKind: TaskKind<Params, Facts, GitHubContext, KeyCall[]> = {
  kind: 'github-deploy-key-rotation',
  params: Params,
  async observe(p, ctx) {
    if (p.url === undefined && ctx.cluster?.git.provider !== 'github') return { none: true };
    const r = await githubRepo(p, ctx);
    const title = p.title ?? clusterDeployKeyTitle(ctx);
    const text = await readTextIfExists(p.keyFile, 'read the new deploy key');
    // Under --check the new key may not exist yet: staging it comes first.
    const key = text === undefined ? undefined : publicKeyOfPrivate(text, p.keyFile);
    const keys = await listDeployKeys(r);
    if (key !== undefined) {
      const elsewhere = keys.find((k) => k.title !== title && k.title !== `${title}${NEXT_SUFFIX}` && blobOf(k.key) === blobOf(key));
      if (elsewhere) {
        throw new FluxstrapError('E_PRECONDITION', `the new deploy key is already registered on ${r.owner}/${r.repo} under the title "${elsewhere.title}"`, {
          hint: `GitHub takes a key once per repository: delete "${elsewhere.title}" in the repository's settings, then run again`,
        });
      }
    }
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
    const r = await githubRepo(p, ctx);
    const text = await readTextIfExists(p.keyFile, 'read the new deploy key');
    // Only --check observes before the key exists, and --check applies nothing.
    if (text === undefined) throw new FluxstrapError('E_NOT_FOUND', `no new deploy key at ${p.keyFile}`, { hint: 'run fluxstrap git rotate-key again' });
    const key = publicKeyOfPrivate(text, p.keyFile);
    const readOnly = registeredReadOnly(ctx);
    for (const call of dataOf(change)) {
      try {
        if ('delete' in call) await r.gh.rest.repos.deleteDeployKey({ owner: r.owner, repo: r.repo, key_id: call.delete.id });
        else await r.gh.rest.repos.createDeployKey({ owner: r.owner, repo: r.repo, title: call.create.title, key, read_only: readOnly });
      } catch (e) {
        throw await githubFailure(e, r, `${describeCall(call)} on ${r.owner}/${r.repo}`);
      }
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
