import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FluxstrapError } from '../core/errors.ts';

/** A read-only view of a checkout: repository-relative `/` paths ('' is the root). */
export interface ReachFs {
  /** A folder's entries; `undefined` when the path is not a folder. */
  list(dir: string): Promise<{ name: string; dir: boolean }[] | undefined>;
  /** A file's text; `undefined` when the path is not a file. May throw (too large, unreadable). */
  read(file: string): Promise<string | undefined>;
}

/** Larger files are no manifests a cluster needs; reading one whole would only cost memory. */
const MAX_FILE_BYTES = 8 * 1024 * 1024;

/**
 * The walk's view of a checkout: repository-relative `/` paths under `root`. Symbolic links are
 * followed (the walk itself bounds depth and detects cycles).
 */
export function repoFs(root: string): ReachFs {
  const abs = (p: string) => join(root, ...p.split('/').filter((s) => s !== ''));
  return {
    async list(dir) {
      const entries = await readdir(abs(dir), { withFileTypes: true }).catch(() => undefined);
      if (!entries) return undefined;
      return Promise.all(
        entries.map(async (e) => ({
          name: e.name,
          dir: e.isDirectory() || (e.isSymbolicLink() && (await stat(join(abs(dir), e.name)).catch(() => undefined))?.isDirectory() === true),
        })),
      );
    },
    async read(file) {
      const st = await stat(abs(file)).catch(() => undefined);
      if (!st?.isFile()) return undefined;
      if (st.size > MAX_FILE_BYTES) throw new FluxstrapError('E_CONFIG', `larger than ${MAX_FILE_BYTES >> 20} MiB`, { location: { file } });
      return readFile(abs(file), 'utf8');
    },
  };
}
