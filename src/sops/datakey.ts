import { FluxstrapError, isFluxstrapError } from '../core/errors.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { ageDecrypt, ageEncrypt } from './age.ts';
import { stanzaField, stanzaName, type Metadata, type Stanza } from './metadata.ts';
import { gpgDecrypt, gpgEncrypt, keyFileDecrypt, keyFileEncrypt, keyFileFingerprints, normalizeFingerprint, type PgpKeyFile } from './pgp.ts';
import { combine, split } from './shamir.ts';
import { TreeMap } from './tree.ts';

/**
 * The data key and the master keys around it: recovering it from any group's stanzas (age, then
 * PGP, as sops' default decryption order), splitting it over key groups with Shamir, and
 * encrypting it for each recipient. Stanzas fluxstrap cannot use (KMS, Vault, …) are carried over
 * as they are when the data key is unchanged.
 */

export interface KeySources {
  age: AgeIdentity[];
  pgpFiles: PgpKeyFile[];
  /** Try the local gpg keyring (sops does; tests and `check` may turn it off). */
  gpg: boolean;
  /** The gpg program (sops reads `$SOPS_GPG_EXEC`); default `gpg`. */
  gpgExec?: string;
  /**
   * The environment key services read (VAULT_TOKEN, ~/.vault-token through HOME, …), only when a
   * file or rule names such a key; without it those keys are not tried.
   */
  serviceEnv?: NodeJS.ProcessEnv;
}

const ORDER: Record<string, number> = { age: 0, pgp: 1 };

/** Why a key service did not open its stanza, for the error when no key does. */
type Failures = string[];

async function openStanza(s: Stanza, sources: KeySources, failures: Failures): Promise<Uint8Array | undefined> {
  const enc = stanzaField(s, 'enc');
  if (enc === '') return undefined;
  if (s.type === 'hc_vault') {
    if (sources.serviceEnv === undefined) return undefined;
    try {
      // Imported here so that age-only commands never load the Vault client.
      const { vaultDecrypt } = await import('./hc-vault.ts');
      return await vaultDecrypt(s, sources.serviceEnv);
    } catch (e) {
      if (!isFluxstrapError(e)) throw e;
      failures.push(e.message);
      return undefined;
    }
  }
  if (s.type === 'age') {
    if (sources.age.length === 0) return undefined;
    try {
      return await ageDecrypt(enc, sources.age);
    } catch {
      return undefined;
    }
  }
  if (s.type === 'pgp') {
    return (await keyFileDecrypt(enc, sources.pgpFiles)) ?? (sources.gpg ? await gpgDecrypt(enc, sources.gpgExec) : undefined);
  }
  return undefined;
}

async function triedKeys(sources: KeySources): Promise<string> {
  const tried = sources.age.map((i) => `${i.recipient} (${i.source})`);
  for (const fp of await keyFileFingerprints(sources.pgpFiles).catch(() => [])) tried.push(`pgp ${fp}`);
  if (sources.gpg) tried.push('the gpg keyring');
  return tried.length > 0 ? tried.join(', ') : 'none';
}

export function recipientsOf(md: Metadata): string {
  return md.keyGroups.map((g, i) => `${md.keyGroups.length > 1 ? `group ${i + 1}: ` : ''}${g.map((s) => `${s.type} ${stanzaName(s)}`).join(', ')}`).join('; ');
}

/** Recover the data key; the error names the file's recipients and the keys tried, never secrets. */
export async function recoverDataKey(md: Metadata, sources: KeySources, file: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const failures: Failures = [];
  for (const group of md.keyGroups) {
    const ordered = [...group].sort((a, b) => (ORDER[a.type] ?? 2) - (ORDER[b.type] ?? 2));
    for (const s of ordered) {
      const part = await openStanza(s, sources, failures);
      if (part) {
        parts.push(part);
        break;
      }
    }
  }
  const multi = md.keyGroups.length > 1;
  const needed = multi ? Math.max(md.shamirThreshold, 2) : 1;
  if (parts.length < needed) {
    throw new FluxstrapError(
      'E_DECRYPT',
      `${multi ? `only ${parts.length} of the ${needed} key groups needed could be opened` : 'no key at hand opens this file'}${failures.length > 0 ? `: ${failures.join('; ')}` : ''}`,
      {
        location: { file },
        hint: `encrypted to ${recipientsOf(md)}; tried ${await triedKeys(sources)}. Give a matching key with --key-file, SOPS_AGE_KEY_FILE or SOPS_AGE_KEY`,
      },
    );
  }
  const key = multi ? combine(parts) : parts[0];
  if (!key || key.length !== 32) throw new FluxstrapError('E_DECRYPT', 'the recovered data key has the wrong length', { location: { file } });
  return key;
}

export function rfc3339Now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A stanza for a recipient, without `enc` yet: the input to `encryptDataKey`. */
export function newStanza(type: 'age' | 'pgp', id: string): Stanza {
  return type === 'age'
    ? { type, fields: new TreeMap([{ key: 'recipient', value: id }]) }
    : { type, fields: new TreeMap([{ key: 'fp', value: normalizeFingerprint(id) }]) };
}

export interface Previous {
  dataKey: Uint8Array;
  groups: Stanza[][];
}

/**
 * Encrypt `dataKey` (split by Shamir over more than one group) for every stanza, returning new
 * stanzas. A stanza of a type fluxstrap cannot reach keeps its `enc` only if the data key and its
 * group's share are unchanged (`previous`), else it is an error: it would no longer open the file.
 */
export async function encryptDataKey(dataKey: Uint8Array, groups: Stanza[][], threshold: number, sources: KeySources, previous?: Previous): Promise<{ groups: Stanza[][]; threshold: number }> {
  if (groups.some((g) => g.length === 0)) {
    // Its Shamir share would be encrypted for nobody, and the file might never open again.
    throw new FluxstrapError('E_CONFIG', 'a key group has no keys', { hint: 'every key group needs at least one key; remove the empty group' });
  }
  let shares: Uint8Array[];
  let t = threshold;
  if (groups.length > 1) {
    if (t === 0) t = groups.length;
    t = Math.min(t, groups.length);
    shares = split(dataKey, groups.length, t);
  } else {
    shares = [dataKey];
  }
  const sameKey = previous !== undefined && Buffer.compare(Buffer.from(previous.dataKey), Buffer.from(dataKey)) === 0;
  const out: Stanza[][] = [];
  for (const [gi, group] of groups.entries()) {
    const share = shares[gi] ?? dataKey;
    const stanzas: Stanza[] = [];
    for (const s of group) {
      const fields = new TreeMap(s.fields.items.filter((i) => i.key !== 'enc'));
      if (s.type === 'age') {
        fields.set('enc', await ageEncrypt(stanzaField(s, 'recipient'), share));
      } else if (s.type === 'hc_vault' && sources.serviceEnv !== undefined) {
        const { vaultEncrypt } = await import('./hc-vault.ts');
        const enc = await vaultEncrypt(s, share, sources.serviceEnv, s.origin);
        fields.set('created_at', rfc3339Now());
        fields.set('enc', enc);
      } else if (s.type === 'pgp') {
        const fp = stanzaField(s, 'fp');
        const enc = (await keyFileEncrypt(fp, share, sources.pgpFiles)) ?? (await gpgEncrypt(fp, share, sources.gpgExec));
        if (!enc) {
          throw new FluxstrapError('E_NOT_FOUND', `no public key for PGP fingerprint ${fp}`, {
            hint: 'import it into gpg (gpg --import) or name an armored key file with --key-file',
          });
        }
        fields.set('created_at', rfc3339Now());
        fields.set('enc', enc);
      } else {
        // Several groups get fresh Shamir shares even for the same data key: an entry kept from
        // before would hold a share of the old split, and the file would no longer open.
        const kept = sameKey && groups.length === 1 && previous.groups.length === 1 ? previous.groups[0]?.find((p) => p.type === s.type && stanzaName(p) === stanzaName(s)) : undefined;
        if (!kept) {
          throw new FluxstrapError('E_PRECONDITION', `cannot encrypt a new ${groups.length > 1 ? 'key share' : 'data key'} for ${s.type} key ${stanzaName(s)}: fluxstrap does not talk to that key service`, {
            hint: 'use updatekeys (same data key) or sops itself for files with cloud KMS or Vault keys',
          });
        }
        stanzas.push(kept);
        continue;
      }
      stanzas.push({ type: s.type, fields });
    }
    out.push(stanzas);
  }
  return { groups: out, threshold: groups.length > 1 ? t : threshold };
}
