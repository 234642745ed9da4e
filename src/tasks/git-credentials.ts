import { z } from 'zod';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import type { GitCredentials } from '../adapters/git.ts';
import type { TaskContext } from './context.ts';
import { applySecret, observeSecret, planSecret } from './secret.ts';
import type { SecretFacts, SecretSpec } from './secret.ts';

const Params = z.strictObject({
  namespace: z.string().min(1).default('flux-system'),
  name: z.string().min(1).optional().describe('Secret name; default: the secretRef of GitRepository flux-system, else flux-system.'),
});
type Params = z.infer<typeof Params>;

/** What flux bootstrap adds to an SSH Secret and source-controller does not need. */
const SSH_OPTIONAL_KEYS = ['identity.pub'];

/** The keys source-controller reads: username/password for HTTPS, identity/known_hosts for SSH, githubApp* for a GitHub App. */
export function gitSecretData(creds: GitCredentials): Record<string, string> | undefined {
  switch (creds.type) {
    case 'https':
      return { username: creds.username, password: creds.password };
    case 'ssh':
      return { identity: creds.identity, known_hosts: creds.knownHosts };
    // The keys source-controller reads for `provider: github` (fluxcd/pkg git/github).
    case 'github-app':
      return {
        githubAppID: creds.appId,
        ...(creds.installationId !== undefined ? { githubAppInstallationID: creds.installationId } : {}),
        ...(creds.installationOwner !== undefined ? { githubAppInstallationOwner: creds.installationOwner } : {}),
        githubAppPrivateKey: creds.privateKey,
        ...(creds.baseUrl !== undefined ? { githubAppBaseURL: creds.baseUrl } : {}),
      };
    case 'none':
      return undefined;
  }
}

type Facts = SecretFacts | { none: true };

export const gitCredentialsKind: TaskKind<Params, Facts, TaskContext, SecretSpec> = {
  kind: 'git-credentials',
  params: Params,
  async observe(p, ctx) {
    const creds = await ctx.gitCredentials();
    const data = gitSecretData(creds);
    // A public repository over anonymous HTTPS needs no Secret.
    if (!data) return { none: true };
    const spec = (await ctx.fluxBuild()).sync.gitRepository.spec as { secretRef?: { name?: string }; provider?: string } | undefined;
    // Without the provider source-controller reads username/password from the Secret and finds none.
    if (creds.type === 'github-app' && spec?.provider !== 'github') {
      throw new FluxstrapError('E_PRECONDITION', 'GitRepository flux-system has no provider: github, which GitHub App auth needs', {
        location: { file: `${ctx.cluster.path}/flux-system/kustomization.yaml` },
        hint: `run fluxstrap init --cluster ${ctx.cluster.name} (it adds the patch to flux-system/kustomization.yaml), then commit and push`,
      });
    }
    const secretRef = spec?.secretRef?.name;
    return observeSecret(
      await ctx.kube(),
      { namespace: p.namespace, name: p.name ?? secretRef ?? 'flux-system', data, optionalKeys: SSH_OPTIONAL_KEYS },
      ctx.rotateSecrets,
    );
  },
  plan(_p, facts): Change<SecretSpec>[] {
    return 'none' in facts ? [] : planSecret(facts);
  },
  async apply(change, _p, ctx) {
    await applySecret(await ctx.kube(), change, ctx.rotateSecrets);
  },
};
