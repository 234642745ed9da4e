import { removePendingTemps } from '../adapters/temp-files.ts';
import { ExitCode, INTERRUPTED_MESSAGE } from '../core/errors.ts';

/**
 * End the process for SIGINT/SIGTERM at once, whatever is under way. Safe because every write is
 * a temp file renamed into place: a file is old or new, never half; the temp files of writes
 * not yet renamed are removed here. Nothing may block exit: files are opened non-blocking
 * (readBytes), so no libuv thread waits on a FIFO that process.exit would wait for.
 */
export function exitOnSignal(signal: 'SIGINT' | 'SIGTERM', out: NodeJS.WritableStream): never {
  removePendingTemps();
  out.write(`\n${INTERRUPTED_MESSAGE}\n`);
  process.exit(signal === 'SIGINT' ? ExitCode.interrupted : ExitCode.terminated);
}

/**
 * What Ctrl-C does instead while a view owns the terminal (listr2 must restore the cursor
 * first). Held here, not as a second SIGINT listener: libraries add listeners of their own
 * (execa's signal-exit while git or kustomize runs), so counting listeners cannot tell.
 */
let viewInterrupt: (() => void) | undefined;

export function setViewInterrupt(handler: (() => void) | undefined): void {
  viewInterrupt = handler;
}

/** The CLI's handler of SIGINT and SIGTERM. */
export function onSignal(signal: 'SIGINT' | 'SIGTERM', out: NodeJS.WritableStream): void {
  if (signal === 'SIGINT' && viewInterrupt !== undefined) viewInterrupt();
  else exitOnSignal(signal, out);
}
