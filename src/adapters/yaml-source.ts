import { isMap, isNode, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Alias, Document, LineCounter, Node } from 'yaml';
import { FormatError, parseYamlFile, yamlToJS } from '../core/bounded-yaml.ts';
import type { z } from 'zod';
import { configError, quoted } from '../core/errors.ts';
import type { FluxstrapError, Location } from '../core/errors.ts';

/**
 * A YAML file parsed with its source ranges, so that every complaint about it (syntax, schema,
 * an unknown key) can name `file:line:col` — the one thing that makes a config error quick to fix.
 * Shared by playbooks and fluxstrap.yaml.
 */
export class YamlSource {
  readonly file: string;
  readonly doc: Document.Parsed;
  private readonly lines: LineCounter;
  /** What an alias stands for (bounded: parseYamlFile checked what the aliases expand to). */
  readonly aliasTarget: (alias: Alias) => Node | undefined;

  private constructor(file: string, doc: Document.Parsed, lines: LineCounter, aliasTarget: (alias: Alias) => Node | undefined) {
    this.file = file;
    this.doc = doc;
    this.lines = lines;
    this.aliasTarget = aliasTarget;
  }

  /** Parse, failing on the first syntax error (duplicate keys included) with its position. */
  static parse(text: string, file: string): YamlSource {
    const { docs, lines, aliasTarget, lineOf } = parseYamlFile(text, file);
    if (docs.length > 1)
      throw configError('invalid YAML: a single document was expected, this file holds several', { file, line: lineOf(docs[1]?.contents) ?? 1 });
    // A file of comments only holds no document; parseDocument gives it one, comments kept.
    const doc = docs[0] ?? parseDocument(text);
    return new YamlSource(file, doc, lines, aliasTarget);
  }

  /** The document, or one node of it, as plain values, aliases expanded. */
  toJS(node?: Node): unknown {
    try {
      return yamlToJS(this.doc, node);
    } catch (e) {
      if (e instanceof FormatError) throw configError(`invalid YAML: ${e.message}`, this.at(node ?? this.doc.contents));
      throw e;
    }
  }

  /** The location of a node (its first character), or of the file when there is no node. */
  at(node: unknown, field?: string): Location {
    const loc: Location = { file: this.file, ...(field !== undefined ? { field } : {}) };
    const range = isNode(node) ? node.range : isPair(node) && isNode(node.key) ? node.key.range : undefined;
    if (!range) return loc;
    const { line, col } = this.lines.linePos(range[0]);
    return { ...loc, line, column: col };
  }

  error(message: string, node: unknown, hint?: string, field?: string): FluxstrapError {
    return configError(message, this.at(node, field), hint);
  }

  /**
   * The location of a zod issue inside `root`: the deepest node on the issue's path, or for an
   * unknown key the key itself, so the caret lands on what must change.
   */
  issueAt(root: unknown, issue: z.core.$ZodIssue, prefix: string): Location {
    let node: unknown = root;
    for (const key of issue.path) {
      const next = childOf(node, key);
      if (next === undefined) break;
      node = next;
    }
    const keys = issue.path.map(String);
    if (issue.code === 'invalid_key') node = keyNodeOf(node, root, issue.path);
    if (issue.code === 'unrecognized_keys') {
      const pair = isMap(node) ? node.items.find((p) => isScalar(p.key) && p.key.value === issue.keys[0]) : undefined;
      if (pair) node = pair.key;
      keys.push(issue.keys[0] ?? '');
    }
    const path = [prefix, ...keys].filter((s) => s !== '').join('.');
    return this.at(node, path === '' ? undefined : path);
  }

  /** Turn the first zod issue into an E_CONFIG error at the offending node. */
  schemaError(root: unknown, error: z.ZodError, prefix: string): FluxstrapError {
    const picked = pickIssue(error.issues);
    if (!picked) return this.error('invalid value', root);
    const { issue, message } = explainIssue(picked.issue, picked.missing);
    return configError(message, this.issueAt(root, issue, prefix));
  }
}

type Issue = z.core.$ZodIssue;

/**
 * zod's issue, reworded for people editing YAML rather than calling functions. For a union (one of
 * several forms, e.g. `https:` or `ssh:`) the branch that got furthest is the one the user meant;
 * when none got past its first key, list the forms.
 */
function explainIssue(issue: Issue, missing: string[] = []): { issue: Issue; message: string } {
  if (issue.code !== 'invalid_union') {
    const expected = missing.length > 0 ? ` (expected ${missing.map(quoted).join(', ')})` : '';
    return { issue, message: `${describeIssue(issue)}${expected}` };
  }
  const depth = (branch: Issue[]) => Math.max(...branch.map((i) => i.path.length));
  const branches = issue.errors.filter((b) => b.length > 0);
  const best = branches.reduce<Issue[] | undefined>((a, b) => (a === undefined || depth(b) > depth(a) ? b : a), undefined);
  const inner = best && depth(best) >= 2 ? pickIssue(best) : undefined;
  if (inner) return explainIssue(Object.assign(Object.create(null) as Issue, inner.issue, { path: [...issue.path, ...inner.issue.path] }), inner.missing);
  const forms = branches.flatMap((b) => b.filter((i) => i.code === 'invalid_type' && i.path.length === 1).map((i) => String(i.path[0])));
  if (forms.length > 0) return { issue, message: `expected exactly one of: ${[...new Set(forms)].join(', ')}` };
  // Two forms given at once (`{file, fingerprint}`): each branch refuses the other's key.
  const extra = branches.every((b) => b.length === 1 && b[0]?.code === 'unrecognized_keys')
    ? branches.flatMap((b) => (b[0]?.code === 'unrecognized_keys' ? b[0].keys : []))
    : [];
  if (extra.length > 1) return { issue, message: `expected exactly one of: ${[...new Set(extra)].sort().join(', ')}` };
  const expected = branches.flatMap((b) => b.flatMap((i) => (i.code === 'invalid_type' ? [i.expected] : [])));
  return { issue, message: expected.length > 0 ? `expected ${[...new Set(expected)].join(' or ')}` : issue.message };
}

const isMissing = (i: Issue) => i.code === 'invalid_type' && i.message.endsWith('received undefined');

/**
 * The issue to report first. A misspelt key shows up as two issues, "missing X" and "unknown Y"
 * in the same object; the unknown key is the one to point at, naming what was expected.
 */
function pickIssue(issues: Issue[]): { issue: Issue; missing: string[] } | undefined {
  const first = issues[0];
  if (!first) return undefined;
  const parentOf = (i: Issue) => i.path.slice(0, -1).map(String).join('.');
  const unknown = issues.find((i) => i.code === 'unrecognized_keys' && i.path.map(String).join('.') === parentOf(first));
  if (!isMissing(first) || !unknown) return { issue: first, missing: [] };
  const missing = issues.filter((i) => isMissing(i) && parentOf(i) === parentOf(first)).map((i) => String(i.path.at(-1)));
  return { issue: unknown, missing };
}

/** The key node of the last step of `path` (for complaints about a key rather than its value). */
function keyNodeOf(fallback: unknown, root: unknown, path: PropertyKey[]): unknown {
  let parent = root;
  for (const key of path.slice(0, -1)) parent = childOf(parent, key);
  const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === path.at(-1)) : undefined;
  return pair?.key ?? fallback;
}

function childOf(node: unknown, key: PropertyKey): unknown {
  if (isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
    return pair?.value ?? undefined;
  }
  if (isSeq(node) && typeof key === 'number') return node.items[key];
  return undefined;
}

function describeIssue(issue: Issue): string {
  if (issue.code === 'invalid_key') return `key ${quoted(String(issue.path.at(-1) ?? ''))}: ${issue.issues[0]?.message ?? issue.message}`;
  if (issue.code === 'unrecognized_keys') return `unknown key ${issue.keys.map(quoted).join(', ')}`;
  if (isMissing(issue)) {
    return `missing required key ${quoted(String(issue.path.at(-1) ?? ''))}`;
  }
  return issue.message.replace(/^Invalid input: /, '');
}
