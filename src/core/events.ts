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

export type TaskError = ErrorReport;

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
