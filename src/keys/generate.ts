import { mkdir, open, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readTextIfExists, writeAtomic } from '../adapters/files.ts';
import { FluxstrapError, fsError, isFluxstrapError } from '../core/errors.ts';
import { formatAgeKeyFile, parseAgeKeyFile, recipientOf } from './age.ts';

/** Key files hold private keys: readable by their owner only, in folders only the owner can list. */
export const KEY_FILE_MODE = 0o600;
export const KEY_DIR_MODE = 0o700;

export interface NewAgeKeyOptions {
  file: string;
  /** ML-KEM-768 + X25519 hybrid (`age1pq1…`); Flux >= 2.9 and sops >= 3.12 read it. */
  postQuantum: boolean;
  /** Add the identity to an existing file instead of refusing (key rotation). */
  append: boolean;
  now?: Date;
  /** This identity instead of a fresh one: a rotation planned with its recipient before writing it. */
  identity?: { secret: string; recipient: string };
}

export interface NewAgeKey {
  recipient: string;
  file: string;
  /** How many identities the file holds now, the new one included. */
  identities: number;
}

export async function generateAgeIdentity(postQuantum: boolean): Promise<{ secret: string; recipient: string }> {
  const age = await import('age-encryption');
  // generateIdentity() is already the hybrid type in age-encryption 0.3; be explicit both ways.
  const secret = postQuantum ? await age.generateHybridIdentity() : await age.generateX25519Identity();
  return { secret, recipient: await age.identityToRecipient(secret) };
}

/**
 * Generate an age identity into a key file. A key file is never replaced: losing the only copy of
 * a private key loses every secret encrypted to it. Without `append` the write is exclusive; with
 * it, the existing file must parse as a key file (we never append to something we do not
 * understand) and keeps its identities, in order, ahead of the new one.
 */
export async function newAgeKey(opts: NewAgeKeyOptions): Promise<NewAgeKey> {
  await checkKeyFileTarget(opts.file, opts.append);
  const identity = opts.identity ?? (await generateAgeIdentity(opts.postQuantum));
  const block = formatAgeKeyFile(identity, opts.now ?? new Date());
  const add = async (): Promise<NewAgeKey> => {
    const existing = opts.append ? await readTextIfExists(opts.file) : undefined;
    if (existing === undefined) {
      await writeKeyFile(opts.file, block, true);
      return { recipient: identity.recipient, file: opts.file, identities: 1 };
    }
    const held = await parseAgeKeyFile(existing, opts.file, recipientOf);
    const separator = existing.endsWith('\n') ? '' : '\n';
    await writeKeyFile(opts.file, `${existing}${separator}${block}`, false);
    return { recipient: identity.recipient, file: opts.file, identities: held.length + 1 };
  };
  return opts.append ? withKeyFileLock(opts.file, add) : add();
}

/** Long enough for any other append to finish (they hold the lock for a read and a write). */
const LOCK_WAIT_MS = 10_000;

/**
 * An append reads the file and writes it back whole (temp file + rename, so a crash leaves the
 * old or the new file, never half an identity). Two appends at once would both read the old
 * content and the second rename would drop the first one's identity, so appends take turns: a
 * lock file next to the key file, created with O_EXCL, which exactly one process can create.
 * A lock left by a crash is not guessed stale and broken (two processes guessing so would both
 * go ahead): after waiting, the error names it.
 */
export async function withKeyFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  try {
    await mkdir(dirname(file), { recursive: true, mode: KEY_DIR_MODE });
  } catch (e) {
    // mkdir says EEXIST when a file stands where the folder should be
    throw fsError((e as NodeJS.ErrnoException).code === 'EEXIST' ? Object.assign(new Error(), { code: 'ENOTDIR' }) : e, dirname(file), 'create folder');
  }
  for (const deadline = Date.now() + LOCK_WAIT_MS; ; await sleep(20)) {
    try {
      await (await open(lock, 'wx', KEY_FILE_MODE)).close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, lock, 'create lock file');
      if (Date.now() > deadline) {
        throw new FluxstrapError('E_PRECONDITION', 'another append to this key file is under way', {
          location: { file: lock },
          hint: `if no fluxstrap keys new --append is running, a crashed one left the lock: remove ${lock}`,
        });
      }
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/** Write private key material: 0600, new parent folders 0700, exclusive unless appending. */
export async function writeKeyFile(file: string, content: string, exclusive: boolean): Promise<void> {
  try {
    await writeAtomic(file, content, { mode: KEY_FILE_MODE, dirMode: KEY_DIR_MODE, exclusive });
  } catch (e) {
    throw isFluxstrapError(e) && e.code === 'E_PRECONDITION' ? refusal(file) : e;
  }
}

/**
 * Fail before the (possibly slow) key generation: a directory gets its own message, an existing
 * file the refusal. The exclusive write still guards against a file appearing meanwhile.
 */
export async function checkKeyFileTarget(file: string, append: boolean): Promise<void> {
  const st = await stat(file).catch(() => undefined);
  if (st?.isDirectory()) throw fsError(Object.assign(new Error(), { code: 'EISDIR' }), file, 'write key file');
  if (st && !append) throw refusal(file);
}

function refusal(file: string): FluxstrapError {
  return new FluxstrapError('E_PRECONDITION', 'refusing to overwrite an existing key file', {
    location: { file },
    hint: 'losing a private key loses every secret encrypted to it: pass --append to add a second identity (rotation), or choose another --out',
  });
}
