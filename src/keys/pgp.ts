import { configError } from '../core/errors.ts';

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
