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
