import { namingCluster, resolveClusters } from '../cluster/resolve.ts';
import type { ClusterSelection } from '../cluster/resolve.ts';
import { toTaskError } from '../core/engine.ts';
import { ExitCode, usageError } from '../core/errors.ts';
import { prefixLines } from '../core/events.ts';
import type { ClusterRun, FleetView, FleetViewOptions, Reporter, RunEvent } from '../core/events.ts';
import { executeRun, exitCodeOf, listing, outline, prepareRun, runEnvironment, runSettings } from './bootstrap.ts';
import type { CommandIo } from './io.ts';
import type { PlaybookRunOptions, PreparedRun, RunEnvironment, RunSettings } from './bootstrap.ts';

/** `bootstrap` and `run` as commander hands them over. */
export interface FleetRunOptions extends Omit<PlaybookRunOptions, 'cluster'>, ClusterSelection {}

export interface FleetEnvironment extends Omit<RunEnvironment, 'reporter'> {
  view: (opts: FleetViewOptions) => FleetView | Promise<FleetView>;
}

/** Enough to keep a slow cluster from holding up the rest, few enough for a laptop's API clients. */
const DEFAULT_PARALLEL = 4;

/** The CLI entry for several clusters (bootstrap.ts sends one named cluster to runPlaybookCommand). */
export function runFleetCommand(opts: FleetRunOptions, io: CommandIo): Promise<number> {
  return runFleet(opts, { ...runEnvironment(io), view: (view) => io.fleetView(view) });
}

/**
 * Run the playbook on several clusters: every cluster's settings and playbook are validated
 * before any runs, then at most `--parallel` run at once, each with its own TaskContext and
 * engine run. A failing cluster does not stop the others. Exit code as for one run, over all.
 */
export async function runFleet(opts: FleetRunOptions, run: FleetEnvironment): Promise<number> {
  const parallel = parseParallel(opts.parallel);
  const settings = runSettings(opts);
  const prepared = await prepareAll(opts, run, settings);
  if (opts.listTasks) {
    if (run.json) run.json({ clusters: Object.fromEntries(prepared.map((p) => [p.cluster.name, listing(p.playbook)])) });
    else run.out.write(prepared.map((p) => prefixLines(outline(p.playbook), `[${p.cluster.name}] `)).join(''));
    return ExitCode.ok;
  }
  const view = await run.view({ diff: opts.diff === true, clusters: prepared.map((p) => p.cluster.name) });
  const runs: ClusterRun[] = [];
  await eachLimited(prepared, parallel, async (p, index) => {
    runs[index] = await runOne(p, view.cluster(p.cluster.name), run.env);
  });
  await view.close(runs);
  return exitCodeOf(
    runs.map((r) => ({ success: r.success, wouldChange: r.end?.recap.wouldChange ?? 0 })),
    settings.check,
  );
}

async function prepareAll(opts: FleetRunOptions, run: FleetEnvironment, settings: RunSettings): Promise<PreparedRun[]> {
  const clusters = await resolveClusters(opts, run.env, run.cwd);
  const prepared: PreparedRun[] = [];
  for (const cluster of clusters) {
    try {
      prepared.push(await prepareRun(cluster, { ...opts, cluster: cluster.name }, settings, run.registry));
    } catch (e) {
      throw namingCluster(e, cluster.name);
    }
  }
  return prepared;
}

async function runOne(p: PreparedRun, view: Reporter, env: NodeJS.ProcessEnv): Promise<ClusterRun> {
  const name = p.cluster.name;
  let end: Extract<RunEvent, { type: 'run-end' }> | undefined;
  let started = false;
  const capture: Reporter = {
    emit: (e) => {
      if (e.type === 'run-start') started = true;
      if (e.type === 'run-end') end = e;
      view.emit(e);
    },
    close: () => view.close(),
  };
  try {
    const result = await executeRun(p, capture, env);
    return { name, success: result.success, ...(end ? { end } : {}) };
  } catch (e) {
    // The engine turns task failures into results; this is what escaped it (a bug, a broken view).
    return { name, success: false, error: toTaskError(e), ...(started ? { started } : {}) };
  }
}

/** Run `fn` over `items` with at most `limit` calls in flight. */
export async function eachLimited<T>(items: T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export function parseParallel(value: string | undefined): number {
  if (value === undefined) return DEFAULT_PARALLEL;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw usageError(`--parallel ${value}: expected a whole number of clusters, 1 or more`);
  return n;
}
