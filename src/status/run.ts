import { styleText } from 'node:util';
import type { GlobalOptions } from '../cli/context.ts';
import type { ClusterFlags } from '../config/fluxstrap-config.ts';
import { ExitCode } from '../core/errors.ts';
import { resolveClusterFlags } from '../playbook/run.ts';
import { createTaskContext } from '../tasks/context.ts';
import { diagnose } from './diagnose.ts';
import type { Finding, Status } from './diagnose.ts';
import { observe } from './observe.ts';

export interface StatusOptions extends ClusterFlags {
  /** Warnings fail too (`doctor`, or `status --strict`). */
  strict?: boolean;
}

const SYMBOL: Record<Status, string> = { ok: '✔', warn: '!', fail: '✗' };
const COLOR: Record<Status, Parameters<typeof styleText>[0]> = { ok: 'green', warn: 'yellow', fail: 'red' };

/** `check  message`, then the hint on its own line; what an operator reads at 2 a.m. */
export function findingLines(f: Finding, color: boolean): string[] {
  const head = `${SYMBOL[f.status]} ${f.status.padEnd(4)} ${f.check}: ${f.message}`;
  return [color ? styleText(COLOR[f.status], head, { validateStream: false }) : head, ...(f.hint ? [`    hint: ${f.hint}`] : [])];
}

export function exitCodeOf(findings: Finding[], strict: boolean): number {
  const failing = findings.some((f) => f.status === 'fail' || (strict && f.status === 'warn'));
  return failing ? ExitCode.failed : ExitCode.ok;
}

/** Observe the cluster read-only, diagnose, report; returns the exit code. */
export async function runStatus(opts: StatusOptions, g: GlobalOptions): Promise<number> {
  const cluster = await resolveClusterFlags(opts, process.env, process.cwd());
  // check: kinds and helpers that honour it stay read-only; status never waits, so no wait budget.
  const ctx = createTaskContext({ cluster, check: true, rotateSecrets: false, timeoutMs: 0, log: () => undefined });
  const findings = diagnose(await observe(ctx));
  const strict = opts.strict === true;
  const code = exitCodeOf(findings, strict);
  const count = (s: Status) => findings.filter((f) => f.status === s).length;
  if (g.json) {
    const doc = { cluster: cluster.name, path: cluster.path, healthy: code === ExitCode.ok, strict, counts: { ok: count('ok'), warn: count('warn'), fail: count('fail') }, findings };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    const lines = findings.filter((f) => !g.quiet || f.status !== 'ok').flatMap((f) => findingLines(f, g.color));
    lines.push(`${cluster.name}: ${count('ok')} ok, ${count('warn')} warn, ${count('fail')} fail${strict ? ' (strict: warnings fail)' : ''}`);
    process.stderr.write(`${lines.join('\n')}\n`);
  }
  return code;
}
