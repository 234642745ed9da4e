import { configError, FluxstrapError } from '../core/errors.ts';

/**
 * OpenPGP keys for sops' `pgp:` recipients. openpgp is imported inside each function: it is a
 * large module and only `--pgp` paths may pay for it.
 */

export type PgpKeyType = 'rsa4096' | 'ed25519';
export const PGP_KEY_TYPES: readonly PgpKeyType[] = ['rsa4096', 'ed25519'];

export interface PgpKeyPair {
  /** Armored, unprotected (no passphrase: kustomize-controller cannot type one). Secret. */
  privateKey: string;
  publicKey: string;
  /** Upper-case hex, the form sops and `gpg --list-keys` use. */
  fingerprint: string;
}

export interface PgpUserId {
  name: string;
  email?: string;
  comment?: string;
}

/**
 * RSA-4096 primary + RSA-4096 encryption subkey as in the Flux guide, or EdDSA + cv25519 in the
 * "legacy" v4 encodings: the RFC 9580 Ed25519 keys are not readable by GnuPG 2.2 (Debian's), and
 * neither are v6 keys, so v4 is what we emit.
 */
export async function generatePgpKey(type: PgpKeyType, user: PgpUserId, date: Date = new Date()): Promise<PgpKeyPair> {
  const openpgp = await import('openpgp');
  const common = { userIDs: [user], date, format: 'armored' as const, config: { v6Keys: false } };
  const pair =
    type === 'rsa4096'
      ? await openpgp.generateKey({ ...common, type: 'rsa', rsaBits: 4096 })
      : await openpgp.generateKey({ ...common, type: 'ecc', curve: 'ed25519Legacy', subkeys: [{ type: 'ecc', curve: 'curve25519Legacy' }] });
  const key = await openpgp.readKey({ armoredKey: pair.publicKey });
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, fingerprint: key.getFingerprint().toUpperCase() };
}

export interface PgpKeyInfo {
  fingerprint: string;
  /** The armored public key, exported from a private key when that is what the file holds. */
  publicKey: string;
  isPrivate: boolean;
}

/** Read an armored public or private key; the private part never leaves this function. */
export async function readPgpKey(armored: string, source: string): Promise<PgpKeyInfo> {
  const openpgp = await import('openpgp');
  let key;
  try {
    key = await openpgp.readKey({ armoredKey: armored });
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^.*?:\s*/, '').split('\n')[0] : 'unreadable';
    throw configError(`malformed OpenPGP key: ${why}`, { file: source });
  }
  return { fingerprint: key.getFingerprint().toUpperCase(), publicKey: key.toPublic().armor(), isPrivate: key.isPrivate() };
}

/** The cluster's OpenPGP private key, as the sops-gpg Secret holds it. */
export interface PgpPrivateKey {
  fingerprint: string;
  /** Armored private key. Secret: never log, print or put in an error. */
  armored: string;
  /** Where it came from, for messages (a file, or `gpg keyring`). */
  source: string;
}

const UNPROTECT_HINT =
  'kustomize-controller cannot type a passphrase: export an unprotected copy (gpg --pinentry-mode loopback --passwd FINGERPRINT with an empty passphrase, then gpg --export-secret-keys --armor FINGERPRINT), or make a key for the cluster with `fluxstrap keys new --pgp`';

/**
 * The one private key of an armored block, refused when kustomize-controller could not use it:
 * a public key alone, or secret key material locked with a passphrase.
 */
export async function readPgpPrivateKey(armored: string, source: string, field?: string): Promise<PgpPrivateKey> {
  const openpgp = await import('openpgp');
  const where = { file: source, ...(field !== undefined ? { field } : {}) };
  let keys;
  try {
    keys = await openpgp.readKeys({ armoredKeys: armored });
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^.*?:\s*/, '').split('\n')[0] : 'unreadable';
    throw configError(`malformed OpenPGP key: ${why}`, where);
  }
  const [key] = keys;
  // openpgp reads the first armored block only: a second block would be dropped without a word.
  const blocks = armored.match(/^-----BEGIN PGP (?:PRIVATE|PUBLIC) KEY BLOCK-----/gm)?.length ?? 0;
  if (blocks > 1)
    throw configError(
      `the file holds ${blocks} armored OpenPGP key blocks; the cluster key is one`,
      where,
      "export the one key the cluster's .sops.yaml rule lists: gpg --export-secret-keys --armor FINGERPRINT",
    );
  if (keys.length !== 1 || !key)
    throw configError(
      `the file holds ${keys.length} OpenPGP keys; the cluster key is one`,
      where,
      "export the one key the cluster's .sops.yaml rule lists: gpg --export-secret-keys --armor FINGERPRINT",
    );
  const fingerprint = key.getFingerprint().toUpperCase();
  if (!key.isPrivate()) {
    throw configError(
      `OpenPGP key ${fingerprint} is a public key: kustomize-controller needs the private key to decrypt`,
      where,
      `export the private key: gpg --export-secret-keys --armor ${fingerprint} > FILE`,
    );
  }
  // A stripped (gnu-dummy) primary is fine: decryption needs the encryption subkey only.
  const locked = key.getKeys().some(({ keyPacket }) => 'isDummy' in keyPacket && !keyPacket.isDummy() && keyPacket.isDecrypted() === false);
  if (locked) throw configError(`OpenPGP key ${fingerprint} is protected by a passphrase`, where, UNPROTECT_HINT);
  return { fingerprint, armored: key.armor(), source };
}

/**
 * A key of the user's gpg keyring, exported as sops users do (`gpg --export-secret-keys --armor`):
 * the key comes back on stdout into memory, never through argv or a file. Batch mode with no
 * pinentry: gpg must not stop at a prompt nobody sees; a locked key is refused anyway.
 */
export async function exportGpgSecretKey(fingerprint: string, env: NodeJS.ProcessEnv, exec = 'gpg'): Promise<PgpPrivateKey> {
  const { execa } = await import('execa');
  const field = 'sopsKey.pgp.fingerprint';
  const res = await execa(exec, ['--batch', '--no-tty', '--pinentry-mode', 'error', '--export-secret-keys', '--armor', fingerprint], {
    env,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    stripFinalNewline: false,
  });
  if (res.failed && res.exitCode === undefined) {
    throw new FluxstrapError('E_NOT_FOUND', `cannot run ${exec} to export OpenPGP key ${fingerprint}`, {
      location: { field },
      hint: 'install GnuPG, or name an armored key file with sopsKey.pgp.file',
    });
  }
  if (res.stdout === '') {
    throw new FluxstrapError(
      'E_NOT_FOUND',
      `gpg exports no private key ${fingerprint}${res.exitCode !== 0 ? ' (a key protected by a passphrase cannot be exported here)' : ''}`,
      {
        location: { field },
        hint: res.exitCode !== 0 ? UNPROTECT_HINT : `check gpg --list-secret-keys ${fingerprint} (and GNUPGHOME)`,
      },
    );
  }
  const key = await readPgpPrivateKey(res.stdout, 'gpg keyring', field);
  if (key.fingerprint !== fingerprint) throw configError(`gpg exported key ${key.fingerprint}, not ${fingerprint}`, { field });
  return key;
}
