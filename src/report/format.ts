import { MASK } from '../core/change.ts';
import type { ChangeView } from '../core/change.ts';
import type { Outcome, Recap, TaskResult } from '../core/events.ts';

/** Shared wording of the human renderers, so plain lines and listr2 say the same thing. */

export const SYMBOL: Record<Outcome, string> = {
  ok: '✔',
  changed: '●',
  'would-change': '◎',
  skipped: '○',
  failed: '✗',
};

export function describeChange(c: ChangeView): string {
  return `${c.action} ${c.target}${c.summary ? `: ${c.summary}` : ''}`;
}

export function seconds(ms: number): string {
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

export function errorLines(r: TaskResult): string[] {
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

/** Before/after as a unified-looking diff, line by line, masked when sensitive. */
export function diffLines(change: ChangeView): string[] {
  const c = safeView(change);
  if (c.before === undefined && c.after === undefined) return [];
  const before = c.before?.split('\n') ?? [];
  const after = c.after?.split('\n') ?? [];
  const out: string[] = [`    --- ${c.target}`, `    +++ ${c.target}`];
  const beforeSet = new Set(before);
  const afterSet = new Set(after);
  for (const l of before) if (!afterSet.has(l)) out.push(`    -${l}`);
  for (const l of after) if (!beforeSet.has(l)) out.push(`    +${l}`);
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
