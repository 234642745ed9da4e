import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { chmod, copyFile, link, lstat, mkdir, open, readlink, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { FluxstrapError, fsError } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import { pendingTemps } from './temp-files.ts';

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
  /**
   * A folder the write must land in, symlinks followed: files a repository holds are written through
   * its symlinks only when they stay inside it, so a hostile checkout cannot aim a write at ~/.bashrc.
   */
  within?: string;
}

/** Symlink hops followed before giving up, as the kernel does (ELOOP). */
const MAX_LINK_HOPS = 40;

/**
 * Where a write to `file` lands: the final target when `file` is a symlink (even a dangling one), so
 * that the link stays a link and its target gets the new content, as sops writes. Replacing the link
 * instead would leave the target, say a plaintext file, as it was while reporting success.
 */
async function writeTarget(file: string): Promise<string> {
  let path = file;
  for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
    let isLink: boolean;
    try {
      isLink = (await lstat(path)).isSymbolicLink();
    } catch (e) {
      // Nothing there (or a file where a folder should be): not a link; creating it reports the rest.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return path;
      throw fsError(e, file, 'write file');
    }
    if (!isLink) return path;
    try {
      path = resolve(dirname(path), await readlink(path));
    } catch (e) {
      throw fsError(e, file, 'write file');
    }
  }
  throw fsError(Object.assign(new Error(), { code: 'ELOOP' }), file, 'write file');
}

/** A write prepared but not yet visible: the new content sits in `tmp`, next to `target`. */
interface Staged {
  /** The path the caller named, for messages. */
  file: string;
  target: string;
  tmp: string;
  existed: boolean;
}

/** Name of a temp file next to `target`; cut short, so that a file whose name is near the limit can still be written. */
const sidecar = (target: string, kind: string) => join(dirname(target), `.${basename(target).slice(0, 100)}.${randomBytes(6).toString('hex')}.${kind}.tmp`);

/** Cleanup must not hide the error that made it necessary. */
const removeQuietly = (path: string) =>
  rm(path, { force: true })
    .catch(() => undefined)
    .finally(() => pendingTemps.delete(path));

async function checkWithin(file: string, target: string, root: string): Promise<void> {
  let rel: string;
  try {
    rel = relative(await realpath(root), join(await realpath(dirname(target)), basename(target)));
  } catch (e) {
    throw fsError(e, file, 'write file');
  }
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new FluxstrapError('E_PRECONDITION', 'refusing to write through a symlink that leads out of the repository', {
      location: { file },
      hint: 'replace the symlink with the file itself, or point it inside the repository',
    });
  }
}

/**
 * Write the new content to a temp file in the target's folder (same filesystem, so the rename that
 * publishes it is atomic), fsynced, with the final mode from the start: secret content is never
 * world-readable, not even for a moment.
 */
async function stage(file: string, content: string | Uint8Array, opts: WriteOptions): Promise<Staged> {
  const target = await writeTarget(file);
  const dir = dirname(target);
  try {
    await mkdir(dir, { recursive: true, ...(opts.dirMode !== undefined ? { mode: opts.dirMode } : {}) });
  } catch (e) {
    // mkdir reports EEXIST when a file stands where a folder is needed
    const notDir = (e as NodeJS.ErrnoException).code === 'EEXIST' ? Object.assign(new Error(), { code: 'ENOTDIR' }) : e;
    throw fsError(notDir, dir, 'create folder');
  }
  if (opts.within !== undefined) await checkWithin(file, target, opts.within);
  let mode = opts.mode ?? 0o644;
  let existed = false;
  try {
    const st = await stat(target);
    if (opts.exclusive) {
      throw new FluxstrapError('E_PRECONDITION', 'refusing to overwrite an existing file', { location: { file } });
    }
    if (st.isDirectory()) throw fsError(Object.assign(new Error(), { code: 'EISDIR' }), file, 'write file');
    mode = st.mode & 0o7777;
    existed = true;
  } catch (e) {
    if (e instanceof FluxstrapError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, file, 'write file');
  }
  const tmp = sidecar(target, 'new');
  // Until it is renamed or removed, the signal handler removes it if the process is stopped.
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
  } catch (e) {
    await removeQuietly(tmp);
    throw fsError(e, file, 'write file');
  }
  return { file, target, tmp, existed };
}

/**
 * Write a file so that a crash leaves either the old or the new content, never half of one. A
 * symlink is written through (its target changes, the link stays); an existing file keeps its mode.
 */
export async function writeAtomic(file: string, content: string | Uint8Array, opts: WriteOptions = {}): Promise<void> {
  const staged = await stage(file, content, opts);
  try {
    if (opts.exclusive) {
      // link() fails with EEXIST if the file appeared meanwhile: publish without a check-then-write race.
      try {
        await link(staged.tmp, staged.target);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new FluxstrapError('E_PRECONDITION', 'refusing to overwrite an existing file', { location: { file } });
        }
        throw e;
      }
      return;
    }
    await rename(staged.tmp, staged.target);
  } catch (e) {
    if (e instanceof FluxstrapError) throw e;
    throw fsError(e, file, 'write file');
  } finally {
    await removeQuietly(staged.tmp);
  }
}

export interface BatchWrite {
  file: string;
  content: string | Uint8Array;
  /** Keys are never written in batches: an exclusive write has nothing to roll back to. */
  opts?: Omit<WriteOptions, 'exclusive'>;
}

/** The filesystem calls that publish a batch; a unit test swaps in one that fails the n-th call. */
export interface CommitOps {
  rename: (from: string, to: string) => Promise<void>;
  link: (existing: string, newPath: string) => Promise<void>;
}

/**
 * Write every file of a batch or none: all contents are staged next to their targets first (a
 * folder that refuses a file stops the batch before anything is visible), then published one
 * rename at a time. Each replaced file is kept as a hard link until the batch is done, so a rename
 * that fails midway puts back the files already replaced, and a file the batch created is removed.
 * Paths that resolve to the same file keep the last content, as successive writes would.
 */
export async function writeAllAtomic(writes: BatchWrite[], ops: CommitOps = { rename, link }): Promise<void> {
  const staged: Staged[] = [];
  // By target: two names of one file (a link and its target) share one original.
  const originals = new Map<string, string>();
  const published: Staged[] = [];
  let kept: string[] = [];
  try {
    for (const w of writes) staged.push(await stage(w.file, w.content, w.opts ?? {}));
    for (const s of staged) {
      if (s.existed && !originals.has(s.target)) {
        const original = sidecar(s.target, 'orig');
        try {
          await keepOriginal(s.target, original, ops);
        } catch (e) {
          throw fsError(e, s.file, 'keep the original of');
        }
        originals.set(s.target, original);
      }
      try {
        await ops.rename(s.tmp, s.target);
      } catch (e) {
        throw fsError(e, s.file, 'write file');
      }
      published.push(s);
    }
  } catch (e) {
    kept = await rollBack(published, originals);
    if (kept.length > 0) {
      throw new FluxstrapError('E_IO', 'a batch write failed and could not be undone', {
        location: { file: kept[0] ?? '' },
        hint: `the originals are kept next to the changed files as .<name>.<hex>.orig.tmp: ${kept.join(', ')}`,
        cause: e,
      });
    }
    throw e;
  } finally {
    for (const s of staged) await removeQuietly(s.tmp);
    for (const original of originals.values()) if (!kept.includes(original)) await removeQuietly(original);
  }
}

/** A hard link costs nothing and keeps the mode; a filesystem without them gets a copy. */
async function keepOriginal(target: string, original: string, ops: CommitOps): Promise<void> {
  try {
    await ops.link(target, original);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw e;
    await copyFile(target, original, constants.COPYFILE_EXCL);
  }
}

/**
 * Undo the published part of a failed batch, newest first: each replaced file gets its original
 * back, a file the batch created is removed. Returns the originals that could not be put back
 * (they must not be deleted).
 */
async function rollBack(published: Staged[], originals: Map<string, string>): Promise<string[]> {
  const failed: string[] = [];
  const done = new Set<string>();
  for (const s of [...published].reverse()) {
    if (done.has(s.target)) continue;
    done.add(s.target);
    const original = originals.get(s.target);
    try {
      if (original !== undefined) await rename(original, s.target);
      else await rm(s.target, { force: true });
    } catch {
      if (original !== undefined) failed.push(original);
    }
  }
  return failed;
}
