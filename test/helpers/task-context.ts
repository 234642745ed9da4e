// A task context for observe and plan without a cluster: a kube adapter that holds nothing.
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import type { ResolvedCluster } from '../../src/cluster/config.ts';
import { createTaskContext } from '../../src/tasks/context.ts';

const emptyKube = { get: () => Promise.resolve(undefined) } as unknown as KubeAdapter;

/** Cluster `name` at clusters/<name> of the repository at repoDir, no Git auth, its age key in <NAME>_AGE_KEY of env. */
export function offlineTaskContext(name: string, repoDir: string, env: NodeJS.ProcessEnv, over: Partial<ResolvedCluster> = {}) {
  const cluster: ResolvedCluster = {
    name,
    repoDir,
    path: `clusters/${name}`,
    kube: {},
    git: { branch: 'main', auth: { type: 'none' }, provider: 'generic' },
    ageKey: { type: 'env', env: `${name.toUpperCase()}_AGE_KEY` },
    ...over,
  };
  return createTaskContext({ cluster, rotateSecrets: false, timeoutMs: 1000, log: () => undefined, env, connect: () => Promise.resolve(emptyKube) });
}
