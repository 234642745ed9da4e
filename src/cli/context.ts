import { exitOnSignal, setViewInterrupt } from './interrupt.ts';
import type { Command } from 'commander';
import type { ClusterRun, FleetView, FleetViewOptions, Reporter, RunEvent, TaskError } from '../core/events.ts';
import type { CommandIo } from '../flows/io.ts';
import { JsonEnvelope } from '../report/envelope.ts';

/** The `--json` document of this process's command, when --json was given (cli.ts prints it once, at the end). */
let envelope: JsonEnvelope | undefined;

export function startJson(command: string): JsonEnvelope {
  envelope = new JsonEnvelope(command);
  return envelope;
}

/** Flags every command understands, read from the root program. */
export interface GlobalOptions {
  json: boolean;
  quiet: boolean;
  color: boolean;
}

export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals<{ json?: boolean; quiet?: boolean; color?: boolean }>();
  return {
    json: o.json === true,
    quiet: o.quiet === true,
    color: o.color !== false && !process.env.NO_COLOR && process.stderr.isTTY === true,
  };
}

/** What a command flow gets of this process: flags, environment, folder, streams and its views. */
export function commandIo(cmd: Command): CommandIo {
  const g = globalOptions(cmd);
  return {
    ...g,
    env: process.env,
    cwd: process.cwd(),
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    reporter: async (view) => withStacks(await createReporter(g, view), Boolean(process.env.FLUXSTRAP_DEBUG), process.stderr),
    result: (fields) => envelope?.add(fields),
    fleetView: async (view) => fleetWithStacks(await createFleetView(g, view), Boolean(process.env.FLUXSTRAP_DEBUG), process.stderr),
    interrupt: () => process.emit('SIGINT', 'SIGINT'),
  };
}

function jsonEnvelope(): JsonEnvelope {
  // cli.ts starts it whenever --json is on the command line, before commander parses it.
  envelope ??= new JsonEnvelope('fluxstrap');
  return envelope;
}

/** How help texts name sops' default age key file, whose folder depends on the OS (sopsAgeKeyFile in keys/age.ts). */
export const DEFAULT_AGE_KEY_FILE =
  'sops/age/keys.txt in the user config folder ($XDG_CONFIG_HOME, else ~/.config; macOS ~/Library/Application Support unless XDG_CONFIG_HOME is set; Windows %AppData%)';

/** CI systems set CI; a pipe or file is not a person watching. */
export function isInteractive(): boolean {
  return process.stderr.isTTY === true && !process.env.CI;
}

/** listr2 redraws in place: only for a person at a terminal who asked for neither --json nor --quiet. */
export function showsTaskList(opts: GlobalOptions): boolean {
  return !opts.json && !opts.quiet && isInteractive();
}

/**
 * Pick the renderer for an engine run: JSON (final document on stdout) with --json, listr2 on an
 * interactive terminal, plain lines otherwise. Renderers are imported lazily, so commands that
 * never run the engine do not load listr2.
 */
export async function createReporter(opts: GlobalOptions, view: { diff?: boolean } = {}): Promise<Reporter> {
  if (opts.json) {
    const { JsonReporter } = await import('../report/json.ts');
    return new JsonReporter((doc) => jsonEnvelope().run(doc));
  }
  if (showsTaskList(opts)) {
    const { ListrReporter } = await import('../report/listr.ts');
    return new ListrReporter(process.stderr, { diff: view.diff === true, onInterrupt });
  }
  const { PlainReporter } = await import('../report/plain.ts');
  return new PlainReporter(process.stderr, { color: opts.color, quiet: opts.quiet, diff: view.diff === true });
}

/** The same choice for several clusters at once. */
async function createFleetView(opts: GlobalOptions, view: FleetViewOptions): Promise<FleetView> {
  const { JsonFleetView, PrefixedView } = await import('../report/fleet.ts');
  if (opts.json) return new JsonFleetView((fields) => jsonEnvelope().add(fields));
  if (showsTaskList(opts)) {
    const { ListrFleetView } = await import('../report/listr.ts');
    return new ListrFleetView(process.stderr, view.clusters, { diff: view.diff, onInterrupt });
  }
  return new PrefixedView(process.stderr, { color: opts.color, quiet: opts.quiet, diff: view.diff });
}

/**
 * Ctrl-C while a task list is drawn: the view restores the terminal, then exit 130 as a shell
 * expects (listr2's own handler would exit 127). cli.ts's SIGINT handler calls it instead of
 * exiting itself, so the interrupt message is printed once.
 */
function onInterrupt(restore: () => void): () => void {
  setViewInterrupt(() => {
    restore();
    exitOnSignal('SIGINT', process.stderr);
  });
  return () => setViewInterrupt(undefined);
}

/** A task error without its stack; the stack, if any, kept in `stacks`. */
function unstacked(error: TaskError, stacks: string[]): TaskError {
  const { stack, ...rest } = error;
  if (stack !== undefined && !stacks.includes(stack)) stacks.push(stack);
  return rest;
}

function unstackedEvent(e: RunEvent, stacks: string[]): RunEvent {
  const result = <R extends { error?: TaskError }>(r: R): R => (r.error ? { ...r, error: unstacked(r.error, stacks) } : r);
  if (e.type === 'task-end') return { ...e, result: result(e.result) };
  if (e.type === 'run-end') return { ...e, results: e.results.map(result) };
  return e;
}

/**
 * The stack of a bug (E_INTERNAL) inside a task reaches no view, so neither --json nor the task
 * list ever shows one; with FLUXSTRAP_DEBUG it is printed after the view closes.
 */
export function withStacks(reporter: Reporter, debug: boolean, err: NodeJS.WritableStream): Reporter {
  const stacks: string[] = [];
  return {
    emit: (e) => reporter.emit(unstackedEvent(e, stacks)),
    close: async () => {
      await reporter.close();
      if (debug) for (const s of stacks) err.write(`${s}\n`);
    },
  };
}

function fleetWithStacks(view: FleetView, debug: boolean, err: NodeJS.WritableStream): FleetView {
  const stacks: string[] = [];
  return {
    cluster: (name) => withStacks(view.cluster(name), debug, err),
    close: async (runs: ClusterRun[]) => {
      await view.close(runs.map((r) => (r.error ? { ...r, error: unstacked(r.error, stacks) } : r)));
      if (debug) for (const s of stacks) err.write(`${s}\n`);
    },
  };
}
