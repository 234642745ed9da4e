import { formatFloatF } from './scalars.ts';
import { checkInputSize } from '../core/bounded-yaml.ts';
import { LIMITS } from '../core/limits.ts';
import { Comment, FormatError, Timestamp, TreeMap, type Item, type Value } from './tree.ts';

/**
 * The JSON store. `JSON.parse` cannot be used: it reorders integer-like keys, drops duplicates
 * and loses the int/float distinction sops ≥3.13.2 makes (an int64-parsable number is `int`).
 * Output follows Go: compact text through `json.Indent` (tab by default), `json.Marshal` string
 * escaping (`<`, `>`, `&`, U+2028, U+2029 as `\u…`), and a final newline.
 */

// Sticky: matched where the reader stands, without copying the rest of the text per token.
const NUMBER_OR_WORD = /true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// eslint-disable-next-line no-control-regex -- JSON strings cannot hold raw control characters
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

class Reader {
  private at = 0;
  private depth = 0;
  private readonly s: string;

  constructor(s: string) {
    this.s = s;
  }

  private fail(what: string): never {
    const line = this.s.slice(0, this.at).split('\n').length;
    throw new FormatError(what, line);
  }

  private ws(): void {
    while (/[ \t\r\n]/.test(this.s[this.at] ?? '')) this.at++;
  }

  document(): Value {
    this.ws();
    const v = this.value();
    this.ws();
    if (this.at < this.s.length) this.fail('unexpected text after the JSON value');
    return v;
  }

  private value(): Value {
    this.ws();
    const c = this.s[this.at];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    NUMBER_OR_WORD.lastIndex = this.at;
    const m = NUMBER_OR_WORD.exec(this.s);
    if (!m) this.fail('invalid JSON value');
    this.at += m[0].length;
    if (m[0] === 'true') return true;
    if (m[0] === 'false') return false;
    if (m[0] === 'null') return null;
    if (/^-?\d+$/.test(m[0])) {
      const n = BigInt(m[0]);
      if (n >= -(2n ** 63n) && n < 2n ** 63n) return n;
    }
    return Number(m[0]);
  }

  private string(): string {
    STRING.lastIndex = this.at;
    const m = STRING.exec(this.s);
    if (!m) this.fail('invalid JSON string');
    this.at += m[0].length;
    return JSON.parse(m[0]) as string;
  }

  /** A level of nesting; the parser recurses, so its depth is what the stack can take. */
  private enter(): void {
    if (++this.depth > LIMITS.depth) this.fail(`nested deeper than ${LIMITS.depth} levels`);
    this.at++;
  }

  private object(): TreeMap {
    this.enter();
    const items: Item[] = [];
    this.ws();
    if (this.s[this.at] === '}') {
      this.at++;
      this.depth--;
      return new TreeMap(items);
    }
    for (;;) {
      this.ws();
      if (this.s[this.at] !== '"') this.fail('expected a string key');
      const key = this.string();
      this.ws();
      if (this.s[this.at] !== ':') this.fail('expected ":"');
      this.at++;
      items.push({ key, value: this.value() });
      this.ws();
      const c = this.s[this.at++];
      if (c === '}') {
        this.depth--;
        return new TreeMap(items);
      }
      if (c !== ',') this.fail('expected "," or "}"');
    }
  }

  private array(): Value[] {
    this.enter();
    const out: Value[] = [];
    this.ws();
    if (this.s[this.at] === ']') {
      this.at++;
      this.depth--;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.s[this.at++];
      if (c === ']') {
        this.depth--;
        return out;
      }
      if (c !== ',') this.fail('expected "," or "]"');
    }
  }
}

export function parseJson(text: string): TreeMap {
  checkInputSize(Buffer.byteLength(text));
  const v = new Reader(text).document();
  if (!(v instanceof TreeMap)) throw new FormatError('the top level of a JSON document must be an object', 1);
  return v;
}

/** Go's `json.Marshal` for a string (HTML-safe escaping). */
export function goJsonString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's `json.Marshal` float: `'f'` form, exponent below 1e-6 and from 1e21 (like JS, with `e-07` → `e-7`). */
function goJsonFloat(f: number): string {
  if (!Number.isFinite(f)) throw new FormatError('JSON cannot hold NaN or infinity', 0);
  const abs = Math.abs(f);
  if (abs !== 0 && (abs < 1e-6 || abs >= 1e21)) return String(f);
  return formatFloatF(f);
}

function scalar(v: Value): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return goJsonString(v);
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return goJsonFloat(v);
  if (v instanceof Timestamp) return goJsonString(v.text);
  if (v instanceof Uint8Array) return goJsonString(Buffer.from(v).toString('utf8'));
  throw new Error('not a scalar');
}

/** Indented JSON as `json.Indent(compact, "", indent)` writes it; comments are dropped (JSON has none). */
export function emitJson(value: Value, indent = '\t'): string {
  const out = (v: Value, pad: string): string => {
    const inner = pad + indent;
    if (v instanceof TreeMap) {
      const items = v.items.filter((i): i is { key: string; value: Value } => typeof i.key === 'string');
      if (items.length === 0) return '{}';
      return `{\n${items.map((i) => `${inner}${goJsonString(i.key)}: ${out(i.value, inner)}`).join(',\n')}\n${pad}}`;
    }
    if (Array.isArray(v)) {
      const list = v.filter((e) => !(e instanceof Comment));
      if (list.length === 0) return '[]';
      return `[\n${list.map((e) => inner + out(e, inner)).join(',\n')}\n${pad}]`;
    }
    return scalar(v);
  };
  return `${out(value, '')}\n`;
}
