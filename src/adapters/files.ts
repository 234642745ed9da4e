import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { chmod, link, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { LIMITS } from '../core/limits.ts';
import { pendingTemps } from './temp-files.ts';
import { FluxstrapError, fsError } from '../core/errors.ts';

/**
 * Opening a FIFO for reading blocks until a writer comes, in a libuv thread that even
 * process.exit then waits for (Ctrl-C would print and hang). Non-blocking, the open returns at
 * once and fstat tells what was opened; for a regular file the flag changes nothing.
 */
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** Only a regular file of bounded size is read: a FIFO or device would block or never end. */
function checkReadable(st: Stats, file: string, doing: string): void {
  if (st.isDirectory()) throw fsError(Object.assign(new Error(), { code: 'EISDIR' }), file, doing);
  if (!st.isFile()) {
    throw new FluxstrapError('E_IO', `cannot ${doing}: not a regular file (a FIFO, socket or device)`, {
      location: { file },
      hint: 'give the path of an ordinary file',
    });
  }
  if (st.size > LIMITS.inputBytes) tooLarge(file, doing, st.size);
}

function tooLarge(file: string, doing: string, size: number): never {
  throw new FluxstrapError('E_IO', `cannot ${doing}: larger than ${LIMITS.inputBytes / 1024 / 1024} MiB (${size} bytes)`, { location: { file } });
}

/**
 * Read a file a user or a repository names: a regular file only, of bounded size, failures as
 * one-line errors naming the file.
 */
export async function readBytes(file: string, doing = 'read file'): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, READ_FLAGS);
  } catch (e) {
    throw fsError(e, file, doing);
  }
  try {
    checkReadable(await handle.stat(), file, doing);
    const bytes = await handle.readFile();
    // It may have grown since fstat.
    if (bytes.length > LIMITS.inputBytes) tooLarge(file, doing, bytes.length);
    return bytes;
  } catch (e) {
    if (e instanceof FluxstrapError) throw e;
    throw fsError(e, file, doing);
  } finally {
    await handle.close();
  }
}

/** readBytes for the few synchronous readers (the kubeconfig loader). */
export function readBytesSync(file: string, doing = 'read file'): Buffer {
  let fd: number;
  try {
    fd = openSync(file, READ_FLAGS);
  } catch (e) {
    throw fsError(e, file, doing);
  }
  try {
    checkReadable(fstatSync(fd), file, doing);
    const bytes = readFileSync(fd);
    if (bytes.length > LIMITS.inputBytes) tooLarge(file, doing, bytes.length);
    return bytes;
  } catch (e) {
    if (e instanceof FluxstrapError) throw e;
    throw fsError(e, file, doing);
  } finally {
    closeSync(fd);
  }
}

/** Read a UTF-8 text file, mapping failures to one-line errors that name the file. */
export async function readText(file: string, doing = 'read file'): Promise<string> {
  return (await readBytes(file, doing)).toString('utf8');
}

/** Like readText, but a missing file is `undefined` rather than an error. */
export async function readTextIfExists(file: string, doing = 'read file'): Promise<string | undefined> {
  try {
    return await readText(file, doing);
  } catch (e) {
    if (e instanceof FluxstrapError && e.code === 'E_NOT_FOUND') return undefined;
    throw e;
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
  pendingTemps.add(tmp);
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
  } finally {
    pendingTemps.delete(tmp);
  }
}
