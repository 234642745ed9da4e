import type { Reporter, RunEvent } from '../core/events.ts';
import { safeView } from './format.ts';

/**
 * `--json` of an engine run: nothing while it runs; at its end the run's document (every task
 * with outcome, masked changes, duration) goes to `add`: the command's envelope (envelope.ts).
 */
export class JsonReporter implements Reporter {
  private readonly add: (doc: RunDocument) => void;
  private final: Extract<RunEvent, { type: 'run-end' }> | undefined;

  constructor(add: (doc: RunDocument) => void) {
    this.add = add;
  }

  emit(e: RunEvent): void {
    if (e.type === 'run-end') this.final = e;
  }

  close(): Promise<void> {
    if (this.final) this.add(jsonDocument(this.final));
    return Promise.resolve();
  }
}

export type RunDocument = ReturnType<typeof jsonDocument>;

/** The document of one run (and each cluster's entry when several run). */
export function jsonDocument(end: Extract<RunEvent, { type: 'run-end' }>) {
  const { title, check, recap, results, durationMs } = end;
  return {
    title,
    check,
    success: results.every((r) => r.outcome !== 'failed' || r.ignoredError === true),
    recap,
    durationMs,
    tasks: results.map((r) => ({ ...r, changes: r.changes.map(safeView) })),
  };
}
