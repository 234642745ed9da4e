import { isAlias, isMap, isPair, isScalar, isSeq, type Alias, type Document, type LineCounter, type Node, type Scalar } from 'yaml';
import { parseYamlBounded } from '../core/bounded-yaml.ts';
import { formatFloatG, parseGoInt, parseYamlTimestamp } from './scalars.ts';
import { Comment, FormatError, Timestamp, TreeMap, type Branch, type Item, type Value } from './tree.ts';

/**
 * The YAML store, matching sops' yaml.v3 store: plain scalars resolve the yaml.v3 way (`0777`
 * is an int, `1_000` too, timestamps are `time`), anchors are expanded, `<<` stays an ordinary
 * key, comments become Comment items of the map or list that holds them. Output is laid out as
 * yaml.v3 lays it out with sops' indent (4 by default), so a file fluxstrap writes diffs cleanly
 * against one sops wrote.
 */

// ---------------------------------------------------------------------------------------------
// Reading

const FLOAT_RE = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const NULLS = new Set(['', '~', 'null', 'Null', 'NULL']);
const TRUES = new Set(['true', 'True', 'TRUE']);
const FALSES = new Set(['false', 'False', 'FALSE']);
// A Map, not an object literal: a scalar `constructor` or `__proto__` must not find Object.prototype's members.
const SPECIAL_FLOATS = new Map<string, number>([
  ['.inf', Infinity],
  ['.Inf', Infinity],
  ['.INF', Infinity],
  ['+.inf', Infinity],
  ['+.Inf', Infinity],
  ['+.INF', Infinity],
  ['-.inf', -Infinity],
  ['-.Inf', -Infinity],
  ['-.INF', -Infinity],
  ['.nan', NaN],
  ['.NaN', NaN],
  ['.NAN', NaN],
]);

/** An integer beyond int64: yaml.v3 makes it a uint64, which the sops tree walk rejects. */
const UINT64 = Symbol('uint64');

type Resolved = string | bigint | number | boolean | null | Timestamp | typeof UINT64;

/** yaml.v3's `resolve` for an untagged plain scalar. */
export function resolvePlain(s: string): Resolved {
  if (NULLS.has(s)) return null;
  if (TRUES.has(s)) return true;
  if (FALSES.has(s)) return false;
  const special = SPECIAL_FLOATS.get(s);
  if (special !== undefined) return special;
  const c = s[0] ?? '';
  if (/[0-9+-]/.test(c)) {
    const ts = parseYamlTimestamp(s);
    if (ts) return ts;
    const plain = s.replaceAll('_', '');
    const n = parseGoInt(plain);
    if (n !== undefined) return n;
    if (/^\+?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.test(plain)) return UINT64;
    if (FLOAT_RE.test(plain)) return Number(plain);
    return s;
  }
  if (c === '.' && FLOAT_RE.test(s)) return Number(s);
  return s;
}

interface Ctx {
  doc: Document;
  sourceLines: string[];
  lines: LineCounter;
  aliasTarget(alias: Alias): Node | undefined;
}

function lineOf(ctx: Ctx, node: Node | null | undefined): number | undefined {
  const at = node?.range?.[0];
  return at === undefined ? undefined : ctx.lines.linePos(at).line;
}

function scalarValue(ctx: Ctx, node: Scalar): Value {
  const raw = node.value;
  const tag = node.tag?.replace(/^tag:yaml\.org,2002:/, '!!');
  // `!!merge <<` (how yaml.v3 writes the merge key back) reads as a symbol; sops keeps it as "<<".
  if (typeof raw === 'symbol' || tag === '!!merge') return '<<';
  const text = typeof raw === 'string' ? raw : String(raw);
  if (tag === '!!str' || (tag === undefined && node.type !== 'PLAIN')) return text;
  const r = resolvePlain(text);
  if (tag === '!!int' && typeof r !== 'bigint') throw new FormatError('a value tagged !!int is not an integer', lineOf(ctx, node));
  if (r === UINT64) throw new FormatError('integer out of the int64 range, which sops cannot encrypt', lineOf(ctx, node));
  return r;
}

function commentLines(text: string | null | undefined, inline = false): Comment[] {
  if (!text) return [];
  // The yaml package reads a bare `#` as " " (and `# ` too, indistinguishably). sops reads it as
  // an empty comment, which it leaves in clear and writes back as `#`: so do we, at the price of
  // `# ` losing its trailing space.
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => new Comment(l === ' ' ? '' : l, inline));
}

/**
 * The comments the `yaml` package hangs on a scalar: the one on the value's own line is inline
 * (sops ≥3.13 writes it back there); more indented lines after it are ordinary comments.
 */
function commentsAfter(ctx: Ctx, node: Node): Comment[] {
  const lines = commentLines(node.comment);
  const end = node.range?.[1];
  if (lines.length === 0 || end === undefined) return lines;
  const pos = ctx.lines.linePos(end);
  const rest = (ctx.sourceLines[pos.line - 1] ?? '').slice(pos.col - 1);
  const inline = /(^|\s)#/.test(rest);
  return lines.map((c, i) => (i === 0 && inline ? new Comment(c.text, true) : c));
}

/** How many comment items open the map. */
function leadingComments(m: TreeMap): number {
  const at = m.items.findIndex((i) => !(i.key instanceof Comment));
  return at < 0 ? m.items.length : at;
}

interface Spill {
  col: number;
  comment: Comment;
}

/**
 * The `yaml` package gives a nested collection every comment that follows its last entry; yaml.v3
 * gives one written less indented to the enclosing level. Find those lines in the source (the
 * run of comment and blank lines before the next content line) to learn their columns.
 */
function trailingComments(ctx: Ctx, node: Node): Spill[] {
  const want = (node.comment ?? '').split('\n').length;
  const end = node.range?.[2];
  if (end === undefined) return [];
  const pos = ctx.lines.linePos(end);
  const text = ctx.sourceLines;
  const isGap = (l: string | undefined): boolean => l !== undefined && (l.trim() === '' || l.trimStart().startsWith('#'));
  // The node may end at the start of the next entry (after its indentation) or mid-line.
  const atLineStart = (text[pos.line - 1] ?? '').slice(0, pos.col - 1).trim() === '';
  let next = atLineStart ? pos.line - 1 : pos.line;
  while (next < text.length && isGap(text[next])) next++;
  // Blank lines between the comments and the next entry are not part of the comment block.
  let last = next;
  while (last > 0 && (text[last - 1] ?? '').trim() === '') last--;
  let first = last;
  while (first > 0 && isGap(text[first - 1])) first--;
  const run = text.slice(Math.max(first, last - want), last);
  return run.flatMap((line) => {
    const trimmed = line.trimStart();
    return trimmed.startsWith('#') ? [{ col: line.length - trimmed.length, comment: new Comment(trimmed.slice(1)) }] : [];
  });
}

function columnOf(ctx: Ctx, node: Node | null | undefined): number {
  const at = node?.range?.[0];
  return at === undefined ? 0 : ctx.lines.linePos(at).col - 1;
}

interface Converted {
  value: Value;
  /** Trailing comments indented less than this collection: they belong to an outer level. */
  spill: Spill[];
}

function footer(ctx: Ctx, node: Node, own: Comment[] | Value[], col: number, wrap: (c: Comment) => Item | Value): Spill[] {
  if (!node.comment) return [];
  const spill: Spill[] = [];
  for (const s of trailingComments(ctx, node)) {
    if (s.col >= col) (own as (Item | Value)[]).push(wrap(s.comment));
    else spill.push(s);
  }
  return spill;
}

function convert(ctx: Ctx, node: unknown, seen: Set<unknown>): Converted {
  if (isAlias(node)) {
    const target = ctx.aliasTarget(node);
    if (!target || seen.has(target)) throw new FormatError('alias to an unknown or enclosing anchor', lineOf(ctx, node));
    // yaml.v3 expands an alias into a copy of its target; comments stay where they were written.
    const copy = convert(ctx, target, new Set([...seen, target]));
    return { value: copy.value, spill: [] };
  }
  if (isMap(node)) {
    const items: Item[] = commentLines(node.commentBefore).map((c) => ({ key: c, value: null }));
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as Node | null;
      for (const c of commentLines(keyNode?.commentBefore)) items.push({ key: c, value: null });
      let key: string;
      if (isScalar(keyNode)) {
        const k = scalarValue(ctx, keyNode);
        if (typeof k !== 'string') {
          if (keyNode.value === '<<' && keyNode.type === 'PLAIN') key = '<<';
          else throw new FormatError(`non-string key ${String(keyNode.value)}: sops supports only string keys`, lineOf(ctx, keyNode));
        } else key = k;
      } else if (keyNode === null) {
        throw new FormatError('empty key: sops supports only string keys');
      } else {
        throw new FormatError('complex key: sops supports only string keys', lineOf(ctx, keyNode));
      }
      const valueNode = pair.value as Node | null;
      const { value, spill } = valueNode === null ? { value: null, spill: [] } : convert(ctx, valueNode, seen);
      items.push({ key, value });
      const after = valueNode && !isMap(valueNode) && !isSeq(valueNode) ? valueNode : keyNode;
      for (const c of commentsAfter(ctx, after)) items.push({ key: c, value: null });
      for (const s of spill) items.push({ key: s.comment, value: null });
    }
    const col = columnOf(ctx, node);
    const spill = footer(ctx, node, items as never, col, (c) => ({ key: c, value: null }));
    return { value: new TreeMap(items), spill };
  }
  if (isSeq(node)) {
    const list: Value[] = commentLines(node.commentBefore);
    for (const item of node.items) {
      const n = item as Node | null;
      if (!isMap(n) && !isSeq(n)) list.push(...commentLines(n?.commentBefore));
      const { value, spill } = n === null ? { value: null, spill: [] } : convert(ctx, n, seen);
      if (value instanceof TreeMap) {
        // Comments before a list entry's first key belong to the list (same path, same AAD):
        // one canonical place, whichever node the yaml package hung them on.
        const lead = leadingComments(value);
        list.push(...value.items.slice(0, lead).map((i) => i.key as Comment), new TreeMap(value.items.slice(lead)));
      } else list.push(value);
      if (n && !isMap(n) && !isSeq(n)) list.push(...commentsAfter(ctx, n));
      list.push(...spill.map((s) => s.comment));
    }
    const spill = footer(ctx, node, list, columnOf(ctx, node), (c) => c);
    return { value: list, spill };
  }
  if (isScalar(node)) return { value: scalarValue(ctx, node), spill: [] };
  throw new FormatError('unsupported YAML node');
}

/** Every document of the file, each a branch; a document's top level must be a map. */
export function parseYaml(text: string): Branch[] {
  const { docs, lines, aliasTarget } = parseYamlBounded(text, { schema: 'failsafe', merge: false });
  const branches: Branch[] = [];
  const sourceLines = text.split(/\r?\n/);
  for (const doc of docs) {
    const ctx: Ctx = { doc, sourceLines, lines, aliasTarget };
    const head = commentLines(doc.commentBefore).map((c): Item => ({ key: c, value: null }));
    const tail = commentLines(doc.comment).map((c): Item => ({ key: c, value: null }));
    const contents = doc.contents as Node | null;
    if (contents === null || (isScalar(contents) && contents.value === null)) {
      branches.push(new TreeMap([...head, ...tail]));
      continue;
    }
    if (!isMap(contents)) throw new FormatError('the top level of a YAML document must be a map', lineOf(ctx, contents));
    const { value, spill } = convert(ctx, contents, new Set([contents]));
    const map = value as TreeMap;
    branches.push(new TreeMap([...head, ...map.items, ...spill.map((s): Item => ({ key: s.comment, value: null })), ...tail]));
  }
  return branches;
}

// ---------------------------------------------------------------------------------------------
// Writing, the way yaml.v3 (libyaml's emitter) lays out a node tree.

const OLD_BOOLS = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'n', 'N', 'no', 'No', 'NO', 'on', 'On', 'ON', 'off', 'Off', 'OFF']);
const BASE60_RE = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;

/**
 * yaml.v3's `is_printable`, which is narrower than libyaml's and the YAML spec's: NEL and every
 * character beyond the BMP (emoji included) are not printable, so a string holding one is
 * double-quoted with `\U…` escapes, as sops writes it.
 */
function isPrintable(cp: number): boolean {
  return cp === 0x0a || (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd && cp !== 0xfeff);
}

interface Analysis {
  plain: boolean;
  single: boolean;
  block: boolean;
}

/** libyaml's `yaml_emitter_analyze_scalar`, for block context. */
function analyze(s: string): Analysis {
  if (s === '') return { plain: false, single: true, block: false };
  let plain = !(s.startsWith('---') || s.startsWith('...'));
  let special = false;
  let spaceBreak = false;
  let breakSpace = false;
  let lineBreaks = false;
  const chars = [...s];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] ?? '';
    const next = chars[i + 1];
    const prev = chars[i - 1];
    const followedByBlank = next === undefined || next === ' ' || next === '\t' || next === '\n';
    if (i === 0) {
      if (',[]{}#&*!|>\'"%@`'.includes(ch)) plain = false;
      if ((ch === '?' || ch === ':' || ch === '-') && followedByBlank) plain = false;
    } else {
      if (ch === ':' && followedByBlank) plain = false;
      if (ch === '#' && (prev === ' ' || prev === '\t' || prev === '\n')) plain = false;
    }
    if (!isPrintable(ch.codePointAt(0) ?? 0)) special = true;
    if (ch === '\n') lineBreaks = true;
    if (ch === ' ' && next === '\n') spaceBreak = true;
    if (ch === '\n' && next === ' ') breakSpace = true;
  }
  const leadingSpace = s.startsWith(' ');
  const trailingSpace = s.endsWith(' ');
  const leadingBreak = s.startsWith('\n');
  const trailingBreak = s.endsWith('\n');
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak || lineBreaks) plain = false;
  let single = true;
  let block = !trailingSpace;
  if (breakSpace) {
    plain = false;
    single = false;
  }
  if (spaceBreak || special) {
    plain = false;
    single = false;
    block = false;
  }
  return { plain, single, block };
}

const DQ_ESCAPES: Record<string, string> = {
  '\0': '\\0',
  '\x07': '\\a',
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\v': '\\v',
  '\f': '\\f',
  '\r': '\\r',
  '\x1b': '\\e',
  '"': '\\"',
  '\\': '\\\\',
  '\x85': '\\N',
  '\xa0': '\\_',
  '\u2028': '\\L',
  '\u2029': '\\P',
};

function doubleQuoted(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    const esc = DQ_ESCAPES[ch];
    if (esc) out += esc;
    else if (!isPrintable(cp) || cp === 0xfeff) {
      out +=
        cp <= 0xff
          ? `\\x${cp.toString(16).toUpperCase().padStart(2, '0')}`
          : cp <= 0xffff
            ? `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`
            : `\\U${cp.toString(16).toUpperCase().padStart(8, '0')}`;
    } else out += ch;
  }
  return `${out}"`;
}

function literal(s: string, indent: number, step: number): string {
  const chomp = !s.endsWith('\n') ? '-' : s === '\n' || s.endsWith('\n\n') ? '+' : '';
  const hint = s.startsWith(' ') || s.startsWith('\n') ? String(step) : '';
  const pad = ' '.repeat(indent);
  const body = (s.endsWith('\n') ? s.slice(0, -1) : s).split('\n').map((l) => (l === '' ? '' : pad + l));
  return `|${hint}${chomp}\n${body.join('\n')}`;
}

/** A string scalar as yaml.v3 writes it; a multi-line value becomes a literal block at `indent`. */
function stringScalar(s: string, indent: number, isKey: boolean, step: number): string {
  const a = analyze(s);
  if (s.includes('\n')) {
    if (!isKey && a.block) return literal(s, indent, step);
    return doubleQuoted(s);
  }
  const r = resolvePlain(s);
  const canUsePlain = typeof r === 'string' && r === s && !OLD_BOOLS.has(s) && !BASE60_RE.test(s) && s !== '<<';
  if (canUsePlain) {
    if (a.plain) return s;
    if (a.single) return `'${s.replaceAll("'", "''")}'`;
  }
  return doubleQuoted(s);
}

function scalar(v: Value, indent: number, step: number): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return stringScalar(v, indent, false, step);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return '.nan';
    if (!Number.isFinite(v)) return v > 0 ? '.inf' : '-.inf';
    return formatFloatG(v);
  }
  if (v instanceof Timestamp) return v.text;
  if (v instanceof Uint8Array) return stringScalar(Buffer.from(v).toString('utf8'), indent, false, step);
  throw new Error('not a scalar');
}

function isCollection(v: Value): v is TreeMap | Value[] {
  return v instanceof TreeMap || Array.isArray(v);
}

function isEmpty(v: TreeMap | Value[]): boolean {
  const entries = v instanceof TreeMap ? v.items.filter((i) => !(i.key instanceof Comment)) : v.filter((e) => !(e instanceof Comment));
  return entries.length === 0;
}

class Emitter {
  readonly out: string[] = [];
  readonly step: number;

  constructor(step: number) {
    this.step = step;
  }

  /** yaml.v3 indents a nested node to the next multiple of the indent step. */
  private deeper(indent: number): number {
    return this.step * Math.floor((indent + this.step) / this.step);
  }

  private comment(c: Comment, col: number): void {
    if (c.inline && this.out.length > 0) this.out[this.out.length - 1] += ` #${c.text}`;
    else this.out.push(`${' '.repeat(col)}#${c.text}`);
  }

  /** Keys at column `indent`; inside a sequence entry the first one follows the `- ` prefix. */
  map(m: TreeMap, indent: number, prefix?: string): void {
    let first = prefix;
    for (const item of m.items) {
      if (item.key instanceof Comment) {
        this.comment(item.key, indent);
        continue;
      }
      const lead = first ?? ' '.repeat(indent);
      first = undefined;
      const key = item.key === '<<' ? '!!merge <<' : stringScalar(item.key, 0, true, this.step);
      this.entry(`${lead}${key}:`, item.value, this.deeper(indent));
    }
  }

  /** After `head` (`key:`), the value inline or nested at `child`. */
  private entry(head: string, v: Value, child: number): void {
    if (isCollection(v) && !isEmpty(v)) {
      this.out.push(head);
      if (v instanceof TreeMap) this.map(v, child);
      else this.list(v, child);
      return;
    }
    this.out.push(`${head} ${this.inline(v, child)}`);
  }

  private inline(v: Value, child: number): string {
    if (v instanceof TreeMap) return '{}';
    if (Array.isArray(v)) return '[]';
    return scalar(v, child, this.step);
  }

  /** Dashes at column `indent`; what an entry holds is indented past its `- `. */
  list(list: Value[], indent: number): void {
    for (const v of list) {
      if (v instanceof Comment) {
        this.comment(v, indent);
        continue;
      }
      const dash = `${' '.repeat(indent)}- `;
      if (v instanceof TreeMap && !isEmpty(v)) {
        // Comments before the first key go above the `- `: read back, they belong to the list,
        // which has the same path (and so the same AAD) as the map.
        const lead = leadingComments(v);
        for (const i of v.items.slice(0, lead)) this.comment(i.key as Comment, indent);
        this.map(new TreeMap(v.items.slice(lead)), indent + 2, dash);
      } else if (Array.isArray(v) && !isEmpty(v)) {
        // As for a map: comments before the first entry go above the `- ` (same AAD), as sops writes.
        const lead = v.findIndex((e) => !(e instanceof Comment));
        const comments = lead > 0 ? (v.slice(0, lead) as Comment[]) : [];
        for (const c of comments) this.comment(c, indent);
        this.nestedList(v.slice(comments.length), indent + 2, dash);
      } else {
        this.out.push(`${dash}${this.inline(v, indent + 2)}`);
      }
    }
  }

  private nestedList(list: Value[], indent: number, prefix: string): void {
    const start = this.out.length;
    this.list(list, indent);
    // libyaml starts a sequence inside a sequence entry on the entry's own line: `- - a`.
    const firstLine = this.out[start];
    if (firstLine !== undefined) this.out[start] = prefix + firstLine.slice(indent);
  }
}

export interface YamlWriteOptions {
  indent?: number;
}

export function emitYaml(branches: Branch[], opts: YamlWriteOptions = {}): string {
  const docs = branches.map((b) => {
    const e = new Emitter(opts.indent ?? 4);
    if (isEmpty(b) && b.items.length === 0) return '{}\n';
    e.map(b, 0);
    return `${e.out.join('\n')}\n`;
  });
  return docs.join('---\n');
}
