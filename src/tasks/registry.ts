import type { TaskKind } from '../core/task.ts';
import type { TaskContext } from './context.ts';

/**
 * Task kind names, as written in playbooks, mapped to their modules. Each entry imports its module
 * only when a playbook uses the kind, and kind modules take the Kubernetes client from the context
 * (`ctx.kube()`) rather than importing it, so loading and validating a playbook stays cheap.
 *
 * To add a kind: one line here, `name: () => import('./file.ts').then((m) => m.exportedKind)`.
 */
export type AnyTaskKind = TaskKind<unknown, unknown, TaskContext>;
export type KindLoader = () => Promise<AnyTaskKind>;
export type KindRegistry = Readonly<Record<string, KindLoader>>;

export const builtinKinds: KindRegistry = {};

/** Load a kind, checking that the module's `kind` matches the name it is registered under. */
export async function loadKind(registry: KindRegistry, name: string): Promise<AnyTaskKind | undefined> {
  const loader = Object.hasOwn(registry, name) ? registry[name] : undefined;
  if (!loader) return undefined;
  const kind = await loader();
  if (kind.kind !== name) throw new Error(`task kind registered as "${name}" calls itself "${kind.kind}"`);
  return kind;
}
