import { styleText } from 'node:util';
import type { ClusterFlags, ResolvedCluster } from '../cluster/config.ts';
import { ExitCode, exitCodeOf as exitCodeOfOutcome } from '../core/errors.ts';
import { prefixLines } from '../core/events.ts';
import { resolveClusters, singleCluster } from '../cluster/resolve.ts';
import { resolveRunCluster } from '../cluster/remote.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { backupIdentities } from './passphrase.ts';
import type { ClusterSelection } from '../cluster/resolve.ts';
import { eachLimited, parseParallel } from './fleet.ts';
import { createTaskContext } from '../tasks/context.ts';
import { diagnose } from '../status/diagnose.ts';
import type { Finding, Status } from '../status/diagnose.ts';
import { observe } from '../status/observe.ts';
import { terminalAsk, type CommandIo } from './io.ts';

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
  return exitCodeOfOutcome({ failed: findings.some((f) => f.status === 'fail' || (strict && f.status === 'warn')) });
}

/** `status` and `doctor` as commander hands them over. */
export type StatusCommandOptions = ClusterSelection & { strict?: boolean };

/** One named cluster (or none) reports exactly as before; several go through runStatusOfClusters. */
export function runStatusCommand(opts: StatusCommandOptions, g: CommandIo): Promise<number> {
  const single = singleCluster(opts);
  return single ? runStatus(single, g) : runStatusOfClusters(opts, g);
}

/** Observe the cluster read-only, diagnose, report; returns the exit code. */
export async function runStatus(opts: StatusOptions, g: CommandIo): Promise<number> {
  const { cluster, close } = await resolveRunCluster(opts, g.env, g.cwd);
  let report: ClusterStatus;
  try {
    report = await statusOf(cluster, opts.strict === true, g, await backupIdentities(cluster.ageKey, g.env, terminalAsk(g)));
  } finally {
    close();
  }
  const { success: _success, ...doc } = report.doc;
  g.result(doc);
  if (!g.json) g.stderr.write(`${report.lines.join('\n')}\n`);
  return report.code;
}

/**
 * `status` of several clusters, at most `--parallel` observed at once. Each cluster's lines are
 * printed together, `[cluster]`-prefixed, as soon as it is done; `--json` gives
 * `clusters: { <name>: <the single-cluster document and its success> }`. Exit 1 if any is unhealthy.
 */
export async function runStatusOfClusters(opts: StatusCommandOptions, g: CommandIo): Promise<number> {
  const parallel = parseParallel(opts.parallel);
  const clusters = await resolveClusters(opts, g.env, g.cwd);
  const reports: ClusterStatus[] = [];
  await eachLimited(clusters, parallel, async (cluster, index) => {
    const report = await statusOf(cluster, opts.strict === true, g);
    reports[index] = report;
    if (!g.json) g.stderr.write(prefixLines(`${report.lines.join('\n')}\n`, `[${cluster.name}] `));
  });
  g.result({ clusters: Object.fromEntries(reports.map((r) => [r.doc.cluster, r.doc])) });
  return exitCodeOfOutcome({ failed: reports.some((r) => r.code !== ExitCode.ok) });
}

interface ClusterStatus {
  code: number;
  doc: { cluster: string; success: boolean };
  lines: string[];
}

/** One cluster's findings as the JSON document and as the lines a human reads. */
async function statusOf(cluster: ResolvedCluster, strict: boolean, g: CommandIo, ageIdentities?: AgeIdentity[]): Promise<ClusterStatus> {
  // Status runs no task (so nothing applies); it never waits, so no wait budget.
  const ctx = createTaskContext({ cluster, rotateSecrets: false, timeoutMs: 0, log: () => undefined, env: g.env, ...(ageIdentities ? { ageIdentities } : {}) });
  let observed;
  try {
    observed = await observe(ctx);
  } finally {
    ctx.close();
  }
  const findings = diagnose(observed);
  const code = exitCodeOf(findings, strict);
  const count = (s: Status) => findings.filter((f) => f.status === s).length;
  const doc = {
    cluster: cluster.name,
    path: cluster.path,
    success: code === ExitCode.ok,
    strict,
    counts: { ok: count('ok'), warn: count('warn'), fail: count('fail') },
    findings,
  };
  const lines = findings.filter((f) => !g.quiet || f.status !== 'ok').flatMap((f) => findingLines(f, g.color));
  lines.push(`${cluster.name}: ${count('ok')} ok, ${count('warn')} warn, ${count('fail')} fail${strict ? ' (strict: warnings fail)' : ''}`);
  return { code, doc, lines };
}
