/**
 * The document model sops works on. Order is meaningful (the MAC hashes leaves in document
 * order), so maps are item lists, never JS objects, which would move integer-like keys first.
 * Typed leaves mirror the Go types sops sees: `bigint` is an int, `number` a float64, a
 * `Uint8Array` the raw bytes of the binary store.
 */

export class Comment {
  readonly text: string;
  /** Written after the value on the same line (yaml.v3 line comments, sops ≥3.13). */
  readonly inline: boolean;

  constructor(text: string, inline = false) {
    this.text = text;
    this.inline = inline;
  }
}

/** A YAML timestamp, which sops keeps as a Go `time.Time` (`type:time`); `text` is its RFC 3339 form. */
export class Timestamp {
  readonly text: string;

  constructor(text: string) {
    this.text = text;
  }
}

export type Scalar = string | bigint | number | boolean | null | Uint8Array | Timestamp;

export type Value = Scalar | Comment | TreeMap | Value[];

/** A map entry; a comment sits in the key position with a null value, as in sops. */
export interface Item {
  key: string | Comment;
  value: Value;
}

export class TreeMap {
  readonly items: Item[];

  constructor(items: Item[] = []) {
    this.items = items;
  }

  get(key: string): Value | undefined {
    return this.items.find((i) => i.key === key)?.value;
  }

  has(key: string): boolean {
    return this.items.some((i) => i.key === key);
  }

  set(key: string, value: Value): void {
    const item = this.items.find((i) => i.key === key);
    if (item) item.value = value;
    else this.items.push({ key, value });
  }

  delete(key: string): void {
    const at = this.items.findIndex((i) => i.key === key);
    if (at >= 0) this.items.splice(at, 1);
  }
}

/** One YAML document; every other format has exactly one branch. */
export type Branch = TreeMap;

/** A value the walk encrypts or hashes as one unit. */
export type Leaf = Exclude<Value, TreeMap | Value[] | null>;

/** A file that does not parse as its format; `line` is 1-based, 0 when unknown. */
export { FormatError } from '../core/bounded-yaml.ts';
