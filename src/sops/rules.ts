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

const regexCache = new Map<string, RegExp | null>();

/**
 * Go RE2 to a JS RegExp. sops ignores a regex that does not compile (it then never matches),
 * and so do we. The common RE2-only spellings are rewritten: named groups `(?P<n>`, and the
 * `\A`/`\z` anchors; a leading `(?i)`/`(?s)`/`(?m)` becomes a JS flag.
 */
export function goRegex(source: string): RegExp | null {
  let cached = regexCache.get(source);
  if (cached !== undefined) return cached;
  let src = source.replace(/\(\?P</g, '(?<').replace(/\\A/g, '^').replace(/\\z/g, '$');
  let flags = 'u';
  const lead = /^\(\?([ims]+)\)/.exec(src);
  if (lead) {
    flags += lead[1] ?? '';
    src = src.slice(lead[0].length);
  }
  try {
    cached = new RegExp(src, flags);
  } catch {
    cached = null;
  }
  regexCache.set(source, cached);
  return cached;
}

function matches(re: string, s: string): boolean {
  return goRegex(re)?.test(s) ?? false;
}

/**
 * sops' `shouldBeEncrypted`. `comments` is the comment stack: one list per map/list being
 * walked, holding the comments seen since the last value at that level.
 */
export function shouldEncrypt(rules: Rules, path: readonly string[], comments: readonly string[][], isComment: boolean): boolean {
  let encrypted = true;
  const { unencryptedSuffix, encryptedSuffix, unencryptedRegex, encryptedRegex, unencryptedCommentRegex, encryptedCommentRegex } = rules;
  if (unencryptedSuffix) {
    if (path.some((p) => p.endsWith(unencryptedSuffix))) encrypted = false;
  }
  if (encryptedSuffix) encrypted = path.some((p) => p.endsWith(encryptedSuffix));
  if (unencryptedRegex) {
    if (path.some((p) => matches(unencryptedRegex, p))) encrypted = false;
  }
  if (encryptedRegex) encrypted = path.some((p) => matches(encryptedRegex, p));
  if (unencryptedCommentRegex) {
    if (comments.some((level) => level.some((c) => matches(unencryptedCommentRegex, c)))) encrypted = false;
  }
  if (encryptedCommentRegex) {
    // The marker comment itself (the last one of the innermost level) stays readable.
    const last = comments.length - 1;
    encrypted = comments.some((level, i) =>
      level.some((c, j) => !(isComment && i === last && j === level.length - 1) && matches(encryptedCommentRegex, c)),
    );
  }
  return encrypted;
}
