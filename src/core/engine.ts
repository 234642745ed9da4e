import { viewOf } from './change.ts';
import type { Change } from './change.ts';
import { FluxstrapError, internalErrorReport, isFluxstrapError } from './errors.ts';
import { redactPrivateKeys } from './redact.ts';
import type { Recap, Reporter, TaskRef, TaskResult } from './events.ts';
import type { TaskInstance } from './task.ts';

export interface RunOptions<C> {
  title: string;
  tasks: TaskInstance<C>[];
  ctx: C;
  reporter: Reporter;
  /** Never mutate: report would-change instead of applying. */
  check: boolean;
  /**
   * Observe and plan every task before the run starts, so a bad input anywhere stops the command
   * before its first change (as an error, not a failed task). For runs of independent tasks
   * (init's files), where no task's plan depends on another's apply.
   */
  planFirst?: boolean;
  vars?: Record<string, unknown>;
  /** Injected so tests need not sleep; defaults to setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface RunResult {
  recap: Recap;
  results: TaskResult[];
  /** True when every task ended ok, changed, would-change or skipped (or failed with ignoreErrors). */
  success: boolean;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs tasks in order: observe → plan → (check: report) | (apply → re-observe → re-plan).
 * An empty plan is `ok`; applied changes are `changed`; anything left after apply is a
 * convergence failure, because a task that cannot reach its own goal must not report success.
 * The first failure stops the run (unless the task ignores errors), like Ansible's default.
 * A handler runs only when a task's outcome (changed, or would-change under check) notified it.
 * Under check, a change marked `checkHorizon` ends the run there: what follows cannot be observed yet.
 */
export async function runTasks<C>(opts: RunOptions<C>): Promise<RunResult> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? defaultSleep;
  const vars = opts.vars ?? {};
  const refs: TaskRef[] = opts.tasks.map((t, index) => refOf(t, index));
  if (opts.planFirst) {
    for (const task of opts.tasks) task.kind.plan(task.params, await task.kind.observe(task.params, opts.ctx, { check: checkOf(task, opts) }), opts.ctx);
  }
  const started = now();
  opts.reporter.emit({ type: 'run-start', title: opts.title, check: opts.check, tasks: refs });

  const results: TaskResult[] = [];
  const notified = new Set<number>();
  let stopped = false;
  for (const [index, task] of opts.tasks.entries()) {
    const ref = refs[index] as TaskRef;
    if (stopped || (task.handler === true && !notified.has(index)) || (task.when && !task.when(vars))) {
      const result: TaskResult = { ...ref, outcome: 'skipped', changes: [], durationMs: 0, notes: [] };
      results.push(result);
      opts.reporter.emit({ type: 'task-end', result });
      continue;
    }
    opts.reporter.emit({ type: 'task-start', task: ref });
    const t0 = now();
    const check = checkOf(task, opts);
    let result: TaskResult;
    let planned: Change[] = [];
    try {
      const { changes, notes } = await runOne(task, ref, check, opts, sleep);
      planned = changes;
      result = {
        ...ref,
        outcome: changes.length === 0 ? 'ok' : check ? 'would-change' : 'changed',
        changes: changes.map(viewOf),
        durationMs: now() - t0,
        notes,
      };
    } catch (e) {
      result = {
        ...ref,
        outcome: 'failed',
        changes: [],
        durationMs: now() - t0,
        notes: [],
        error: toTaskError(e),
        ...(task.ignoreErrors ? { ignoredError: true } : {}),
      };
      if (!task.ignoreErrors) stopped = true;
    }
    if (check && result.outcome === 'would-change' && planned.some((c) => c.checkHorizon === true)) stopped = true;
    results.push(result);
    if (result.outcome === 'changed' || result.outcome === 'would-change') for (const n of task.notify ?? []) notified.add(n);
    opts.reporter.emit({ type: 'task-end', result });
  }

  const recap = recapOf(results);
  opts.reporter.emit({ type: 'run-end', title: opts.title, check: opts.check, recap, results, durationMs: now() - started });
  await opts.reporter.close();
  return { recap, results, success: results.every((r) => r.outcome !== 'failed' || r.ignoredError === true) };
}

async function runOne<C>(
  task: TaskInstance<C>,
  ref: TaskRef,
  check: boolean,
  opts: RunOptions<C>,
  sleep: (ms: number) => Promise<void>,
): Promise<{ changes: Change[]; notes: string[] }> {
  const { kind, params } = task;
  const attempt = <T>(what: string, fn: () => Promise<T>) => withRetries(task, ref, what, fn, opts, sleep);

  const run = { check };
  let observed = await attempt('observe', () => kind.observe(params, opts.ctx, run));
  const changes = kind.plan(params, observed, opts.ctx);
  if (changes.length === 0 || check) {
    return { changes, notes: kind.notes?.(params, observed) ?? [] };
  }
  for (const change of changes) {
    opts.reporter.emit({ type: 'task-progress', task: ref, message: `${change.action} ${change.target}` });
    await attempt('apply', () => kind.apply(change, params, opts.ctx));
  }
  observed = await attempt('observe', () => kind.observe(params, opts.ctx, run));
  const left = kind.plan(params, observed, opts.ctx);
  if (left.length > 0) {
    throw new FluxstrapError('E_CONVERGENCE', `changes remain after apply: ${left.map((c) => `${c.action} ${c.target}`).join(', ')}`, {
      hint: 'something else is changing the same object, or the task kind has a bug; run again with --diff',
    });
  }
  return { changes, notes: kind.notes?.(params, observed) ?? [] };
}

async function withRetries<C, T>(
  task: TaskInstance<C>,
  ref: TaskRef,
  what: string,
  fn: () => Promise<T>,
  opts: RunOptions<C>,
  sleep: (ms: number) => Promise<void>,
): Promise<T> {
  const attempts = 1 + (task.retries ?? 0);
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      // Only failures at the edges (API, network, processes) are worth another try; a bad
      // input or a refusal will fail the same way again.
      if (i >= attempts || !isRetryable(e)) throw e;
      opts.reporter.emit({
        type: 'task-retry',
        task: ref,
        attempt: i + 1,
        of: attempts,
        message: `${what}: ${e instanceof Error ? e.message : String(e)}`,
      });
      await sleep(task.retryDelayMs ?? 1000);
    }
  }
}

/** The one place check mode is decided: a task's own `check_mode:` wins over the run's `--check`. */
function checkOf<C>(task: TaskInstance<C>, opts: RunOptions<C>): boolean {
  return task.checkMode ?? opts.check;
}

function isRetryable(e: unknown): boolean {
  if (!isFluxstrapError(e)) return false;
  return e.code === 'E_KUBE' || e.code === 'E_GIT' || e.code === 'E_GITHUB' || e.code === 'E_PROCESS' || e.code === 'E_TIMEOUT';
}

function refOf<C>(t: TaskInstance<C>, index: number): TaskRef {
  return { index, name: t.name, kind: t.kind.kind, ...(t.location ? { location: t.location } : {}) };
}

export function toTaskError(e: unknown): TaskResult['error'] & object {
  const report = internalErrorReport(e);
  if (isFluxstrapError(e)) return report;
  // Not an error fluxstrap meant to raise: a bug. Keep where it happened for FLUXSTRAP_DEBUG.
  return { ...report, ...(e instanceof Error && e.stack !== undefined ? { stack: redactPrivateKeys(e.stack) } : {}) };
}

export function recapOf(results: TaskResult[]): Recap {
  const recap: Recap = { ok: 0, changed: 0, wouldChange: 0, skipped: 0, failed: 0 };
  for (const r of results) {
    if (r.outcome === 'would-change') recap.wouldChange++;
    else recap[r.outcome]++;
  }
  return recap;
}
