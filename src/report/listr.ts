import { DefaultRenderer, Listr, ListrLogger, ProcessOutput } from 'listr2';
import type { ListrGetRendererClassFromValue, ListrSimpleRenderer, ListrTask } from 'listr2';
import type { Reporter, RunEvent, TaskError, TaskRef, TaskResult } from '../core/events.ts';
import type { ClusterRun, FleetView } from '../core/events.ts';
import { fleetRecap } from './fleet.ts';
import { detailLines, recapLine, resultTitle } from './format.ts';

type Renderer = 'default' | 'simple';
type Item = ListrTask<unknown, ListrGetRendererClassFromValue<Renderer>, ListrSimpleRenderer>;

export interface ListrReporterOptions {
  /** Show before/after of changes (`--diff`), masked when sensitive. */
  diff?: boolean;
  /** listr2 renderer; tests use `simple` (no cursor movement) to compare text. */
  renderer?: Renderer;
  /**
   * Ctrl-C as the CLI handles it: `restore` runs before the process stops, so the terminal gets
   * its cursor back; the returned function ends the watch. Without it, nothing is watched.
   */
  onInterrupt?: (restore: () => void) => () => void;
}

/** The part of listr2's task wrapper this view uses. */
interface Wrapper {
  title: string;
  output: string;
  skip(message?: string): void;
}

/** One playbook task as listr2 sees it: it waits for the engine's verdict, never decides. */
interface Slot {
  ref: TaskRef;
  ended: boolean;
  wrapper?: Wrapper;
  /** The latest progress, kept until listr2 has started the task (it may lag the engine). */
  pending?: string;
  /** The last progress message given to listr2 (or pending). */
  shown?: string;
  resolve: (r: TaskResult) => void;
  done: Promise<TaskResult>;
}

/** What listr2 prints under a failed task: what failed and how to fix it. */
function failureText({ message, where, hint }: TaskError): string {
  return `${message}${where ? ` (${where})` : ''}${hint ? `\nhint: ${hint}` : ''}`;
}

/**
 * One engine run's playbook tasks as listr2 tasks: at the root of the single-run view, under its
 * cluster in the fleet view. The engine alone runs the playbook; each listr2 task only awaits its
 * playbook task's events, so listr2's own ordering, retries and error policy never come into play
 * (exitOnError is off, and a failed listr2 task just shows).
 */
class RunTasks {
  private readonly diff: boolean;
  private slots: Slot[] = [];

  constructor(diff: boolean) {
    this.diff = diff;
  }

  /** The listr2 tasks for run-start's playbook tasks; emit() settles them. */
  start(refs: TaskRef[]): Item[] {
    this.slots = refs.map((ref) => {
      let resolve!: (r: TaskResult) => void;
      const done = new Promise<TaskResult>((r) => (resolve = r));
      return { ref, ended: false, resolve, done };
    });
    return refs.map((ref, index) => ({
      title: ref.name,
      task: async (_ctx, wrapper) => this.follow(index, wrapper),
      rendererOptions: { persistentOutput: true, outputBar: Infinity },
    }));
  }

  /** The events of single tasks; the run's start and end are the caller's to show. */
  emit(e: Exclude<RunEvent, { type: 'run-start' | 'run-end' }>): void {
    switch (e.type) {
      case 'task-start':
        return;
      case 'task-progress':
        this.progress(e.task.index, e.message);
        return;
      case 'task-retry':
        this.progress(e.task.index, `↻ attempt ${e.attempt}/${e.of} after ${e.message}`);
        return;
      case 'task-end':
        this.end(e.result);
        return;
    }
  }

  /**
   * The run died without ending its tasks (an error escaped the engine): the first open task fails
   * with it and the rest are skipped, as the engine does after a failure, so the list can end.
   */
  abort(error: TaskError): void {
    for (const [i, { ref }] of this.slots.filter((s) => !s.ended).entries()) {
      this.end({ ...ref, outcome: i === 0 ? 'failed' : 'skipped', changes: [], durationMs: 0, notes: [], ...(i === 0 ? { error } : {}) });
    }
  }

  private end(r: TaskResult): void {
    const slot = this.slots[r.index];
    if (!slot) return;
    slot.ended = true;
    slot.resolve(r);
  }

  private progress(index: number, message: string): void {
    const slot = this.slots[index];
    // listr2 keeps every output line; a wait repeats its state on each watch event.
    if (!slot || message === slot.shown) return;
    slot.shown = message;
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
    // listr2 prints the thrown message under the task.
    if (r.outcome === 'failed' && !r.ignoredError && r.error) throw new Error(failureText(r.error));
    const details = detailLines(r, this.diff);
    if (details.length > 0) wrapper.output = details.map((l) => l.trimStart()).join('\n');
  }
}

/**
 * listr2's default renderer, drawn where it is told (stderr, whose terminal the caller checked):
 * listr2 would fall back to its line renderer when stdout is not a terminal, as under `| tee`.
 */
class StderrRenderer extends DefaultRenderer {
  static override nonTTY = true;
}

/** The terminal while one listr2 list is drawn on it: where the list goes, and Ctrl-C meanwhile. */
class Screen {
  private readonly out: NodeJS.WriteStream;
  private readonly renderer: Renderer;
  private readonly output: ProcessOutput;
  private readonly onInterrupt: ListrReporterOptions['onInterrupt'];
  private running: Promise<unknown> = Promise.resolve();
  private stopWatching: (() => void) | undefined;

  constructor(out: NodeJS.WriteStream, renderer: Renderer, onInterrupt: ListrReporterOptions['onInterrupt']) {
    this.out = out;
    this.renderer = renderer;
    this.onInterrupt = onInterrupt;
    this.output = new ProcessOutput(out, out, { leaveEmptyLine: false });
  }

  show(tasks: Item[], concurrent: boolean): void {
    // Both of listr2's streams go to ours (stderr): stdout is for results and --json only.
    const logger = new ListrLogger({ processOutput: this.output });
    const list = new Listr<unknown, typeof StderrRenderer | 'simple', 'simple'>(tasks, {
      concurrent,
      exitOnError: false,
      registerSignalListeners: false,
      renderer: this.renderer === 'default' ? StderrRenderer : 'simple',
      fallbackRendererCondition: false,
      // Finished subtasks stay open: what changed (and --diff) is shown under its task.
      rendererOptions: { collapseErrors: false, collapseSubtasks: false, showErrorMessage: true, logger },
      fallbackRenderer: 'simple',
      fallbackRendererOptions: { logger },
    });
    // Failures are the engine's to report (recap, exit code); listr2 only shows them.
    this.running = list.run().catch(() => undefined);
    this.stopWatching = this.onInterrupt?.(this.interrupted);
  }

  async done(): Promise<void> {
    await this.running;
    this.stopWatching?.();
  }

  /**
   * Ctrl-C: listr2's own handler would exit 127 and its spinner hides the cursor; give the
   * terminal its cursor back (the CLI then exits 130, as a shell expects after an interrupt).
   */
  private readonly interrupted = (): void => {
    // While it renders, listr2 holds the stream's writes in a buffer: take the stream back first.
    this.output.release();
    this.out.write('\u001B[?25h');
  };
}

/** The interactive view of one run: a listr2 task list on the terminal, then the recap. */
export class ListrReporter implements Reporter {
  private readonly out: NodeJS.WriteStream;
  private readonly tasks: RunTasks;
  private readonly screen: Screen;
  private recap: string | undefined;

  constructor(out: NodeJS.WriteStream, opts: ListrReporterOptions = {}) {
    this.out = out;
    this.tasks = new RunTasks(opts.diff === true);
    this.screen = new Screen(out, opts.renderer ?? 'default', opts.onInterrupt);
  }

  emit(e: RunEvent): void {
    switch (e.type) {
      case 'run-start':
        if (e.check) this.out.write('check mode: nothing will be changed\n');
        this.screen.show(this.tasks.start(e.tasks), false);
        return;
      case 'run-end':
        this.recap = recapLine(e.title, e.recap, e.durationMs);
        return;
      default:
        this.tasks.emit(e);
    }
  }

  async close(): Promise<void> {
    await this.screen.done();
    if (this.recap !== undefined) this.out.write(`${this.recap}\n`);
  }
}

/** How a cluster's parent task goes on: its playbook's tasks, or why it has none. */
type Start = { tasks: Item[] } | { error: TaskError | undefined };

/** One cluster of the fleet view: its parent task and the run it shows. */
interface Member {
  name: string;
  tasks: RunTasks;
  /** The fleet has begun this cluster; the others wait for a free slot of --parallel. */
  begun: boolean;
  title: string;
  parent?: Wrapper;
  resolve: (s: Start) => void;
  started: Promise<Start>;
}

/**
 * The interactive view of several clusters: one listr2 list, a parent task per cluster, its
 * playbook's tasks under it. Several lists would redraw over each other. Every parent runs from the
 * start, so the tree never reorders; those the fleet has not begun say they are waiting.
 */
export class ListrFleetView implements FleetView {
  private readonly out: NodeJS.WriteStream;
  private readonly members = new Map<string, Member>();
  private readonly screen: Screen;

  constructor(out: NodeJS.WriteStream, clusters: string[], opts: ListrReporterOptions = {}) {
    this.out = out;
    this.screen = new Screen(out, opts.renderer ?? 'default', opts.onInterrupt);
    for (const name of clusters) {
      let resolve!: (s: Start) => void;
      const started = new Promise<Start>((r) => (resolve = r));
      this.members.set(name, { name, tasks: new RunTasks(opts.diff === true), begun: false, title: name, resolve, started });
    }
    this.screen.show(
      [...this.members.values()].map((m) => this.parentTask(m)),
      true,
    );
  }

  cluster(name: string): Reporter {
    const m = this.member(name);
    m.begun = true;
    this.retitle(m, name);
    return {
      emit: (e) => {
        switch (e.type) {
          case 'run-start':
            this.retitle(m, `${name} — ${e.title}${e.check ? ' (check mode: nothing will be changed)' : ''}`);
            m.resolve({ tasks: m.tasks.start(e.tasks) });
            return;
          case 'run-end':
            this.retitle(m, recapLine(name, e.recap, e.durationMs));
            return;
          default:
            m.tasks.emit(e);
        }
      },
      // The list is the fleet's: it ends with the last cluster, in close().
      close: () => Promise.resolve(),
    };
  }

  async close(runs: ClusterRun[]): Promise<void> {
    // What escaped a cluster's engine run is only known here, from its ClusterRun.
    for (const r of runs) {
      const m = this.member(r.name);
      m.resolve({ error: r.error });
      if (r.error) m.tasks.abort(r.error);
    }
    await this.screen.done();
    this.out.write(fleetRecap(runs));
  }

  private parentTask(m: Member): Item {
    return {
      title: m.title,
      task: async (_ctx, wrapper) => {
        m.parent = wrapper;
        wrapper.title = m.begun ? m.title : `${m.name}: waiting for a free slot (--parallel)`;
        const start = await m.started;
        if ('tasks' in start) return wrapper.newListr(start.tasks, { concurrent: false, exitOnError: false });
        wrapper.title = `${m.name}: failed before its playbook ran`;
        throw new Error(start.error ? failureText(start.error) : 'unknown error');
      },
    };
  }

  private retitle(m: Member, title: string): void {
    m.title = title;
    if (m.parent) m.parent.title = title;
  }

  private member(name: string): Member {
    const m = this.members.get(name);
    if (!m) throw new Error(`cluster ${name} is not one of this view's`);
    return m;
  }
}
