import type { Reporter, RunEvent } from '../core/events.ts';
import { describeChange, diffLines, errorLines, recapLine, resultLine } from './format.ts';

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
      case 'task-progress':
        return;
      case 'task-retry':
        if (!this.opts.quiet) this.write(`  ↻ ${e.task.name}: attempt ${e.attempt}/${e.of} after ${e.message}`);
        return;
      case 'task-end': {
        const r = e.result;
        if (this.opts.quiet && r.outcome !== 'failed') return;
        this.write(resultLine(r));
        for (const c of r.changes) {
          this.write(`  ${describeChange(c)}`);
          if (this.opts.diff) for (const l of diffLines(c)) this.write(l);
        }
        for (const l of errorLines(r)) this.write(l);
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
