import { MASK } from '../core/change.ts';
import type { ChangeView } from '../core/change.ts';
import type { Outcome, Recap, TaskResult } from '../core/events.ts';

/** Shared wording of the human renderers, so plain lines and listr2 say the same thing. */

const SYMBOL: Record<Outcome, string> = {
  ok: '✔',
  changed: '●',
  'would-change': '◎',
  skipped: '○',
  failed: '✗',
};

function describeChange(c: ChangeView): string {
  return `${c.action} ${c.target}${c.summary ? `: ${c.summary}` : ''}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** `<name> [<outcome>] (<secs>)`, the part of a result line after the symbol. */
export function resultTitle(r: TaskResult): string {
  let line = `${r.name} [${r.outcome}${r.ignoredError ? ', ignored' : ''}] (${seconds(r.durationMs)})`;
  if (r.notes.length > 0) line += ` — ${r.notes.join('; ')}`;
  return line;
}

export function resultLine(r: TaskResult): string {
  return `${SYMBOL[r.outcome]} ${resultTitle(r)}`;
}

function errorLines(r: TaskResult): string[] {
  if (!r.error) return [];
  const lines = [`  error: ${r.error.message}${r.error.where ? ` (${r.error.where})` : ''}${r.ignoredError ? ' (ignored)' : ''}`];
  if (r.error.hint) lines.push(`  hint: ${r.error.hint}`);
  return lines;
}

const KEY_LINE = /^(\s*(?:- )?[^\s:][^:]*:)(\s+\S.*)?$/;

/**
 * Mask every value of a `key: value` text, keeping keys and structure. Kinds mask sensitive
 * before/after themselves; renderers mask again, so one kind's slip cannot print a secret.
 */
export function maskText(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const m = KEY_LINE.exec(line);
      if (m) return m[2] === undefined ? line : `${m[1] ?? ''} ${MASK}`;
      const indent = /^\s*/.exec(line)?.[0] ?? '';
      return line.trim() === '' ? line : `${indent}${MASK}`;
    })
    .join('\n');
}

/** The change as it may be shown anywhere: before/after masked when it is sensitive. */
export function safeView(c: ChangeView): ChangeView {
  if (!c.sensitive) return c;
  return {
    ...c,
    ...(c.before !== undefined ? { before: maskText(c.before) } : {}),
    ...(c.after !== undefined ? { after: maskText(c.after) } : {}),
  };
}

type DiffOp = { op: ' ' | '-' | '+'; line: string };

/** Cells of the LCS table beyond which the middle is shown as replaced whole (e.g. huge manifests). */
const MAX_LCS_CELLS = 4_000_000;

/**
 * Line diff in order: common prefix and suffix, then an LCS of what lies between. Native, not
 * jsdiff: jsdiff's Myers diff aligns ties differently (1089 of 5000 random pairs), which would
 * change every --diff shown and its tests.
 */
export function lineDiff(a: string[], b: string[]): DiffOp[] {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const same = (lines: string[]) => lines.map((line): DiffOp => ({ op: ' ', line }));
  return [...same(a.slice(0, start)), ...middleDiff(midA, midB), ...same(a.slice(endA))];
}

function middleDiff(a: string[], b: string[]): DiffOp[] {
  const removed = a.map((line): DiffOp => ({ op: '-', line }));
  const added = b.map((line): DiffOp => ({ op: '+', line }));
  if (a.length === 0 || b.length === 0 || a.length * b.length > MAX_LCS_CELLS) return [...removed, ...added];
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    const row = lcs[i] as Uint32Array;
    const next = lcs[i + 1] as Uint32Array;
    for (let j = b.length - 1; j >= 0; j--) row[j] = a[i] === b[j] ? (next[j + 1] as number) + 1 : Math.max(next[j] as number, row[j + 1] as number);
  }
  const out: DiffOp[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push({ op: ' ', line: a[i++] as string });
      j++;
    } else if (i < a.length && (j === b.length || (lcs[i + 1]?.[j] ?? 0) >= (lcs[i]?.[j + 1] ?? 0))) {
      // On a tie, removals first: `-old` then `+new` reads as a replacement.
      out.push({ op: '-', line: a[i++] as string });
    } else {
      out.push({ op: '+', line: b[j++] as string });
    }
  }
  return out;
}

/** Lines of context kept around each change, as `diff -U1`; longer unchanged runs become `…`. */
const CONTEXT = 1;

/** Before/after as a unified-style diff in file order, masked when sensitive. */
export function diffLines(change: ChangeView): string[] {
  const c = safeView(change);
  if (c.before === undefined && c.after === undefined) return [];
  const ops = lineDiff(c.before?.split('\n') ?? [], c.after?.split('\n') ?? []);
  const near = (k: number) => ops.slice(Math.max(0, k - CONTEXT), k + CONTEXT + 1).some((o) => o.op !== ' ');
  const out: string[] = [`    --- ${c.target}`, `    +++ ${c.target}`];
  let skipped = false;
  for (const [k, o] of ops.entries()) {
    if (o.op === ' ' && !near(k)) {
      if (!skipped) out.push('     …');
      skipped = true;
      continue;
    }
    skipped = false;
    out.push(`    ${o.op}${o.line}`);
  }
  return out;
}

/** What a human sees under a finished task: its changes (with --diff, their diffs) and its error. */
export function detailLines(r: TaskResult, diff: boolean): string[] {
  const lines: string[] = [];
  for (const c of r.changes) {
    lines.push(`  ${describeChange(c)}`);
    if (diff) lines.push(...diffLines(c));
  }
  return [...lines, ...errorLines(r)];
}

export function recapLine(title: string, recap: Recap, durationMs: number): string {
  return `${title}: ok=${recap.ok} changed=${recap.changed} would-change=${recap.wouldChange} skipped=${recap.skipped} failed=${recap.failed} (${seconds(durationMs)})`;
}
