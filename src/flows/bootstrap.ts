import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { missingSetting } from '../cluster/config.ts';
import { resolveRunCluster } from '../cluster/remote.ts';
import type { ClusterFlags, ResolvedCluster } from '../cluster/config.ts';
import { runTasks } from '../core/engine.ts';
import type { RunResult } from '../core/engine.ts';
import { ExitCode, exitCodeOf as exitCodeOfOutcome, usageError } from '../core/errors.ts';
import { setOwn } from '../core/own.ts';
import type { Reporter, RunEvent, TaskRef } from '../core/events.ts';
import type { TaskInstance } from '../core/task.ts';
import { createTaskContext } from '../tasks/context.ts';
import type { TaskContext } from '../tasks/context.ts';
import { builtinKinds } from '../tasks/registry.ts';
import type { KindRegistry } from '../tasks/registry.ts';
import { parseDuration } from '../playbook/duration.ts';
import { loadPlaybook } from '../playbook/loader.ts';
import type { Playbook } from '../playbook/loader.ts';
import { terminalAsk, type AskSecret, type CommandIo, type JsonFields } from './io.ts';
import { backupIdentities } from './passphrase.ts';
import type { AgeIdentity } from '../keys/age.ts';

/** What `bootstrap` and `run` share: resolve the cluster, load the playbook, run it, map the exit code. */
export interface PlaybookRunOptions extends ClusterFlags {
  playbook: string;
  check?: boolean;
  diff?: boolean;
  rotateSecrets?: boolean;
  /** `--timeout`, e.g. `5m`: the budget of each wait. */
  timeout?: string;
  /** `-e NAME=VALUE`, repeatable. */
  extraVars?: string[];
  tags?: string;
  skipTags?: string;
  /** `--list-tasks`: validate and print the tasks that would run, run nothing. */
  listTasks?: boolean;
  /** Settings the playbook cannot do without, checked before anything runs. */
  require?: 'git-url'[];
}

export interface RunEnvironment {
  cwd: string;
  env: NodeJS.ProcessEnv;
  registry: KindRegistry;
  reporter: (view: { diff: boolean }) => Promise<Reporter>;
  /** Where results (not progress) go: stdout. */
  out: NodeJS.WritableStream;
  /** With --json: where results go instead, as fields of the command's document. */
  json?: (fields: JsonFields) => void;
  /** Asks for a key backup's passphrase when stdin is a terminal. */
  ask?: AskSecret;
}

const DEFAULT_TIMEOUT_MS = 5 * 60_000;

/** The playbooks shipped in the package (`playbooks/` next to `src/` and `dist/`). */
export function builtinPlaybook(name: string): string {
  return fileURLToPath(new URL(`../../playbooks/${name}.yaml`, import.meta.url));
}

/** Run a playbook as the CLI does; returns the exit code (see ExitCode). */
export async function runPlaybookCommand(opts: PlaybookRunOptions, io: CommandIo): Promise<number> {
  const ask = terminalAsk(io);
  return runPlaybook(opts, { ...runEnvironment(io), reporter: (view) => io.reporter(view), ...(ask ? { ask } : {}) });
}

/** What a run started from the command line works in: its folder, environment and stdout. */
export function runEnvironment(io: CommandIo): Omit<RunEnvironment, 'reporter'> {
  return { cwd: io.cwd, env: io.env, registry: builtinKinds, out: io.stdout, ...(io.json ? { json: (fields: JsonFields) => io.result(fields) } : {}) };
}

export async function runPlaybook(opts: PlaybookRunOptions, run: RunEnvironment): Promise<number> {
  const settings = runSettings(opts);
  // Without a checkout this clones the branch; the clone goes when the run is over.
  const { cluster, close } = await resolveRunCluster(opts, run.env, run.cwd);
  try {
    const prepared = await prepareRun(cluster, opts, settings, run.registry);
    if (opts.listTasks) {
      if (run.json) run.json(listing(prepared.playbook));
      else run.out.write(outline(prepared.playbook));
      return ExitCode.ok;
    }
    // A backup is opened before the view starts: its passphrase may have to be typed.
    const identities = await backupIdentities(cluster.ageKey, run.env, run.ask);
    const result = await executeRun({ ...prepared, ...(identities ? { identities } : {}) }, await run.reporter({ diff: opts.diff === true }), run.env);
    return exitCodeOf([{ success: result.success, wouldChange: result.recap.wouldChange }], settings.check);
  } finally {
    close();
  }
}

/** What every cluster of a run shares, read from the flags once. */
export interface RunSettings {
  timeoutMs: number;
  extraVars: Record<string, unknown>;
  check: boolean;
  rotateSecrets: boolean;
}

export function runSettings(opts: Pick<PlaybookRunOptions, 'timeout' | 'extraVars' | 'check' | 'rotateSecrets'>): RunSettings {
  const timeoutMs = opts.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(opts.timeout);
  if (timeoutMs === undefined || timeoutMs <= 0) throw usageError(`--timeout ${opts.timeout ?? ''}: expected a duration such as 90s, 5m or 1h`);
  return { timeoutMs, extraVars: parseExtraVars(opts.extraVars ?? []), check: opts.check === true, rotateSecrets: opts.rotateSecrets === true };
}

/** One cluster's run, fully validated; nothing has been touched yet. */
export interface PreparedRun {
  cluster: ResolvedCluster;
  playbook: Playbook;
  settings: RunSettings;
  /** The age identities when the command opened them itself (a key backup). */
  identities?: AgeIdentity[];
}

export async function prepareRun(cluster: ResolvedCluster, opts: PlaybookRunOptions, settings: RunSettings, registry: KindRegistry): Promise<PreparedRun> {
  if (opts.require?.includes('git-url') && cluster.git.url === undefined) {
    throw missingSetting('Git URL', cluster.name, 'git.url', '--git-url', 'FLUXSTRAP_GIT_URL');
  }
  // The whole playbook is validated before the renderer starts and before any task runs.
  const playbook = await loadPlaybook(opts.playbook, {
    registry,
    builtins: builtinVars(cluster, settings.check, settings.rotateSecrets),
    extraVars: settings.extraVars,
    tags: splitList(opts.tags),
    skipTags: splitList(opts.skipTags),
  });
  return { cluster, playbook, settings };
}

/** Run a prepared playbook with its own TaskContext; the engine closes `view` when the run ends. */
export async function executeRun(prepared: PreparedRun, view: Reporter, env: NodeJS.ProcessEnv): Promise<RunResult> {
  const { cluster, playbook, settings } = prepared;
  return runClusterTasks(
    { title: playbook.name, tasks: playbook.tasks, vars: playbook.vars, ...(prepared.identities ? { identities: prepared.identities } : {}) },
    cluster,
    settings,
    view,
    env,
  );
}

/** Tasks of one cluster with their own TaskContext, whose `ctx.log` becomes progress of the running task. */
export async function runClusterTasks(
  run: { title: string; tasks: TaskInstance<TaskContext>[]; vars?: Record<string, unknown>; identities?: AgeIdentity[] },
  cluster: ResolvedCluster,
  settings: Pick<RunSettings, 'check' | 'rotateSecrets' | 'timeoutMs'>,
  view: Reporter,
  env: NodeJS.ProcessEnv,
): Promise<RunResult> {
  const reporter = new ProgressTracker(view);
  const ctx: TaskContext = createTaskContext({
    cluster,
    rotateSecrets: settings.rotateSecrets,
    timeoutMs: settings.timeoutMs,
    log: (message) => reporter.log(message),
    env,
    ...(run.identities ? { ageIdentities: run.identities } : {}),
  });
  try {
    return await runTasks({ title: run.title, tasks: run.tasks, ctx, reporter, check: settings.check, ...(run.vars ? { vars: run.vars } : {}) });
  } finally {
    ctx.close();
  }
}

/** 1 when any run failed, else 3 when --check found something to change, else 0. */
export function exitCodeOf(runs: { success: boolean; wouldChange: number }[], check: boolean): number {
  return exitCodeOfOutcome({ failed: runs.some((r) => !r.success), changesPending: check && runs.some((r) => r.wouldChange > 0) });
}

/** `--list-tasks --json`: the playbook's tasks as data. */
export function listing(playbook: Playbook): JsonFields {
  return {
    playbook: playbook.name,
    tasks: playbook.tasks.map((t, i) => ({ name: t.name, kind: t.kind.kind, tags: playbook.tags[i] ?? [], ...(t.location ? { location: t.location } : {}) })),
  };
}

/** The playbook as `--list-tasks` prints it: one line per task, kind, tags and where it is written. */
export function outline(playbook: Playbook): string {
  const lines = playbook.tasks.map((t, i) => {
    const tags = playbook.tags[i] ?? [];
    const where = t.location?.line !== undefined ? `  ${t.location.file ?? ''}:${t.location.line}` : '';
    return `  ${t.name}  [${t.kind.kind}]${tags.length > 0 ? `  tags: ${tags.join(',')}` : ''}${where}`;
  });
  return `${playbook.name}\n${lines.join('\n')}\n`;
}

/**
 * What templates and `when:` see besides `vars`: public facts only. Secrets (tokens, keys) are
 * deliberately absent, so no playbook can print or template one.
 */
function builtinVars(cluster: ResolvedCluster, check: boolean, rotateSecrets: boolean): Record<string, unknown> {
  return {
    cluster: {
      name: cluster.name,
      path: cluster.path,
      repo_dir: cluster.repoDir,
      git: { url: cluster.git.url ?? null, branch: cluster.git.branch, auth: { type: cluster.git.auth.type }, provider: cluster.git.provider },
      kube: { context: cluster.kube.context ?? null, kubeconfig: cluster.kube.kubeconfig ?? null },
    },
    check_mode: check,
    rotate_secrets: rotateSecrets,
  };
}

/** `-e NAME=VALUE`: the value is read as a YAML scalar, so `-e replicas=2` is a number. */
export function parseExtraVars(pairs: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(pair);
    if (!m) throw usageError(`-e ${pair}: expected NAME=VALUE`, 'e.g. -e replicas=2 -e env=prod');
    const [, name, raw] = m as unknown as [string, string, string];
    let value: unknown;
    try {
      value = parseYaml(raw);
    } catch {
      value = raw;
    }
    setOwn(out, name, value ?? raw);
  }
  return out;
}

function splitList(s: string | undefined): string[] | undefined {
  if (s === undefined) return undefined;
  return s
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

/**
 * Forwards events and remembers which task is running, so a kind's `ctx.log(message)` becomes
 * progress of that task without the kind knowing its place in the playbook.
 */
class ProgressTracker implements Reporter {
  private readonly inner: Reporter;
  private current: TaskRef | undefined;

  constructor(inner: Reporter) {
    this.inner = inner;
  }

  emit(e: RunEvent): void {
    if (e.type === 'task-start') this.current = e.task;
    if (e.type === 'task-end') this.current = undefined;
    this.inner.emit(e);
  }

  log(message: string): void {
    if (this.current) this.inner.emit({ type: 'task-progress', task: this.current, message });
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
