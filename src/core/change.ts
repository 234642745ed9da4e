/**
 * A planned change: what a task would do to one target. Plans are data, so `--check`, `--diff`,
 * `--json` and the recap are views of the same values. `data` carries what `apply` needs and is
 * never rendered; `before`/`after` are for `--diff` and must already be masked when `sensitive`.
 */
export type Action = 'create' | 'update' | 'delete' | 'run';

/** The rendered form of a change: everything but `data`, safe to print and to serialize. */
export interface ChangeView {
  action: Action;
  /** What is changed, e.g. `Secret flux-system/sops-age` or `file .sops.yaml`. */
  target: string;
  /** One human line, e.g. `add creation rule for clusters/prod`. */
  summary: string;
  before?: string;
  after?: string;
  sensitive?: boolean;
}

/**
 * The hand-off from a kind's plan to its apply, typed by `TaskKind`'s fourth parameter `D`:
 * apply reads it with `dataOf(change)`, a `D`, without a cast.
 */
export interface Change<D = unknown> extends ChangeView {
  data?: D;
  /**
   * Under --check, the tasks after this one would observe what only applying it makes (a
   * repository read with a deploy key not registered yet): the run stops there, the rest
   * skipped, instead of failing on what is not there yet. Never rendered.
   */
  checkHorizon?: true;
}

/** The data a kind's plan put in its change; a change without it is a bug of the kind. */
export function dataOf<D>(change: Change<D>): D {
  if (change.data === undefined) throw new Error(`change ${change.action} ${change.target} carries no data for apply`);
  return change.data;
}

export function viewOf(change: Change): ChangeView {
  const { data: _data, checkHorizon: _horizon, ...view } = change;
  return view;
}

export const MASK = '***';

/** Replace every value of a string map by a hash-free mask, keeping the keys (for Secret diffs). */
export function maskValues(values: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(values)
      .sort()
      .map((k) => [k, MASK]),
  );
}
