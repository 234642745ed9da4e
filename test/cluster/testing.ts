// One cluster per test file for node:test. A cluster that cannot start (not built, a process
// dies) fails every test with the reason, instead of node:test cancelling them silently after
// a failed before() hook, and a failing test gets every process's log tail appended and keeps
// the logs on disk.
import { after, afterEach, before } from 'node:test';
import { startCluster, type Cluster, type StartOptions } from './index.ts';

export interface FileCluster {
  /** The running cluster; only valid inside run(). */
  readonly cluster: Cluster;
  run(body: () => Promise<void> | void): Promise<void>;
}

export function clusterForFile(opts: StartOptions, setup?: (cluster: Cluster) => Promise<void>): FileCluster {
  let started: Promise<Cluster> | undefined;
  let current: Cluster | undefined;
  before(() => {
    started = startCluster(opts).then(async (c) => {
      current = c;
      await setup?.(c);
      return c;
    });
    // Reported by run() in every test.
    started.catch(() => undefined);
  });
  keepLogsOnFailure(() => current);
  after(async () => {
    await current?.stop();
  });
  return {
    get cluster(): Cluster {
      if (current === undefined) throw new Error('the cluster is not running');
      return current;
    },
    async run(body) {
      if (started === undefined) throw new Error('clusterForFile() must be called at the top level of a test file');
      const cluster = await started;
      try {
        await body();
      } catch (err) {
        (err as Error).message += `\n${cluster.logTails(30)}`;
        throw err;
      }
    },
  };
}

/** For a file with its own cluster: any failing test (subtests too) keeps the cluster's logs. */
export function keepLogsOnFailure(cluster: () => Cluster | undefined): void {
  afterEach((t) => {
    const c = cluster();
    if (c === undefined || !('passed' in t) || t.passed) return;
    c.keep(`test failed: ${t.fullName}`);
    t.diagnostic(`cluster logs kept in ${c.logsDir}`);
  });
}
