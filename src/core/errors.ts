/**
 * The error taxonomy. Every failure a user can cause or meet is one of these, with a stable `code`
 * (documented in the README, safe to match on in scripts) and an optional `hint` saying how to fix it.
 * Messages must never contain secret values or private keys: callers pass public facts only.
 */

import { redactPrivateKeys } from './redact.ts';

/** Every code, in the order the README documents them; `--json`'s schema lists them too. */
export const ERROR_CODES = [
  'E_USAGE', // bad flags or arguments
  'E_CONFIG', // a file we read is malformed or invalid (has a location)
  'E_NOT_FOUND', // a file, key or object that must exist does not
  'E_PRECONDITION', // refusing to act: would overwrite a key, drift without --rotate-secrets, ...
  'E_DECRYPT', // no key at hand opens the file, or the MAC does not match
  'E_IO', // the filesystem refused
  'E_KUBE', // the Kubernetes API failed or refused
  'E_GIT', // git or the Git server failed
  'E_GITHUB', // the GitHub API failed
  'E_PROCESS', // an external program failed
  'E_TIMEOUT', // waited too long for a condition
  'E_CONVERGENCE', // changes remained after apply
  'E_INTERNAL', // a bug in fluxstrap
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Where in an input the problem is: a file, and when known a line/column or a field path. */
export interface Location {
  file?: string;
  line?: number;
  column?: number;
  field?: string;
}

export interface ErrorOptions {
  hint?: string;
  location?: Location;
  cause?: unknown;
}

export class FluxstrapError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly location: Location | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    // Messages quote what a file or a flag said; a line break in it must not forge a second line of output.
    super(message.replace(/\r?\n|\r/g, '\\n'), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FluxstrapError';
    this.code = code;
    this.hint = options.hint;
    this.location = options.location;
  }
}

const QUOTED_MAX = 80;

/** A name read from input (a key, a title), in double quotes as JSON writes it: escaped and bounded, so it stays one line. */
export function quoted(name: string): string {
  return name.length > QUOTED_MAX ? `${JSON.stringify(name.slice(0, QUOTED_MAX))}…` : JSON.stringify(name);
}

export const usageError = (message: string, hint?: string): FluxstrapError => new FluxstrapError('E_USAGE', message, hint === undefined ? {} : { hint });

export const configError = (message: string, location: Location, hint?: string): FluxstrapError =>
  new FluxstrapError('E_CONFIG', message, hint === undefined ? { location } : { location, hint });

export function isFluxstrapError(e: unknown): e is FluxstrapError {
  return e instanceof FluxstrapError;
}

/** `file:line:column`, `file at field` or `field`: the "where" part of a one-line error. */
export function formatLocation(loc: Location | undefined): string {
  if (!loc) return '';
  let where = loc.file ?? '';
  if (loc.line !== undefined) where += `:${loc.line}${loc.column !== undefined ? `:${loc.column}` : ''}`;
  if (loc.field !== undefined) where += where ? ` at ${loc.field}` : loc.field;
  return where;
}

/** What a user is shown of an error: every part scrubbed of private keys, whoever built the message. */
export interface ErrorReport {
  code: ErrorCode;
  message: string;
  where?: string;
  hint?: string;
  /** E_INTERNAL only: what was thrown (`TypeError: …`), so a bug report names it without a stack. */
  cause?: string;
}

/**
 * The one way an error becomes text (the CLI's error lines, `--json`, task results): messages
 * are built from user input in many places, so a private key pasted where it does not belong is
 * scrubbed here, once, rather than trusted to every message's author.
 */
export function errorReport(e: unknown): ErrorReport {
  if (!isFluxstrapError(e)) return { code: 'E_INTERNAL', message: redactPrivateKeys(e instanceof Error ? e.message : String(e)) };
  const where = formatLocation(e.location);
  return {
    code: e.code,
    message: redactPrivateKeys(e.message),
    ...(where ? { where: redactPrivateKeys(where) } : {}),
    ...(e.hint ? { hint: redactPrivateKeys(e.hint) } : {}),
  };
}

/**
 * What a user is shown of a bug (anything thrown that is not a FluxstrapError): the message, the
 * hint that it is a bug to report, and what was thrown. The stack stays out: the CLI prints it on
 * stderr under FLUXSTRAP_DEBUG.
 */
export function internalErrorReport(e: unknown): ErrorReport {
  const report = errorReport(e);
  if (isFluxstrapError(e)) return report;
  const cause = e instanceof Error ? `${e.name}: ${e.message}` : typeof e;
  return { ...report, hint: INTERNAL_HINT, cause: redactPrivateKeys(cause) };
}

/** Exit codes, documented in the README. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  /** `--check` found changes to make (like `terraform plan -detailed-exitcode`). */
  changesPending: 3,
  interrupted: 130,
  /** SIGTERM: 128 + 15, as a shell reports a process the signal ended. */
  terminated: 143,
  /** The reader of stdout went away (`| head`): what a shell reports for a tool killed by SIGPIPE. */
  brokenPipe: 141,
} as const;

/** The hint of every E_INTERNAL: a bug of fluxstrap, not of the input. */
export const INTERNAL_HINT = 'this is a bug in fluxstrap; rerun with FLUXSTRAP_DEBUG=1 for details and report it';

/** What an interrupt prints, from whichever view holds the terminal. */
export const INTERRUPTED_MESSAGE = 'interrupted: every step is idempotent, so running the same command again converges';

/**
 * The one rule from a command's outcome to its exit code: a failure is 1, else changes that
 * `--check` found pending are 3, else 0. Every flow ends through here (or `exitCodeFor` when it throws).
 */
export function exitCodeOf(outcome: { failed: boolean; changesPending?: boolean }): number {
  if (outcome.failed) return ExitCode.failed;
  return outcome.changesPending === true ? ExitCode.changesPending : ExitCode.ok;
}

/** `--json`'s `success`: the command did what it was asked (`--check` finding changes to make is success). */
export function succeeded(exitCode: number): boolean {
  return exitCode === ExitCode.ok || exitCode === ExitCode.changesPending;
}

export function exitCodeFor(e: unknown): number {
  if (isFluxstrapError(e) && e.code === 'E_USAGE') return ExitCode.usage;
  return ExitCode.failed;
}

/** Map a Node filesystem error to our taxonomy, naming the file. */
export function fsError(e: unknown, file: string, doing: string): FluxstrapError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const reason =
    code === 'ENOENT'
      ? 'no such file or directory'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'ENOTDIR'
            ? 'a parent is not a directory'
            : code === 'EEXIST'
              ? 'already exists'
              : code === 'ENOSPC'
                ? 'no space left on device'
                : code === 'EROFS'
                  ? 'read-only file system'
                  : (code ?? 'failed');
  return new FluxstrapError(code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_IO', `cannot ${doing}: ${reason}`, {
    location: { file },
    cause: e,
  });
}
