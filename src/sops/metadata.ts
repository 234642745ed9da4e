import { isFluxstrapError, type Location } from '../core/errors.ts';
import { checkRulePatterns, DEFAULT_UNENCRYPTED_SUFFIX, RULE_NAMES, selectionRulesSet, type Rules, type SelectionRule } from './rules.ts';
import { Comment, TreeMap, type Value } from './tree.ts';

/**
 * The `sops` block. Master keys are kept as their raw stanza fields, so stanzas fluxstrap cannot
 * use (kms, gcp_kms, azure_kv, hc_vault, hckms) survive a re-key untouched. Written in the 3.13
 * layout: every map's keys sorted, empty lists omitted, one group as top-level lists.
 */

export const KEY_TYPES = ['age', 'azure_kv', 'gcp_kms', 'hc_vault', 'hckms', 'kms', 'pgp'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export interface Stanza {
  type: KeyType;
  fields: TreeMap;
  /** The rule or flag it came from, for a key service's errors; never written. */
  origin?: Location;
}

export interface Metadata {
  lastModified: string;
  mac: string;
  version: string;
  rules: Rules;
  shamirThreshold: number;
  keyGroups: Stanza[][];
}

/** The sops release whose output fluxstrap writes; `version:` records it as sops does. */
export const SOPS_VERSION = '3.13.2';

export class MetadataError extends Error {
  /** The metadata key at fault, when it is one, so that the error can give its line. */
  readonly key: string | undefined;
  readonly hint: string | undefined;

  constructor(message: string, key?: string, hint?: string) {
    super(message);
    this.key = key;
    this.hint = hint;
  }
}

export function stanzaField(s: Stanza, name: string): string {
  const v = s.fields.get(name);
  return typeof v === 'string' ? v : '';
}

/** The key's public identity as sops prints it (`ToString`): recipient, fingerprint, ARN, URL… */
export function stanzaName(s: Stanza): string {
  switch (s.type) {
    case 'age':
      return stanzaField(s, 'recipient');
    case 'pgp':
      return stanzaField(s, 'fp');
    case 'kms':
      return kmsName(s);
    case 'gcp_kms':
      return stanzaField(s, 'resource_id');
    case 'hckms':
      return stanzaField(s, 'key_id');
    case 'azure_kv':
      return `${stanzaField(s, 'vault_url')}/keys/${stanzaField(s, 'name')}/${stanzaField(s, 'version')}`;
    case 'hc_vault':
      return `${stanzaField(s, 'vault_address')}/v1/${stanzaField(s, 'engine_path')}/keys/${stanzaField(s, 'key_name')}`;
  }
}

/** A kms entry's encryption context, sorted by key; values that are not scalars (a hostile file) read as empty. */
export function kmsContext(s: Stanza): [string, string][] {
  const ctx = s.fields.get('context');
  if (!(ctx instanceof TreeMap)) return [];
  const scalar = (v: Value): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' ? String(v) : '');
  const pairs = ctx.items.flatMap((i): [string, string][] => (typeof i.key === 'string' ? [[i.key, scalar(i.value)]] : []));
  return pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** sops' `arn[+role][|context][|profile]`: two keys differing in any part are two keys. */
function kmsName(s: Stanza): string {
  const role = stanzaField(s, 'role');
  const arn = `${stanzaField(s, 'arn')}${role === '' ? '' : `+${role}`}`;
  const context = kmsContext(s)
    .map(([k, v]) => `${k}:${v}`)
    .join(',');
  const profile = stanzaField(s, 'aws_profile');
  if (profile !== '') return `${arn}|${context}|${profile}`;
  return context === '' ? arn : `${arn}|${context}`;
}

// Weakly typed like sops' mapstructure decoding: dotenv and INI hold every value as a string.
function asString(v: Value | undefined): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new MetadataError('expected a string');
}

function asInt(v: Value | undefined): number {
  const s = asString(v);
  if (s === '') return 0;
  if (!/^-?\d+$/.test(s)) throw new MetadataError('shamir_threshold is not an integer');
  return Number(s);
}

function asBool(v: Value | undefined): boolean {
  if (typeof v === 'boolean') return v;
  const s = asString(v);
  return ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(s);
}

function stanzasOf(group: TreeMap): Stanza[] {
  const out: Stanza[] = [];
  // sops collects a group's keys in this order; it only matters for which key is tried first.
  for (const type of ['kms', 'gcp_kms', 'hckms', 'azure_kv', 'hc_vault', 'pgp', 'age'] as const) {
    const list = group.get(type);
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw new MetadataError(`${type} is not a list`);
    for (const s of list) {
      if (!(s instanceof TreeMap)) throw new MetadataError(`${type} entry is not a map`);
      out.push({ type, fields: s });
    }
  }
  return out;
}

/** Read the `sops` map (already unflattened for dotenv/INI). */
export function parseMetadata(m: TreeMap): Metadata {
  const rules: Rules = {};
  for (const [k, name] of Object.entries(RULE_NAMES) as [SelectionRule, string][]) {
    const v = asString(m.get(name));
    if (v !== '') rules[k] = v;
  }
  try {
    checkRulePatterns(rules, (k) => ({ field: RULE_NAMES[k] }));
  } catch (e) {
    if (isFluxstrapError(e)) throw new MetadataError(e.message, e.location?.field, e.hint);
    throw e;
  }
  if (selectionRulesSet(rules).length > 1) {
    throw new MetadataError(
      'more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, unencrypted_comment_regex is set',
    );
  }
  if (selectionRulesSet(rules).length === 0) rules.unencryptedSuffix = DEFAULT_UNENCRYPTED_SUFFIX;
  if (asBool(m.get('mac_only_encrypted'))) rules.macOnlyEncrypted = true;
  let keyGroups: Stanza[][];
  const flat = stanzasOf(m);
  if (flat.length > 0) keyGroups = [flat];
  else {
    const groups = m.get('key_groups');
    keyGroups = Array.isArray(groups) ? groups.filter((g): g is TreeMap => g instanceof TreeMap).map(stanzasOf) : [];
  }
  if (keyGroups.length === 0 || keyGroups.every((g) => g.length === 0)) throw new MetadataError('no keys found in file');
  const lastModified = asString(m.get('lastmodified'));
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(lastModified)) {
    throw new MetadataError('lastmodified is not an RFC 3339 time');
  }
  return {
    lastModified,
    mac: asString(m.get('mac')),
    version: asString(m.get('version')),
    rules,
    shamirThreshold: asInt(m.get('shamir_threshold')),
    keyGroups,
  };
}

function sorted(m: TreeMap): TreeMap {
  const items = m.items.filter((i) => !(i.key instanceof Comment));
  items.sort((a, b) => ((a.key as string) < (b.key as string) ? -1 : 1));
  return new TreeMap(items.map((i) => ({ key: i.key, value: i.value instanceof TreeMap ? sorted(i.value) : i.value })));
}

function groupMap(group: Stanza[], alwaysListed: readonly KeyType[]): TreeMap {
  const m = new TreeMap();
  for (const type of KEY_TYPES) {
    const stanzas = group.filter((s) => s.type === type).map((s) => sorted(s.fields));
    if (stanzas.length > 0 || alwaysListed.includes(type)) m.set(type, stanzas);
  }
  return m;
}

/** The `sops` map as sops 3.13 writes it: keys in byte order at every level. */
export function metadataTree(md: Metadata): TreeMap {
  const m = new TreeMap();
  if (md.keyGroups.length === 1) {
    for (const item of groupMap(md.keyGroups[0] ?? [], []).items) m.items.push(item);
  } else {
    // sops' key group struct has no omitempty on age and hc_vault.
    m.set(
      'key_groups',
      md.keyGroups.map((g) => groupMap(g, ['age', 'hc_vault'])),
    );
  }
  m.set('lastmodified', md.lastModified);
  m.set('mac', md.mac);
  if (md.rules.macOnlyEncrypted) m.set('mac_only_encrypted', true);
  if (md.shamirThreshold > 0) m.set('shamir_threshold', BigInt(md.shamirThreshold));
  for (const [k, name] of Object.entries(RULE_NAMES) as [SelectionRule, string][]) {
    const v = md.rules[k];
    if (v) m.set(name, v);
  }
  m.set('version', md.version);
  return sorted(m);
}

const MAP_SEP = '__map_';
const LIST_SEP = '__list_';

/** dotenv/INI: nested metadata as flat keys (`age__list_0__map_enc`), values as strings. */
export function flattenMetadata(m: TreeMap, prefix: string): [string, string][] {
  const out: [string, string][] = [];
  const descend = (v: Value, key: string): void => {
    if (v instanceof TreeMap) {
      for (const item of v.items) if (typeof item.key === 'string') descend(item.value, `${key}${key === prefix ? '' : MAP_SEP}${item.key}`);
    } else if (Array.isArray(v)) {
      v.forEach((e, i) => descend(e, `${key}${LIST_SEP}${i}`));
    } else {
      out.push([key, typeof v === 'boolean' ? String(v) : asString(v)]);
    }
  };
  descend(m, prefix);
  return out;
}

type Node = { value?: string; keys?: Map<string, Node>; indices?: Map<number, Node> };

/** The inverse of flattenMetadata, with sops' checks: no value that also has children, no gaps in lists. */
export function unflattenMetadata(entries: [string, string][]): TreeMap {
  const root: Node = {};
  for (const [flat, value] of entries) {
    let node = root;
    for (const token of flat.split(/(?=__map_|__list_)/)) {
      if (token.startsWith(LIST_SEP)) {
        const i = Number(token.slice(LIST_SEP.length));
        node.indices ??= new Map();
        node = node.indices.get(i) ?? node.indices.set(i, {}).get(i)!;
      } else {
        const k = token.startsWith(MAP_SEP) ? token.slice(MAP_SEP.length) : token;
        node.keys ??= new Map();
        node = node.keys.get(k) ?? node.keys.set(k, {}).get(k)!;
      }
    }
    if (node.value !== undefined) throw new MetadataError(`duplicate metadata key ${flat}`);
    node.value = value;
  }
  const convert = (n: Node): Value => {
    const kinds = [n.value !== undefined, (n.keys?.size ?? 0) > 0, (n.indices?.size ?? 0) > 0].filter(Boolean).length;
    if (kinds > 1) throw new MetadataError('metadata key is both a value and a map or list');
    if (n.value !== undefined) return n.value;
    if (n.indices && n.indices.size > 0) {
      const list: Value[] = [];
      for (let i = 0; i < n.indices.size; i++) {
        const e = n.indices.get(i);
        if (!e) throw new MetadataError('metadata list has a gap');
        list.push(convert(e));
      }
      return list;
    }
    return new TreeMap([...(n.keys ?? new Map<string, Node>())].map(([key, child]) => ({ key, value: convert(child) })));
  };
  const out = convert(root);
  return out instanceof TreeMap ? out : new TreeMap();
}
