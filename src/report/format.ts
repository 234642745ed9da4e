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

export function resultLine(r: TaskResult): string {
  const secs = (r.durationMs / 1000).toFixed(1);
  let line = `${SYMBOL[r.outcome]} ${r.name} [${r.outcome}] (${secs}s)`;
  if (r.notes.length > 0) line += ` — ${r.notes.join('; ')}`;
  return line;
}

export function errorLines(r: TaskResult): string[] {
  if (!r.error) return [];
  const lines = [`  error: ${r.error.message}${r.error.where ? ` (${r.error.where})` : ''}${r.ignoredError ? ' (ignored)' : ''}`];
  if (r.error.hint) lines.push(`  hint: ${r.error.hint}`);
  return lines;
}

/** Before/after as a unified-looking diff, line by line. Sensitive changes are masked upstream. */
export function diffLines(c: ChangeView): string[] {
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

export function recapLine(title: string, recap: Recap, durationMs: number): string {
  return `${title}: ok=${recap.ok} changed=${recap.changed} would-change=${recap.wouldChange} skipped=${recap.skipped} failed=${recap.failed} (${(durationMs / 1000).toFixed(1)}s)`;
}
