import { promptSecret } from '../adapters/prompt.ts';
import type { FleetView, FleetViewOptions, Reporter } from '../core/events.ts';

/**
 * What a command flow gets of its process, handed down by the CLI layer (the only code that
 * touches `process`): the global flags, the environment and folder it runs in, its streams, and
 * the views of the event stream the CLI picked (JSON, a listr2 task list, plain lines).
 */
export interface CommandIo {
  json: boolean;
  quiet: boolean;
  color: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdin: NodeJS.ReadStream;
  /** Results: the data a pipe wants. */
  stdout: NodeJS.WritableStream;
  /** Human status and progress. */
  stderr: NodeJS.WritableStream;
  /** The view of one engine run. */
  reporter(view?: { diff?: boolean }): Promise<Reporter>;
  /** The view of several clusters running at once. */
  fleetView(view: FleetViewOptions): Promise<FleetView>;
  /**
   * What the command found or did, as fields of its `--json` document (see report/envelope.ts):
   * `{ findings }`, `{ recipient, file }`… A new command calls this (with --json) instead of
   * writing JSON itself, and adds its fields to report/envelope-schema.ts. Engine runs need not:
   * their view adds the recap and tasks.
   */
  result(fields: JsonFields): void;
  /** Ctrl-C typed while the terminal is in raw mode (a secret prompt): interrupt as the signal would. */
  interrupt(): void;
}

/** Fields of a command's `--json` document; the envelope (command, success, exitCode, error) is added above. */
export type JsonFields = Readonly<Record<string, unknown>>;

/** Human status goes to stderr so stdout stays clean for results and pipes. */
export function info(io: CommandIo, line: string): void {
  if (!io.quiet && !io.json) io.stderr.write(`${line}\n`);
}

/** Asks for a secret without echoing it; only exists when stdin is a terminal. */
export type AskSecret = (question: string) => Promise<string>;

export function terminalAsk(io: CommandIo): AskSecret | undefined {
  return io.stdin.isTTY === true ? (question) => promptSecret(question, io.stdin, io.stderr, () => io.interrupt()) : undefined;
}
