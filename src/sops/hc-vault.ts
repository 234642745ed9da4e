import { homedir } from 'node:os';
import { join, posix } from 'node:path';
import { readTextIfExists } from '../adapters/files.ts';
import { vaultWrite } from '../adapters/vault.ts';
import { FluxstrapError, isFluxstrapError, type Location } from '../core/errors.ts';
import { stanzaField, stanzaName, type Stanza } from './metadata.ts';

/**
 * sops' `hc_vault` master keys (hcvault/keysource.go): the data key goes to
 * `<engine>/encrypt/<key>` as base64 `plaintext` and the `ciphertext` Vault answers
 * (`vault:v1:…`) is the stanza's `enc`; decryption is the reverse through `<engine>/decrypt/<key>`.
 * The address is the stanza's own (VAULT_ADDR plays no part, as in sops); the token is
 * VAULT_TOKEN, else the vault CLI's ~/.vault-token. Loaded only when a file or rule names a
 * Vault key, so age-only commands never read this module.
 */

export interface VaultAuth {
  token: string | undefined;
  namespace: string | undefined;
}

/** The token and namespace as sops' Vault client finds them; the token is never logged. */
export async function vaultAuth(env: NodeJS.ProcessEnv): Promise<VaultAuth> {
  const namespace = env.VAULT_NAMESPACE || undefined;
  if (env.VAULT_TOKEN) return { token: env.VAULT_TOKEN.trim(), namespace };
  const file = join(env.HOME || homedir(), '.vault-token');
  const text = await readTextIfExists(file, 'read the Vault token file');
  return { token: text?.trim() || undefined, namespace };
}

/**
 * SOPS_HC_VAULT_ALLOWLIST: `all` (the default), `none`, or comma-separated address prefixes; an
 * address outside it is refused before any request, so a hostile file cannot collect the token.
 */
export function vaultAllowed(address: string, env: NodeJS.ProcessEnv): boolean {
  const list = env.SOPS_HC_VAULT_ALLOWLIST || 'all';
  if (list === 'all') return true;
  if (list === 'none') return false;
  const withSlash = (s: string) => (s.endsWith('/') ? s : `${s}/`);
  const prefixes = list.split(',').map((p) => p.trim());
  if (prefixes.some((p) => p === '')) {
    throw new FluxstrapError('E_USAGE', 'SOPS_HC_VAULT_ALLOWLIST has an empty entry', {
      location: { field: 'SOPS_HC_VAULT_ALLOWLIST' },
      hint: 'all, none, or comma-separated Vault addresses',
    });
  }
  return prefixes.some((p) => withSlash(address).startsWith(withSlash(p)));
}

function located(e: unknown, where: Location | undefined, s: Stanza): unknown {
  if (!isFluxstrapError(e)) return e;
  return new FluxstrapError(e.code, `${e.message} (key ${stanzaName(s)})`, {
    ...(where ? { location: where } : {}),
    ...(e.hint !== undefined ? { hint: e.hint } : {}),
  });
}

async function transit(op: 'encrypt' | 'decrypt', s: Stanza, body: Record<string, string>, env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  const address = stanzaField(s, 'vault_address');
  if (!vaultAllowed(address, env)) {
    throw new FluxstrapError('E_PRECONDITION', `SOPS_HC_VAULT_ALLOWLIST does not allow ${address}`, {
      hint: 'add the address to SOPS_HC_VAULT_ALLOWLIST if you trust it',
    });
  }
  const auth = await vaultAuth(env);
  return vaultWrite({
    address,
    path: posix.join(stanzaField(s, 'engine_path'), op, stanzaField(s, 'key_name')),
    token: auth.token,
    namespace: auth.namespace,
    body,
  });
}

/** The `enc` of `dataKey` under the stanza's transit key; errors point at `where` (the rule or flag). */
export async function vaultEncrypt(s: Stanza, dataKey: Uint8Array, env: NodeJS.ProcessEnv, where?: Location): Promise<string> {
  try {
    const ciphertext = (await transit('encrypt', s, { plaintext: Buffer.from(dataKey).toString('base64') }, env)).ciphertext;
    if (typeof ciphertext !== 'string' || ciphertext === '') throw new FluxstrapError('E_PRECONDITION', 'Vault answered the encryption without a ciphertext');
    return ciphertext;
  } catch (e) {
    throw located(e, where, s);
  }
}

export async function vaultDecrypt(s: Stanza, env: NodeJS.ProcessEnv, where?: Location): Promise<Uint8Array> {
  try {
    const plaintext = (await transit('decrypt', s, { ciphertext: stanzaField(s, 'enc') }, env)).plaintext;
    if (typeof plaintext !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(plaintext)) {
      throw new FluxstrapError('E_DECRYPT', 'Vault answered the decryption without a base64 plaintext');
    }
    return new Uint8Array(Buffer.from(plaintext, 'base64'));
  } catch (e) {
    throw located(e, where, s);
  }
}
