import { describePrivateKey } from '../core/redact.ts';
import { publicKeyError } from '../keys/recipients.ts';
import { isAlias, isMap, isNode, isSeq } from 'yaml';
import type { YAMLMap } from 'yaml';
import { z } from 'zod';
import { configError } from '../core/errors.ts';
import { parseConfig, ruleMatches } from '../sops/config.ts';
import type { CreationRule } from '../sops/config.ts';
import { stanzaName } from '../sops/metadata.ts';
import { fileKind } from './file-content.ts';
import { pathRegexFor } from './sops-config.ts';
import type { EditableYaml } from './yaml-edit.ts';
import { locate, parseEditable, rootMap, str } from './yaml-edit.ts';

/**
 * The age recipients of one cluster's creation rule in `.sops.yaml`. Key rotation adds the new
 * recipient next to the old one first and removes the old one only later; in a rule with key
 * groups (Shamir), "next to" means in the same group, so that each group keeps standing for the
 * same people. The rule's other fields, its place and the file's comments are left as written.
 */

/**
 * One step of a rotation, for the rule and for the files alike: `recipient` joins every key group
 * that holds `besides`; a removed recipient leaves every group. Groups holding neither are not touched.
 */
export const recipientChange = z.object({
  add: z.array(z.object({ recipient: z.string(), besides: z.string() })).default([]),
  remove: z.array(z.string()).default([]),
});
export type RecipientChange = z.infer<typeof recipientChange>;

/** One group's age recipients after the change: those kept in their order, then those that join. */
export function changedAges(ages: readonly string[], c: RecipientChange): string[] {
  const joining = c.add.filter((a) => ages.includes(a.besides)).map((a) => a.recipient);
  return [...new Set([...ages, ...joining])].filter((r) => !c.remove.includes(r));
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((r, i) => r === b[i]);

export const sopsRecipientsParams = recipientChange.extend({
  file: z.string().default('.sops.yaml'),
  /** The cluster folder whose rule (the one `fluxstrap init` writes) is edited, e.g. `clusters/prod`. */
  clusterPath: z.string(),
  /**
   * The SOPS files the cluster reaches (src/flux/reach.ts), repository-relative: when there are
   * any, the rules that govern them are edited instead of the cluster folder's.
   */
  reached: z.array(z.string()).default([]),
});
export type SopsRecipientsParams = z.infer<typeof sopsRecipientsParams>;

/**
 * The indexes of the cluster's rules: those governing the files it reaches, else its folder's.
 * A rule holding a pasted private key is refused here, before the key can be compared, copied to
 * another group or echoed in a plan; other invalid entries are left to the commands that encrypt
 * with them.
 */
function clusterRules(text: string, file: string, clusterPath: string, reached: readonly string[]): number[] {
  const rules = parseConfig(text, file).creationRules;
  let mine: number[] = [];
  if (reached.length > 0) {
    const governing = reached.map((f) => rules.findIndex((r) => ruleMatches(r, f))).filter((i) => i >= 0);
    mine = [...new Set(governing)].sort((a, b) => a - b);
  }
  if (mine.length === 0) {
    const own = rules.findIndex((r) => r.pathRegex === pathRegexFor(clusterPath));
    mine = own < 0 ? [] : [own];
  }
  for (const i of mine) {
    const bad = rules[i]?.invalidRecipient;
    if (bad && describePrivateKey(bad.id) !== undefined) throw publicKeyError(bad.type, bad.id, { file, line: bad.line }, 'E_CONFIG');
  }
  return mine;
}

const agesOf = (group: CreationRule['keyGroups'][number]) => group.flatMap((s) => (s.type === 'age' ? [stanzaName(s)] : []));

/** The age recipients of the cluster's rules, every key group's, in order; undefined when the file has no such rule. */
export function ruleRecipients(text: string, file: string, clusterPath: string, reached: readonly string[] = []): string[] | undefined {
  const rules = parseConfig(text, file).creationRules;
  const mine = clusterRules(text, file, clusterPath, reached);
  return mine.length === 0 ? undefined : [...new Set(mine.flatMap((i) => rules[i]?.keyGroups.flatMap(agesOf) ?? []))];
}

/** Where a rule is, for messages: the cluster's own, or the one at its line. */
const ruleName = (rule: CreationRule, clusterPath: string) =>
  rule.pathRegex === pathRegexFor(clusterPath) ? `the rule for ${clusterPath}` : `the rule at line ${rule.line}`;

export const sopsRecipientsKind = fileKind<SopsRecipientsParams>({
  kind: 'sops-recipients',
  params: sopsRecipientsParams,
  file: (p) => p.file,
  desired(p, { content }) {
    const hint = `run fluxstrap init for ${p.clusterPath} first`;
    if (content === undefined) throw configError('no .sops.yaml', { file: p.file }, hint);
    const all = parseConfig(content, p.file).creationRules;
    const mine = clusterRules(content, p.file, p.clusterPath, p.reached);
    if (mine.length === 0) throw configError(`no creation rule for ${p.clusterPath}`, { file: p.file }, hint);
    const y = parseEditable(content, p.file);
    const rulesNode = rootMap(y, p.file, '.sops.yaml')?.get('creation_rules', true);
    const added = new Set<string>();
    const removed = new Set<string>();
    const names: string[] = [];
    for (const index of mine) {
      const rule = all[index] as CreationRule;
      const current = rule.keyGroups.map(agesOf);
      const wanted = current.map((ages) => changedAges(ages, p));
      if (wanted.every((ages, i) => sameList(ages, current[i] ?? []))) continue;
      // parseConfig read a rule per item, in order, and refused items that are not maps.
      const ruleMap = (isSeq(rulesNode) ? rulesNode.items[index] : undefined) as YAMLMap;
      const groupsNode = ruleMap.get('key_groups', true);
      const groupsSeq = isAlias(groupsNode) ? groupsNode.resolve(y.doc) : groupsNode;
      const groups = isSeq(groupsSeq) ? groupsSeq.items : [ruleMap];
      names.push(ruleName(rule, p.clusterPath));
      for (const [i, ages] of current.entries()) {
        const after = wanted[i] ?? [];
        if (sameList(ages, after)) continue;
        const node = groups[i];
        const what = isSeq(groupsSeq) ? `key group ${i + 1} of ${ruleName(rule, p.clusterPath)}` : ruleName(rule, p.clusterPath);
        const others = rule.keyGroups[i]?.filter((s) => s.type !== 'age').length ?? 0;
        if (after.length === 0 && others === 0) throw configError(`removing ${p.remove.join(', ')} would leave ${what} without a key`, locate(y, p.file, node));
        editAges(y, p.file, isAlias(node) ? node.resolve(y.doc) : node, p, { what, shared: shared(groupsNode) || shared(node) });
        for (const r of after) if (!ages.includes(r)) added.add(r);
        for (const r of ages) if (!after.includes(r)) removed.add(r);
      }
    }
    if (names.length === 0) return undefined;
    const summary = [added.size > 0 ? `add recipient ${[...added].join(', ')}` : '', removed.size > 0 ? `remove recipient ${[...removed].join(', ')}` : '']
      .filter((s) => s !== '')
      .join(' and ');
    const where =
      names.length === 1 && names[0] === `the rule for ${p.clusterPath}`
        ? `the creation rule for ${p.clusterPath}`
        : `the creation rule(s) governing what ${p.clusterPath} reaches (${names.join(', ')})`;
    return { content: y.toString(), summary: `${summary} in ${where}` };
  },
});

/** An anchored node is used wherever its alias is: editing or removing it would change those places too. */
const anchored = (node: unknown): boolean => isNode(node) && !isAlias(node) && typeof node.anchor === 'string';
const shared = (node: unknown): boolean => isAlias(node) || anchored(node);

const recipientsIn = (node: unknown): string[] =>
  (str(node) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

/**
 * Change the `age:` of a rule or key group in place, and of the groups it merges, written the way
 * they were: a list stays a list (the comments of the entries that stay, stay), a string a comma list.
 */
function editAges(y: EditableYaml, file: string, group: unknown, c: RecipientChange, at: { what: string; shared: boolean }): void {
  if (!isMap(group)) return;
  const node = group.get('age', true);
  const target = isAlias(node) ? node.resolve(y.doc) : node;
  const entries = isSeq(target) ? target.items : target === undefined ? [] : [target];
  const resolved = (e: unknown) => recipientsIn(isAlias(e) ? e.resolve(y.doc) : e);
  const ages = entries.flatMap(resolved);
  const wanted = changedAges(ages, c);
  if (!sameList(ages, wanted)) {
    const kept = (e: unknown) => resolved(e).every((r) => wanted.includes(r));
    if (at.shared || anchored(node) || (isSeq(node) && node.items.some((e) => !kept(e) && anchored(e)))) {
      throw configError(
        `cannot edit the age recipients of ${at.what}: they are shared through a YAML anchor`,
        locate(y, file, node ?? group),
        'change them by hand, so that no other rule changes with them',
      );
    }
    if (wanted.length === 0) group.delete('age');
    else if (isSeq(node)) {
      node.items = node.items.filter(kept);
      const left = node.items.flatMap(resolved);
      for (const r of wanted) if (!left.includes(r)) node.items.push(y.doc.createNode(r));
    } else group.set('age', isSeq(target) ? y.doc.createNode(wanted) : wanted.join(','));
  }
  const merge = group.get('merge', true);
  if (isSeq(merge)) for (const m of merge.items) editAges(y, file, isAlias(m) ? m.resolve(y.doc) : m, c, { ...at, shared: at.shared || shared(m) });
}
