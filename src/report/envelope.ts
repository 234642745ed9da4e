import { errorReport, internalErrorReport, isFluxstrapError, succeeded } from '../core/errors.ts';
import type { ErrorReport } from '../core/errors.ts';
import type { JsonFields } from '../flows/io.ts';
import type { RunDocument } from './json.ts';

/**
 * The one `--json` document of every command: `{ command, success, exitCode, …fields, error? }`.
 * Views and flows only add fields (an engine run its recap and tasks, `status` its findings,
 * `keys new` the recipient); the CLI prints the document once, when the command is over, so
 * stdout holds exactly one JSON value whether the command succeeded, failed or threw.
 * `schema/output.schema.json` (from envelope-schema.ts) is the contract, tested per command.
 */
export interface Envelope {
  /** The command as typed, e.g. `keys rotate`. */
  command: string;
  /** The command did what it was asked; a `--check` that found changes to make succeeded too. */
  success: boolean;
  exitCode: number;
  [field: string]: unknown;
  error?: ErrorReport;
}

/** Fields the envelope owns: a view or flow that hands one in has a bug. */
const HEAD = new Set(['command', 'success', 'exitCode', 'error']);

export class JsonEnvelope {
  private readonly command: string;
  private readonly fields: Record<string, unknown> = {};
  private error: ErrorReport | undefined;

  constructor(command: string) {
    this.command = command;
  }

  /** Add what the command found or did. A field given twice is a bug: two views of one command disagree. */
  add(fields: JsonFields): void {
    for (const [key, value] of Object.entries(fields)) {
      if (HEAD.has(key) || Object.hasOwn(this.fields, key)) throw new Error(`--json field ${key} given twice`);
      this.fields[key] = value;
    }
  }

  /** An engine run's document; whether the command succeeded is the envelope's to say (a run's `success` is for a fleet's clusters). */
  run(doc: RunDocument): void {
    const { success: _success, ...fields } = doc;
    this.add(fields);
  }

  /** What stopped the command. A bug (not a FluxstrapError) keeps its cause and says it is one. */
  fail(e: unknown): void {
    this.error = isFluxstrapError(e) ? errorReport(e) : internalErrorReport(e);
  }

  /** The usage errors commander reports itself (an unknown option, a missing argument). */
  failUsage(message: string): void {
    this.error = { code: 'E_USAGE', message: message.replace(/^error: /, '').trim() };
  }

  document(exitCode: number): Envelope {
    return { command: this.command, success: succeeded(exitCode), exitCode, ...this.fields, ...(this.error ? { error: this.error } : {}) };
  }
}

export function jsonText(doc: unknown): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
