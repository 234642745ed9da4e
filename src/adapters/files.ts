import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FluxstrapError, fsError } from '../core/errors.ts';

/** Read a UTF-8 text file, mapping failures to one-line errors that name the file. */
export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw fsError(e, file, 'read file');
  }
}

/** Like readText, but a missing file is `undefined` rather than an error. */
export async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, file, 'read file');
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export interface WriteOptions {
  /** File mode for a new file; an existing file keeps its own mode. */
  mode?: number;
  /** Mode for parent folders that have to be created. */
  dirMode?: number;
  /** Refuse when the file exists (keys are never overwritten), atomically: no check-then-write race. */
  exclusive?: boolean;
}

/**
 * Write a file so that a crash leaves either the old or the new content, never half of one:
 * write a temp file in the same folder (same filesystem, so rename is atomic), fsync, rename.
 * The temp file is created with the final mode, so secret content is never world-readable.
 */
export async function writeAtomic(file: string, content: string | Uint8Array, opts: WriteOptions = {}): Promise<void> {
  const dir = dirname(file);
  try {
    await mkdir(dir, { recursive: true, ...(opts.dirMode !== undefined ? { mode: opts.dirMode } : {}) });
  } catch (e) {
    // mkdir reports EEXIST when a file stands where a folder is needed
    const notDir = (e as NodeJS.ErrnoException).code === 'EEXIST' ? Object.assign(new Error(), { code: 'ENOTDIR' }) : e;
    throw fsError(notDir, dir, 'create folder');
  }
  let mode = opts.mode ?? 0o644;
  try {
    const st = await stat(file);
    if (opts.exclusive) {
      throw new FluxstrapError('E_PRECONDITION', 'refusing to overwrite an existing file', { location: { file } });
    }
    if (st.isDirectory()) throw fsError(Object.assign(new Error(), { code: 'EISDIR' }), file, 'write file');
    mode = st.mode & 0o7777;
  } catch (e) {
    if (e instanceof FluxstrapError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, file, 'write file');
  }
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx', mode);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // open() applies the umask; set the exact mode we mean.
    await chmod(tmp, mode);
    if (opts.exclusive) {
      // link() fails with EEXIST if the file appeared meanwhile: publish without a check-then-write race.
      try {
        await link(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new FluxstrapError('E_PRECONDITION', 'refusing to overwrite an existing file', { location: { file } });
        }
        throw e;
      }
      await rm(tmp, { force: true });
      return;
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    if (e instanceof FluxstrapError) throw e;
    throw fsError(e, file, 'write file');
  }
}
