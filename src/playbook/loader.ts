import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Pair, YAMLMap } from 'yaml';
import { z } from 'zod';
import { readText } from '../adapters/files.ts';
import { configError, quoted, usageError } from '../core/errors.ts';
import { setOwn } from '../core/own.ts';
import type { TaskInstance } from '../core/task.ts';
import type { TaskContext } from '../tasks/context.ts';
import { loadKind } from '../tasks/registry.ts';
import type { KindRegistry } from '../tasks/registry.ts';
import { DurationSchema, durationMs } from './duration.ts';
import { ExprError, UndefinedVariable, boundedValue, evaluate, isTemplate, parseExpr, parseTemplate, renderTemplate, truthy } from './expr.ts';
import type { Expr, Scope } from './expr.ts';
import { YamlSource } from '../adapters/yaml-source.ts';

/**
 * Playbooks: Ansible's shape (name, vars, tasks; each task names exactly one kind), checked whole
 * before anything runs. Variables are known before the run (config, flags, `vars`, `-e`), so
 * templates are rendered and every task's params validated against its kind's schema here, and
 * each problem is reported at its file:line:col.
 */

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Keys a task may carry besides its kind, as in Ansible. */
export const TaskOptionsSchema = z.strictObject({
  name: z.string().min(1).optional().describe('What the task does, shown in progress and the recap; may use {{ vars }}.'),
  when: z
    .union([z.string().min(1), z.boolean()])
    .optional()
    .describe('Condition (no {{ }} needed): e.g. `cluster.git.auth.type == "ssh"`.'),
  check_mode: z.boolean().optional().describe('true: always only report (as under --check); false: act even under --check.'),
  retries: z.number().int().min(0).max(1000).optional().describe('Extra attempts after a failure at the edges (API, network, processes).'),
  delay: DurationSchema.optional().describe('Pause between attempts (seconds, or 10s / 1m); default 1s.'),
  ignore_errors: z.boolean().optional().describe('A failure of this task does not stop the run.'),
  tags: z.array(z.string().regex(IDENT)).optional().describe('Select with --tags / --skip-tags; `always` runs unless skipped by name.'),
  notify: z
    .union([z.string().min(1), z.array(z.string().min(1))])
    .optional()
    .describe('Handlers (by name) to run once after the tasks when this task changes something.'),
});
type TaskOptions = z.infer<typeof TaskOptionsSchema>;
const OPTION_KEYS = new Set(Object.keys(TaskOptionsSchema.shape));

export const PlaybookEnvelopeSchema = z.strictObject({
  name: z.string().min(1).describe('Title of the run, shown first and in the recap.'),
  vars: z
    .record(z.string().regex(IDENT, 'variable names are identifiers'), z.unknown())
    .optional()
    .describe('Variables for {{ }} and when:, rendered in order; -e NAME=VALUE overrides them.'),
  tasks: z.array(z.record(z.string(), z.unknown())).min(1),
  handlers: z
    .array(z.record(z.string(), z.unknown()))
    .optional()
    .describe('Tasks that run after the others, once, in this order, only when a task that notifies them changed something.'),
});

export interface Playbook {
  name: string;
  file: string;
  /** Every variable a template or condition can see (built-ins, `vars`, `-e`). */
  vars: Scope;
  /** The tasks, then the handlers (each guarded by whether it was notified). */
  tasks: TaskInstance<TaskContext>[];
  /** Tags of each entry of `tasks`, same order (for `--list-tasks`). */
  tags: string[][];
}

export interface LoadOptions {
  registry: KindRegistry;
  /** Variables fluxstrap defines (cluster, check_mode, …); a playbook may not redefine them. */
  builtins: Scope;
  /** `-e NAME=VALUE`: override the playbook's vars, as Ansible's extra vars do. */
  extraVars?: Readonly<Record<string, unknown>>;
  tags?: readonly string[] | undefined;
  skipTags?: readonly string[] | undefined;
}

export async function loadPlaybook(file: string, opts: LoadOptions): Promise<Playbook> {
  return compilePlaybook(await readText(file), file, opts);
}

export async function compilePlaybook(text: string, file: string, opts: LoadOptions): Promise<Playbook> {
  const src = YamlSource.parse(text, file);
  const root = src.doc.contents;
  if (!isMap(root)) throw src.error('a playbook is a mapping with name, vars and tasks', root);
  const envelope = PlaybookEnvelopeSchema.safeParse(src.toJS());
  if (!envelope.success) throw src.schemaError(root, envelope.error, '');

  const vars = resolveVars(src, root.get('vars', true), opts);
  const tasksNode = root.get('tasks', true);
  const taskNodes = isSeq(tasksNode) ? tasksNode.items : [];
  const compiled: Compiled[] = [];
  for (const node of taskNodes) compiled.push(await compileTask(src, node, vars, opts.registry));
  const handlersNode = root.get('handlers', true);
  const handlers: Compiled[] = [];
  for (const node of isSeq(handlersNode) ? handlersNode.items : []) handlers.push(await compileTask(src, node, vars, opts.registry));

  const tasks = selectByTags(compiled, opts);
  const byName = indexHandlers(src, handlers, compiled);
  // Positions in the run are known only now, after tag selection; handlers may notify later handlers.
  const position = new Map([...byName.keys()].map((name, i) => [name, tasks.length + i]));
  const bound = (c: Compiled): TaskInstance<TaskContext> =>
    c.notify.length === 0 ? c.task : { ...c.task, notify: c.notify.map((n) => position.get(n) as number) };
  return {
    name: String(render(src, root.get('name', true), vars)),
    file,
    vars,
    tasks: [...tasks.map(bound), ...[...byName.values()].map((h) => ({ ...bound(h), handler: true }))],
    tags: [...tasks, ...byName.values()].map((c) => c.tags),
  };
}

/** Render `vars` in order, each seeing the built-ins, the vars above it and the extra vars. */
function resolveVars(src: YamlSource, node: unknown, opts: LoadOptions): Scope {
  const extra = opts.extraVars ?? {};
  const clash = Object.keys(extra).find((name) => Object.hasOwn(opts.builtins, name));
  if (clash !== undefined) throw usageError(`-e ${clash}: "${clash}" is a built-in variable and cannot be set`);
  const scope: Record<string, unknown> = { ...opts.builtins, ...extra };
  if (!isMap(node)) return scope;
  for (const pair of node.items) {
    const name = String(isScalar(pair.key) ? pair.key.value : '');
    if (Object.hasOwn(opts.builtins, name)) {
      throw src.error(
        `variable "${name}" is built in and cannot be redefined`,
        pair.key,
        `built-ins: ${Object.keys(opts.builtins).join(', ')}`,
        `vars.${name}`,
      );
    }
    if (!Object.hasOwn(extra, name)) setOwn(scope, name, renderBounded(src, pair.value, scope));
  }
  return scope;
}

interface Compiled {
  task: TaskInstance<TaskContext>;
  tags: string[];
  notify: string[];
  /** Where `notify:` is written, for a handler name that does not exist. */
  notifyNode: unknown;
}

/** Handlers by name, checking that names are unique and that every notify names one. */
function indexHandlers(src: YamlSource, handlers: Compiled[], tasks: Compiled[]): Map<string, Compiled> {
  const byName = new Map<string, Compiled>();
  for (const h of handlers) {
    if (byName.has(h.task.name))
      throw configError(`two handlers are named "${h.task.name}"`, h.task.location ?? { file: src.file }, 'notify finds handlers by name');
    byName.set(h.task.name, h);
  }
  for (const t of [...tasks, ...handlers]) {
    const unknown = t.notify.find((n) => !byName.has(n));
    if (unknown !== undefined) {
      throw src.error(
        `no handler is named "${unknown}"`,
        t.notifyNode,
        byName.size > 0 ? `handlers: ${[...byName.keys()].join(', ')}` : 'define it under handlers:',
      );
    }
  }
  return byName;
}

async function compileTask(src: YamlSource, node: unknown, vars: Scope, registry: KindRegistry): Promise<Compiled> {
  if (!isMap(node)) throw src.error('a task is a mapping: a name, one task kind and options', node);
  const kindPair = findKindPair(src, node, registry);
  const kindName = keyOf(kindPair);
  const kind = await loadKind(registry, kindName);
  if (!kind) throw unknownKey(src, kindPair, registry);

  const optionsNode = node.clone() as YAMLMap;
  optionsNode.items = node.items.filter((p) => p !== kindPair);
  const options = TaskOptionsSchema.safeParse(src.toJS(optionsNode));
  if (!options.success) throw src.schemaError(node, options.error, '');
  const o: TaskOptions = options.data;

  const paramsNode = kindPair.value;
  const raw = paramsNode === null || (isScalar(paramsNode) && paramsNode.value === null) ? {} : renderBounded(src, paramsNode, vars);
  const params = strictParams(kind.params).safeParse(raw);
  if (!params.success) throw src.schemaError(paramsNode ?? kindPair.key, params.error, kindName);

  const name = o.name === undefined ? kindName : String(render(src, node.get('name', true), vars));
  const location = src.at(node);
  const task: TaskInstance<TaskContext> = {
    name,
    kind,
    params: params.data,
    location,
    ...(o.when !== undefined ? { when: compileWhen(src, node.get('when', true), o.when, vars) } : {}),
    ...(o.retries !== undefined ? { retries: o.retries } : {}),
    ...(o.delay !== undefined ? { retryDelayMs: durationMs(o.delay) } : {}),
    ...(o.ignore_errors !== undefined ? { ignoreErrors: o.ignore_errors } : {}),
    ...(o.check_mode !== undefined ? { checkMode: o.check_mode } : {}),
  };
  const notify = o.notify === undefined ? [] : typeof o.notify === 'string' ? [o.notify] : o.notify;
  return { task, tags: o.tags ?? [], notify, notifyNode: node.get('notify', true) };
}

/**
 * A kind's params as a playbook must write them: an object schema refuses unknown keys even if
 * the kind declared it loosely, since a misspelt optional key silently ignored is a wrong run.
 */
export function strictParams(schema: z.ZodType): z.ZodType {
  return schema instanceof z.ZodObject ? schema.strict() : schema;
}

const keyOf = (pair: Pair): string => String(isScalar(pair.key) ? pair.key.value : pair.key);

/** The one key that is not a task option: the kind. Unknown keys are reported where they stand. */
function findKindPair(src: YamlSource, node: YAMLMap, registry: KindRegistry): Pair {
  const candidates = node.items.filter((p) => !OPTION_KEYS.has(keyOf(p)));
  const first = candidates[0];
  if (!first) {
    throw src.error(
      'this task names no task kind',
      node,
      `add one key naming what it ensures: ${Object.keys(registry).sort().join(', ') || '(no kinds registered)'}`,
    );
  }
  if (candidates.length > 1) {
    const unknown = candidates.find((p) => !Object.hasOwn(registry, keyOf(p)));
    if (unknown) throw unknownKey(src, unknown, registry);
    throw src.error(`a task names exactly one kind; this one has ${candidates.map(keyOf).join(' and ')}`, candidates[1]?.key, 'split it into two tasks');
  }
  return first;
}

function unknownKey(src: YamlSource, pair: Pair, registry: KindRegistry) {
  const key = keyOf(pair);
  const known = [...Object.keys(registry), ...OPTION_KEYS];
  const close = known.filter((k) => editDistance(k, key) <= 2);
  return src.error(
    `unknown task kind or option ${quoted(key)}`,
    pair.key,
    close.length > 0
      ? `did you mean ${close.map((k) => `"${k}"`).join(' or ')}?`
      : `task kinds: ${Object.keys(registry).sort().join(', ') || '(none)'}; options: ${[...OPTION_KEYS].join(', ')}`,
  );
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}

/** A YAML node to a value, rendering `{{ }}` in strings; errors point at the scalar. */
function render(src: YamlSource, node: unknown, scope: Scope): unknown {
  if (isAlias(node)) return render(src, src.aliasTarget(node), scope);
  if (isMap(node)) return Object.fromEntries(node.items.map((pair) => [keyOf(pair), render(src, pair.value, scope)]));
  if (isSeq(node)) return node.items.map((item) => render(src, item, scope));
  if (isScalar(node)) {
    if (typeof node.value !== 'string' || !isTemplate(node.value)) return node.value;
    try {
      return renderTemplate(parseTemplate(node.value), scope);
    } catch (e) {
      throw exprError(src, node, e);
    }
  }
  return null;
}

/** render, refusing a value too large to walk (see boundedValue). */
function renderBounded(src: YamlSource, node: unknown, scope: Scope): unknown {
  try {
    return boundedValue(render(src, node, scope));
  } catch (e) {
    throw exprError(src, node, e);
  }
}

function exprError(src: YamlSource, node: unknown, e: unknown) {
  if (e instanceof UndefinedVariable) return src.error(e.message, node, 'define it under vars:, or pass -e NAME=VALUE');
  if (e instanceof ExprError) return src.error(`bad expression: ${e.message}`, node);
  return e;
}

function compileWhen(src: YamlSource, node: unknown, when: string | boolean, vars: Scope): (vars: Scope) => boolean {
  if (typeof when === 'boolean') return () => when;
  // Ansible's `when` is an expression already; accept `{{ x }}` too, since people write it.
  const text = /^\s*\{\{(.*)\}\}\s*$/s.exec(when)?.[1] ?? when;
  let expr: Expr;
  try {
    expr = parseExpr(text);
    // Variables are all known now: a typo must fail before the run, not halfway through it.
    evaluate(expr, vars);
  } catch (e) {
    throw exprError(src, node, e);
  }
  return (scope) => truthy(evaluate(expr, scope));
}

function selectByTags(compiled: Compiled[], opts: LoadOptions): Compiled[] {
  const all = new Set(compiled.flatMap((c) => c.tags));
  for (const tag of [...(opts.tags ?? []), ...(opts.skipTags ?? [])]) {
    if (!all.has(tag))
      throw usageError(`no task has the tag "${tag}"`, all.size > 0 ? `tags in this playbook: ${[...all].sort().join(', ')}` : 'this playbook has no tags');
  }
  return compiled.filter(({ tags }) => {
    if (opts.skipTags?.some((t) => tags.includes(t))) return false;
    if (!opts.tags || opts.tags.length === 0) return true;
    return tags.includes('always') || opts.tags.some((t) => tags.includes(t));
  });
}
