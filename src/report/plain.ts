import { styleText } from 'node:util';
import type { Outcome, Reporter, RunEvent } from '../core/events.ts';
import { detailLines, recapLine, resultLine } from './format.ts';

export interface PlainOptions {
  color: boolean;
  quiet: boolean;
  /** Print before/after of every change (`--diff`). */
  diff?: boolean;
}

/** One line per finished task, for CI logs and pipes: stable, greppable, no cursor tricks. */
export class PlainReporter implements Reporter {
  private readonly out: NodeJS.WritableStream;
  private readonly opts: PlainOptions;
  private lastProgress: string | undefined;

  constructor(out: NodeJS.WritableStream, opts: PlainOptions) {
    this.out = out;
    this.opts = opts;
  }

  emit(e: RunEvent): void {
    switch (e.type) {
      case 'run-start':
        if (!this.opts.quiet) this.write(`► ${e.title}${e.check ? ' (check mode: nothing will be changed)' : ''}`);
        return;
      case 'task-start':
        return;
      case 'task-progress':
        // A CI log that stays silent through a five-minute wait looks hung: say what is awaited,
        // once per new message (waits report the same state on every watch event).
        if (!this.opts.quiet && e.message !== this.lastProgress) this.write(`  … ${e.task.name}: ${e.message}`);
        this.lastProgress = e.message;
        return;
      case 'task-retry':
        if (!this.opts.quiet) this.write(`  ↻ ${e.task.name}: attempt ${e.attempt}/${e.of} after ${e.message}`);
        return;
      case 'task-end': {
        const r = e.result;
        if (this.opts.quiet && r.outcome !== 'failed') return;
        this.write(this.opts.color ? colorize(r.outcome, resultLine(r)) : resultLine(r));
        for (const l of detailLines(r, this.opts.diff === true)) this.write(l);
        return;
      }
      case 'run-end':
        this.write(recapLine(e.title, e.recap, e.durationMs));
        return;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private write(line: string): void {
    this.out.write(`${line}\n`);
  }
}

const COLOR: Record<Outcome, Parameters<typeof styleText>[0]> = {
  ok: 'green',
  changed: 'yellow',
  'would-change': 'cyan',
  skipped: 'gray',
  failed: 'red',
};

function colorize(outcome: Outcome, line: string): string {
  return styleText(COLOR[outcome], line, { validateStream: false });
}
