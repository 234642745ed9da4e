import { stat } from 'node:fs/promises';
import { readText } from '../adapters/files.ts';
import { parseYamlFile } from '../core/bounded-yaml.ts';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { isMap, isScalar, isSeq, visit, type Node, type YAMLMap } from 'yaml';
import { configError, FluxstrapError, type Location } from '../core/errors.ts';
import { kmsStanza, parseArnSpec } from './aws-kms.ts';
import { newStanza } from './datakey.ts';
import { normalizeFingerprint } from './pgp.ts';
import { stanzaName, type KeyType, type Stanza } from './metadata.ts';
import { describePrivateKey } from '../core/redact.ts';
import { isPublicKey, type PublicKeyType } from '../keys/recipients.ts';
import { re2 } from '../core/re2.ts';
import { parseVaultUri, VaultUriError, vaultStanza } from './hc-vault-uri.ts';
import { checkRulePatterns, RULE_NAMES, selectionRulesSet, type Rules, type SelectionRule } from './rules.ts';
import { TreeMap } from './tree.ts';

/**
 * `.sops.yaml`: found like sops finds it (from the working directory up, `.sops.yaml` only; or
 * `--config` / `SOPS_CONFIG`), creation rules tried in order with the first match winning, the
 * path seen relative to the config's folder, `path_regex` unanchored RE2.
 */

export interface CreationRule {
  pathRegex?: string;
  keyGroups: Stanza[][];
  shamirThreshold: number;
  rules: Rules;
  /** Where the rule is written, for messages. */
  line: number;
  /**
   * A mistyped age recipient of this rule. Only encrypting with the rule is refused: a typo in
   * one cluster's rule must not keep anyone from decrypting, or from encrypting for another.
   */
  invalidRecipient?: { type: PublicKeyType; id: string; line: number };
  /** A malformed `hc_vault_transit_uri`, refused like invalidRecipient: only when encrypting with the rule. */
  invalidVaultUri?: { uri: string; reason: string; location: Location };
}

export interface SopsConfig {
  file: string;
  creationRules: CreationRule[];
  indent: { yaml?: number; json?: number; jsonBinary?: number };
}

export async function findConfig(cwd: string, env: NodeJS.ProcessEnv, explicit?: string): Promise<string | undefined> {
  const named = explicit ?? (env.SOPS_CONFIG || undefined);
  if (named) return resolve(cwd, named);
  let dir = resolve(cwd);
  for (let i = 0; i < 100; i++) {
    const candidate = join(dir, '.sops.yaml');
    // Found by name only: reading it (a FIFO would block) is loadConfig's, with its checks.
    if (
      await stat(candidate).then(
        () => true,
        () => false,
      )
    )
      return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

type Where = (node: unknown) => Location;

/** A scalar's text; YAML gives numbers and bools for unquoted `123` or `true`. */
function nodeText(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  const v = node.value;
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

function strings(v: unknown, field: string, where: Where): string[] {
  if (v === undefined || v === null) return [];
  if (isScalar(v)) {
    return (nodeText(v) ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }
  if (isSeq(v)) return v.items.flatMap((i) => strings(i, field, where));
  throw configError(`${field} must be a string or a list of strings`, where(v));
}

/** sops' config names per key type, in the order a flat rule builds its one group. */
const FLAT_KEYS: [string, KeyType, string][] = [
  ['age', 'age', 'recipient'],
  ['pgp', 'pgp', 'fp'],
  ['kms', 'kms', 'arn'],
  ['gcp_kms', 'gcp_kms', 'resource_id'],
  ['hckms', 'hckms', 'key_id'],
  ['azure_keyvault', 'azure_kv', 'vault_url'],
  ['hc_vault_transit_uri', 'hc_vault', 'vault_address'],
];

type InvalidVaultUris = NonNullable<CreationRule['invalidVaultUri']>[];

function stanza(type: KeyType, idField: string, id: string, origin: Location, invalid: InvalidVaultUris): Stanza {
  if (type === 'age' || type === 'pgp') return newStanza(type, id);
  if (type === 'hc_vault') {
    try {
      return { ...vaultStanza(parseVaultUri(id)), origin };
    } catch (e) {
      if (!(e instanceof VaultUriError)) throw e;
      invalid.push({ uri: id, reason: e.message, location: origin });
    }
  }
  // sops splits a key URL (https://VAULT/keys/NAME/VERSION) into the fields its entries have.
  const azure = type === 'azure_kv' ? /^(https:\/\/[^/]+)\/keys\/([^/]+)\/([^/]+)$/.exec(id) : null;
  if (azure)
    return {
      type,
      fields: new TreeMap([
        { key: 'vault_url', value: azure[1] ?? '' },
        { key: 'name', value: azure[2] ?? '' },
        { key: 'version', value: azure[3] ?? '' },
      ]),
    };
  // Kept so that messages can name them; fluxstrap cannot encrypt for these services.
  return { type, fields: new TreeMap([{ key: idField, value: id }]) };
}

function groupFrom(m: YAMLMap, where: Where, flat: boolean, invalid: InvalidVaultUris): Stanza[] {
  const out: Stanza[] = [];
  for (const [name, type, idField] of FLAT_KEYS) {
    const node = m.get(flat ? name : name === 'hc_vault_transit_uri' ? 'hc_vault' : name, true);
    if (node === undefined) continue;
    if (type === 'kms') {
      out.push(...kmsStanzasFrom(node, flat ? (nodeText(m.get('aws_profile', true)) ?? '') : undefined, where));
      continue;
    }
    if (!flat && isSeq(node)) {
      for (const item of node.items) {
        // In key groups, cloud keys are maps ({arn: …}, {resource_id: …}); their first field names them.
        const first = isMap(item) ? item.items[0]?.value : undefined;
        const ids = isMap(item) ? [nodeText(first) ?? ''] : strings(item, name, where);
        out.push(...ids.map((id) => stanza(type, idField, id, where(item), invalid)));
      }
      continue;
    }
    out.push(...strings(node, name, where).map((s) => stanza(type, idField, s, where(node), invalid)));
  }
  const merge = m.get('merge', true);
  if (isSeq(merge)) for (const g of merge.items) if (isMap(g)) out.push(...groupFrom(g, where, false, invalid));
  const seen = new Set<string>();
  return out.filter((s) => {
    const id = `${s.type}:${stanzaName(s)}`;
    return !seen.has(id) && seen.add(id);
  });
}

/**
 * sops' `kms`: in a flat rule ARNs (`arn[+roleArn]`, comma-separated or a list) with the rule's
 * `aws_profile`; in a key group maps of `arn`, `role`, `context` and `aws_profile`.
 */
function kmsStanzasFrom(node: unknown, flatProfile: string | undefined, where: Where): Stanza[] {
  if (flatProfile !== undefined || !isSeq(node)) {
    return strings(node, 'kms', where).map((spec) => ({
      ...kmsStanza({ ...parseArnSpec(spec), context: {}, profile: flatProfile ?? '' }),
      origin: where(node),
    }));
  }
  return node.items.map((item) => {
    if (!isMap(item)) return { ...kmsStanza({ ...parseArnSpec(nodeText(item) ?? ''), context: {}, profile: '' }), origin: where(item) };
    const text = (field: string): string => nodeText(item.get(field, true)) ?? '';
    const ctxNode = item.get('context', true);
    const context: Record<string, string> = {};
    if (isMap(ctxNode)) for (const pair of ctxNode.items) context[nodeText(pair.key) ?? ''] = nodeText(pair.value) ?? '';
    else if (ctxNode !== undefined && ctxNode !== null && !(isScalar(ctxNode) && ctxNode.value === null))
      throw configError('kms context must be a map of strings', where(ctxNode));
    return { ...kmsStanza({ arn: text('arn'), role: text('role'), context, profile: text('aws_profile') }), origin: where(item) };
  });
}

/** The line, from `from` on, that holds `needle` (the rule's own line if none does, as for an alias). */
function lineOf(text: string, needle: string, from: number): number {
  const at = text.split('\n').findIndex((l, i) => i >= from - 1 && l.includes(needle));
  return at < 0 ? from : at + 1;
}

function intOf(node: unknown, field: string, where: Where): number {
  if (node === undefined || node === null) return 0;
  const v = isScalar(node) ? node.value : undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 0) throw configError(`${field} must be a non-negative integer`, where(node));
  return n;
}

export async function loadConfig(file: string): Promise<SopsConfig> {
  return parseConfig(await readText(file, 'read .sops.yaml'), file);
}

export function parseConfig(text: string, file: string): SopsConfig {
  const { docs, lineOf: nodeLine, aliasTarget } = parseYamlFile(text, file, { merge: true });
  const doc = docs[0];
  if (docs.length > 1) throw configError('.sops.yaml must hold one YAML document', { file, line: nodeLine(docs[1]?.contents) ?? 1 });
  const where: Where = (node) => {
    const line = nodeLine(node);
    return line === undefined ? { file } : { file, line };
  };
  if (!doc) return { file, creationRules: [], indent: {} };
  // Configs share recipients through anchors (`age: *age`): read every alias as its target
  // (parseYamlFile bounded what the copies add up to).
  visit(doc, {
    Alias: (_, alias) => {
      const target = aliasTarget(alias);
      return target ? (target.clone() as Node) : undefined;
    },
  });
  const root = doc.contents;
  const config: SopsConfig = { file, creationRules: [], indent: {} };
  if (root === null || root === undefined) return config;
  if (!isMap(root)) throw configError('.sops.yaml must be a map', where(root));
  const stores = root.get('stores', true);
  if (isMap(stores)) {
    const indent = (name: string): number | undefined => {
      const s = stores.get(name, true);
      const v = isMap(s) ? s.get('indent', true) : undefined;
      return isScalar(v) && typeof v.value === 'number' ? v.value : undefined;
    };
    const [yaml, json, jsonBinary] = [indent('yaml'), indent('json'), indent('json_binary')];
    if (yaml !== undefined) config.indent.yaml = yaml;
    if (json !== undefined) config.indent.json = json;
    if (jsonBinary !== undefined) config.indent.jsonBinary = jsonBinary;
  }
  const rules = root.get('creation_rules', true);
  if (rules === undefined || rules === null) return config;
  if (!isSeq(rules)) throw configError('creation_rules must be a list', where(rules));
  for (const item of rules.items) {
    if (!isMap(item)) throw configError('a creation rule must be a map', where(item));
    const r: YAMLMap = item;
    const selection: Rules = {};
    for (const [k, name] of Object.entries(RULE_NAMES) as [SelectionRule, string][]) {
      const v = r.get(name, true);
      const t = nodeText(v);
      if (t !== undefined && t !== '') selection[k] = t;
    }
    checkRulePatterns(selection, (k) => where(r.get(RULE_NAMES[k], true)));
    if (selectionRulesSet(selection).length > 1) {
      throw configError(
        'a creation rule can set only one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, unencrypted_comment_regex',
        where(r),
      );
    }
    const mac = r.get('mac_only_encrypted', true);
    if (isScalar(mac) && (mac.value === true || mac.value === 'true')) selection.macOnlyEncrypted = true;
    const pathNode = r.get('path_regex', true);
    const pathRegex = nodeText(pathNode);
    if (pathRegex !== undefined) re2(pathRegex, 'path_regex', where(pathNode));
    const groupsNode = r.get('key_groups', true);
    let keyGroups: Stanza[][];
    const invalidVaultUris: InvalidVaultUris = [];
    if (isSeq(groupsNode)) {
      keyGroups = groupsNode.items.map((g) => {
        if (!isMap(g)) throw configError('a key group must be a map', where(g));
        return groupFrom(g, where, false, invalidVaultUris);
      });
    } else {
      keyGroups = [groupFrom(r, where, true, invalidVaultUris)];
    }
    const bad = keyGroups.flat().filter((k) => (k.type === 'age' || k.type === 'pgp') && !isPublicKey(k.type, stanzaName(k)));
    // A pasted private key first: it must be named as such even behind a placeholder.
    const invalid = bad.find((k) => describePrivateKey(stanzaName(k)) !== undefined) ?? bad[0];
    config.creationRules.push({
      ...(pathRegex !== undefined ? { pathRegex } : {}),
      ...(invalidVaultUris[0] ? { invalidVaultUri: invalidVaultUris[0] } : {}),
      ...(invalid
        ? { invalidRecipient: { type: invalid.type as PublicKeyType, id: stanzaName(invalid), line: lineOf(text, stanzaName(invalid), where(r).line ?? 1) } }
        : {}),
      keyGroups,
      shamirThreshold: intOf(r.get('shamir_threshold', true), 'shamir_threshold', where),
      rules: selection,
      line: where(r).line ?? 0,
    });
  }
  return config;
}

/** The path a rule sees: relative to the config's folder when the file is under it, else absolute. */
export function rulePath(config: SopsConfig, filePath: string, cwd: string): string {
  const abs = isAbsolute(filePath) ? filePath : resolve(cwd, filePath);
  const rel = relative(dirname(config.file), abs);
  const inside = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  return (inside ? rel : abs).split(sep).join('/');
}

/** Whether a rule's `path_regex` (unanchored RE2, checked when the config was read) matches `p`; without one, every path does. */
export function ruleMatches(rule: CreationRule, p: string): boolean {
  return rule.pathRegex === undefined || re2(rule.pathRegex, 'path_regex', { field: 'path_regex' }).test(p);
}

export function matchRule(config: SopsConfig, filePath: string, cwd: string): CreationRule | undefined {
  const p = rulePath(config, filePath, cwd);
  return config.creationRules.find((r) => ruleMatches(r, p));
}

/**
 * The age recipients (or PGP fingerprints) of the creation rule sops would use for a new file in a cluster folder, so
 * that checks compare a key with the rule that really applies there, not with any rule.
 */
export async function clusterRuleRecipients(
  sopsConfigFile: string,
  clusterDir: string,
  cluster: { name: string; path: string },
  type: 'age' | 'pgp' = 'age',
): Promise<string[]> {
  const config = await loadConfig(sopsConfigFile);
  const rule = matchRule(config, join(clusterDir, 'secret.sops.yaml'), dirname(sopsConfigFile));
  if (!rule) {
    throw new FluxstrapError('E_CONFIG', `no creation rule in .sops.yaml matches files under ${cluster.path}`, {
      location: { file: sopsConfigFile },
      hint: `run \`fluxstrap init --cluster ${cluster.name}\` to add one`,
    });
  }
  return rule.keyGroups
    .flat()
    .filter((s) => s.type === type)
    .map((s) => (type === 'pgp' ? normalizeFingerprint(stanzaName(s)) : stanzaName(s)));
}
