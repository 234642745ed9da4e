import { rmSync } from 'node:fs';

/** Temp files of writes under way (writeAtomic), for the signal handler that ends the process. */
export const pendingTemps = new Set<string>();

/**
 * The renames that happened stay (each file is whole, old or new); the temp files of unfinished
 * writes go. Synchronous: the process exits right after.
 */
export function removePendingTemps(): void {
  for (const tmp of pendingTemps) rmSync(tmp, { force: true });
  pendingTemps.clear();
}
