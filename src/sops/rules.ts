import type { Location } from '../core/errors.ts';
import { re2 } from '../core/re2.ts';

/**
 * Which values sops encrypts. At most one of the six selection rules is set per file; with
 * none, `unencrypted_suffix: _unencrypted` applies. Rules see every key on the path from the
 * root (list indices excluded), so a rule matching an ancestor covers its whole subtree.
 */

export interface Rules {
  unencryptedSuffix?: string;
  encryptedSuffix?: string;
  unencryptedRegex?: string;
  encryptedRegex?: string;
  unencryptedCommentRegex?: string;
  encryptedCommentRegex?: string;
  macOnlyEncrypted?: boolean;
}

export const RULE_NAMES = {
  unencryptedSuffix: 'unencrypted_suffix',
  encryptedSuffix: 'encrypted_suffix',
  unencryptedRegex: 'unencrypted_regex',
  encryptedRegex: 'encrypted_regex',
  unencryptedCommentRegex: 'unencrypted_comment_regex',
  encryptedCommentRegex: 'encrypted_comment_regex',
} as const;

export type SelectionRule = keyof typeof RULE_NAMES;

export const DEFAULT_UNENCRYPTED_SUFFIX = '_unencrypted';

/** The selection rules that are set (non-empty). */
export function selectionRulesSet(rules: Rules): SelectionRule[] {
  return (Object.keys(RULE_NAMES) as SelectionRule[]).filter((k) => rules[k] !== undefined && rules[k] !== '');
}

/** The rules that are patterns, whose sources must compile before any value is walked. */
const REGEX_RULES = ['unencryptedRegex', 'encryptedRegex', 'unencryptedCommentRegex', 'encryptedCommentRegex'] as const satisfies readonly SelectionRule[];

/**
 * Compile every pattern of `rules` (RE2, as sops), so that one RE2 refuses is an E_CONFIG error
 * at `where(rule)`, the rule called `name(rule)`, before a file is read or written: never a rule
 * that silently matches nothing.
 */
export function checkRulePatterns(rules: Rules, where: (rule: SelectionRule) => Location, name: (rule: SelectionRule) => string = (k) => RULE_NAMES[k]): void {
  for (const k of REGEX_RULES) {
    const source = rules[k];
    if (source) re2(source, name(k), where(k));
  }
}

type Matcher = ((s: string) => boolean) | undefined;

// shouldEncrypt runs for every leaf of a file with the same rules: compile them once per object.
const matchers = new WeakMap<Rules, Matcher[]>();

function matchersOf(rules: Rules): Matcher[] {
  let m = matchers.get(rules);
  if (!m) {
    m = REGEX_RULES.map((k) => {
      const source = rules[k];
      if (!source) return undefined;
      const re = re2(source, RULE_NAMES[k], { field: RULE_NAMES[k] });
      return (s: string) => re.test(s);
    });
    matchers.set(rules, m);
  }
  return m;
}

/** Whether `text` matches the unencrypted_comment_regex of `rules` (false without one). */
export function matchesUnencryptedComment(rules: Rules, text: string): boolean {
  return matchersOf(rules)[REGEX_RULES.indexOf('unencryptedCommentRegex')]?.(text) ?? false;
}

/**
 * sops' `shouldBeEncrypted`. `comments` is the comment stack: one list per map/list being
 * walked, holding the comments seen since the last value at that level.
 */
export function shouldEncrypt(rules: Rules, path: readonly string[], comments: readonly string[][], isComment: boolean): boolean {
  let encrypted = true;
  const { unencryptedSuffix, encryptedSuffix } = rules;
  const [unencryptedRegex, encryptedRegex, unencryptedCommentRegex, encryptedCommentRegex] = matchersOf(rules);
  if (unencryptedSuffix) {
    if (path.some((p) => p.endsWith(unencryptedSuffix))) encrypted = false;
  }
  if (encryptedSuffix) encrypted = path.some((p) => p.endsWith(encryptedSuffix));
  if (unencryptedRegex) {
    if (path.some(unencryptedRegex)) encrypted = false;
  }
  if (encryptedRegex) encrypted = path.some(encryptedRegex);
  if (unencryptedCommentRegex) {
    if (comments.some((level) => level.some(unencryptedCommentRegex))) encrypted = false;
  }
  if (encryptedCommentRegex) {
    // The marker comment itself (the last one of the innermost level) stays readable.
    const last = comments.length - 1;
    encrypted = comments.some((level, i) => level.some((c, j) => !(isComment && i === last && j === level.length - 1) && encryptedCommentRegex(c)));
  }
  return encrypted;
}
