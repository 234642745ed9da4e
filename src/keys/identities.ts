import { homedir } from 'node:os';
import { join } from 'node:path';
import { readBytes } from '../adapters/files.ts';
import { configError, FluxstrapError, fsError, isFluxstrapError, usageError } from '../core/errors.ts';
import { parseSshIdentity, sshIdentityRecipient } from './age-ssh.ts';
import { x25519RecipientOf, x25519Secret } from './age-x25519.ts';
import { defaultAgeKeyFile, isAgeFile, parseAgeKeyFile, recipientOf, type AgeIdentity } from './age.ts';

/**
 * Where decryption keys come from, as sops looks for them: `SOPS_AGE_KEY` (identities inline),
 * `SOPS_AGE_KEY_CMD`, `SOPS_AGE_KEY_FILE`, the default `sops/age/keys.txt` (read in addition,
 * when it exists), and files named with `--key-file` (age identities or armored PGP keys). Each
 * may be an age identity file encrypted with a passphrase (`age -p`), as sops reads them. For
 * decrypting, SSH keys too: `SOPS_AGE_SSH_PRIVATE_KEY_FILE`, then `~/.ssh/id_ed25519` and
 * `~/.ssh/id_rsa`. Only public parts ever reach messages.
 */

/** Where the passphrase of an encrypted age identity file comes from when no terminal asks (sops has no variable for it). */
export const AGE_PASSPHRASE_ENV = 'FLUXSTRAP_AGE_PASSPHRASE';

export interface LoadOptions {
  keyFiles?: string[];
  env: NodeJS.ProcessEnv;
  /** Leave `SOPS_AGE_KEY_CMD` to `keyCommandIdentities`, run per recipient (decrypting a file). */
  keyCmdPerRecipient?: boolean;
  /** Also the SSH keys sops decrypts with (never for a cluster key: kustomize-controller cannot use them). */
  ssh?: boolean;
  /** Asks for an encrypted identity file's passphrase at a terminal, unseen; absent without one. */
  ask?: (question: string) => Promise<string>;
}

/** X25519 recipients are derived natively; only post-quantum ones pay for age-encryption. */
async function deriveRecipient(secret: string): Promise<string> {
  return x25519Secret(secret) ? x25519RecipientOf(secret) : recipientOf(secret);
}

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readBytes(file, 'read key file');
  } catch (e) {
    if (isFluxstrapError(e) && e.code === 'E_NOT_FOUND') return undefined;
    throw e;
  }
}

/**
 * The text of an identity file, opened with its passphrase when it is an age file encrypted to one
 * ($FLUXSTRAP_AGE_PASSPHRASE, else typed at the terminal). Eager where sops asks on first use: the
 * prompt comes before any output, not in the middle of it.
 */
async function identityText(bytes: Buffer, source: string, opts: LoadOptions): Promise<string> {
  if (!isAgeFile(bytes)) return bytes.toString('utf8');
  const given = opts.env[AGE_PASSPHRASE_ENV];
  const passphrase = given !== undefined && given !== '' ? given : await opts.ask?.(`passphrase of the age identity file ${source} (not shown): `);
  if (passphrase === undefined) {
    throw configError(
      'the age identity file is encrypted with a passphrase, and none is given',
      { file: source },
      `set ${AGE_PASSPHRASE_ENV} or run at a terminal to type it`,
    );
  }
  if (passphrase === '') throw usageError('the passphrase is empty', 'type the passphrase the identity file was encrypted with (age -p)');
  const where = opts.ask && given === undefined ? 'type it again' : `check $${AGE_PASSPHRASE_ENV}`;
  // Loaded here: backups bring Ansible Vault and child_process, which a plain decrypt must not pay for.
  const { openPassphraseAge } = await import('./backup.ts');
  return openPassphraseAge(bytes, source, passphrase, { what: 'the encrypted age identity file', passphraseHint: where });
}

/**
 * The SSH keys sops 3.13 decrypts with, in its order. The named one must be usable when it exists;
 * `~/.ssh` keys fluxstrap cannot use (a passphrase, an ECDSA key) are passed over, as many users
 * have one there that has nothing to do with sops.
 */
async function sshIdentities(env: NodeJS.ProcessEnv, soft: unknown[]): Promise<AgeIdentity[]> {
  const home = homedir();
  const named = env.SOPS_AGE_SSH_PRIVATE_KEY_FILE;
  const files = [...(named ? [named] : []), ...(home === '' ? [] : ['id_ed25519', 'id_rsa'].map((f) => join(home, '.ssh', f)))];
  const out: AgeIdentity[] = [];
  for (const file of files) {
    try {
      const bytes = await readIfExists(file);
      if (bytes === undefined) {
        if (file === named) soft.push(fsError(Object.assign(new Error(), { code: 'ENOENT' }), file, 'read SOPS_AGE_SSH_PRIVATE_KEY_FILE'));
        continue;
      }
      const ssh = parseSshIdentity(bytes.toString('utf8'), file);
      out.push({ secret: '', ssh, recipient: sshIdentityRecipient(ssh), source: file, line: 1, postQuantum: false });
    } catch (e) {
      if (file === named || !isFluxstrapError(e)) throw e;
    }
  }
  return out;
}

/** Split a command line the way a POSIX shell would for words and quotes, without running a shell. */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? '';
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word += line[++i] ?? '';
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && i + 1 < line.length) {
      word = (word ?? '') + (line[++i] ?? '');
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** How long `SOPS_AGE_KEY_CMD` may take, in seconds (`FLUXSTRAP_KEY_CMD_TIMEOUT`, default 30). */
function keyCommandTimeout(env: NodeJS.ProcessEnv): number {
  const s = Number(env.FLUXSTRAP_KEY_CMD_TIMEOUT ?? 30);
  if (!Number.isFinite(s) || s <= 0)
    throw configError('FLUXSTRAP_KEY_CMD_TIMEOUT must be a positive number of seconds', { field: 'FLUXSTRAP_KEY_CMD_TIMEOUT' });
  return s;
}

/**
 * `SOPS_AGE_KEY_CMD`: a command whose output is a key file (a password manager, a vault CLI…).
 * Bounded in time: a command waiting for a prompt nobody sees must not hang a pre-commit hook.
 */
export async function runKeyCommand(line: string, env: NodeJS.ProcessEnv, name = 'SOPS_AGE_KEY_CMD'): Promise<string> {
  const [cmd, ...args] = splitCommand(line);
  const field = { field: name };
  if (!cmd) throw configError(`${name} is empty`, field);
  const seconds = keyCommandTimeout(env);
  // Loaded here: child_process is a cost on every start, and few set SOPS_AGE_KEY_CMD.
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    // SIGKILL: a command that ignores SIGTERM would otherwise outlive the timeout.
    execFile(cmd, args, { env, maxBuffer: 1024 * 1024, timeout: seconds * 1000, killSignal: 'SIGKILL' }, (e, stdout) => {
      // The command's stderr may hold anything; only its name and exit status are reported.
      if (e && e.killed) {
        reject(
          new FluxstrapError('E_TIMEOUT', `${name} (${cmd}) did not finish within ${seconds}s`, {
            location: field,
            hint: 'a command that asks for input cannot get it here; set FLUXSTRAP_KEY_CMD_TIMEOUT for a slow one',
          }),
        );
      } else if (e) reject(configError(`${name} (${cmd}) failed`, field));
      else resolve(stdout);
    });
  });
}

/**
 * The identities `SOPS_AGE_KEY_CMD` prints when asked for one recipient: sops 3.12+ runs the
 * command once per age recipient of a file with `SOPS_AGE_RECIPIENT` set to it, so a password
 * manager can hand out the one key the file needs. A failing command opens nothing, as in sops.
 */
export function keyCommandIdentities(env: NodeJS.ProcessEnv): ((recipient: string) => Promise<AgeIdentity[]>) | undefined {
  const line = env.SOPS_AGE_KEY_CMD;
  if (!line) return undefined;
  const asked = new Map<string, Promise<AgeIdentity[]>>();
  return (recipient) => {
    let p = asked.get(recipient);
    if (p === undefined) {
      p = runKeyCommand(line, { ...env, SOPS_AGE_RECIPIENT: recipient })
        .then((out) => parseAgeKeyFile(out, 'SOPS_AGE_KEY_CMD', deriveRecipient))
        .catch((e: unknown) => {
          if (isFluxstrapError(e) && e.code === 'E_TIMEOUT') throw e;
          return [];
        });
      asked.set(recipient, p);
    }
    return p;
  };
}

export function isArmoredPgp(text: string): boolean {
  return /-----BEGIN PGP (PRIVATE|PUBLIC) KEY BLOCK-----/.test(text);
}

/**
 * Every age identity at hand. Like sops, a broken environment source is fatal only when nothing
 * else yields an identity; a file named explicitly in `keyFiles` must parse.
 */
export async function loadAgeIdentities(opts: LoadOptions): Promise<AgeIdentity[]> {
  const { env } = opts;
  const found: AgeIdentity[] = [];
  const soft: unknown[] = [];
  const add = async (bytes: Buffer, source: string, strict: boolean): Promise<void> => {
    try {
      found.push(...(await parseAgeKeyFile(await identityText(bytes, source, opts), source, deriveRecipient)));
    } catch (e) {
      // A wrong passphrase is what the user typed, not a broken source: it always stops the command.
      if (strict || !isFluxstrapError(e) || e.code === 'E_DECRYPT') throw e;
      soft.push(e);
    }
  };
  if (opts.ssh === true) found.push(...(await sshIdentities(env, soft)));
  if (env.SOPS_AGE_KEY) {
    // Several whitespace-separated identities per line are allowed (sops ≥3.13); an encrypted file is taken whole.
    const key = env.SOPS_AGE_KEY;
    const lines = isAgeFile(Buffer.from(key)) ? [key] : key.split(/\r?\n/).flatMap((l) => (l.trim().startsWith('#') ? [] : l.trim().split(/\s+/)));
    await add(Buffer.from(lines.join('\n')), 'SOPS_AGE_KEY', false);
  }
  if (env.SOPS_AGE_KEY_CMD && opts.keyCmdPerRecipient !== true) {
    try {
      await add(Buffer.from(await runKeyCommand(env.SOPS_AGE_KEY_CMD, env)), 'SOPS_AGE_KEY_CMD', false);
    } catch (e) {
      if (!isFluxstrapError(e) || e.code === 'E_DECRYPT') throw e;
      soft.push(e);
    }
  }
  const envFile = env.SOPS_AGE_KEY_FILE;
  if (envFile) {
    const bytes = await readIfExists(envFile);
    if (bytes === undefined) soft.push(fsError(Object.assign(new Error(), { code: 'ENOENT' }), envFile, 'read SOPS_AGE_KEY_FILE'));
    else await add(bytes, envFile, false);
  }
  const def = defaultAgeKeyFile(env);
  if (def !== undefined && def !== envFile) {
    const bytes = await readIfExists(def);
    if (bytes !== undefined) await add(bytes, def, false);
  }
  for (const file of opts.keyFiles ?? []) {
    const bytes = await readIfExists(file);
    if (bytes === undefined) throw fsError(Object.assign(new Error(), { code: 'ENOENT' }), file, 'read key file');
    if (!isArmoredPgp(bytes.toString('latin1'))) await add(bytes, file, true);
  }
  if (found.length === 0 && soft.length > 0) throw soft[0];
  const seen = new Set<string>();
  const keyOf = (i: AgeIdentity) => (i.ssh ? i.recipient : i.secret);
  return found.filter((i) => !seen.has(keyOf(i)) && seen.add(keyOf(i)));
}

/** Armored PGP keys among the `--key-file`s (age files are skipped). */
export async function loadPgpKeyFiles(keyFiles: readonly string[]): Promise<{ armored: string; source: string }[]> {
  const out: { armored: string; source: string }[] = [];
  for (const file of keyFiles) {
    const text = (await readIfExists(file))?.toString('utf8');
    if (text !== undefined && isArmoredPgp(text)) out.push({ armored: text, source: file });
  }
  return out;
}
