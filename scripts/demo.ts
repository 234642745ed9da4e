// `npm run demo`: the whole job, end to end, on a real local cluster.
//
// 1. builds what is missing and starts the test cluster (real kube-apiserver, etcd, Flux's
//    default controllers, a Git server) — the one `npm run cluster` runs;
// 2. makes an example GitOps repository with `fluxstrap keys new`, `init` and `encrypt`, and
//    pushes it to the cluster's Git server;
// 3. runs `fluxstrap bootstrap` with its normal progress view;
// 4. shows that the SOPS-encrypted Secret arrived decrypted (key names only, never values);
// 5. runs the bootstrap again to show that nothing changes, and proves it with `--check`.
//
// `--keep` leaves the cluster running for exploration (Ctrl-C to stop).
//
// Interrupted (SIGINT, SIGTERM) or failing, it ends every process it started — the command
// running, the cluster's processes — and removes its temp dirs before it exits (130 or 143 on a
// signal, 1 on failure). A second signal exits at once; the cluster's watchdog then cleans up.
import { rmSync } from 'node:fs';
import { constants } from 'node:os';
import { buildAll, missingArtifacts } from '../test/cluster/build.ts';
import { startCluster, type Cluster } from '../test/cluster/index.ts';
import { killTracked } from '../test/cluster/proc.ts';
import { ownedTempDir } from '../test/helpers/tmp.ts';
import { EXAMPLE_CLUSTER, cli, makeExampleRepo, sh } from './example-repo.ts';

const keep = process.argv.includes('--keep');

let interrupted: NodeJS.Signals | undefined;
let wakeKeep: (() => void) | undefined;

function onSignal(signal: NodeJS.Signals): void {
  const code = 128 + constants.signals[signal];
  if (interrupted !== undefined) {
    process.stderr.write(`\n${signal} again: exiting now; the cluster's watchdog stops its processes\n`);
    process.exit(code);
  }
  interrupted = signal;
  process.stderr.write(`\n${signal}: stopping everything the demo started…\n`);
  killTracked('SIGTERM');
  wakeKeep?.();
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

class Interrupted extends Error {}

function step(title: string): void {
  if (interrupted !== undefined) throw new Interrupted(interrupted);
  process.stderr.write(`\n\x1b[1m== ${title}\x1b[0m\n`);
}

const fluxstrap = (args: string[], env: NodeJS.ProcessEnv) => sh(process.execPath, [cli, ...args], { env });

async function main(): Promise<number> {
  let cluster: Cluster | undefined;
  let work: string | undefined;
  let ok = false;
  try {
    const missing = missingArtifacts();
    if (missing.length > 0) {
      step(`building the test cluster (${missing.join(', ')}): first time only`);
      await buildAll();
    }
    step('starting the local cluster: kube-apiserver, etcd, Git server; Flux controllers start when their Deployments exist');
    cluster = await startCluster({ flux: 'on-deployment' });
    work = ownedTempDir('demo');
    const { repo, env } = await makeExampleRepo(cluster, work, { step });
    const args = ['bootstrap', '--cluster', EXAMPLE_CLUSTER, '--repo', repo];

    step('fluxstrap bootstrap — cold cluster');
    if ((await fluxstrap(args, env)).code !== 0) throw new Error('bootstrap failed');

    step('the Secret in the cluster, decrypted by the real kustomize-controller (key names only)');
    const secret = JSON.parse(await cluster.kubectl(['get', 'secret', 'db-credentials', '-n', 'demo-app', '-o', 'json'])) as { data?: Record<string, string> };
    process.stderr.write(
      `secret demo-app/db-credentials has keys: ${Object.keys(secret.data ?? {})
        .sort()
        .join(', ')}\n`,
    );
    if (!secret.data?.password || Buffer.from(secret.data.password, 'base64').toString().startsWith('ENC[')) {
      throw new Error('the Secret did not arrive decrypted');
    }

    step('fluxstrap bootstrap — second run: nothing to change');
    if ((await fluxstrap(args, env)).code !== 0) throw new Error('second bootstrap failed');
    const check = await fluxstrap([...args, '--check', '--quiet'], env);
    if (check.code !== 0) throw new Error(`bootstrap --check reports pending changes after a converged run (exit ${check.code})`);
    process.stderr.write('bootstrap --check: no changes pending (exit 0)\n');
    ok = true;

    if (keep) {
      step(`cluster kept running: KUBECONFIG=${cluster.kubeconfig}, repository ${repo}; Ctrl-C to stop`);
      await new Promise<void>((resolve) => {
        wakeKeep = resolve;
      });
    }
  } catch (e) {
    // A command killed by the interrupt fails too; that is not the demo failing.
    if (interrupted === undefined) {
      process.stderr.write(`\ndemo failed: ${e instanceof Error ? e.message : String(e)}\n`);
      if (cluster !== undefined) {
        cluster.keep('the demo failed');
        process.stderr.write(`--- cluster logs (kept in ${cluster.logsDir}) ---\n${cluster.logTails(30)}\n`);
      }
    }
  } finally {
    await cluster?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  }
  // With --keep a signal is how the kept cluster is meant to end.
  if (interrupted !== undefined && !(keep && ok)) {
    process.stderr.write(`demo interrupted (${interrupted}): every process it started is stopped\n`);
    return 128 + constants.signals[interrupted];
  }
  step(ok ? 'demo done: cold bootstrap, decrypted Secret, idempotent re-run' : 'demo FAILED');
  return ok ? 0 : 1;
}

process.exitCode = await main();
