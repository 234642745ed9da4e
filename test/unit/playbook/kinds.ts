import { z } from 'zod';
import type { TaskKind } from '../../../src/core/task.ts';
import type { AnyTaskKind, KindRegistry } from '../../../src/tasks/registry.ts';

/** Tiny kinds for loader tests, so they do not depend on the real kinds' params. */
const EchoParams = z.strictObject({
  message: z.string(),
  count: z.number().int().optional(),
  extra: z.record(z.string(), z.string()).optional(),
});

export const echo: TaskKind<z.infer<typeof EchoParams>, null> = {
  kind: 'echo',
  params: EchoParams,
  observe: () => Promise.resolve(null),
  plan: () => [],
  apply: () => Promise.resolve(),
};

export const other: TaskKind<Record<string, never>, null> = { ...echo, kind: 'other', params: z.strictObject({}) } as never;

/** Declared with z.object (unknown keys stripped): a playbook must still refuse a misspelt key. */
export const loose: TaskKind<{ file: string }, null> = { ...echo, kind: 'loose', params: z.object({ file: z.string() }) } as never;

/** A registry that records which kinds were imported, to prove loading is lazy. */
export function testRegistry(): { registry: KindRegistry; loaded: string[] } {
  const loaded: string[] = [];
  const lazy = (k: unknown) => () => {
    loaded.push((k as AnyTaskKind).kind);
    return Promise.resolve(k as AnyTaskKind);
  };
  return { registry: { echo: lazy(echo), other: lazy(other), loose: lazy(loose) }, loaded };
}
