import type { Change } from '../../src/core/change.ts';
import type { FileState, RepoContext } from '../../src/tasks/file-content.ts';
import type { TaskKind } from '../../src/core/task.ts';

/** Plan a file task kind against given contents, without touching the disk (plans are pure). */
export function planFile<P>(
  kind: TaskKind<P, FileState, RepoContext>,
  params: unknown,
  content: string | undefined,
  inputs: Record<string, string | undefined> = {},
): { changes: Change[]; after: string | undefined; notes: string[] } {
  const p = kind.params.parse(params);
  const ctx: RepoContext = { paths: { repo: '/nonexistent' } };
  const state: FileState = { file: 'the-file', content, inputs };
  const changes = kind.plan(p, state, ctx);
  const after = changes[0]?.after;
  // The plan of the planned result must be empty: that is what makes a second run report nothing.
  if (after !== undefined && kind.plan(p, { ...state, content: after }, ctx).length !== 0) {
    throw new Error(`${kind.kind}: planning again on the result still finds changes`);
  }
  return { changes, after, notes: kind.notes?.(p, state) ?? [] };
}
