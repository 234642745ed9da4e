import { readFile } from 'node:fs/promises';
import { fsError, isFluxstrapError } from '../core/errors.ts';
import { x25519RecipientOf, x25519Secret } from '../sops/age-x25519.ts';
import { defaultAgeKeyFile, parseAgeKeyFile, recipientOf, type AgeIdentity } from './age.ts';

/**
 * Where decryption keys come from, as sops looks for them: `SOPS_AGE_KEY` (identities inline),
 * `SOPS_AGE_KEY_FILE`, the default `sops/age/keys.txt` (read in addition, when it exists), and
 * files named with `--key-file` (age identities or armored PGP keys). Only public parts ever
 * reach messages.
 */

export interface LoadOptions {
  keyFiles?: string[];
  env?: NodeJS.ProcessEnv;
}

/** X25519 recipients are derived natively; only post-quantum ones pay for age-encryption. */
async function deriveRecipient(secret: string): Promise<string> {
  return x25519Secret(secret) ? x25519RecipientOf(secret) : recipientOf(secret);
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, file, 'read key file');
  }
}

export function isArmoredPgp(text: string): boolean {
  return /-----BEGIN PGP (PRIVATE|PUBLIC) KEY BLOCK-----/.test(text);
}

/**
 * Every age identity at hand. Like sops, a broken environment source is fatal only when nothing
 * else yields an identity; a file named explicitly in `keyFiles` must parse.
 */
export async function loadAgeIdentities(opts: LoadOptions = {}): Promise<AgeIdentity[]> {
  const env = opts.env ?? process.env;
  const found: AgeIdentity[] = [];
  const soft: unknown[] = [];
  const add = async (text: string, source: string, strict: boolean): Promise<void> => {
    try {
      found.push(...(await parseAgeKeyFile(text, source, deriveRecipient)));
    } catch (e) {
      if (strict || !isFluxstrapError(e)) throw e;
      soft.push(e);
    }
  };
  if (env.SOPS_AGE_KEY) {
    // Several whitespace-separated identities per line are allowed (sops ≥3.13).
    const lines = env.SOPS_AGE_KEY.split(/\r?\n/).flatMap((l) => (l.trim().startsWith('#') ? [] : l.trim().split(/\s+/)));
    await add(lines.join('\n'), 'SOPS_AGE_KEY', false);
  }
  const envFile = env.SOPS_AGE_KEY_FILE;
  if (envFile) {
    const text = await readIfExists(envFile);
    if (text === undefined) soft.push(fsError(Object.assign(new Error(), { code: 'ENOENT' }), envFile, 'read SOPS_AGE_KEY_FILE'));
    else await add(text, envFile, false);
  }
  const def = defaultAgeKeyFile(env);
  if (def !== envFile) {
    const text = await readIfExists(def);
    if (text !== undefined) await add(text, def, false);
  }
  for (const file of opts.keyFiles ?? []) {
    const text = await readIfExists(file);
    if (text === undefined) throw fsError(Object.assign(new Error(), { code: 'ENOENT' }), file, 'read key file');
    if (!isArmoredPgp(text)) await add(text, file, true);
  }
  if (found.length === 0 && soft.length > 0) throw soft[0];
  const seen = new Set<string>();
  return found.filter((i) => !seen.has(i.secret) && seen.add(i.secret));
}

/** Armored PGP keys among the `--key-file`s (age files are skipped). */
export async function loadPgpKeyFiles(keyFiles: readonly string[]): Promise<{ armored: string; source: string }[]> {
  const out: { armored: string; source: string }[] = [];
  for (const file of keyFiles) {
    const text = await readIfExists(file);
    if (text !== undefined && isArmoredPgp(text)) out.push({ armored: text, source: file });
  }
  return out;
}
