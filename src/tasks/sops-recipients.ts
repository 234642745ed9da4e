import { isMap, isSeq } from 'yaml';
import type { YAMLMap } from 'yaml';
import { z } from 'zod';
import { configError } from '../core/errors.ts';
import { parseConfig } from '../sops/config.ts';
import { stanzaName } from '../sops/metadata.ts';
import { fileKind } from './file-content.ts';
import { pathRegexFor } from './sops-config.ts';
import { locate, parseEditable, rootMap, str } from './yaml-edit.ts';

/**
 * The age recipients of one cluster's creation rule in `.sops.yaml`, as a set: some must be there,
 * some must not. Key rotation adds the new recipient next to the old one first and removes the old
 * one only later, so the rule's other fields, its place and the file's comments are left as written.
 */

export const sopsRecipientsParams = z.object({
  file: z.string().default('.sops.yaml'),
  /** The cluster folder whose rule (the one `fluxstrap init` writes) is edited, e.g. `clusters/prod`. */
  clusterPath: z.string(),
  add: z.array(z.string()).default([]),
  remove: z.array(z.string()).default([]),
});
export type SopsRecipientsParams = z.infer<typeof sopsRecipientsParams>;

/** The age recipients of the cluster's rule, in order; undefined when the file has no such rule. */
export function ruleRecipients(text: string, file: string, clusterPath: string): string[] | undefined {
  const rule = parseConfig(text, file).creationRules.find((r) => r.pathRegex === pathRegexFor(clusterPath));
  return rule?.keyGroups.flat().flatMap((s) => (s.type === 'age' ? [stanzaName(s)] : []));
}

export const sopsRecipientsKind = fileKind<SopsRecipientsParams>({
  kind: 'sops-recipients',
  params: sopsRecipientsParams,
  file: (p) => p.file,
  desired(p, { content }) {
    const hint = `run fluxstrap init for ${p.clusterPath} first`;
    if (content === undefined) throw configError('no .sops.yaml', { file: p.file }, hint);
    const current = ruleRecipients(content, p.file, p.clusterPath);
    if (current === undefined) throw configError(`no creation rule for ${p.clusterPath}`, { file: p.file }, hint);
    const kept = current.filter((r) => !p.remove.includes(r));
    const wanted = [...kept, ...p.add.filter((r) => !kept.includes(r))];
    if (wanted.length === current.length && wanted.every((r, i) => r === current[i])) return undefined;

    const y = parseEditable(content, p.file);
    const rules = rootMap(y, p.file, '.sops.yaml')?.get('creation_rules', true);
    const rule = (isSeq(rules) ? rules.items : []).find((r): r is YAMLMap => isMap(r) && str(r.get('path_regex', true)) === pathRegexFor(p.clusterPath));
    // parseConfig found the rule, so it is there; key groups are Shamir setups we do not rewrite.
    if (!rule || rule.has('key_groups')) {
      throw configError(`the creation rule for ${p.clusterPath} uses key_groups`, locate(y, p.file, rule), 'change its recipients by hand, then run fluxstrap sops updatekeys');
    }
    if (wanted.length === 0 && !rule.has('pgp')) throw configError(`removing ${p.remove.join(', ')} would leave the rule for ${p.clusterPath} without a key`, locate(y, p.file, rule));
    // Keep the way the recipients were written: a YAML list stays a list, a string a comma list.
    if (wanted.length === 0) rule.delete('age');
    else rule.set('age', isSeq(rule.get('age', true)) ? y.doc.createNode(wanted) : wanted.join(','));
    const added = wanted.filter((r) => !current.includes(r));
    const removed = current.filter((r) => !wanted.includes(r));
    const summary = [added.length > 0 ? `add recipient ${added.join(', ')}` : '', removed.length > 0 ? `remove recipient ${removed.join(', ')}` : ''].filter((s) => s !== '').join(' and ');
    return { content: y.toString(), summary: `${summary} in the creation rule for ${p.clusterPath}` };
  },
});
