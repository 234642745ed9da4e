import { yamlValues } from '../core/bounded-yaml.ts';
import type { Format } from './stores.ts';

/**
 * The age recipients a SOPS-encrypted file was encrypted for, read from its metadata without
 * decrypting (every key group's, for Shamir files); `undefined` when the text holds no SOPS
 * metadata with a MAC. Found by content, not by name: `.sops.yaml` naming is only a convention.
 * A YAML or JSON text that cannot be read is an E_CONFIG error naming `file`.
 */
export function sopsRecipients(text: string, file: string, format: Format = 'yaml'): string[] | undefined {
  if (format === 'dotenv' || format === 'ini') return flatRecipients(text, format);
  // Cheap filter before parsing: the metadata block is a top-level `sops` key (JSON and
  // binary's JSON envelope parse as YAML too).
  if (!/^(sops:|\s*"sops"\s*:)/m.test(text)) return undefined;
  const recipients: string[] = [];
  let found = false;
  type AgeEntries = { age?: { recipient?: unknown }[] };
  for (const doc of yamlValues(text, file)) {
    const sops = (doc as { sops?: AgeEntries & { mac?: unknown; key_groups?: AgeEntries[] } } | null)?.sops;
    if (!sops || typeof sops.mac !== 'string') continue;
    found = true;
    for (const group of [sops, ...(Array.isArray(sops.key_groups) ? sops.key_groups : [])]) {
      for (const s of Array.isArray(group.age) ? group.age : [])
        if (typeof s.recipient === 'string' && !recipients.includes(s.recipient)) recipients.push(s.recipient);
    }
  }
  return found ? recipients : undefined;
}

/** dotenv (`sops_…=` lines) and INI (a `[sops]` section) keep the metadata flattened. */
const FLAT = {
  dotenv: { mac: /^sops_mac\s*=/m, recipient: /^sops_(?:key_groups__list_\d+__map_)?age__list_\d+__map_recipient\s*=\s*(\S+)/gm },
  ini: { mac: /^mac\s*=/m, recipient: /^(?:key_groups__list_\d+__map_)?age__list_\d+__map_recipient\s*=\s*(\S+)/gm },
} as const;

function flatRecipients(text: string, format: 'dotenv' | 'ini'): string[] | undefined {
  if (format === 'ini' && !/^\[sops\]\s*$/m.test(text)) return undefined;
  if (!FLAT[format].mac.test(text)) return undefined;
  return [...new Set([...text.matchAll(FLAT[format].recipient)].map((m) => m[1] ?? ''))];
}
