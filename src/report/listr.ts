import { Listr, ListrLogger, ProcessOutput } from 'listr2';
import { ExitCode } from '../core/errors.ts';
import type { Reporter, RunEvent, TaskResult } from '../core/events.ts';
import { detailLines, recapLine, resultTitle } from './format.ts';

export interface ListrReporterOptions {
  /** Show before/after of changes (`--diff`), masked when sensitive. */
  diff?: boolean;
  /** listr2 renderer; tests use `simple` (no cursor movement) to compare text. */
  renderer?: 'default' | 'simple';
}

/** The part of listr2's task wrapper this view uses. */
interface Wrapper {
  title: string;
  output: string;
  skip(message?: string): void;
}

/** One playbook task as listr2 sees it: it waits for the engine's verdict, never decides. */
interface Slot {
  wrapper?: Wrapper;
  /** The latest progress, kept until listr2 has started the task (it may lag the engine). */
  pending?: string;
  resolve: (r: TaskResult) => void;
  done: Promise<TaskResult>;
}

/**
 * The interactive view: a listr2 task list on the terminal. The engine alone runs the playbook;
 * each listr2 task only awaits its playbook task's events, so listr2's own ordering, retries and
 * error policy never come into play (exitOnError is off, and a failed listr2 task just shows).
 */
export class ListrReporter implements Reporter {
  private readonly out: NodeJS.WriteStream;
  private readonly opts: ListrReporterOptions;
  private slots: Slot[] = [];
  private running: Promise<unknown> = Promise.resolve();
  private recap: string | undefined;
  private readonly output: ProcessOutput;

  constructor(out: NodeJS.WriteStream, opts: ListrReporterOptions = {}) {
    this.out = out;
    this.opts = opts;
    this.output = new ProcessOutput(out, out, { leaveEmptyLine: false });
  }

  emit(e: RunEvent): void {
    switch (e.type) {
      case 'run-start':
        this.start(e);
        return;
      case 'task-start':
        return;
      case 'task-progress':
        this.progress(e.task.index, e.message);
        return;
      case 'task-retry':
        this.progress(e.task.index, `↻ attempt ${e.attempt}/${e.of} after ${e.message}`);
        return;
      case 'task-end':
        this.slots[e.result.index]?.resolve(e.result);
        return;
      case 'run-end':
        this.recap = recapLine(e.title, e.recap, e.durationMs);
        return;
    }
  }

  async close(): Promise<void> {
    await this.running;
    process.removeListener('SIGINT', this.interrupted);
    if (this.recap !== undefined) this.out.write(`${this.recap}\n`);
  }

  private start(e: Extract<RunEvent, { type: 'run-start' }>): void {
    this.slots = e.tasks.map(() => {
      let resolve!: (r: TaskResult) => void;
      const done = new Promise<TaskResult>((r) => (resolve = r));
      return { resolve, done };
    });
    if (e.check) this.out.write('check mode: nothing will be changed\n');
    // Both of listr2's streams go to ours (stderr): stdout is for results and --json only.
    const logger = new ListrLogger({ processOutput: this.output });
    const list = new Listr<unknown, 'default' | 'simple', 'simple'>(
      e.tasks.map((ref, index) => ({
        title: ref.name,
        task: async (_ctx, wrapper) => this.follow(index, wrapper),
        rendererOptions: { persistentOutput: true, outputBar: Infinity },
      })),
      {
        concurrent: false,
        exitOnError: false,
        registerSignalListeners: false,
        renderer: this.opts.renderer ?? 'default',
        // The caller chose this view for a terminal on stderr; listr2 would look at stdout.
        fallbackRendererCondition: false,
        rendererOptions: { collapseErrors: false, showErrorMessage: true, logger },
        fallbackRenderer: 'simple',
        fallbackRendererOptions: { logger },
      },
    );
    // Failures are the engine's to report (recap, exit code); listr2 only shows them.
    this.running = list.run().catch(() => undefined);
    process.once('SIGINT', this.interrupted);
  }

  /**
   * Ctrl-C: listr2's own handler would exit 127 and its spinner hides the cursor; give the
   * terminal its cursor back and exit 130, as a shell expects after an interrupt.
   */
  private readonly interrupted = (): void => {
    // While it renders, listr2 holds the stream's writes in a buffer: take the stream back first.
    this.output.release();
    this.out.write('\u001B[?25h\ninterrupted: every step is idempotent, so running the same command again converges\n');
    process.exit(ExitCode.interrupted);
  };

  private progress(index: number, message: string): void {
    const slot = this.slots[index];
    if (!slot) return;
    if (slot.wrapper) slot.wrapper.output = message;
    else slot.pending = message;
  }

  private async follow(index: number, wrapper: Wrapper): Promise<void> {
    const slot = this.slots[index] as Slot;
    slot.wrapper = wrapper;
    if (slot.pending !== undefined) wrapper.output = slot.pending;
    const r = await slot.done;
    if (r.outcome === 'skipped') {
      wrapper.skip(`${r.name} [skipped]`);
      return;
    }
    wrapper.title = resultTitle(r);
    if (r.outcome === 'failed' && !r.ignoredError && r.error) {
      // listr2 prints the thrown message under the task: say what failed and how to fix it.
      const { message, where, hint } = r.error;
      throw new Error(`${message}${where ? ` (${where})` : ''}${hint ? `\nhint: ${hint}` : ''}`);
    }
    const details = detailLines(r, this.opts.diff === true);
    if (details.length > 0) wrapper.output = details.map((l) => l.trimStart()).join('\n');
  }
}
