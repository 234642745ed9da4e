import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node, YAMLMap, YAMLSeq } from 'yaml';
import { parseYamlFile } from '../core/bounded-yaml.ts';
import { configError } from '../core/errors.ts';

/**
 * Editing YAML files people wrote, so that what we do not change stays as they wrote it:
 * comments, order, quoting and the sequence indentation style. A file is only re-serialized when
 * a task changes it; an unchanged file is never rewritten.
 */

export interface EditableYaml {
  doc: Document;
  /** The line of a node, for messages. */
  lineOf(node: unknown): number | undefined;
  /** Serialize in the file's own style (`- item` flush with its key or indented). */
  toString(): string;
}

/** Parse one YAML document; a syntax error is E_CONFIG with the file and line. */
export function parseEditable(text: string, file: string): EditableYaml {
  const { docs, lineOf } = parseYamlFile(text, file);
  if (docs.length > 1)
    throw configError('invalid YAML: a single document was expected, this file holds several', { file, line: lineOf(docs[1]?.contents) ?? 1 });
  // A file of comments only holds no document; parseDocument gives it one, comments kept.
  const doc = docs[0] ?? parseDocument(text);
  return { doc, lineOf, toString: () => serialize(doc, text) };
}

/** A document in the style of the file it came from. */
export function serialize(doc: Document, text: string): string {
  // Flux and kubectl write `key:\n- item`; many people write `key:\n  - item`. Keep whichever the file uses.
  const indentSeq = !/^( *)[^\s#-][^\n]*:[ \t]*\n\1- /m.test(text);
  return doc.toString({ lineWidth: 0, indentSeq });
}

/** Every document of a multi-document file, with the same error handling. */
export function parseAllEditable(text: string, file: string): { docs: Document.Parsed[]; lineOf(node: unknown): number | undefined } {
  const { docs, lineOf } = parseYamlFile(text, file);
  return { docs, lineOf };
}

/** The root map of a document, or E_CONFIG naming what it is instead. An empty document is `undefined`. */
export function rootMap(y: EditableYaml, file: string, what: string): YAMLMap | undefined {
  const root = y.doc.contents;
  if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) return undefined;
  if (!isMap(root)) throw configError(`${what} must be a YAML map`, locate(y, file, root));
  return root;
}

/** A sequence under `key` of `map`, created when absent or null; anything else is E_CONFIG. */
export function seqAt(y: EditableYaml, file: string, map: YAMLMap, key: string): YAMLSeq {
  const node = map.get(key, true);
  if (isSeq(node)) return node;
  if (node === undefined || node === null || (isScalar(node) && node.value === null)) {
    const seq = y.doc.createNode([]) as YAMLSeq;
    map.set(key, seq);
    return seq;
  }
  throw configError(`${key} must be a list`, locate(y, file, node));
}

/** A scalar's string value, or undefined for anything that is not a scalar. */
export function str(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  const v = node.value;
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : undefined;
}

export function locate(y: { lineOf(node: unknown): number | undefined }, file: string, node: unknown): { file: string; line?: number } {
  const line = y.lineOf(node);
  return line === undefined ? { file } : { file, line };
}

/**
 * Insert into a sequence. A comment above the first item is stored on the sequence itself, so
 * inserting at the top would put it above the new item: hand it to the item it was written for.
 */
export function insertAt(seq: YAMLSeq, index: number, node: unknown): void {
  const first = seq.items[0] as Node | undefined;
  if (index === 0 && first && seq.commentBefore) {
    first.commentBefore = first.commentBefore ? `${seq.commentBefore}\n${first.commentBefore}` : seq.commentBefore;
    seq.commentBefore = null;
  }
  seq.items.splice(index, 0, node);
}
