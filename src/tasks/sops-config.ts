import { z } from 'zod';
import { isMap, isScalar, isSeq } from 'yaml';
import type { YAMLMap } from 'yaml';
import { re2Error } from '../core/re2.ts';
import { parseConfig, ruleMatches } from '../sops/config.ts';
import type { CreationRule } from '../sops/config.ts';
import { stanzaName } from '../sops/metadata.ts';
import { fileKind } from './file-content.ts';
import { insertAt, parseEditable, rootMap, seqAt, str } from './yaml-edit.ts';
import type { EditableYaml } from './yaml-edit.ts';

/**
 * `.sops.yaml` at the repository root must let the cluster's key open what the cluster reaches.
 * When the cluster already reaches SOPS files (through its Kustomizations, usually outside the
 * cluster folder), the rules that govern those files get the cluster's recipients: a rule for
 * the cluster folder would govern nothing. Otherwise the cluster folder gets a creation rule of
 * its own; sops uses the first rule whose path_regex matches, so it goes before any rule that
 * would catch the cluster's files (a catch-all, or the seed's `.*\.sops\.yaml$`). Everything
 * else in the file stays where and as it was.
 */

export const sopsConfigParams = z.object({
  file: z.string().default('.sops.yaml'),
  /** The cluster folder, relative to the repository, e.g. `clusters/prod`. */
  clusterPath: z.string(),
  age: z.array(z.string()).default([]),
  pgp: z.array(z.string()).default([]),
  /**
   * Key services as sops' rule fields spell them: `kms` ARNs, `gcp_kms` resource ids,
   * `azure_keyvault` key URLs, `hc_vault_transit_uri` Vault transit key URIs.
   */
  kms: z.array(z.string()).default([]),
  gcpKms: z.array(z.string()).default([]),
  azureKeyvault: z.array(z.string()).default([]),
  hcVaultTransitUri: z.array(z.string()).default([]),
  encryptedRegex: z
    .string()
    .superRefine((s, ctx) => {
      // Refused here, before it is written into .sops.yaml where every later encrypt would refuse it.
      const why = re2Error(s);
      if (why !== undefined) ctx.addIssue({ code: 'custom', message: `not a valid RE2 regular expression: ${why}` });
    })
    .default('^(data|stringData)$'),
  /**
   * `mac_only_encrypted: true` in a new rule (as cluster-template writes it): the MAC covers only
   * the encrypted values, so editing a plaintext field (a label) never breaks it. An existing
   * rule keeps its own choice.
   */
  macOnlyEncrypted: z.boolean().default(true),
  /** The SOPS files the cluster reaches, repository-relative (src/flux/reach.ts). */
  reached: z.array(z.string()).default([]),
  /**
   * Bootstrap Secrets kept encrypted outside the cluster folder (git.auth.sopsFile,
   * `bootstrap/<cluster>/…`), repository-relative: when no rule matches one, a rule for the
   * `*.sops.yaml` files of its folder gets the cluster's keys, so that sops and `fluxstrap
   * encrypt` can write it and its siblings again.
   */
  bootstrapFiles: z.array(z.string()).default([]),
});
export type SopsConfigParams = z.infer<typeof sopsConfigParams>;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function pathRegexFor(clusterPath: string): string {
  return `^${escape(clusterPath)}/.*\\.ya?ml$`;
}

/** Files the rule is for; whichever existing rule matches one of them first would win over ours. */
function samplesFor(clusterPath: string): string[] {
  return [`${clusterPath}/secret.yaml`, `${clusterPath}/apps/secret.sops.yaml`, `${clusterPath}/secret.yml`];
}

export const sopsConfigKind = fileKind<SopsConfigParams>({
  kind: 'sops-config',
  params: sopsConfigParams,
  file: (p) => p.file,
  desired(p, { content }) {
    const cluster = clusterRules(p, content ?? '');
    const bootstrap = bootstrapRules(p, cluster?.content ?? content ?? '');
    if (!cluster || !bootstrap) return cluster ?? bootstrap;
    return { content: bootstrap.content, summary: `${cluster.summary}; ${bootstrap.summary}` };
  },
});

/** A rule for the `*.sops.yaml` files of each bootstrap file's folder that no rule matches, with the cluster's keys, appended (nothing else matches them). */
function bootstrapRules(p: SopsConfigParams, text: string): { content: string; summary: string } | undefined {
  const files = p.bootstrapFiles ?? [];
  if (files.length === 0) return undefined;
  const rules = text.trim() === '' ? [] : parseConfig(text, p.file).creationRules;
  const folders = [...new Set(files.filter((f) => !rules.some((r) => ruleMatches(r, f))).map((f) => f.slice(0, f.lastIndexOf('/') + 1)))];
  if (folders.length === 0) return undefined;
  const y = parseEditable(text, p.file);
  const root = rootMap(y, p.file, '.sops.yaml') ?? (y.doc.contents = y.doc.createNode({}) as YAMLMap);
  const seq = seqAt(y, p.file, root, 'creation_rules');
  for (const folder of folders) seq.items.push(y.doc.createNode(newRule(p, `^${escape(folder)}[^/]*\\.sops\\.ya?ml$`)));
  return { content: y.toString(), summary: `add a creation rule for the encrypted bootstrap Secrets in ${folders.map((f) => f || './').join(', ')}` };
}

/** A new rule with the cluster's keys, in the form init writes it. */
function newRule(p: SopsConfigParams, pathRegex: string): Record<string, string | boolean> {
  const rule: Record<string, string | boolean> = {
    path_regex: pathRegex,
    encrypted_regex: p.encryptedRegex,
    ...(p.macOnlyEncrypted ? { mac_only_encrypted: true } : {}),
  };
  if (p.age.length > 0) rule.age = p.age.join(',');
  const pgp = p.pgp.map((f) => f.replace(/\s+/g, '').toUpperCase());
  if (pgp.length > 0) rule.pgp = pgp.join(',');
  for (const [field, , ids] of cloudKeys(p)) if (ids.length > 0) rule[field] = ids.join(',');
  return rule;
}

/** Key services (cloud KMS, Vault transit): the rule field, sops' key type, the ids. Callers that build params by hand (init) may leave out the lists zod would default. */
function cloudKeys(p: SopsConfigParams) {
  return [
    ['kms', 'kms', p.kms ?? []],
    ['gcp_kms', 'gcp_kms', p.gcpKms ?? []],
    ['azure_keyvault', 'azure_kv', p.azureKeyvault ?? []],
    ['hc_vault_transit_uri', 'hc_vault', p.hcVaultTransitUri ?? []],
  ] as const;
}

/** The rule for the cluster folder, or the keys added to the rules of the files it reaches. */
function clusterRules(p: SopsConfigParams, text: string): { content: string; summary: string } | undefined {
  const y = parseEditable(text, p.file);
  // parseConfig is the SOPS engine's own reader: what it rejects, encrypt would reject too.
  const rules = text.trim() === '' ? [] : parseConfig(text, p.file).creationRules;
  const pgp = p.pgp.map((f) => f.replace(/\s+/g, '').toUpperCase());
  const cloud = cloudKeys(p);
  const wanted = [...p.age.map((r) => `age:${r}`), ...pgp.map((f) => `pgp:${f}`), ...cloud.flatMap(([, type, ids]) => ids.map((id) => `${type}:${id}`))];
  const keysOf = (rule: CreationRule) => new Set(rule.keyGroups.flat().map((s) => `${s.type}:${stanzaName(s)}`));
  if (p.reached.length > 0)
    return coverReached(
      p,
      y,
      rules,
      wanted.filter((k) => k.startsWith('age:')).map((k) => k.slice(4)),
      pgp,
      keysOf,
    );
  const samples = samplesFor(p.clusterPath);
  const firstMatches = samples.map((s) => rules.findIndex((r) => ruleMatches(r, s)));
  const first = firstMatches[0] ?? -1;
  const winner = rules[first];
  if (winner && firstMatches.every((i) => i === first) && wanted.every((k) => keysOf(winner).has(k))) return undefined;

  const root = rootMap(y, p.file, '.sops.yaml') ?? (y.doc.contents = y.doc.createNode({}) as YAMLMap);
  const seq = seqAt(y, p.file, root, 'creation_rules');
  const pathRegex = pathRegexFor(p.clusterPath);
  const own = rules.findIndex((r) => r.pathRegex === pathRegex);
  const shadowing = firstMatches.filter((i) => i >= 0 && i !== own);
  const at = shadowing.length > 0 ? Math.min(...shadowing) : own >= 0 ? own : seq.items.length;
  let summary: string;
  if (own >= 0) {
    // Our rule is there but outdated or shadowed: update its keys, move it ahead if needed.
    const [node] = seq.items.splice(own, 1);
    const rule = node as YAMLMap;
    if (p.age.length > 0) rule.set('age', p.age.join(','));
    if (pgp.length > 0) rule.set('pgp', pgp.join(','));
    for (const [field, , ids] of cloud) if (ids.length > 0) rule.set(field, ids.join(','));
    insertAt(seq, Math.min(at, own), rule);
    summary = `update the creation rule for ${p.clusterPath}${at < own ? ' and move it before the rules that would catch its files' : ''}`;
  } else {
    insertAt(seq, at, y.doc.createNode(newRule(p, pathRegex)));
    summary = `add a creation rule for ${p.clusterPath}${at < seq.items.length - 1 ? ` before rule ${at + 1} (first match wins)` : ''}`;
  }
  return { content: y.toString(), summary };
}

/**
 * The rules that govern the reached files get the keys they lack; files no rule governs get one
 * rule naming exactly them. A rule shared with other files (a catch-all) is still the right one
 * to change: sops uses it for these files, and the summary says what else it governs.
 */
function coverReached(p: SopsConfigParams, y: EditableYaml, rules: CreationRule[], age: string[], pgp: string[], keysOf: (r: CreationRule) => Set<string>) {
  const wanted = [...age.map((r) => `age:${r}`), ...pgp.map((f) => `pgp:${f}`)];
  const byRule = new Map<number, string[]>();
  const uncovered: string[] = [];
  for (const f of p.reached) {
    const i = rules.findIndex((r) => ruleMatches(r, f));
    if (i < 0) uncovered.push(f);
    else byRule.set(i, [...(byRule.get(i) ?? []), f]);
  }
  const lacking = [...byRule].filter(([i]) => !wanted.every((k) => keysOf(rules[i] as CreationRule).has(k)));
  if (lacking.length === 0 && uncovered.length === 0) return undefined;
  const root = rootMap(y, p.file, '.sops.yaml') ?? (y.doc.contents = y.doc.createNode({}) as YAMLMap);
  const seq = seqAt(y, p.file, root, 'creation_rules');
  const summaries: string[] = [];
  for (const [i, files] of lacking) {
    const rule = rules[i] as CreationRule;
    const node = seq.items[i] as YAMLMap;
    const have = keysOf(rule);
    addKeys(
      y,
      node,
      'age',
      age.filter((r) => !have.has(`age:${r}`)),
    );
    addKeys(
      y,
      node,
      'pgp',
      pgp.filter((f) => !have.has(`pgp:${f}`)),
    );
    const all = rule.pathRegex === undefined ? 'every file' : `path_regex ${rule.pathRegex}`;
    summaries.push(
      `add the cluster's key to the creation rule at ${p.file}:${rule.line} (${all}), which governs the ${files.length} SOPS file(s) the cluster reaches (${files.join(', ')}) and any other file it matches`,
    );
  }
  if (uncovered.length > 0) {
    const rule: Record<string, string | boolean> = {
      path_regex: `^(${uncovered.map(escape).join('|')})$`,
      encrypted_regex: p.encryptedRegex,
      ...(p.macOnlyEncrypted ? { mac_only_encrypted: true } : {}),
    };
    if (age.length > 0) rule.age = age.join(',');
    if (pgp.length > 0) rule.pgp = pgp.join(',');
    seq.items.push(y.doc.createNode(rule));
    summaries.push(`add a creation rule for the ${uncovered.length} SOPS file(s) the cluster reaches that no rule governs (${uncovered.join(', ')})`);
  }
  return { content: y.toString(), summary: summaries.join('; ') };
}

/**
 * Keys join a rule where its keys are: `age: a,b` (a string) or a list, flat or in the first key
 * group; the written form (comma string or list) is kept.
 */
function addKeys(y: EditableYaml, rule: YAMLMap, field: 'age' | 'pgp', ids: string[]): void {
  if (ids.length === 0) return;
  const groups = rule.get('key_groups', true);
  const holder = isSeq(groups) && isMap(groups.items[0]) ? groups.items[0] : rule;
  const node = holder.get(field, true);
  if (isSeq(node)) {
    for (const id of ids) node.items.push(y.doc.createNode(id));
  } else if (isScalar(node) && str(node) !== undefined && str(node) !== '') {
    node.value = [str(node), ...ids].join(',');
  } else {
    holder.set(field, holder === rule ? ids.join(',') : y.doc.createNode(ids));
  }
}
