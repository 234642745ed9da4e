import type { Reporter, RunEvent } from '../core/events.ts';
import { safeView } from './format.ts';

/**
 * `--json`: one final document on stdout (every task with outcome, masked changes, duration),
 * written when the run ends so a consumer can parse stdout as a whole.
 */
export class JsonReporter implements Reporter {
  private readonly out: NodeJS.WritableStream;
  private final: Extract<RunEvent, { type: 'run-end' }> | undefined;

  constructor(out: NodeJS.WritableStream) {
    this.out = out;
  }

  emit(e: RunEvent): void {
    if (e.type === 'run-end') this.final = e;
  }

  close(): Promise<void> {
    if (!this.final) return Promise.resolve();
    const { title, check, recap, results, durationMs } = this.final;
    const doc = { title, check, success: results.every((r) => r.outcome !== 'failed' || r.ignoredError), recap, durationMs, tasks: results.map((r) => ({ ...r, changes: r.changes.map(safeView) })) };
    return new Promise((resolve) => this.out.write(`${JSON.stringify(doc, null, 2)}\n`, () => resolve()));
  }
}
