// A task context for observe and plan without a cluster: a kube adapter that holds nothing.
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import type { ResolvedCluster } from '../../src/cluster/config.ts';
import { createTaskContext } from '../../src/tasks/context.ts';

const emptyKube = { get: () => Promise.resolve(undefined) } as unknown as KubeAdapter;

export const offlineTaskContext = (cluster: ResolvedCluster, env: NodeJS.ProcessEnv) =>
  createTaskContext({ cluster, rotateSecrets: false, timeoutMs: 1000, log: () => undefined, env, connect: () => Promise.resolve(emptyKube) });
