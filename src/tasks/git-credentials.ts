import { z } from 'zod';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import type { GitCredentials, TaskContext } from './context.ts';
import { applySecret, observeSecret, planSecret } from './secret.ts';
import type { SecretFacts, SecretSpec } from './secret.ts';
import { fluxBuild } from './source.ts';

const Params = z.strictObject({
  namespace: z.string().min(1).default('flux-system'),
  name: z.string().min(1).optional().describe('Secret name; default: the secretRef of GitRepository flux-system, else flux-system.'),
});
type Params = z.infer<typeof Params>;

/** What flux bootstrap adds to an SSH Secret and source-controller does not need. */
const SSH_OPTIONAL_KEYS = ['identity.pub'];

/** The keys source-controller reads: username/password for HTTPS, identity/known_hosts for SSH. */
export function gitSecretData(creds: GitCredentials): Record<string, string> | undefined {
  switch (creds.type) {
    case 'https': return { username: creds.username, password: creds.password };
    case 'ssh': return { identity: creds.identity, known_hosts: creds.knownHosts };
    case 'none': return undefined;
  }
}

type Facts = SecretFacts | { none: true };

export const gitCredentialsKind: TaskKind<Params, Facts, TaskContext, SecretSpec> = {
  kind: 'git-credentials',
  params: Params,
  async observe(p, ctx) {
    const data = gitSecretData(await ctx.gitCredentials());
    // A public repository over anonymous HTTPS needs no Secret.
    if (!data) return { none: true };
    const secretRef = ((await fluxBuild(ctx)).sync.gitRepository.spec as { secretRef?: { name?: string } } | undefined)?.secretRef?.name;
    const spec = { namespace: p.namespace, name: p.name ?? secretRef ?? 'flux-system', data, optionalKeys: SSH_OPTIONAL_KEYS };
    return observeSecret(await ctx.kube(), spec, ctx.rotateSecrets);
  },
  plan(_p, facts): Change<SecretSpec>[] {
    return 'none' in facts ? [] : planSecret(facts);
  },
  async apply(change, _p, ctx) {
    await applySecret(await ctx.kube(), change, ctx.rotateSecrets);
  },
};
