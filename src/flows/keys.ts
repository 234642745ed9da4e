import { readText } from '../adapters/files.ts';
import { FluxstrapError, usageError } from '../core/errors.ts';
import { ageKeyFilePath, defaultAgeKeyFile, parseAgeKeyFile, recipientOf } from '../keys/age.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { checkKeyFileTarget, KEY_FILE_MODE, newAgeKey, writeKeyFile } from '../keys/generate.ts';
import type { PgpKeyType } from '../keys/pgp.ts';
import { loadAgeIdentities, isArmoredPgp } from '../keys/identities.ts';
import { PGP_KEY_TYPES } from '../keys/pgp.ts';
import { info } from './io.ts';
import type { CommandIo } from './io.ts';

/** The implementation behind `fluxstrap keys …`, loaded only when such a command runs. */

export interface KeysNewOptions {
  out?: string;
  append?: boolean;
  pq?: boolean;
  pgp?: boolean;
  type?: string;
  name?: string;
  email?: string;
}

export async function keysNew(opts: KeysNewOptions, g: CommandIo): Promise<void> {
  if (opts.pgp) return keysNewPgp(opts, g);
  if (opts.type !== undefined) throw usageError('--type applies to --pgp keys only', 'age keys are X25519, or the hybrid type with --pq');
  const file = opts.out ?? ageKeyFilePath(g.env);
  const key = await newAgeKey({ file, postQuantum: opts.pq === true, append: opts.append === true });
  g.result({ recipient: key.recipient, file: key.file });
  if (g.json) return;
  info(g, key.identities > 1 ? `added a new age identity to ${file} (${key.identities} identities now)` : `wrote a new age identity to ${file} (mode 0600)`);
  g.stdout.write(`${key.recipient}\n`);
}

async function keysNewPgp(opts: KeysNewOptions, g: CommandIo): Promise<void> {
  if (opts.pq) throw usageError('--pq applies to age keys only');
  if (opts.append) throw usageError('--append applies to age key files only', 'write each OpenPGP key to its own --out file');
  if (opts.out === undefined) {
    throw usageError('--pgp needs --out FILE: where to keep the private key', 'keep it outside the Git repository, e.g. --out ~/.config/sops/pgp/cluster.asc');
  }
  const type = (opts.type ?? 'rsa4096') as PgpKeyType;
  if (!PGP_KEY_TYPES.includes(type)) throw usageError(`unknown --type ${opts.type}`, `use one of: ${PGP_KEY_TYPES.join(', ')}`);
  await checkKeyFileTarget(opts.out, false);
  const { generatePgpKey } = await import('../keys/pgp.ts');
  info(g, type === 'rsa4096' ? 'generating an RSA-4096 OpenPGP key (this takes a few seconds)…' : 'generating an ed25519 OpenPGP key…');
  const key = await generatePgpKey(type, { name: opts.name ?? 'fluxstrap', ...(opts.email ? { email: opts.email } : {}), comment: 'flux secrets' });
  await writeKeyFile(opts.out, key.privateKey, true);
  g.result({ fingerprint: key.fingerprint, file: opts.out, publicKey: key.publicKey });
  if (g.json) return;
  info(g, `wrote a new OpenPGP private key to ${opts.out} (mode 0${KEY_FILE_MODE.toString(8)}, no passphrase)`);
  info(g, `public key: fluxstrap keys pub --armor ${opts.out} > clusters/NAME/.sops.pub.asc, or let fluxstrap init export it`);
  g.stdout.write(`${key.fingerprint}\n`);
}

export interface KeysPubOptions {
  armor?: boolean;
}

interface Published {
  recipient: string;
  source: string;
  line?: number;
  type: 'age' | 'age-pq' | 'pgp';
}

/** Print the recipients of a key file, or of the keys sops would use (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, default file). */
export async function keysPub(file: string | undefined, opts: KeysPubOptions, g: CommandIo): Promise<void> {
  const text = file === undefined ? undefined : await readText(file);
  if (text !== undefined && file !== undefined && isArmoredPgp(text)) {
    const { readPgpKey } = await import('../keys/pgp.ts');
    const key = await readPgpKey(text, file);
    g.result({ recipients: [{ recipient: key.fingerprint, source: file, type: 'pgp' }], publicKey: key.publicKey });
    if (!g.json) g.stdout.write(opts.armor ? key.publicKey : `${key.fingerprint}\n`);
    return;
  }
  if (opts.armor) throw usageError('--armor applies to OpenPGP key files only');
  const identities = text !== undefined && file !== undefined ? await parseAgeKeyFile(text, file, recipientOf) : await identitiesFromEnv(g.env);
  const recipients: Published[] = identities.map((id) => ({
    recipient: id.recipient,
    source: id.source,
    line: id.line,
    type: id.postQuantum ? 'age-pq' : 'age',
  }));
  g.result({ recipients });
  if (!g.json) g.stdout.write(recipients.map((r) => `${r.recipient}\n`).join(''));
}

/** The age identities sops would use (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, the default file); none is an error. */
export async function identitiesFromEnv(env: NodeJS.ProcessEnv): Promise<AgeIdentity[]> {
  const found = await loadAgeIdentities({ env });
  if (found.length === 0) {
    const file = defaultAgeKeyFile(env);
    throw new FluxstrapError('E_NOT_FOUND', 'no age key found', {
      location: file !== undefined ? { file } : { field: 'SOPS_AGE_KEY_FILE' },
      hint: 'set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY, pass a key file, or create one with `fluxstrap keys new`',
    });
  }
  return found;
}
