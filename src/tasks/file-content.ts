import { join } from 'node:path';
import type { z } from 'zod';
import { readTextIfExists, writeAtomic } from '../adapters/files.ts';
import { dataOf } from '../core/change.ts';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';

/**
 * The one mechanism behind every repository file fluxstrap writes: observe the file (and any file
 * the decision depends on), compute the content it should have, and plan a create or update with
 * before/after, so that `--check`, `--diff`, `--json`, the recap and idempotency all come from
 * the same comparison. Paths are relative to the repository.
 */

/** What a file kind needs of the run: where the repository is (TaskContext satisfies it). */
export interface RepoContext {
  readonly paths: { readonly repo: string };
}

export interface FileState {
  /** The task's file, relative to the repository. */
  file: string;
  /** Its content, or undefined when it does not exist. */
  content: string | undefined;
  /** Other files the decision reads, by relative path; undefined when absent. */
  inputs: Readonly<Record<string, string | undefined>>;
}

export interface Desired {
  content: string;
  /** One human line for the change, e.g. `add creation rule for clusters/prod`. */
  summary: string;
}

export interface FileKindSpec<P> {
  kind: string;
  params: z.ZodType<P>;
  file(params: P): string;
  inputs?(params: P): string[];
  /**
   * Pure: the content the file should have, or undefined to leave it as it is. Unreadable
   * content is an E_CONFIG error with file and line; nothing is written then.
   */
  desired(params: P, state: FileState): Desired | undefined;
  notes?(params: P, state: FileState): string[];
  /** Mode of a new file (an existing file keeps its mode). */
  mode?: number;
}

export function fileKind<P>(spec: FileKindSpec<P>): TaskKind<P, FileState, RepoContext, string> {
  const kind: TaskKind<P, FileState, RepoContext, string> = {
    kind: spec.kind,
    params: spec.params,
    async observe(params, ctx) {
      const file = spec.file(params);
      const inputs: Record<string, string | undefined> = {};
      for (const input of spec.inputs?.(params) ?? []) inputs[input] = await readTextIfExists(join(ctx.paths.repo, input));
      return { file, content: await readTextIfExists(join(ctx.paths.repo, file)), inputs };
    },
    plan(params, state): Change<string>[] {
      const want = spec.desired(params, state);
      if (want === undefined || want.content === state.content) return [];
      return [
        {
          action: state.content === undefined ? 'create' : 'update',
          target: `file ${state.file}`,
          summary: want.summary,
          ...(state.content !== undefined ? { before: state.content } : {}),
          after: want.content,
          data: want.content,
        },
      ];
    },
    async apply(change, params, ctx) {
      await writeAtomic(join(ctx.paths.repo, spec.file(params)), dataOf(change), {
        within: ctx.paths.repo,
        ...(spec.mode === undefined ? {} : { mode: spec.mode }),
      });
    },
  };
  if (spec.notes) kind.notes = (params, state) => spec.notes?.(params, state) ?? [];
  return kind;
}
