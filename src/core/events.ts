import type { ChangeView } from './change.ts';
import type { ErrorReport, Location } from './errors.ts';

/**
 * The one event stream every renderer is a view of (listr2 on a TTY, plain lines in CI, JSON).
 * `type` values are stable: they are part of the `--json` contract.
 */
export type Outcome = 'ok' | 'changed' | 'would-change' | 'skipped' | 'failed';

export interface TaskRef {
  index: number;
  name: string;
  kind: string;
  location?: Location;
}

export type TaskError = ErrorReport & {
  /** E_INTERNAL only: where the bug is. The CLI prints it under FLUXSTRAP_DEBUG and drops it before any view. */
  stack?: string;
};

export interface TaskResult extends TaskRef {
  outcome: Outcome;
  changes: ChangeView[];
  durationMs: number;
  /** Short facts worth showing (e.g. `revision main@sha1:abc`); never secret values. */
  notes: string[];
  error?: TaskError;
  ignoredError?: boolean;
}

export interface Recap {
  ok: number;
  changed: number;
  wouldChange: number;
  skipped: number;
  failed: number;
}

export type RunEvent =
  | { type: 'run-start'; title: string; check: boolean; tasks: TaskRef[] }
  | { type: 'task-start'; task: TaskRef }
  | { type: 'task-progress'; task: TaskRef; message: string }
  | { type: 'task-retry'; task: TaskRef; attempt: number; of: number; message: string }
  | { type: 'task-end'; result: TaskResult }
  | { type: 'run-end'; title: string; check: boolean; recap: Recap; results: TaskResult[]; durationMs: number };

export interface Reporter {
  emit(event: RunEvent): void;
  /** Called once when the run is over, so a renderer can flush (listr2 finishes, JSON prints). */
  close(): Promise<void>;
}

/** How one cluster of a multi-cluster run ended: its engine run, or the error that kept it from ending. */
export interface ClusterRun {
  name: string;
  success: boolean;
  end?: Extract<RunEvent, { type: 'run-end' }>;
  error?: TaskError;
  /** The playbook had begun when `error` stopped it. */
  started?: boolean;
}

/**
 * The view of several clusters running at once: a Reporter per cluster, and a close that sees
 * every cluster's outcome (the recap, or the one JSON document).
 */
export interface FleetView {
  cluster(name: string): Reporter;
  close(runs: ClusterRun[]): Promise<void>;
}

/** Every non-empty line starts with `prefix`, so interleaved lines of concurrent runs stay attributable. */
export function prefixLines(text: string, prefix: string): string {
  return text.replace(/^(?=.)/gm, prefix);
}

/** What a fleet view is told before any cluster runs: every cluster's name, in the order they start. */
export interface FleetViewOptions {
  diff: boolean;
  clusters: string[];
}
