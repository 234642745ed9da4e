import type { z } from 'zod';
import type { Change } from './change.ts';
import type { Location } from './errors.ts';

/** What the engine tells a task about its run. */
export interface TaskRun {
  /**
   * This task's check mode, decided once by the engine: its own `check_mode:` if it has one, else
   * the run's `--check`. Apply is never called under it; observe must not write either.
   */
  readonly check: boolean;
}

/**
 * One kind of thing fluxstrap ensures (a namespace, a Secret, a file...). The engine owns the
 * semantics (order, check mode, retries, convergence); a kind only says how to look, compare and act.
 *
 * - `observe` reads the world through the context's adapters and returns facts, never decisions.
 * - `plan` is pure: params + observed facts → changes; an empty plan means the target is as wanted.
 * - `apply` carries out one planned change; `D` is what plan puts in `data` for it.
 */
export interface TaskKind<P = unknown, O = unknown, C = unknown, D = unknown> {
  readonly kind: string;
  /** One source for the TypeScript type, the runtime check of playbooks and the JSON Schema. */
  readonly params: z.ZodType<P>;
  observe(params: P, ctx: C, run: TaskRun): Promise<O>;
  plan(params: P, observed: O, ctx: C): Change<D>[];
  apply(change: Change<D>, params: P, ctx: C): Promise<void>;
  /**
   * Optional: facts worth reporting after the task has converged (e.g. the revision applied),
   * derived from the final observation. Never secret values.
   */
  notes?(params: P, observed: O): string[];
}

/** A task as it stands in a playbook, validated and bound to its kind. */
export interface TaskInstance<C = unknown> {
  name: string;
  kind: TaskKind<unknown, unknown, C>;
  params: unknown;
  location?: Location;
  /** Evaluated against the run's variables; false skips the task. */
  when?: (vars: Readonly<Record<string, unknown>>) => boolean;
  /** Attempts for observe/apply failures that are worth retrying (e.g. API not ready yet). */
  retries?: number;
  retryDelayMs?: number;
  ignoreErrors?: boolean;
  /** Force check mode for this task (true) or run it even under --check (false), as in Ansible. */
  checkMode?: boolean;
  /** A handler: it runs only once a task before it that notifies it has changed (or would change) something. */
  handler?: boolean;
  /** Positions, in the run's task list, of the handlers this task notifies when it changes something. */
  notify?: number[];
}
