import { rmSync } from 'node:fs';

/**
 * Temp files of writes under way (writeAtomic) and temporary folders (a clone of the repository),
 * for the signal handler that ends the process.
 */
export const pendingTemps = new Set<string>();

/**
 * The renames that happened stay (each file is whole, old or new); the temp files of unfinished
 * writes and the temporary folders go. Synchronous: the process exits right after.
 */
export function removePendingTemps(): void {
  for (const tmp of pendingTemps) rmSync(tmp, { recursive: true, force: true });
  pendingTemps.clear();
}

/** Remove a temporary folder now, and forget it. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  pendingTemps.delete(dir);
}
