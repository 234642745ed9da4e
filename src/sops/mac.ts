import { createHash, type Hash } from 'node:crypto';
import { FluxstrapError } from '../core/errors.ts';
import { CipherError, decryptValue, encryptValue } from './cipher.ts';
import type { Metadata } from './metadata.ts';
import type { Rules } from './rules.ts';
import { scalarText } from './scalars.ts';
import { Comment, type Leaf } from './tree.ts';

/**
 * The MAC: SHA-512 over the plaintext bytes of the leaves in document order (comments never,
 * nulls never; with mac_only_encrypted only the encrypted ones, after a fixed seed), stored as
 * uppercase hex encrypted like a value with the lastmodified stamp as AAD.
 */

/** 32 bytes fed first when `mac_only_encrypted` is set: SHA-256("sops"), so the two MACs never collide. */
const MAC_ONLY_ENCRYPTED_SEED = Buffer.from('8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69', 'hex');

export function newMacHash(rules: Rules): Hash {
  const hash = createHash('sha512');
  if (rules.macOnlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_SEED);
  return hash;
}

export function hashLeaf(hash: Hash, v: Leaf): void {
  if (v instanceof Comment) return;
  hash.update(v instanceof Uint8Array ? v : Buffer.from(scalarText(v), 'utf8'));
}

/** The MAC value as sops stores it: the hex digest encrypted as a `str` with lastmodified as AAD. */
export function sealMac(mac: string, key: Uint8Array, lastModified: string): string {
  return encryptValue(mac, key, lastModified);
}

/** Go's RFC 3339 parse-then-format: a zero offset becomes `Z`, fractional seconds go. */
export function normalizeRfc3339(s: string): string {
  return s.replace(/\.\d+(?=Z|[+-]\d{2}:\d{2}$)/, '').replace(/[+-]00:00$/, 'Z');
}

export function verifyMac(md: Metadata, dataKey: Uint8Array, computed: string, file: string): void {
  let stored: string;
  try {
    const opened = decryptValue(md.mac, dataKey, normalizeRfc3339(md.lastModified));
    stored = typeof opened === 'string' ? opened : '';
  } catch (e) {
    if (!(e instanceof CipherError)) throw e;
    throw new FluxstrapError('E_DECRYPT', 'the MAC does not decrypt: the metadata was changed', {
      location: { file, field: 'sops.mac' },
      hint: 'use --ignore-mac to decrypt anyway',
    });
  }
  if (stored === '') {
    throw new FluxstrapError('E_DECRYPT', 'MAC mismatch: the file has no MAC', {
      location: { file, field: 'sops.mac' },
      hint: 'use --ignore-mac to decrypt anyway',
    });
  }
  if (stored !== computed) {
    throw new FluxstrapError('E_DECRYPT', 'MAC mismatch: a value was changed after encryption', {
      location: { file },
      hint: 'use --ignore-mac to decrypt anyway',
    });
  }
}
