import { FluxstrapError, type Location } from '../core/errors.ts';
import { badPublicKey } from '../core/redact.ts';
import { isAgeRecipient } from './age.ts';
import { isSshRecipient } from './age-ssh.ts';

/**
 * Checks for the public keys a user names (flags, environment variables, `.sops.yaml` rules), so
 * that a typo or a pasted private key is refused before any file is written, with a message that
 * says where the value came from and never repeats a private key.
 */

export const RECIPIENT_HINT =
  'an age recipient is the age1… public key that fluxstrap keys new or age-keygen prints, or an SSH public key line (ssh-ed25519 AAAA… or ssh-rsa AAAA…, 2048 bits or more)';
const FINGERPRINT_HINT = 'an OpenPGP fingerprint is 40 hex digits (gpg --list-keys, or fluxstrap keys pub KEY.asc)';

/** A v4 (40) or v5/v6 (64) fingerprint or a long key id (16), spaces allowed as gpg prints them. */
export function isPgpFingerprint(s: string): boolean {
  return /^(?:[0-9A-F]{16}|[0-9A-F]{40}|[0-9A-F]{64})$/i.test(s.replace(/\s+/g, ''));
}

export type PublicKeyType = 'age' | 'pgp';

const KINDS: Record<PublicKeyType, { what: string; valid: (s: string) => boolean; hint: string }> = {
  age: { what: 'age recipient', valid: (s) => isAgeRecipient(s) || isSshRecipient(s), hint: RECIPIENT_HINT },
  pgp: { what: 'OpenPGP fingerprint', valid: isPgpFingerprint, hint: FINGERPRINT_HINT },
};

export function isPublicKey(type: PublicKeyType, value: string): boolean {
  return KINDS[type].valid(value);
}

/** The error for a value that is not a public key of `type`, found at `location` (a flag is a `field`). */
export function publicKeyError(type: PublicKeyType, value: string, location: Location, code: 'E_USAGE' | 'E_CONFIG' = 'E_USAGE'): FluxstrapError {
  const { message, hint } = badPublicKey(value, KINDS[type].what, KINDS[type].hint);
  return new FluxstrapError(code, message, { location, hint });
}

/** `values` when each is a public key of `type`, else a usage error naming `from` (a flag or variable). */
export function checkedPublicKeys(type: PublicKeyType, values: string[], from: string): string[] {
  const bad = values.find((v) => !isPublicKey(type, v));
  if (bad !== undefined) throw publicKeyError(type, bad, { field: from });
  return values;
}
