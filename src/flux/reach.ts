import { posix } from 'node:path';
import { FormatError, parseYamlBounded, yamlToJS } from '../core/bounded-yaml.ts';
import { isFluxstrapError } from '../core/errors.ts';
import type { Location } from '../core/errors.ts';
import { KUSTOMIZATION_FILES } from '../adapters/kustomize.ts';
import type { ReachFs } from '../adapters/repo-fs.ts';
import { sopsRecipients } from '../sops/recipients.ts';
import { formatForPath } from '../sops/stores.ts';
import type { Format } from '../sops/stores.ts';

/**
 * What a cluster reaches: the files Flux builds for it, starting at the cluster folder and
 * following every Flux Kustomization found there (and in what those apply) to its `spec.path` in
 * the same Git source. A cluster folder usually holds only `flux-system/` and Kustomizations
 * pointing at `./infrastructure/production`, `./apps/production`…: the encrypted Secrets live
 * there, so every check of "the cluster's SOPS files" is a check of this walk's result.
 *
 * Pure over a file-reading port (repository-relative `/` paths, '' is the root) and bounded:
 * files read, folder nesting, Kustomizations, with cycles detected. What it cannot follow (another
 * source, a remote base) is listed as not checked; what is broken is listed as an issue. Neither
 * stops the walk.
 */

export interface ReachLimits {
  /** Files read in all. */
  maxFiles: number;
  /** kustomize folders nested in one build, and Kustomizations nested in each other. */
  maxDepth: number;
  maxKustomizations: number;
}

export const REACH_LIMITS: ReachLimits = { maxFiles: 5000, maxDepth: 32, maxKustomizations: 500 };

export interface SopsRef {
  /** Repository-relative. */
  file: string;
  format: Format;
  /** age recipients in its metadata. */
  recipients: string[];
}

export interface ReachedKustomization {
  name: string;
  namespace: string;
  /** Where the object is written; absent for the cluster's own sync Kustomization when not given. */
  at?: Location;
  /** Its `spec.path`, repository-relative, without `./` ('' is the root). */
  path: string;
  /** `namespace/name` of the Kustomization that applies it; absent for the root. */
  via?: string;
  /** `spec.decryption.provider`, when set. */
  decryption?: string;
  /** `spec.targetNamespace`: where its namespaced objects land, whatever their own namespace. */
  targetNamespace?: string;
  /** Every file its build reads (resources, patches, generator inputs). */
  files: string[];
  /** The SOPS-encrypted ones among them. */
  sops: SopsRef[];
}

export interface Unchecked {
  what: string;
  at: Location;
}

export interface Reach {
  /** The root (the cluster folder) first, then in the order they were found. */
  kustomizations: ReachedKustomization[];
  /** What the walk could not follow: Kustomizations of other sources, remote bases. */
  notChecked: Unchecked[];
  /** Broken references, unreadable files, limits reached. */
  issues: Unchecked[];
}

export interface ReachRoot {
  /** The cluster folder, repository-relative. */
  path: string;
  name?: string;
  namespace?: string;
  at?: Location;
  decryption?: string;
  /** The GitRepository the cluster syncs from (default flux-system/flux-system). */
  source?: { name: string; namespace: string };
}

const FLUX_KUSTOMIZATION = /^apiVersion:\s*["']?kustomize\.toolkit\.fluxcd\.io\//m;

/** `namespace/name` */
export const ksId = (k: { namespace: string; name: string }): string => `${k.namespace}/${k.name}`;

/** `Kustomization flux-system/apps (clusters/prod/apps.yaml:1)` */
export function describeKustomization(k: Pick<ReachedKustomization, 'name' | 'namespace' | 'at'>): string {
  const at = k.at?.file ? ` (${k.at.file}${k.at.line !== undefined ? `:${k.at.line}` : ''})` : '';
  return `Kustomization ${ksId(k)}${at}`;
}

/** Every SOPS file the cluster reaches, once, in the order first reached. */
export function reachedSops(reach: Reach): SopsRef[] {
  const seen = new Map<string, SopsRef>();
  for (const k of reach.kustomizations) for (const s of k.sops) if (!seen.has(s.file)) seen.set(s.file, s);
  return [...seen.values()];
}

/** The Kustomizations that reach a file. */
export function reachersOf(reach: Reach, file: string): ReachedKustomization[] {
  return reach.kustomizations.filter((k) => k.sops.some((s) => s.file === file) || k.files.includes(file));
}

export interface DecryptionFinding {
  kustomization: ReachedKustomization;
  /** The SOPS files it applies without decrypting. */
  files: string[];
}

/**
 * The lint: Kustomizations that reach SOPS-encrypted files without `decryption.provider: sops`.
 * kustomize-controller would apply those files as they are, and the API server refuses a Secret
 * whose values are `ENC[…]` (or Flux applies ciphertext into a ConfigMap). kustomize-controller's
 * `--sops-age-secret` does not change that: it only supplies the key to the Kustomizations that
 * decrypt (its decryptor returns early for a Kustomization without `spec.decryption`).
 */
export function decryptionFindings(reach: Reach): DecryptionFinding[] {
  return reach.kustomizations.filter((k) => k.sops.length > 0 && k.decryption !== 'sops').map((k) => ({ kustomization: k, files: k.sops.map((s) => s.file) }));
}

/** The command that fixes what the lint finds: `decryption` written into each such Kustomization. */
export const childDecryptionCommand = (cluster: string): string => `fluxstrap init --cluster ${cluster} --child-decryption`;

class Walk {
  reads = 0;
  stopped = false;
  readonly notChecked: Unchecked[] = [];
  readonly issues: Unchecked[] = [];
  private readonly texts = new Map<string, Promise<string | undefined>>();
  private readonly fs: ReachFs;
  readonly limits: ReachLimits;

  constructor(fs: ReachFs, limits: ReachLimits) {
    this.fs = fs;
    this.limits = limits;
  }

  read(file: string, from: Location): Promise<string | undefined> {
    let text = this.texts.get(file);
    if (text === undefined) {
      if (this.reads >= this.limits.maxFiles) {
        this.stop(`stopped after reading ${this.limits.maxFiles} files`, from);
        return Promise.resolve(undefined);
      }
      this.reads++;
      text = this.fs.read(file).catch((e: unknown) => {
        this.issue(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`, from);
        return undefined;
      });
      this.texts.set(file, text);
    }
    return text;
  }

  list(dir: string) {
    return this.fs.list(dir);
  }

  issue(what: string, at: Location): void {
    this.issues.push({ what, at });
  }

  stop(what: string, at: Location): void {
    if (!this.stopped) this.issue(`${what}: the rest of the cluster is not checked`, at);
    this.stopped = true;
  }
}

/** A repository path for `entry` written in `dir`, or undefined when it leaves the repository. */
function inRepo(dir: string, entry: string): string | undefined {
  const p = posix.normalize(posix.join(dir, entry)).replace(/\/$/, '');
  if (p === '.' || p === '') return '';
  return p === '..' || p.startsWith('../') || posix.isAbsolute(p) ? undefined : p;
}

const isRemote = (entry: string) =>
  /^[a-z][a-z0-9+.-]*:\/\//i.test(entry) || /^(github\.com|gitlab\.com|bitbucket\.org)\//.test(entry) || entry.startsWith('git@') || entry.includes('?ref=');

interface Inputs {
  /** Files whose objects the build applies (where Flux Kustomizations are looked for). */
  resources: Set<string>;
  /** Other files the build reads: patches, generator inputs. */
  others: Set<string>;
}

type Json = Record<string, unknown>;

async function kustomizationIn(w: Walk, dir: string): Promise<string | undefined> {
  const entries = (await w.list(dir)) ?? [];
  return KUSTOMIZATION_FILES.find((n) => entries.some((e) => e.name === n && !e.dir));
}

/** The inputs of one kustomize folder (with its kustomization file, or the one Flux generates). */
async function folderInputs(w: Walk, dir: string, chain: string[], out: Inputs, from: Location): Promise<void> {
  if (w.stopped) return;
  if (chain.includes(dir)) {
    w.issue(`kustomize folders form a cycle: ${[...chain.slice(chain.indexOf(dir)), dir].map((d) => d || '.').join(' → ')}`, from);
    return;
  }
  if (chain.length >= w.limits.maxDepth) {
    w.stop(`kustomize folders nested deeper than ${w.limits.maxDepth}`, from);
    return;
  }
  const entries = await w.list(dir);
  if (entries === undefined) {
    w.issue(`folder ${dir || '.'} does not exist`, from);
    return;
  }
  const kfile = KUSTOMIZATION_FILES.find((n) => entries.some((e) => e.name === n && !e.dir));
  if (kfile === undefined) {
    await generatedInputs(w, dir, [...chain, dir], out, from);
    return;
  }
  const file = posix.join(dir, kfile);
  out.others.add(file);
  const text = await w.read(file, from);
  if (text === undefined) return;
  let k: Json;
  try {
    const first = parseYamlBounded(text).docs[0];
    k = ((first ? yamlToJS(first) : undefined) ?? {}) as Json;
  } catch (e) {
    w.issue(yamlIssue(e), { file, ...yamlLine(e) });
    return;
  }
  if (typeof k !== 'object' || Array.isArray(k)) {
    w.issue('a kustomization must be a map', { file });
    return;
  }
  const next = [...chain, dir];
  const strings = (field: string): string[] => {
    const v = k[field];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      w.issue(`${field} must be a list`, { file, field });
      return [];
    }
    return v.filter((x): x is string => typeof x === 'string');
  };
  const paths = (field: string): string[] => {
    const v = k[field];
    return Array.isArray(v) ? v.flatMap((x) => (typeof (x as Json | null)?.path === 'string' ? [(x as { path: string }).path] : [])) : [];
  };

  // Entries that are folders are built as kustomizations of their own; files are read.
  const entry = async (e: string, field: string, into: Set<string>, folders: boolean) => {
    if (w.stopped) return;
    if (isRemote(e)) {
      w.notChecked.push({ what: `remote ${field} ${e}`, at: { file, field } });
      return;
    }
    const p = inRepo(dir, e);
    if (p === undefined) {
      w.issue(`${field} entry ${e} is outside the repository`, { file, field });
      return;
    }
    if (folders && (await w.list(p)) !== undefined) {
      await folderInputs(w, p, next, out, { file, field });
      return;
    }
    if ((await w.read(p, { file, field })) === undefined) {
      if (!w.stopped) w.issue(`${field} entry ${e} does not exist`, { file, field });
      return;
    }
    into.add(p);
  };
  for (const field of ['resources', 'bases', 'components']) {
    for (const e of strings(field)) await entry(e, field, out.resources, true);
  }
  for (const e of strings('crds')) await entry(e, 'crds', out.resources, false);
  // patchesStrategicMerge holds file names or inline patches; only a one-line entry is a file.
  for (const e of strings('patchesStrategicMerge').filter((s) => !s.includes('\n'))) await entry(e, 'patchesStrategicMerge', out.others, false);
  for (const field of ['patches', 'patchesJson6902', 'replacements']) {
    for (const e of paths(field)) await entry(e, field, out.others, false);
  }
  for (const field of ['configMapGenerator', 'secretGenerator']) {
    const gens = Array.isArray(k[field]) ? (k[field] as Json[]) : [];
    for (const g of gens) {
      const files = Array.isArray(g?.files) ? g.files : [];
      const envs: unknown[] = [...(Array.isArray(g?.envs) ? (g.envs as unknown[]) : []), ...(typeof g?.env === 'string' ? [g.env] : [])];
      // `key=path` names the key; the path is what is read.
      for (const f of files) if (typeof f === 'string') await entry(f.includes('=') ? f.slice(f.indexOf('=') + 1) : f, field, out.others, false);
      for (const f of envs) if (typeof f === 'string') await entry(f, field, out.others, false);
    }
  }
  for (const field of ['generators', 'transformers', 'validators']) {
    for (const e of strings(field).filter((s) => !s.includes('\n'))) await entry(e, field, out.others, true);
  }
}

/**
 * Without a kustomization file, kustomize-controller generates one: every YAML file below the
 * folder, except that a subfolder with a kustomization file is taken as one resource and not
 * entered. Dot-files and folders are left out, as source-controller leaves out `.git/`,
 * `.sops.yaml` and the CI files by default.
 */
async function generatedInputs(w: Walk, dir: string, chain: string[], out: Inputs, from: Location, depth = 0): Promise<void> {
  const entries = (await w.list(dir)) ?? [];
  for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (w.stopped) return;
    if (e.name.startsWith('.')) continue;
    const p = posix.join(dir, e.name);
    if (e.dir) {
      if (await kustomizationIn(w, p)) await folderInputs(w, p, chain, out, from);
      else if (depth + chain.length >= w.limits.maxDepth) w.stop(`folders nested deeper than ${w.limits.maxDepth} under ${dir}`, from);
      else await generatedInputs(w, p, chain, out, from, depth + 1);
    } else if (/\.ya?ml$/.test(e.name)) {
      if ((await w.read(p, from)) !== undefined) out.resources.add(p);
    }
  }
}

interface Pending {
  ks: ReachedKustomization;
  depth: number;
}

function yamlIssue(e: unknown): string {
  if (e instanceof FormatError) return `invalid YAML: ${e.message}`;
  throw e;
}

function yamlLine(e: unknown): { line?: number } {
  return e instanceof FormatError && e.line > 0 ? { line: e.line } : {};
}

/** The Flux Kustomizations in a file, with the line of each. */
function fluxKustomizations(text: string, file: string, w: Walk): { obj: Json; line: number }[] {
  if (!FLUX_KUSTOMIZATION.test(text)) return [];
  const out: { obj: Json; line: number }[] = [];
  let parsed;
  try {
    parsed = parseYamlBounded(text);
  } catch (e) {
    w.issue(yamlIssue(e), { file, ...yamlLine(e) });
    return out;
  }
  for (const doc of parsed.docs) {
    let obj: unknown;
    try {
      obj = yamlToJS(doc);
    } catch (e) {
      w.issue(yamlIssue(e), { file });
      continue;
    }
    const o = obj as Json | null;
    if (o?.kind !== 'Kustomization' || typeof o.apiVersion !== 'string' || !o.apiVersion.startsWith('kustomize.toolkit.fluxcd.io/')) continue;
    out.push({ obj: o, line: parsed.lineOf(doc.contents) ?? 1 });
  }
  return out;
}

/** Walk the cluster: the root folder's build, then every Kustomization of the cluster's own source. */
export async function reachOf(fs: ReachFs, root: ReachRoot, limits: ReachLimits = REACH_LIMITS): Promise<Reach> {
  const w = new Walk(fs, limits);
  const source = root.source ?? { name: 'flux-system', namespace: 'flux-system' };
  const rootPath = inRepo('', root.path) ?? '';
  const first: ReachedKustomization = {
    name: root.name ?? 'flux-system',
    namespace: root.namespace ?? 'flux-system',
    ...(root.at ? { at: root.at } : {}),
    path: rootPath,
    ...(root.decryption !== undefined ? { decryption: root.decryption } : {}),
    files: [],
    sops: [],
  };
  const done: ReachedKustomization[] = [];
  const seen = new Set([ksId(first)]);
  const queue: Pending[] = [{ ks: first, depth: 0 }];
  while (queue.length > 0 && !w.stopped) {
    const { ks, depth } = queue.shift() as Pending;
    done.push(ks);
    const from: Location = ks.at ?? { file: ks.path || '.' };
    const inputs: Inputs = { resources: new Set(), others: new Set() };
    await folderInputs(w, ks.path, [], inputs, ks.at ? { ...ks.at, field: 'spec.path' } : from);
    ks.files = [...new Set([...inputs.resources, ...inputs.others])].sort();
    for (const file of ks.files) {
      const text = await w.read(file, from);
      if (text === undefined) continue;
      const format = formatForPath(file);
      let recipients;
      try {
        recipients = sopsRecipients(text, file, format);
      } catch (e) {
        if (!isFluxstrapError(e)) throw e;
        w.issue(e.message, e.location ?? { file });
        continue;
      }
      if (recipients) ks.sops.push({ file, format, recipients });
    }
    for (const file of [...inputs.resources].sort()) {
      const text = await w.read(file, from);
      if (text === undefined || w.stopped) continue;
      for (const { obj, line } of fluxKustomizations(text, file, w)) {
        const meta = (obj.metadata ?? {}) as { name?: unknown; namespace?: unknown };
        const spec = (obj.spec ?? {}) as {
          path?: unknown;
          targetNamespace?: unknown;
          sourceRef?: { kind?: unknown; name?: unknown; namespace?: unknown };
          decryption?: { provider?: unknown };
        };
        const at: Location = { file, line };
        if (typeof meta.name !== 'string') {
          w.issue('a Kustomization without metadata.name', at);
          continue;
        }
        // An object without a namespace lands where its parent's objects land.
        const child = { name: meta.name, namespace: typeof meta.namespace === 'string' ? meta.namespace : ks.namespace };
        if (seen.has(ksId(child))) continue;
        seen.add(ksId(child));
        const ref = spec.sourceRef ?? {};
        const refNs = typeof ref.namespace === 'string' ? ref.namespace : child.namespace;
        if (ref.kind !== 'GitRepository' || ref.name !== source.name || refNs !== source.namespace) {
          const what = `${typeof ref.kind === 'string' ? ref.kind : 'no source kind'} ${refNs}/${typeof ref.name === 'string' ? ref.name : '(no name)'}`;
          w.notChecked.push({
            what: `Kustomization ${ksId(child)} applies ${what}, not the cluster's GitRepository ${ksId(source)}: its files are not checked`,
            at,
          });
          continue;
        }
        const path = inRepo('', typeof spec.path === 'string' ? spec.path : '');
        if (path === undefined) {
          w.issue(`spec.path ${String(spec.path)} is outside the repository`, { ...at, field: 'spec.path' });
          continue;
        }
        if (depth + 1 >= limits.maxDepth || seen.size > limits.maxKustomizations) {
          w.stop(
            depth + 1 >= limits.maxDepth ? `Kustomizations nested deeper than ${limits.maxDepth}` : `more than ${limits.maxKustomizations} Kustomizations`,
            at,
          );
          break;
        }
        const provider = spec.decryption?.provider;
        queue.push({
          depth: depth + 1,
          ks: {
            ...child,
            at,
            path,
            via: ksId(ks),
            ...(typeof provider === 'string' ? { decryption: provider } : {}),
            ...(typeof spec.targetNamespace === 'string' && spec.targetNamespace !== '' ? { targetNamespace: spec.targetNamespace } : {}),
            files: [],
            sops: [],
          },
        });
      }
    }
  }
  return { kustomizations: done, notChecked: w.notChecked, issues: w.issues };
}
