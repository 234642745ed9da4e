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
    return this.final ? writeJson(this.out, jsonDocument(this.final)) : Promise.resolve();
  }
}

/** The document of one run, as `--json` prints it (and as each cluster's entry when several run). */
export function jsonDocument(end: Extract<RunEvent, { type: 'run-end' }>) {
  const { title, check, recap, results, durationMs } = end;
  return { title, check, success: results.every((r) => r.outcome !== 'failed' || r.ignoredError === true), recap, durationMs, tasks: results.map((r) => ({ ...r, changes: r.changes.map(safeView) })) };
}

export function writeJson(out: NodeJS.WritableStream, doc: unknown): Promise<void> {
  return new Promise((resolve) => out.write(`${JSON.stringify(doc, null, 2)}\n`, () => resolve()));
}
