import { FluxstrapError } from '../core/errors.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { ageDecrypt, ageEncrypt } from './age.ts';
import { kmsDecrypt, kmsEncrypt, kmsKeyOf } from './aws-kms.ts';
import { stanzaField, stanzaName, type Metadata, type Stanza } from './metadata.ts';
import { gpgDecrypt, gpgEncrypt, keyFileDecrypt, keyFileEncrypt, keyFileFingerprints, normalizeFingerprint, type PgpKeyFile } from './pgp.ts';
import { combine, split } from './shamir.ts';
import { TreeMap } from './tree.ts';

/**
 * The data key and the master keys around it: recovering it from any group's stanzas (age, then
 * PGP, as sops' default decryption order), splitting it over key groups with Shamir, and
 * encrypting it for each recipient. Stanzas fluxstrap cannot use (GCP KMS, Azure Key Vault, …) are carried over
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
   * The environment the key services read (AWS_*; VAULT_TOKEN, or ~/.vault-token through HOME);
   * without it none is called (`check`).
   */
  env?: NodeJS.ProcessEnv;
  /**
   * Identities asked for one recipient: `SOPS_AGE_KEY_CMD` run with `SOPS_AGE_RECIPIENT` set to
   * it, once per age recipient of a file, as sops 3.12+ runs it.
   */
  ageFor?: (recipient: string) => Promise<AgeIdentity[]>;
}

const ORDER: Record<string, number> = { age: 0, pgp: 1 };

/** Key services as messages name them; all but AWS KMS and Vault have their entries kept and are never called. */
const SERVICE_NAMES: Partial<Record<string, string>> = {
  kms: 'AWS KMS',
  gcp_kms: 'Google Cloud KMS',
  azure_kv: 'Azure Key Vault',
  hc_vault: 'HashiCorp Vault',
  hckms: 'Huawei Cloud KMS',
};

/** The environment to call the stanza's key service with, when fluxstrap talks to it at all. */
function serviceEnv(s: Stanza, sources: KeySources): NodeJS.ProcessEnv | undefined {
  return s.type === 'kms' || s.type === 'hc_vault' ? sources.env : undefined;
}

async function serviceDecrypt(s: Stanza, enc: string, env: NodeJS.ProcessEnv, file: string): Promise<Uint8Array> {
  if (s.type === 'kms') return kmsDecrypt(kmsKeyOf(s), enc, { env }, { file, field: 'sops.kms' });
  // Imported here so that commands without Vault keys never load its client.
  const { vaultDecrypt } = await import('./hc-vault.ts');
  return vaultDecrypt(s, env, { file, field: 'sops.hc_vault' });
}

async function serviceEncrypt(s: Stanza, share: Uint8Array, env: NodeJS.ProcessEnv): Promise<string> {
  if (s.type === 'kms') return kmsEncrypt(kmsKeyOf(s), share, { env }, s.origin ?? { field: 'kms' });
  const { vaultEncrypt } = await import('./hc-vault.ts');
  return vaultEncrypt(s, share, env, s.origin ?? { field: 'hc_vault' });
}

/** `refusals` collects what a key service said when it did not open its entry. */
async function openStanza(s: Stanza, sources: KeySources, file: string, refusals: unknown[]): Promise<Uint8Array | undefined> {
  const enc = stanzaField(s, 'enc');
  if (enc === '') return undefined;
  if (s.type === 'age') {
    const identities = [...sources.age, ...((await sources.ageFor?.(stanzaName(s))) ?? [])];
    if (identities.length === 0) return undefined;
    try {
      return await ageDecrypt(enc, identities);
    } catch {
      return undefined;
    }
  }
  if (s.type === 'pgp') {
    return (await keyFileDecrypt(enc, sources.pgpFiles)) ?? (sources.gpg ? await gpgDecrypt(enc, sources.gpgExec) : undefined);
  }
  const env = serviceEnv(s, sources);
  if (env) {
    try {
      return await serviceDecrypt(s, enc, env, file);
    } catch (e) {
      refusals.push(e);
    }
  }
  return undefined;
}

async function triedKeys(sources: KeySources): Promise<string> {
  const tried = sources.age.map((i) => `${i.recipient} (${i.source})`);
  for (const fp of await keyFileFingerprints(sources.pgpFiles).catch(() => [])) tried.push(`pgp ${fp}`);
  if (sources.ageFor) tried.push('SOPS_AGE_KEY_CMD');
  if (sources.gpg) tried.push('the gpg keyring');
  return tried.length > 0 ? tried.join(', ') : 'none';
}

export function recipientsOf(md: Metadata): string {
  return md.keyGroups.map((g, i) => `${md.keyGroups.length > 1 ? `group ${i + 1}: ` : ''}${g.map((s) => `${s.type} ${stanzaName(s)}`).join(', ')}`).join('; ');
}

function unreachableNote(md: Metadata, sources: KeySources): string {
  const unreachable = md.keyGroups.flat().filter((s) => !serviceEnv(s, sources));
  const names = [...new Set(unreachable.map((s) => SERVICE_NAMES[s.type]).filter((n) => n !== undefined))];
  return names.length > 0 ? ` fluxstrap cannot reach ${names.join(' or ')}: decrypt with sops where it can.` : '';
}

/** Recover the data key; the error names the file's recipients and the keys tried, never secrets. */
export async function recoverDataKey(md: Metadata, sources: KeySources, file: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  // A key service's own refusal (no credentials, key not found) says more than "no key opens it".
  const refusals: unknown[] = [];
  for (const group of md.keyGroups) {
    const ordered = [...group].sort((a, b) => (ORDER[a.type] ?? 2) - (ORDER[b.type] ?? 2));
    for (const s of ordered) {
      const part = await openStanza(s, sources, file, refusals);
      if (part) {
        parts.push(part);
        break;
      }
    }
  }
  const multi = md.keyGroups.length > 1;
  const needed = multi ? Math.max(md.shamirThreshold, 2) : 1;
  if (parts.length < needed) {
    if (parts.length === 0 && refusals.length > 0) throw refusals[0];
    throw new FluxstrapError(
      'E_DECRYPT',
      multi ? `only ${parts.length} of the ${needed} key groups needed could be opened` : 'no key at hand opens this file',
      {
        location: { file },
        hint: `encrypted to ${recipientsOf(md)}; tried ${await triedKeys(sources)}.${unreachableNote(md, sources)} Give a matching key with --key-file, SOPS_AGE_KEY_FILE or SOPS_AGE_KEY`,
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
export async function encryptDataKey(
  dataKey: Uint8Array,
  groups: Stanza[][],
  threshold: number,
  sources: KeySources,
  previous?: Previous,
): Promise<{ groups: Stanza[][]; threshold: number }> {
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
        const kept =
          sameKey && groups.length === 1 && previous.groups.length === 1
            ? previous.groups[0]?.find((p) => p.type === s.type && stanzaName(p) === stanzaName(s))
            : undefined;
        if (kept) {
          stanzas.push(kept);
          continue;
        }
        const env = serviceEnv(s, sources);
        if (!env) {
          throw new FluxstrapError(
            'E_PRECONDITION',
            `cannot encrypt a new ${groups.length > 1 ? 'key share' : 'data key'} for ${s.type} key ${stanzaName(s)}: fluxstrap cannot reach ${SERVICE_NAMES[s.type] ?? 'that key service'}`,
            {
              ...(s.origin ? { location: s.origin } : {}),
              hint: 'entries for it are kept as they are (updatekeys with the same data key); to encrypt for it, use sops itself',
            },
          );
        }
        fields.set('created_at', rfc3339Now());
        fields.set('enc', await serviceEncrypt(s, share, env));
      }
      stanzas.push({ type: s.type, fields });
    }
    out.push(stanzas);
  }
  return { groups: out, threshold: groups.length > 1 ? t : threshold };
}
