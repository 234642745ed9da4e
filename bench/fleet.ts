/**
 * `fluxstrap bootstrap --all-clusters` over 1, 2 and 4 harness clusters at once: one repository
 * whose fluxstrap.yaml names every cluster (each its own kubeconfig and folder, all pulling from
 * the first cluster's Git server). Per count: the cold bootstrap (empty clusters) and the median
 * no-op re-run, wall time and peak memory (max RSS of the fluxstrap process, GNU time).
 * Each harness cluster needs ≈ 0.7 GB (kube-apiserver, etcd, four controllers).
 * Usage: npm run build && node bench/fleet.ts [--counts 1,2,4] [--reps 3]
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCluster } from '../test/cluster/index.ts';
import type { Cluster } from '../test/cluster/index.ts';
import { addFleetCluster, cli, makeExampleRepo } from '../scripts/example-repo.ts';
import { timed, type Timed } from './timed.ts';

const { values } = parseArgs({ options: { counts: { type: 'string', default: '1,2,4' }, reps: { type: 'string', default: '3' } } });
const counts = values.counts.split(',').map(Number);
const reps = Number(values.reps);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;

async function measure(count: number): Promise<{ cold: Timed; again: Timed[] }> {
  const clusters: Cluster[] = [];
  const work = mkdtempSync(join(tmpdir(), 'fluxstrap-bench-fleet-'));
  try {
    // One at a time: starting several at once on a small machine only makes each slower.
    for (let i = 0; i < count; i++) clusters.push(await startCluster({ flux: 'on-deployment' }));
    const [first] = clusters;
    if (!first) throw new Error('no cluster');
    const example = await makeExampleRepo(first, work, { name: 'fleet', quiet: true });
    for (const [i, c] of clusters.slice(1).entries()) {
      const kubeconfig = join(work, `edge${i + 1}.kubeconfig`);
      cpSync(c.kubeconfig, kubeconfig);
      await addFleetCluster(example, first, `edge${i + 1}`, kubeconfig);
    }
    const run = () => timed(process.execPath, [cli, '--json', 'bootstrap', '--all-clusters', '--timeout', '10m', '--repo', example.repo], example.env, () => 0);
    const cold = await run();
    const again: Timed[] = [];
    for (let i = 0; i < reps; i++) again.push(await run());
    process.stderr.write(`${count} cluster(s): cold ${s(cold.wallMs)}, no-op median ${s(median(again.map((r) => r.wallMs)))}\n`);
    return { cold, again };
  } finally {
    for (const c of clusters) await c.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const rows: string[][] = [];
for (const count of counts) {
  const { cold, again } = await measure(count);
  const noop = median(again.map((r) => r.wallMs));
  rows.push([
    String(count),
    s(cold.wallMs),
    mb(cold.maxRssKb),
    s(noop),
    mb(Math.max(...again.map((r) => r.maxRssKb))),
    `${(noop / count / 1000).toFixed(2)} s`,
  ]);
}
console.log(`node ${process.version}; no-op: median of ${reps}`);
console.log('| clusters | cold, wall | cold, peak memory | no-op, wall | no-op, peak memory | no-op per cluster |\n|---:|---:|---:|---:|---:|---:|');
console.log(rows.map((r) => `| ${r.join(' | ')} |`).join('\n'));
