import { isMap } from 'yaml';
import { parseYamlFile, yamlToJS } from '../core/bounded-yaml.ts';
import { usageError } from '../core/errors.ts';

/**
 * What makes a Flux upgrade lose a cluster, found before anything is written (pure: the callers
 * read the files and the cluster): CRD storage versions the new CRDs no longer serve, objects in
 * Git at removed API versions, `${VAR}`s that strict post-build substitution (Flux 2.9) refuses,
 * and a Kubernetes version outside what the new Flux supports.
 */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export const isFluxGroup = (group: string): boolean => group.endsWith('.toolkit.fluxcd.io');

/** A Flux CRD of a gotk-components.yaml: the versions it serves and the one it stores. */
export interface CrdVersions {
  name: string;
  group: string;
  kind: string;
  served: string[];
  storage: string;
}

/** The Flux CRDs among the objects of a gotk-components.yaml (or of the live cluster), by name. */
export function fluxCrds(objects: unknown[]): Map<string, CrdVersions> {
  const out = new Map<string, CrdVersions>();
  for (const o of objects) {
    if (!isObj(o) || o.kind !== 'CustomResourceDefinition' || !isObj(o.metadata) || !isObj(o.spec) || !isObj(o.spec.names)) continue;
    const name = str(o.metadata.name);
    const group = str(o.spec.group);
    const kind = str(o.spec.names.kind);
    if (name === undefined || group === undefined || kind === undefined || !isFluxGroup(group)) continue;
    const versions = Array.isArray(o.spec.versions) ? o.spec.versions.filter(isObj) : [];
    const served = versions.filter((v) => v.served === true).flatMap((v) => str(v.name) ?? []);
    const storage = versions.find((v) => v.storage === true);
    out.set(name, { name, group, kind, served, storage: str(storage?.name) ?? '' });
  }
  return out;
}

/** A live CRD as the upgrade needs it: what it stores and has ever stored. */
export interface LiveCrd {
  name: string;
  storage: string;
  storedVersions: string[];
}

export interface StoredVersionFinding {
  crd: string;
  group: string;
  kind: string;
  /** Versions in status.storedVersions that the target CRD does not serve. */
  stale: string[];
  /** The live storage version: objects are re-written at it. */
  storage: string;
  /** The target serves the live storage version, so a migration in place is possible. */
  migratable: boolean;
}

/**
 * The API server refuses a CRD whose spec.versions lacks a version of status.storedVersions
 * ("status.storedVersions[0]: Invalid value: \"v1beta2\": missing from spec.versions",
 * flux2#5598): every such CRD, with what has to go before the new one applies.
 */
export function storedVersionFindings(live: readonly LiveCrd[], target: ReadonlyMap<string, CrdVersions>): StoredVersionFinding[] {
  return live.flatMap((crd) => {
    const next = target.get(crd.name);
    if (next === undefined) return [];
    const stale = crd.storedVersions.filter((v) => !next.served.includes(v));
    if (stale.length === 0) return [];
    return [{ crd: crd.name, group: next.group, kind: next.kind, stale, storage: crd.storage, migratable: next.served.includes(crd.storage) }];
  });
}

/** A repository file, relative path and text. */
export interface RepoFile {
  file: string;
  text: string;
}

export interface ApiFinding {
  file: string;
  line: number;
  kind: string;
  name: string;
  apiVersion: string;
  newApiVersion: string;
}

/** One YAML document of a repository file, with the line it starts at and where it ends in the text. */
export interface Doc {
  value: Obj;
  line: number;
  lineOf: (node: unknown) => number | undefined;
  node: (key: string) => unknown;
  from: number;
  to: number;
}

const parsed = new WeakMap<RepoFile, Doc[]>();

/**
 * The documents of a repository file that are objects, parsed once per file for every finder; a
 * file that is not YAML is an E_CONFIG error naming it (bounded: size, aliases, nesting).
 */
export function objectDocs(f: RepoFile): Doc[] {
  const known = parsed.get(f);
  if (known) return known;
  const { docs, lineOf } = parseYamlFile(f.text, f.file);
  const out = docs.flatMap((d) => {
    if (!isMap(d.contents)) return [];
    const value = yamlToJS(d);
    if (!isObj(value)) return [];
    const contents = d.contents;
    const [from, , to] = d.range;
    return [{ value, line: lineOf(contents) ?? 1, lineOf, node: (key: string) => contents.get(key, true), from, to }];
  });
  parsed.set(f, out);
  return out;
}

/** Flux objects in the repository at an API version the target's CRDs no longer serve, with the version to use. */
export function apiRemovalFindings(files: readonly RepoFile[], target: ReadonlyMap<string, CrdVersions>): ApiFinding[] {
  const byKind = new Map([...target.values()].map((c) => [`${c.group}/${c.kind}`, c]));
  const out: ApiFinding[] = [];
  for (const f of files) {
    for (const d of objectDocs(f)) {
      const apiVersion = str(d.value.apiVersion);
      const kind = str(d.value.kind);
      if (apiVersion === undefined || kind === undefined) continue;
      const [group = '', version = ''] = apiVersion.split('/');
      const crd = byKind.get(`${group}/${kind}`);
      if (crd === undefined || crd.served.includes(version)) continue;
      const name = isObj(d.value.metadata) ? (str(d.value.metadata.name) ?? '') : '';
      out.push({ file: f.file, line: d.lineOf(d.node('apiVersion')) ?? d.line, kind, name, apiVersion, newApiVersion: `${group}/${crd.storage}` });
    }
  }
  return out;
}

/** A Kustomization with postBuild, found in the cluster path. */
export interface PostBuildKustomization {
  file: string;
  line: number;
  name: string;
  namespace: string;
  /** spec.path, relative to the repository root. */
  path: string;
  /** The source is the repository itself (the flux-system GitRepository), so its files are at hand. */
  sameRepo: boolean;
  substitute: string[];
  substituteFrom: { kind: string; name: string; optional: boolean }[];
}

/** Kustomizations (kustomize.toolkit.fluxcd.io) with spec.postBuild among the files. */
export function postBuildKustomizations(files: readonly RepoFile[]): PostBuildKustomization[] {
  const out: PostBuildKustomization[] = [];
  for (const f of files) {
    for (const d of objectDocs(f)) {
      const v = d.value;
      if (v.kind !== 'Kustomization' || !str(v.apiVersion)?.startsWith('kustomize.toolkit.fluxcd.io/') || !isObj(v.spec) || !isObj(v.spec.postBuild)) continue;
      const meta = isObj(v.metadata) ? v.metadata : {};
      const source = isObj(v.spec.sourceRef) ? v.spec.sourceRef : {};
      const namespace = str(meta.namespace) ?? 'flux-system';
      const pb = v.spec.postBuild;
      out.push({
        file: f.file,
        line: d.line,
        name: str(meta.name) ?? '',
        namespace,
        path: (str(v.spec.path) ?? '').replace(/^\.?\//, '').replace(/\/$/, ''),
        sameRepo: source.kind === 'GitRepository' && source.name === 'flux-system' && (str(source.namespace) ?? namespace) === 'flux-system',
        substitute: isObj(pb.substitute) ? Object.keys(pb.substitute) : [],
        substituteFrom: (Array.isArray(pb.substituteFrom) ? pb.substituteFrom.filter(isObj) : []).map((r) => ({
          kind: str(r.kind) ?? '',
          name: str(r.name) ?? '',
          optional: r.optional === true,
        })),
      });
    }
  }
  return out;
}

export interface SubstitutionFinding {
  file: string;
  line: number;
  variable: string;
  /** The Kustomization whose build substitutes it, `namespace/name`. */
  kustomization: string;
}

const SUBSTITUTE_ANNOTATION = 'kustomize.toolkit.fluxcd.io/substitute';

/**
 * `${VAR}` with no default (`:=`, `:-`, `=`, `-`) and no value among `defined`, in the files a
 * Kustomization builds: kustomize-controller ≥ 1.9 (Flux 2.9) fails the build on each, where older
 * ones substituted an empty string. `$${VAR}` is an escape, and objects annotated
 * `kustomize.toolkit.fluxcd.io/substitute: disabled` are not substituted. Every YAML file under
 * the path counts, as kustomize's default resources do; kustomization.yaml files are not objects.
 */
export function substitutionFindings(files: readonly RepoFile[], kustomization: string, defined: ReadonlySet<string>): SubstitutionFinding[] {
  const out: SubstitutionFinding[] = [];
  // Linear: the tail after the name stops at the next `$`, `{`, `}` or line end, so a failed match
  // never rescans text a later match starts in (a nested default is read as its inner variable).
  const VAR = /(\$?)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}\n${]*)\}/g;
  for (const f of files) {
    if (!f.text.includes('${')) continue;
    for (const d of objectDocs(f)) {
      const annotations = isObj(d.value.metadata) && isObj(d.value.metadata.annotations) ? d.value.metadata.annotations : {};
      if (annotations[SUBSTITUTE_ANNOTATION] === 'disabled') continue;
      const text = f.text.slice(d.from, d.to);
      const startLine = f.text.slice(0, d.from).split('\n').length;
      for (const m of text.matchAll(VAR)) {
        const [, escape, name = '', rest = ''] = m;
        if (escape === '$' || defined.has(name) || /^(:=|:-|=|-)/.test(rest)) continue;
        out.push({ file: f.file, line: startLine + text.slice(0, m.index).split('\n').length - 1, variable: name, kustomization });
      }
    }
  }
  return out;
}

/** `v2.9.5` → [2, 9, 5]; the usage error names the flag. */
export function parseFluxVersion(v: string, flag = '--flux-version'): [number, number, number] {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.]+)?$/.exec(v);
  if (!m) throw usageError(`invalid ${flag} ${JSON.stringify(v)}`, 'a Flux release such as v2.9.5');
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

export function compareVersions(a: string, b: string): number {
  const [x, y] = [parseFluxVersion(a), parseFluxVersion(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** Strict post-build substitution is on by default from Flux 2.9 (kustomize-controller 1.9). */
export const strictSubstitution = (version: string): boolean => compareVersions(version, 'v2.9.0') >= 0;

/**
 * The Kubernetes minors each Flux minor is tested with, from the release announcements (Flux
 * supports the three newest Kubernetes minors at release time).
 */
const KUBERNETES_SUPPORT: Readonly<Record<string, readonly [string, string]>> = {
  '2.7': ['1.32', '1.34'],
  '2.8': ['1.33', '1.35'],
  '2.9': ['1.34', '1.36'],
};

export interface KubernetesVerdict {
  /** `older`: Flux does not run there; `newer`: untested by Flux; `unknown`: no range known for the version. */
  status: 'supported' | 'older' | 'newer' | 'unknown';
  range?: readonly [string, string];
}

export function kubernetesSupport(fluxVersion: string, major: number, minor: number): KubernetesVerdict {
  const [fm, fn] = parseFluxVersion(fluxVersion);
  const range = KUBERNETES_SUPPORT[`${fm}.${fn}`];
  if (range === undefined) return { status: 'unknown' };
  const at = (s: string) => s.split('.').map(Number) as [number, number];
  const cmp = (a: [number, number]) => (major !== a[0] ? major - a[0] : minor - a[1]);
  if (cmp(at(range[0])) < 0) return { status: 'older', range };
  if (cmp(at(range[1])) > 0) return { status: 'newer', range };
  return { status: 'supported', range };
}
