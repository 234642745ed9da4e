/**
 * fluxstrap bootstrap against the seed's sequence as a kubectl script (bench/seed-kubectl.sh, with
 * the built flux CLI for the reconcile when it is there), on the real test cluster, in one run:
 *  1. cold bootstrap of a fresh cluster each: wall time, and "own" time = wall minus the time
 *     spent waiting for controllers (fluxstrap: its wait-controllers and reconcile tasks; the
 *     script: its kubectl wait / flux reconcile steps);
 *  2. no-op re-runs on the converged cluster: median wall time and the ratio;
 *  3. peak memory (max RSS) of each, from GNU time.
 * Usage: npm run build && node bench/bootstrap.ts [--reps 5]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startCluster } from '../test/cluster/index.ts';
import type { Cluster } from '../test/cluster/index.ts';
import { EXAMPLE_CLUSTER, cli, makeExampleRepo } from '../scripts/example-repo.ts';
import type { ExampleRepo } from '../scripts/example-repo.ts';
import { timed, type Timed } from './timed.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '5' } } });
const reps = Number(values.reps);
const script = fileURLToPath(new URL('./seed-kubectl.sh', import.meta.url));
const WAITS = new Set(['wait-controllers', 'reconcile']);

function fluxstrapRun(repo: ExampleRepo): Promise<Timed> {
  return timed(process.execPath, [cli, 'bootstrap', '--json', '--cluster', EXAMPLE_CLUSTER, '--repo', repo.repo], repo.env, (stdout) => {
    const doc = JSON.parse(stdout) as { tasks: { kind: string; durationMs: number }[]; recap: { changed: number } };
    return doc.tasks.filter((t) => WAITS.has(t.kind)).reduce((sum, t) => sum + t.durationMs, 0);
  });
}

let seedUsedFlux = false;

function scriptRun(cluster: Cluster, repo: ExampleRepo, work: string): Promise<Timed> {
  seedUsedFlux = cluster.binaries.flux !== undefined;
  const passwordFile = join(work, 'git-password');
  writeFileSync(passwordFile, cluster.git.password, { mode: 0o600 });
  const env: NodeJS.ProcessEnv = {
    KUBECONFIG: cluster.kubeconfig,
    KUBECTL: cluster.binaries.kubectl,
    FLUX_DIR: join(repo.repo, repo.path, 'flux-system'),
    GIT_USER: cluster.git.username,
    GIT_PASSWORD_FILE: passwordFile,
    AGE_KEY_FILE: repo.keyFile,
    ...(cluster.binaries.flux ? { FLUX: cluster.binaries.flux } : {}),
  };
  return timed('bash', [script], env, (_stdout, stderr) =>
    [...stderr.matchAll(/^step (\S+) (\d+)$/gm)].filter((m) => WAITS.has(m[1] ?? '')).reduce((sum, m) => sum + Number(m[2]), 0),
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;

async function measure(name: string, run: (cluster: Cluster, repo: ExampleRepo, work: string) => Promise<Timed>) {
  const cluster = await startCluster({ flux: 'on-deployment' });
  const work = mkdtempSync(join(tmpdir(), 'fluxstrap-bench-'));
  try {
    const repo = await makeExampleRepo(cluster, work, { quiet: true });
    const cold = await run(cluster, repo, work);
    const again: Timed[] = [];
    for (let i = 0; i < reps; i++) again.push(await run(cluster, repo, work));
    process.stderr.write(`${name}: cold ${s(cold.wallMs)}, no-op median ${s(median(again.map((r) => r.wallMs)))}\n`);
    return { cold, again };
  } finally {
    await cluster.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const ours = await measure('fluxstrap', (_c, repo) => fluxstrapRun(repo));
const seed = await measure('kubectl script', scriptRun);

const oursNoop = median(ours.again.map((r) => r.wallMs));
const seedNoop = median(seed.again.map((r) => r.wallMs));
const rows = [
  ['', 'fluxstrap', `kubectl script${seedUsedFlux ? ' + flux reconcile' : ''}`, 'ratio'],
  ['cold bootstrap, wall', s(ours.cold.wallMs), s(seed.cold.wallMs), `${(seed.cold.wallMs / ours.cold.wallMs).toFixed(2)}x`],
  [
    'cold bootstrap, own time (wall − waiting)',
    s(ours.cold.wallMs - ours.cold.waitMs),
    s(seed.cold.wallMs - seed.cold.waitMs),
    `${((seed.cold.wallMs - seed.cold.waitMs) / (ours.cold.wallMs - ours.cold.waitMs)).toFixed(2)}x`,
  ],
  [`no-op re-run, median of ${reps}`, s(oursNoop), s(seedNoop), `${(seedNoop / oursNoop).toFixed(2)}x`],
  [
    'peak memory (max RSS)',
    mb(Math.max(ours.cold.maxRssKb, ...ours.again.map((r) => r.maxRssKb))),
    mb(Math.max(seed.cold.maxRssKb, ...seed.again.map((r) => r.maxRssKb))),
    '',
  ],
];
console.log(
  rows
    .map((r) => `| ${r.join(' | ')} |`)
    .join('\n')
    .replace(/^(\|.*\|)\n/, '$1\n|---|---:|---:|---:|\n'),
);
