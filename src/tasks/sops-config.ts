import { z } from 'zod';
import type { YAMLMap } from 'yaml';
import { re2Error } from '../core/re2.ts';
import { parseConfig, ruleMatches } from '../sops/config.ts';
import type { CreationRule } from '../sops/config.ts';
import { stanzaName } from '../sops/metadata.ts';
import { fileKind } from './file-content.ts';
import { insertAt, parseEditable, rootMap, seqAt } from './yaml-edit.ts';

/**
 * `.sops.yaml` at the repository root gets a creation rule for one cluster folder. sops uses the
 * first rule whose path_regex matches, so the rule has to come before any rule that would catch
 * the cluster's files (a catch-all, or the seed's `.*\.sops\.yaml$`); everything else in the file
 * stays where and as it was.
 */

export const sopsConfigParams = z.object({
  file: z.string().default('.sops.yaml'),
  /** The cluster folder, relative to the repository, e.g. `clusters/prod`. */
  clusterPath: z.string(),
  age: z.array(z.string()).default([]),
  pgp: z.array(z.string()).default([]),
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
});
export type SopsConfigParams = z.infer<typeof sopsConfigParams>;

export function pathRegexFor(clusterPath: string): string {
  return `^${clusterPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/.*\\.ya?ml$`;
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
    const text = content ?? '';
    const y = parseEditable(text, p.file);
    // parseConfig is the SOPS engine's own reader: what it rejects, encrypt would reject too.
    const rules = text.trim() === '' ? [] : parseConfig(text, p.file).creationRules;
    const pgp = p.pgp.map((f) => f.replace(/\s+/g, '').toUpperCase());
    const wanted = [...p.age.map((r) => `age:${r}`), ...pgp.map((f) => `pgp:${f}`)];
    const keysOf = (rule: CreationRule) => new Set(rule.keyGroups.flat().map((s) => `${s.type}:${stanzaName(s)}`));
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
      insertAt(seq, Math.min(at, own), rule);
      summary = `update the creation rule for ${p.clusterPath}${at < own ? ' and move it before the rules that would catch its files' : ''}`;
    } else {
      const rule: Record<string, string | boolean> = { path_regex: pathRegex, encrypted_regex: p.encryptedRegex, ...(p.macOnlyEncrypted ? { mac_only_encrypted: true } : {}) };
      if (p.age.length > 0) rule.age = p.age.join(',');
      if (pgp.length > 0) rule.pgp = pgp.join(',');
      insertAt(seq, at, y.doc.createNode(rule));
      summary = `add a creation rule for ${p.clusterPath}${at < seq.items.length - 1 ? ` before rule ${at + 1} (first match wins)` : ''}`;
    }
    return { content: y.toString(), summary };
  },
});
