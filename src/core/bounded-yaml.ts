import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments } from 'yaml';
import type { Alias, Document, DocumentOptions, Node, ParseOptions, SchemaOptions } from 'yaml';
import { configError } from './errors.ts';
import { LIMITS } from './limits.ts';

/**
 * Every YAML file fluxstrap reads comes from a repository, a pull request or a colleague, so
 * reading one must cost time and memory linear in its size, whatever it holds:
 * - aliases are expanded by whoever walks the tree (the `yaml` package bounds them only in
 *   `toJS`): a few hundred bytes of nested aliases expand to billions of nodes, so the size of
 *   the expanded tree is computed first, in one pass over the unexpanded one;
 * - the `yaml` package's duplicate-key check compares every key with every earlier one (10k
 *   keys: seconds, 100k: minutes), so it is off and duplicates are found with a Set per map;
 * - nesting is bounded, so no recursive walk of the tree can exhaust the stack.
 */

/** A file that cannot be read as its format says; `line` is 0 when unknown. */
export class FormatError extends Error {
  readonly line: number;
  readonly column: number | undefined;

  constructor(message: string, line = 0, column?: number) {
    super(message);
    this.line = line;
    this.column = column;
  }
}

export type YamlOptions = Omit<ParseOptions & DocumentOptions & SchemaOptions, 'uniqueKeys' | 'lineCounter' | 'prettyErrors'>;

export interface ParsedYaml {
  docs: Document.Parsed[];
  lines: LineCounter;
  /**
   * The node an alias stands for (the last anchor of its name before it), found in the check
   * pass; for a copy of an alias (Node.clone), the last anchor of its name.
   */
  aliasTarget: (alias: Alias) => Node | undefined;
  /** The 1-based line of a node, or undefined when it has no source range. */
  lineOf: (node: unknown) => number | undefined;
}

function tooLarge(bytes: number): FormatError {
  return new FormatError(`file too large (${bytes} bytes; the limit is ${LIMITS.inputBytes / 1024 / 1024} MiB)`);
}

export function checkInputSize(bytes: number): void {
  if (bytes > LIMITS.inputBytes) throw tooLarge(bytes);
}

/**
 * Parse every document of a YAML text and check it against LIMITS and for duplicate keys. The
 * first syntax error of any document fails the whole file: a file that half parses is not read.
 * Throws FormatError (with the line) for anything wrong with the text.
 */
export function parseYamlBounded(text: string, options: YamlOptions = {}): ParsedYaml {
  checkInputSize(Buffer.byteLength(text));
  const lines = new LineCounter();
  const lineAt = (offset: number): number => lines.linePos(offset).line;
  const lineOf = (node: unknown): number | undefined => {
    const at = (node as Node | null | undefined)?.range?.[0];
    return at === undefined ? undefined : lineAt(at);
  };
  let docs;
  try {
    docs = parseAllDocuments(text, { ...options, uniqueKeys: false, lineCounter: lines, prettyErrors: false });
  } catch (e) {
    // The yaml package's parser recurses per level of nesting (`a: a: a: …`) and can exhaust the stack.
    if (e instanceof RangeError) throw new FormatError(nestingMessage());
    throw e;
  }
  // An empty stream gives an empty list (an EmptyStream, which is an array)
  const list = Array.isArray(docs) ? docs : [];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err) {
      // The composer reports its own stack overflow as an error: it is nesting, not a YAML mistake.
      const deep = /Maximum call stack size exceeded/.test(err.message);
      const pos = lines.linePos(err.pos[0]);
      const message = (err.message.split('\n')[0] ?? 'invalid YAML').replace(/ at line \d+, column \d+:?$/, '');
      throw new FormatError(deep ? nestingMessage() : message, pos.line, pos.col);
    }
  }
  const targets = new Map<Alias, Node>();
  const lastAnchors = new Map<string, Node>();
  for (const doc of list) checkTree(doc, options.merge === true, targets, lastAnchors, lineOf);
  return { docs: list, lines, aliasTarget: (a) => targets.get(a) ?? lastAnchors.get(a.source), lineOf };
}

function nestingMessage(): string {
  return `nested deeper than ${LIMITS.depth} levels`;
}

/**
 * One pass in document order: anchors as they appear, each node's expanded size and height
 * memoized, so an alias costs a lookup however large its target.
 */
function checkTree(
  doc: Document.Parsed,
  merge: boolean,
  targets: Map<Alias, Node>,
  anchors: Map<string, Node>,
  lineOf: (n: unknown) => number | undefined,
): void {
  anchors.clear();
  const measured = new Map<Node, { size: number; height: number }>();
  const open = new Set<Node>();
  let aliasNodes = 0;

  const visit = (node: unknown, depth: number): { size: number; height: number } => {
    if (node === null || node === undefined) return { size: 0, height: 0 };
    if (depth > LIMITS.depth) throw new FormatError(nestingMessage(), lineOf(node) ?? 0);
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (!target) throw new FormatError(`alias *${node.source} has no anchor before it`, lineOf(node) ?? 0);
      const m = measured.get(target);
      if (open.has(target) || !m) throw new FormatError(`alias *${node.source} refers to a node that contains it`, lineOf(node) ?? 0);
      targets.set(node, target);
      aliasNodes += m.size;
      if (aliasNodes > LIMITS.aliasNodes) {
        throw new FormatError(`aliases expand to more than ${LIMITS.aliasNodes} nodes`, lineOf(node) ?? 0);
      }
      if (depth + m.height > LIMITS.depth) throw new FormatError(nestingMessage(), lineOf(node) ?? 0);
      return m;
    }
    const n = node as Node;
    if (n.anchor) anchors.set(n.anchor, n);
    open.add(n);
    let size = 1;
    let height = 0;
    const add = (child: unknown): void => {
      const c = visit(child, depth + 1);
      size += c.size;
      height = Math.max(height, c.height);
    };
    if (isMap(n)) {
      const keys = new Set<unknown>();
      for (const pair of n.items) {
        add(pair.key);
        add(pair.value);
        const key = isAlias(pair.key) ? targets.get(pair.key) : pair.key;
        if (!isScalar(key) || typeof key.value === 'symbol' || (merge && key.value === '<<')) continue;
        // The yaml package's own rule (equal scalar values), in a Set instead of a scan of every earlier key.
        if (keys.has(key.value)) throw new FormatError('Map keys must be unique', lineOf(pair.key) ?? 0);
        keys.add(key.value);
      }
    } else if (isSeq(n)) {
      for (const item of n.items) {
        if (isPair(item)) {
          add(item.key);
          add(item.value);
        } else add(item);
      }
    }
    const m = { size, height: height + 1 };
    open.delete(n);
    measured.set(n, m);
    return m;
  };
  visit(doc.contents, 1);
}

/**
 * `Document.toJS` with the yaml package's own alias bound (`maxAliasCount`, on top of the check
 * above), its refusal turned into a FormatError.
 */
export function yamlToJS(doc: Document.Parsed, node?: Node): unknown {
  try {
    return node === undefined ? doc.toJS({ maxAliasCount: 100 }) : node.toJS(doc, { maxAliasCount: 100 });
  } catch (e) {
    if (e instanceof ReferenceError) throw new FormatError(e.message);
    throw e;
  }
}

/** A FormatError from reading `file` as the one-line E_CONFIG error that names it. */
export function inFile(e: unknown, file: string, prefix = 'invalid YAML: '): unknown {
  if (!(e instanceof FormatError)) return e;
  const location = { file, ...(e.line > 0 ? { line: e.line } : {}), ...(e.line > 0 && e.column !== undefined ? { column: e.column } : {}) };
  return configError(`${prefix}${e.message}`, location);
}

/** parseYamlBounded for a file: failures are E_CONFIG errors naming it. */
export function parseYamlFile(text: string, file: string, options: YamlOptions = {}): ParsedYaml {
  try {
    return parseYamlBounded(text, options);
  } catch (e) {
    throw inFile(e, file);
  }
}

/** Every document of a YAML file as plain values (null for an empty one), bounded and checked. */
export function yamlValues(text: string, file: string, options: YamlOptions = {}): unknown[] {
  const { docs } = parseYamlFile(text, file, options);
  try {
    return docs.map((d) => yamlToJS(d));
  } catch (e) {
    throw inFile(e, file);
  }
}
