import { z } from 'zod';
import { readText, readTextIfExists } from '../adapters/files.ts';
import type { ObjectRef } from '../adapters/kube/port.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { publicKeyOfPrivate } from '../keys/ssh.ts';
import type { TaskContext } from './context.ts';
import { applySecret, observeSecret, planSecret } from './secret.ts';
import type { SecretFacts, SecretSpec } from './secret.ts';

/**
 * The live Git Secret of GitRepository flux-system holding a given deploy key (`identity`), its
 * known_hosts kept as the cluster has it: a key rotation swaps the key and nothing else. It reads
 * the cluster, not the repository, because the rotation is of what Flux uses now.
 */
const Params = z.strictObject({
  keyFile: z.string().min(1).describe('Private key file the Secret must hold.'),
  namespace: z.string().min(1).default('flux-system'),
  gitRepository: z.string().min(1).default('flux-system').describe('The GitRepository whose secretRef names the Secret.'),
});
type Params = z.infer<typeof Params>;

export const gitRepositoryRef = (p: Pick<Params, 'namespace' | 'gitRepository'>): ObjectRef => ({
  apiVersion: 'source.toolkit.fluxcd.io/v1',
  kind: 'GitRepository',
  namespace: p.namespace,
  name: p.gitRepository,
});

/** Shown under --check before the new key exists; never applied (check mode applies nothing). */
const PENDING = '<new deploy key>';

export const gitIdentitySecretKind: TaskKind<Params, SecretFacts, TaskContext, SecretSpec> = {
  kind: 'git-identity-secret',
  params: Params,
  async observe(p, ctx) {
    const kube = await ctx.kube();
    const repo = await kube.get(gitRepositoryRef(p));
    if (!repo) {
      throw new FluxstrapError('E_NOT_FOUND', `GitRepository ${p.namespace}/${p.gitRepository} does not exist in the cluster`, {
        hint: `bootstrap the cluster first: fluxstrap bootstrap --cluster ${ctx.cluster.name}`,
      });
    }
    const name = (repo.spec as { secretRef?: { name?: string } } | undefined)?.secretRef?.name;
    if (name === undefined) {
      throw new FluxstrapError('E_PRECONDITION', `GitRepository ${p.namespace}/${p.gitRepository} has no secretRef: Flux pulls without a key`, {
        hint: 'bootstrap with SSH auth (git.auth.ssh) first',
      });
    }
    const text = await readTextIfExists(p.keyFile, 'read the deploy key');
    const identity = text ?? PENDING;
    const { live } = await observeSecret(kube, { namespace: p.namespace, name, data: {} }, true);
    if (live?.identity === undefined) {
      throw new FluxstrapError('E_PRECONDITION', `Secret ${p.namespace}/${name} holds no SSH identity: there is no deploy key to rotate`, {
        hint: `bootstrap with SSH auth (git.auth.ssh) first: fluxstrap bootstrap --cluster ${ctx.cluster.name}`,
      });
    }
    const auth = ctx.cluster.git.auth;
    const knownHosts = live.known_hosts ?? (auth.type === 'ssh' ? await readText(auth.knownHostsFile, 'read known_hosts') : '');
    // flux bootstrap's identity.pub is kept only in step with the key it describes.
    const pub = live['identity.pub'] !== undefined && text !== undefined ? { 'identity.pub': `${publicKeyOfPrivate(text, p.keyFile)}\n` } : {};
    return observeSecret(kube, { namespace: p.namespace, name, data: { identity, known_hosts: knownHosts, ...pub }, optionalKeys: ['identity.pub'] }, true);
  },
  plan(_p, facts): Change<SecretSpec>[] {
    return planSecret(facts);
  },
  async apply(change, _p, ctx) {
    await applySecret(await ctx.kube(), change, true);
  },
};
