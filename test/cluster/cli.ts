// `npm run cluster`: builds what is missing, starts a cluster (controllers run for their
// flux-system Deployments, as after a bootstrap) and the Git server, writes a JSON description
// and prints `FLUXSTRAP_CLUSTER=<path>` on its own line once ready. Runs until Ctrl-C/SIGTERM.
// Options: --flux=on-deployment|now|off, --with-flux-cli, --out=<file>
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildAll, missingArtifacts } from './build.ts';
import type { GitServerInfo } from './git-server.ts';
import { startCluster, type Cluster, type FluxMode } from './index.ts';

export interface ClusterDescription {
  kubeconfig: string;
  server: string;
  kubernetesVersion: string;
  fluxVersion: string;
  controllerVersions: Cluster['controllerVersions'];
  gotkComponentsPath: string;
  fluxMode: FluxMode;
  /** Repositories are at `${httpBase}/<path>` and `${sshBase}/<path>`; pushing to a new path creates it. */
  git: GitServerInfo;
  binaries: Cluster['binaries'];
  logsDir: string;
  pid: number;
}

export function describeCluster(cluster: Cluster, fluxMode: FluxMode): ClusterDescription {
  const { httpUrl: _httpUrl, sshUrl: _sshUrl, stop: _stop, ...git } = cluster.git;
  return {
    kubeconfig: cluster.kubeconfig,
    server: cluster.server,
    kubernetesVersion: cluster.kubernetesVersion,
    fluxVersion: cluster.fluxVersion,
    controllerVersions: cluster.controllerVersions,
    gotkComponentsPath: cluster.gotkComponentsPath,
    fluxMode,
    git,
    binaries: cluster.binaries,
    logsDir: cluster.logsDir,
    pid: process.pid,
  };
}

function option(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

async function main(): Promise<void> {
  const fluxMode = (option('flux') ?? 'on-deployment') as FluxMode;
  if (!['on-deployment', 'now', 'off'].includes(fluxMode)) throw new Error(`--flux must be on-deployment, now or off, not ${fluxMode}`);
  const withFluxCli = process.argv.includes('--with-flux-cli');
  if (missingArtifacts().length > 0 || withFluxCli) await buildAll({ withFluxCli });

  const started = Date.now();
  const cluster = await startCluster({ flux: fluxMode });
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    console.error('[cluster] stopping…');
    cluster.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`[cluster] stop failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  const out = option('out') ?? join(cluster.dir, 'cluster.json');
  writeFileSync(out, `${JSON.stringify(describeCluster(cluster, fluxMode), null, 2)}\n`, { mode: 0o600 });
  console.error(`[cluster] ready in ${((Date.now() - started) / 1000).toFixed(1)}s; logs in ${cluster.logsDir}; Ctrl-C stops it`);
  console.log(`FLUXSTRAP_CLUSTER=${out}`);
  // Keeps the process alive; the servers are unref'd so tests can exit without stop().
  setInterval(() => undefined, 1 << 30);
}

main().catch((err: unknown) => {
  console.error(`[cluster] ${(err as Error).message}`);
  process.exit(1);
});
