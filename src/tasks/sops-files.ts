import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { yamlValues } from '../core/bounded-yaml.ts';
import { readText } from '../adapters/files.ts';
import type { AgeIdentity } from '../keys/age.ts';

/**
 * SOPS-encrypted YAML files of a cluster folder: found by their `sops:` metadata (not by name,
 * since `.sops.yaml` naming is only a convention), with the recipients they were encrypted for.
 */
interface SopsFile {
  /** Absolute path. */
  file: string;
  /** Relative to the repository root, for messages. */
  name: string;
  text: string;
  /** age recipients in the metadata. */
  recipients: string[];
}

/** One decrypted Secret, reduced to what may be compared and shown: key names and value hashes. */
export interface SecretDigest {
  file: string;
  namespace: string;
  name: string;
  /** key → sha256 of the value's bytes. The hashes are compared, never printed. */
  hashes: Record<string, string>;
}

async function yamlFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await yamlFiles(path)));
    else if (/\.ya?ml$/i.test(e.name)) out.push(path);
  }
  return out.sort();
}

function sopsRecipients(text: string, file: string): string[] | undefined {
  // Cheap filter before parsing: the metadata block is a top-level `sops:` key.
  if (!/^sops:/m.test(text)) return undefined;
  const recipients: string[] = [];
  let found = false;
  type AgeEntries = { age?: { recipient?: unknown }[] };
  for (const doc of yamlValues(text, file)) {
    const sops = (doc as { sops?: AgeEntries & { mac?: unknown; key_groups?: AgeEntries[] } } | null)?.sops;
    if (!sops || typeof sops.mac !== 'string') continue;
    found = true;
    // A Shamir file lists its keys per group, under key_groups, instead.
    for (const group of [sops, ...(Array.isArray(sops.key_groups) ? sops.key_groups : [])]) {
      for (const s of Array.isArray(group.age) ? group.age : []) if (typeof s.recipient === 'string' && !recipients.includes(s.recipient)) recipients.push(s.recipient);
    }
  }
  return found ? recipients : undefined;
}

export async function findSopsFiles(dir: string, repoRoot: string, exclude: string[] = []): Promise<SopsFile[]> {
  const out: SopsFile[] = [];
  for (const file of await yamlFiles(dir)) {
    if (exclude.some((x) => file === x || file.startsWith(`${x}/`))) continue;
    const text = await readText(file);
    const recipients = sopsRecipients(text, file);
    if (recipients) out.push({ file, name: relative(repoRoot, file), text, recipients });
  }
  return out;
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * Decrypt with the native SOPS engine (MAC checked). Throws E_DECRYPT when no identity opens it.
 * `serviceEnv` (VAULT_TOKEN, …) lets Vault transit keys be tried too.
 */
export async function decryptSopsFile(f: SopsFile, identities: AgeIdentity[], serviceEnv?: NodeJS.ProcessEnv): Promise<string> {
  const { decryptDocument } = await import('../sops/engine.ts');
  const out = await decryptDocument(Buffer.from(f.text, 'utf8'), 'yaml', f.name, { age: identities, pgpFiles: [], gpg: false, ...(serviceEnv ? { serviceEnv } : {}) });
  return out.toString('utf8');
}

/** The Secrets in decrypted YAML, as key names and value hashes (`data` base64-decoded, `stringData` as UTF-8). */
export function secretDigests(plain: string, file: string): SecretDigest[] {
  const out: SecretDigest[] = [];
  for (const doc of yamlValues(plain, file)) {
    const obj = doc as { kind?: string; metadata?: { name?: string; namespace?: string }; data?: Record<string, string>; stringData?: Record<string, string> } | null;
    if (obj?.kind !== 'Secret' || typeof obj.metadata?.name !== 'string') continue;
    // fromEntries defines own keys: a Secret key named `__proto__` is hashed like any other (as the
    // apiserver stores it), where an assignment would drop it. stringData wins, as in the apiserver.
    const hashes = Object.fromEntries([
      ...Object.entries(obj.data ?? {}).map(([k, v]) => [k, sha256(Buffer.from(String(v), 'base64'))]),
      ...Object.entries(obj.stringData ?? {}).map(([k, v]) => [k, sha256(Buffer.from(String(v), 'utf8'))]),
    ]) as Record<string, string>;
    out.push({ file, namespace: obj.metadata.namespace ?? 'default', name: obj.metadata.name, hashes });
  }
  return out;
}
