import { CipherError, decryptValue, encryptValue, openValue, stashKey } from './cipher.ts';
import { hashLeaf, newMacHash } from './mac.ts';
import { FluxstrapError } from '../core/errors.ts';
import { matchesUnencryptedComment, shouldEncrypt, type Rules } from './rules.ts';
import { Comment, TreeMap, type Branch, type Item, type Leaf, type Value } from './tree.ts';

/**
 * The depth-first walk sops does for encrypt, decrypt and the MAC: map keys extend the path,
 * list elements keep their list's path, comments use their container's path, nulls are skipped.
 * Each map and list pushes a level on the comment stack; a value clears its level.
 */

type Visit = (leaf: Leaf, path: string[], comments: string[][], isComment: boolean) => Value;

function walkValue(v: Value, path: string[], stack: string[][], visit: Visit): Value {
  if (v === null) return null;
  if (v instanceof TreeMap) return walkMap(v, path, stack, visit);
  if (Array.isArray(v)) return walkList(v, path, stack, visit);
  return visit(v, path, stack, v instanceof Comment);
}

function walkList(list: Value[], path: string[], stack: string[][], visit: Visit): Value[] {
  const level: string[] = [];
  const inner = [...stack, level];
  return list.map((v) => {
    if (v instanceof Comment) {
      level.push(v.text);
      return visit(v, path, inner, true);
    }
    const out = walkValue(v, path, inner, visit);
    level.length = 0;
    return out;
  });
}

function walkMap(map: TreeMap, path: string[], stack: string[][], visit: Visit): TreeMap {
  const level: string[] = [];
  const inner = [...stack, level];
  const items: Item[] = map.items.map((item) => {
    if (item.key instanceof Comment) {
      level.push(item.key.text);
      return { key: visit(item.key, path, inner, true) as Comment, value: null };
    }
    const value = walkValue(item.value, [...path, item.key], inner, visit);
    level.length = 0;
    return { key: item.key, value };
  });
  return new TreeMap(items);
}

const aadOf = (path: readonly string[]): string => `${path.join(':')}:`;

export interface WalkResult {
  branches: Branch[];
  /** Uppercase hex SHA-512, the MAC plaintext. */
  mac: string;
}

/** IVs to reuse, by stashKey: see ivStash. */
export type IvStash = ReadonlyMap<string, Buffer>;

export interface EncryptTreeOptions {
  stash?: IvStash;
  /** The file, for messages. */
  file?: string;
}

export function encryptTree(branches: Branch[], key: Uint8Array, rules: Rules, opts: EncryptTreeOptions = {}): WalkResult {
  const hash = newMacHash(rules);
  const out = branches.map((b) =>
    walkMap(b, [], [], (leaf, path, comments, isComment) => {
      const encrypt = shouldEncrypt(rules, path, comments, isComment);
      if (!rules.macOnlyEncrypted || encrypt) hashLeaf(hash, leaf);
      if (!encrypt) return leaf;
      const aad = aadOf(path);
      const enc = encryptValue(leaf, key, aad, opts.stash?.get(stashKey(leaf, aad)));
      if (!isComment) return enc;
      // As sops refuses: read back, a comment whose ciphertext the rule matches counts as never encrypted, and the MAC fails.
      if (matchesUnencryptedComment(rules, enc)) {
        throw new FluxstrapError(
          'E_CONFIG',
          `an encrypted comment matches unencrypted_comment_regex ${JSON.stringify(rules.unencryptedCommentRegex)}, so it could not be decrypted`,
          {
            location: opts.file === undefined ? { field: 'unencrypted_comment_regex' } : { file: opts.file, field: 'unencrypted_comment_regex' },
            hint: 'make the pattern unable to match ENC[AES256_GCM,data:…] text (ciphertext is random: it matched this time, by chance)',
          },
        );
      }
      return new Comment(enc, (leaf as Comment).inline);
    }),
  );
  return { branches: out, mac: hash.digest('hex').toUpperCase() };
}

/**
 * The IV of every encrypted value of a file, by what it encrypts (sops' "stash"): values that a
 * set or edit leaves as they were keep their exact `ENC[…]` text. Only used under the same key.
 */
export function ivStash(encrypted: Branch[], key: Uint8Array, rules: Rules): IvStash {
  const stash = new Map<string, Buffer>();
  for (const b of encrypted) {
    walkMap(b, [], [], (leaf, path, comments, isComment) => {
      const enc = leaf instanceof Comment ? leaf.text : leaf;
      if (typeof enc === 'string' && enc.startsWith('ENC[') && shouldEncrypt(rules, path, comments, isComment)) {
        try {
          const opened = openValue(enc, key, aadOf(path));
          stash.set(opened.stashKey, opened.iv);
        } catch (e) {
          // A value that does not open (a plaintext comment of an old file) just gets a new IV.
          if (!(e instanceof CipherError)) throw e;
        }
      }
      return leaf;
    });
  }
  return stash;
}

/** A value that should be encrypted did not open: names the key path, never the value. */
export class ValueError extends Error {
  readonly path: string;

  constructor(path: readonly string[], reason: string) {
    super(reason);
    this.path = path.join('.');
  }
}

export interface DecryptOptions {
  /** The binary store keeps `str` plaintext as bytes: a UTF-8 round trip would be lossy. */
  rawStrings?: boolean;
}

export function decryptTree(branches: Branch[], key: Uint8Array, rules: Rules, opts: DecryptOptions = {}): WalkResult {
  const hash = newMacHash(rules);
  const out = branches.map((b) =>
    walkMap(b, [], [], (leaf, path, comments, isComment) => {
      const encrypted = shouldEncrypt(rules, path, comments, isComment);
      let plain: Leaf = leaf;
      if (encrypted && leaf instanceof Comment) {
        // sops keeps a comment that does not open as it is: older files have plaintext comments.
        try {
          const opened = decryptValue(leaf.text, key, aadOf(path));
          if (opened instanceof Comment) plain = new Comment(opened.text, leaf.inline);
        } catch (e) {
          if (!(e instanceof CipherError)) throw e;
        }
      } else if (encrypted) {
        if (typeof leaf !== 'string') throw new ValueError(path, 'value should be encrypted but is not');
        try {
          plain = decryptValue(leaf, key, aadOf(path), opts.rawStrings);
        } catch (e) {
          if (e instanceof CipherError) throw new ValueError(path, e.message);
          throw e;
        }
      }
      if (!rules.macOnlyEncrypted || encrypted) hashLeaf(hash, plain);
      return plain;
    }),
  );
  return { branches: out, mac: hash.digest('hex').toUpperCase() };
}
