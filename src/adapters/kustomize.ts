import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { yamlValues } from '../core/bounded-yaml.ts';
import { FluxstrapError } from '../core/errors.ts';
import { getOwn, setOwn } from '../core/own.ts';
import { re2 } from '../core/re2.ts';
import { readText, writeAtomic } from './files.ts';
import type { KubeObject } from './kube/port.ts';

/**
 * `kustomize build` for what a Flux `flux-system/` directory uses, natively, so the decryption
 * patch is in the objects fluxstrap applies on the very first run, without a kustomize binary:
 * - `resources`: local files and directories (a directory is built as its own kustomization);
 * - `patches`: inline (`patch`) or file (`path`), with `target` selectors (group, version, kind,
 *   name, namespace as anchored regexes), as JSON6902 operation lists or as strategic-merge
 *   patches, which on custom resources are JSON merge patches;
 * - `labels` without `includeSelectors`/`includeTemplates` (metadata labels only).
 * Anything else (generators, images, components, selectors by label, strategic merges of lists in
 * built-in kinds, `$patch` directives, remote bases) is built with `kubectl kustomize` instead,
 * and the result says so and why.
 */

export interface KustomizeResult {
  objects: KubeObject[];
  engine: 'native' | 'kubectl';
  /** Why the native builder handed over to kubectl. */
  fallbackReason?: string;
}

class Unsupported extends Error {}

/** The names kustomize reads a kustomization from, in its order of preference. */
export const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'] as const;

const KNOWN_KEYS = new Set(['apiVersion', 'kind', 'resources', 'patches', 'labels']);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface PatchTarget {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

/** What a build reads besides the files: the parse cache's folder comes from `env` ($XDG_CACHE_HOME). */
interface Build {
  root: string;
  env: NodeJS.ProcessEnv;
}

export async function kustomizeBuild(dir: string, opts: { kubectl?: string; env?: NodeJS.ProcessEnv } = {}): Promise<KustomizeResult> {
  try {
    const root = resolve(dir);
    return { objects: await buildDir(root, [], { root, env: opts.env ?? {} }), engine: 'native' };
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e;
    return { objects: await kubectlKustomize(dir, opts.kubectl ?? 'kubectl'), engine: 'kubectl', fallbackReason: e.message };
  }
}

async function kubectlKustomize(dir: string, kubectl: string): Promise<KubeObject[]> {
  const { execa } = await import('execa');
  const res = await execa(kubectl, ['kustomize', dir], { reject: false });
  if (res.failed) {
    throw new FluxstrapError('E_PROCESS', `kubectl kustomize failed: ${res.stderr.split('\n')[0] ?? res.shortMessage}`, {
      location: { file: dir },
      hint: 'the native builder covers resources, patches and labels; other features need a working kubectl',
    });
  }
  return parseObjects(res.stdout, dir);
}

/**
 * Parsing gotk-components.yaml (~150 KB) costs ~150 ms, most of a no-op bootstrap's own time, and
 * it changes only with a Flux upgrade: keep large parsed files as JSON, addressed by content hash.
 * Files holding a Secret are never cached, so no secret value lands in the cache.
 */
const CACHE_MIN_BYTES = 32 * 1024;

function parseCacheFile(text: string, env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'fluxstrap', 'objects', `${createHash('sha256').update(text).digest('hex')}.json`);
}

export async function parseObjectsCached(text: string, file: string, env: NodeJS.ProcessEnv): Promise<KubeObject[]> {
  if (text.length < CACHE_MIN_BYTES) return parseObjects(text, file);
  const cached = parseCacheFile(text, env);
  try {
    return JSON.parse(await readFile(cached, 'utf8')) as KubeObject[];
  } catch {
    // not cached yet, or unreadable: parse it
  }
  const objects = parseObjects(text, file);
  if (!objects.some((o) => o.kind === 'Secret')) {
    await writeAtomic(cached, JSON.stringify(objects), { dirMode: 0o700 }).catch(() => undefined);
  }
  return objects;
}

export function parseObjects(text: string, file: string): KubeObject[] {
  const out: KubeObject[] = [];
  for (const value of yamlValues(text, file)) {
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new FluxstrapError('E_CONFIG', 'a YAML document is not a Kubernetes object', { location: { file } });
    }
    const obj = value as KubeObject;
    if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string' || typeof obj.metadata?.name !== 'string') {
      throw new FluxstrapError('E_CONFIG', 'a Kubernetes object lacks apiVersion, kind or metadata.name', { location: { file } });
    }
    out.push(obj);
  }
  return out;
}

async function buildDir(dir: string, seen: string[], build: Build): Promise<KubeObject[]> {
  if (seen.includes(dir)) throw new FluxstrapError('E_CONFIG', 'kustomization resources form a cycle', { location: { file: dir } });
  const file = await kustomizationFile(dir);
  const k = (yamlValues(await readText(file), file)[0] ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(k)) if (!KNOWN_KEYS.has(key)) throw new Unsupported(`${relative(build.root, file) || file} uses \`${key}\``);

  let objects: KubeObject[] = [];
  for (const entry of asList(k.resources, file, 'resources')) {
    if (typeof entry !== 'string') throw new FluxstrapError('E_CONFIG', 'a resources entry is not a string', { location: { file, field: 'resources' } });
    if (/^[a-z]+:\/\//i.test(entry) || entry.startsWith('github.com/')) throw new Unsupported(`remote resource ${entry}`);
    const path = resolve(dir, entry);
    let isDir: boolean;
    try {
      isDir = (await stat(path)).isDirectory();
    } catch {
      throw new FluxstrapError('E_NOT_FOUND', `resource ${entry} does not exist`, { location: { file, field: 'resources' } });
    }
    objects.push(...(isDir ? await buildDir(path, [...seen, dir], build) : await parseObjectsCached(await readText(path), path, build.env)));
  }

  for (const [i, p] of asList(k.patches, file, 'patches').entries()) {
    const where = { file, field: `patches[${i}]` };
    objects = await applyPatchEntry(objects, asMap(p, where), dir, where);
  }
  for (const [i, l] of asList(k.labels, file, 'labels').entries()) {
    const entry = asMap(l, { file, field: `labels[${i}]` }) as {
      pairs?: Record<string, string>;
      includeSelectors?: boolean;
      includeTemplates?: boolean;
      fields?: unknown;
    };
    if (entry.includeSelectors || entry.includeTemplates || entry.fields !== undefined) throw new Unsupported('labels with selectors, templates or fields');
    for (const obj of objects) {
      obj.metadata.labels = { ...obj.metadata.labels, ...stringMap(entry.pairs ?? {}) };
    }
  }
  return objects;
}

async function kustomizationFile(dir: string): Promise<string> {
  const names = await readdir(dir).catch(() => {
    throw new FluxstrapError('E_NOT_FOUND', 'no such directory', { location: { file: dir } });
  });
  const found = KUSTOMIZATION_FILES.find((n) => names.includes(n));
  if (!found) {
    throw new FluxstrapError('E_NOT_FOUND', 'no kustomization.yaml in this directory', {
      location: { file: dir },
      hint: 'a Flux bootstrap directory holds kustomization.yaml listing gotk-components.yaml and gotk-sync.yaml',
    });
  }
  return join(dir, found);
}

function asList(value: unknown, file: string, field: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new FluxstrapError('E_CONFIG', `${field} must be a list`, { location: { file, field } });
  return value;
}

function asMap(value: unknown, where: { file: string; field: string }): Record<string, unknown> {
  if (!isMap(value as Json)) throw new FluxstrapError('E_CONFIG', `${where.field} must be a map`, { location: where });
  return value as Record<string, unknown>;
}

function stringMap(m: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));
}

async function applyPatchEntry(
  objects: KubeObject[],
  entry: Record<string, unknown>,
  dir: string,
  where: { file: string; field: string },
): Promise<KubeObject[]> {
  for (const key of Object.keys(entry)) {
    if (key !== 'patch' && key !== 'path' && key !== 'target') throw new Unsupported(`${where.field} uses \`${key}\``);
  }
  const patchFile = typeof entry.path === 'string' ? resolve(dir, entry.path) : where.file;
  const text = typeof entry.patch === 'string' ? entry.patch : typeof entry.path === 'string' ? await readText(patchFile) : undefined;
  if (text === undefined) throw new FluxstrapError('E_CONFIG', 'a patch needs `patch` or `path`', { location: where });
  const docs = yamlValues(text, patchFile).filter((d) => d !== null) as Json[];
  if (docs.length !== 1) throw new Unsupported(`${where.field} holds ${docs.length} documents`);
  const patch = docs[0] as Json;
  const target = entry.target as (PatchTarget & Record<string, unknown>) | undefined;
  if (target) {
    for (const key of Object.keys(target)) {
      if (!['group', 'version', 'kind', 'name', 'namespace'].includes(key)) throw new Unsupported(`${where.field} selects by ${key}`);
    }
  }

  if (Array.isArray(patch)) {
    if (!target) throw new FluxstrapError('E_CONFIG', 'a JSON6902 patch needs a target', { location: where });
    // Like kustomize, a target that selects nothing is not an error.
    return objects.map((obj) => (matches(obj, target, where) ? (applyJson6902(obj as unknown as Json, patch, where) as unknown as KubeObject) : obj));
  }

  if (typeof patch !== 'object' || patch === null)
    throw new FluxstrapError('E_CONFIG', 'a patch must be a list of operations or an object', { location: where });
  if (JSON.stringify(patch).includes('"$patch"') || JSON.stringify(patch).includes('"$setElementOrder'))
    throw new Unsupported(`${where.field} uses strategic-merge directives`);
  const meta = (patch.metadata ?? {}) as { name?: string; namespace?: string };
  const kind = typeof patch.kind === 'string' ? patch.kind : '';
  // Without a target the patch names its object by kind, name and namespace, exactly (no
  // namespace means a cluster-scoped object), and kustomize fails when it is not there.
  const selector: PatchTarget = target ?? {
    kind: escapeRegex(kind),
    name: escapeRegex(String(meta.name)),
    namespace: escapeRegex(meta.namespace ?? ''),
  };
  let matched = false;
  const out = objects.map((obj) => {
    if (!matches(obj, selector, where)) return obj;
    matched = true;
    // For built-in kinds a strategic merge merges lists by key (containers by name...); only
    // list-free patches mean the same as a JSON merge patch there.
    if (isBuiltIn(obj) && containsList(patch)) throw new Unsupported(`${where.field} is a strategic merge of lists into ${obj.kind}`);
    const { apiVersion: _a, kind: _k, ...rest } = patch;
    const body = { ...rest, metadata: { ...(rest.metadata as Record<string, Json> | undefined) } } as Record<string, Json>;
    delete (body.metadata as Record<string, Json>).name;
    delete (body.metadata as Record<string, Json>).namespace;
    return mergePatch(obj as unknown as Json, body) as unknown as KubeObject;
  });
  if (!matched && !target) {
    throw new FluxstrapError('E_CONFIG', `the patch matches no resource: no ${kind} ${meta.namespace ? `${meta.namespace}/` : ''}${String(meta.name)}`, {
      location: where,
      hint: 'a patch without target names its object by kind, metadata.name and metadata.namespace',
    });
  }
  return out;
}

function containsList(v: Json): boolean {
  if (Array.isArray(v)) return true;
  return typeof v === 'object' && v !== null && Object.values(v).some(containsList);
}

function isBuiltIn(obj: KubeObject): boolean {
  const group = obj.apiVersion.includes('/') ? (obj.apiVersion.split('/')[0] ?? '') : '';
  return !group.includes('.') || group.endsWith('.k8s.io');
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** kustomize's selector: each field an anchored Go regexp (RE2, so a target from a repository cannot backtrack). */
function matches(obj: KubeObject, t: PatchTarget, where: { file: string; field: string }): boolean {
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
  const test = (key: keyof PatchTarget, value: string | undefined) => {
    const pattern = t[key];
    return pattern === undefined || re2(`^(?:${pattern})$`, `target.${key}`, where).test(value ?? '');
  };
  return (
    test('group', group) && test('version', version) && test('kind', obj.kind) && test('name', obj.metadata.name) && test('namespace', obj.metadata.namespace)
  );
}

/**
 * Keys come from the repository, so every read and write here is of own properties: `__proto__`,
 * `constructor` or `toString` are data like any other key (as in kustomize, which is Go), never a
 * way to reach Object.prototype.
 */
function isMap(v: Json | undefined): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isMap(patch)) return clone(patch);
  const out: Record<string, Json> = isMap(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else setOwn(out, k, mergePatch((getOwn(out, k) as Json | undefined) ?? null, v));
  }
  return out;
}

function clone(v: Json): Json {
  return v === null || typeof v !== 'object' ? v : structuredClone(v);
}

interface Op {
  op: string;
  path: string;
  value?: Json;
  from?: string;
}

/** RFC 6902, the operations kustomize's JSON patches use. */
export function applyJson6902(doc: Json, ops: Json[], where: { file: string; field: string }): Json {
  let out = clone(doc);
  for (const [i, raw] of ops.entries()) {
    const op = raw as unknown as Op;
    const at = { ...where, field: `${where.field}.patch[${i}]` };
    const fail = (msg: string) => new FluxstrapError('E_CONFIG', `JSON patch ${op.op} ${op.path}: ${msg}`, { location: at });
    if (typeof op?.op !== 'string' || typeof op.path !== 'string') throw fail('needs op and path');
    switch (op.op) {
      case 'add':
        out = setAt(out, pointer(op.path, fail), clone(op.value ?? null), 'add', fail);
        break;
      case 'replace':
        out = setAt(out, pointer(op.path, fail), clone(op.value ?? null), 'replace', fail);
        break;
      case 'remove':
        out = removeAt(out, pointer(op.path, fail), fail);
        break;
      case 'move': {
        const from = pointer(op.from ?? '', fail);
        const value = getAt(out, from, fail);
        out = setAt(removeAt(out, from, fail), pointer(op.path, fail), value, 'add', fail);
        break;
      }
      case 'copy':
        out = setAt(out, pointer(op.path, fail), clone(getAt(out, pointer(op.from ?? '', fail), fail)), 'add', fail);
        break;
      case 'test':
        if (JSON.stringify(getAt(out, pointer(op.path, fail), fail)) !== JSON.stringify(op.value)) throw fail('test failed');
        break;
      default:
        throw fail('unknown operation');
    }
  }
  return out;
}

function pointer(path: string, fail: (m: string) => Error): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw fail('a path starts with /');
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function getAt(doc: Json, path: string[], fail: (m: string) => Error): Json {
  let cur: Json = doc;
  for (const key of path) {
    if (Array.isArray(cur)) cur = cur[index(key, cur.length - 1, fail)] as Json;
    else if (isMap(cur) && Object.hasOwn(cur, key)) cur = cur[key] as Json;
    else throw fail('path does not exist');
  }
  return cur;
}

function index(key: string, max: number, fail: (m: string) => Error): number {
  if (!/^(0|[1-9]\d*)$/.test(key)) throw fail(`bad array index ${key}`);
  const i = Number(key);
  if (i > max) throw fail(`array index ${i} out of range`);
  return i;
}

function setAt(doc: Json, path: string[], value: Json, mode: 'add' | 'replace', fail: (m: string) => Error): Json {
  if (path.length === 0) return value;
  const parent = getAt(doc, path.slice(0, -1), fail);
  const key = path[path.length - 1] as string;
  if (Array.isArray(parent)) {
    if (mode === 'add') parent.splice(key === '-' ? parent.length : index(key, parent.length, fail), 0, value);
    else parent[index(key, parent.length - 1, fail)] = value;
  } else if (isMap(parent)) {
    if (mode === 'replace' && !Object.hasOwn(parent, key)) throw fail('path does not exist');
    setOwn(parent, key, value);
  } else {
    throw fail('parent is not an object or array');
  }
  return doc;
}

function removeAt(doc: Json, path: string[], fail: (m: string) => Error): Json {
  const parent = getAt(doc, path.slice(0, -1), fail);
  const key = path[path.length - 1] as string;
  if (Array.isArray(parent)) parent.splice(index(key, parent.length - 1, fail), 1);
  else if (isMap(parent) && Object.hasOwn(parent, key)) delete parent[key];
  else throw fail('path does not exist');
  return doc;
}
