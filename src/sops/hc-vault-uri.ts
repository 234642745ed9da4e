import { posix } from 'node:path';
import { TreeMap } from './tree.ts';
import type { Stanza } from './metadata.ts';

/**
 * HashiCorp Vault transit key URIs (`https://vault:8200/v1/transit/keys/name`) as sops reads them
 * (hcvault/keysource.go, NewMasterKeyFromURI): the address is the URI up to the path, kept as
 * written (no default port dropped, no case folded: it is compared and stored byte for byte); the
 * key name is the last path segment and the engine path the segments between `/v1/` and the one
 * before the name. Pure and small: `.sops.yaml` parsing needs it for age-only commands too, while
 * the HTTP client (hc-vault.ts) is loaded only when a Vault key is used.
 */

export interface VaultKeyRef {
  address: string;
  enginePath: string;
  keyName: string;
}

export class VaultUriError extends Error {}

const EXAMPLE = 'https://vault.example.com:8200/v1/transit/keys/keyName';

// sops refuses a path with a segment before /v1/ (Vault behind a path prefix) and one without
// three segments after a version; both checks are unanchored there, as here.
const PREFIXED = /\/[^/]+\/v\d+\/[^/]+\/[^/]+\/[^/]+/;
const VERSIONED = /\/v\d+\/[^/]+\/[^/]+\/[^/]+/;
// scheme://authority/path, nothing else: a query or fragment would end up in sops' address.
const URI = /^(https?):\/\/([^/?#@\s]+)(\/[^?#\s]*)$/;

export function parseVaultUri(uri: string): VaultKeyRef {
  if (uri.length > 2048) throw new VaultUriError('the URI is longer than 2048 characters');
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(uri))
    throw new VaultUriError('the URI carries user information; give the token in VAULT_TOKEN or ~/.vault-token instead');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) throw new VaultUriError(`missing scheme (should be like ${EXAMPLE})`);
  const m = URI.exec(uri);
  if (!m) throw new VaultUriError(`not an http(s) URL with a path and no query (should be like ${EXAMPLE})`);
  const [, scheme = '', host = '', path = ''] = m;
  if (PREFIXED.test(path)) throw new VaultUriError(`Vault behind a path prefix is not supported (should be like ${EXAMPLE})`);
  if (!VERSIONED.test(path)) throw new VaultUriError(`the path is not /v1/<engine>/keys/<name> (should be like ${EXAMPLE})`);
  const dirs = path.replace(/^\/+|\/+$/g, '').split('/');
  const keyName = dirs.at(-1) ?? '';
  const enginePath = posix.join(...dirs.slice(1, -2));
  return { address: `${scheme}://${host}`, enginePath, keyName };
}

/** A stanza for a transit key, without `enc` and `created_at` yet (sops' field names). */
export function vaultStanza(ref: VaultKeyRef): Stanza {
  return {
    type: 'hc_vault',
    fields: new TreeMap([
      { key: 'vault_address', value: ref.address },
      { key: 'engine_path', value: ref.enginePath },
      { key: 'key_name', value: ref.keyName },
    ]),
  };
}
