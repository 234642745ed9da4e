import { existsSync, rmSync } from 'node:fs';

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
  for (const tmp of pendingTemps) removeAll(tmp);
  pendingTemps.clear();
}

/** Remove a temporary folder now, and forget it. */
export function removeTempDir(dir: string): void {
  removeAll(dir);
  pendingTemps.delete(dir);
}

function removeAll(path: string): void {
  // A file that vanishes while rm walks the folder (ssh-agent unlinking its socket as it ends) makes
  // rm give up on the folder without an error; the second pass finds it without that file.
  for (let pass = 0; pass < 3 && existsSync(path); pass++) rmSync(path, { recursive: true, force: true });
}
