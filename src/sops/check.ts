import { readdir, stat } from 'node:fs/promises';
import { readBytes } from '../adapters/files.ts';
import { basename, join, relative, resolve } from 'node:path';
import { isFluxstrapError } from '../core/errors.ts';
import { findConfig, loadConfig, ruleMatches, rulePath, type SopsConfig } from './config.ts';
import type { KeySources } from './datakey.ts';
import { openDocument } from './engine.ts';
import { formatForPath, hasMetadata, loadPlain, type Format } from './stores.ts';
import { FormatError, TreeMap, type Branch } from './tree.ts';

/**
 * `fluxstrap check`: what should be encrypted and is not, and encrypted files that do not hold
 * up. Made for pre-commit hooks: it reads files, prints one line per finding, writes nothing.
 * MACs can only be checked with the data key, so files no key at hand opens are checked for
 * structure only, unless `--key-file` was given, in which case not opening is a finding.
 */

export interface Finding {
  file: string;
  /** Where in the file, when one place is at fault. */
  line?: number;
  reason: string;
}

type Found = Omit<Finding, 'file'>;

export interface CheckOptions {
  config?: string;
  /** Keys were named explicitly: a file they cannot open is a finding. */
  strictKeys: boolean;
  sources: KeySources;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

const SKIP_DIRS = new Set(['.git', 'node_modules', '.terraform', 'vendor']);
const SCANNED = new Set<Format>(['yaml', 'json', 'dotenv', 'ini']);

async function* walk(path: string): AsyncGenerator<string> {
  const st = await stat(path);
  if (!st.isDirectory()) {
    yield path;
    return;
  }
  for (const entry of await readdir(path, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) yield* walk(join(path, entry.name));
    } else if (entry.isFile()) {
      yield join(path, entry.name);
    }
  }
}

function hasValues(v: unknown): boolean {
  return v instanceof TreeMap ? v.items.some((i) => typeof i.key === 'string') : false;
}

/**
 * Kubernetes Secrets in the documents whose `data`/`stringData` is plaintext, also inside a
 * `kind: List` or `SecretList` (what `kubectl get secrets -o yaml` writes).
 */
function plaintextSecrets(branches: Branch[]): string[] {
  const out: string[] = [];
  const listed = (b: Branch): Branch[] => {
    const kind = b.get('kind');
    const items = b.get('items');
    if (typeof kind !== 'string' || !kind.endsWith('List') || !Array.isArray(items)) return [];
    // Nesting is bounded by the parsers (LIMITS.depth), so this recursion is too.
    return items.filter((i): i is TreeMap => i instanceof TreeMap).flatMap((i) => [i, ...listed(i)]);
  };
  for (const b of branches.flatMap((d) => [d, ...listed(d)])) {
    if (b.get('kind') !== 'Secret' || b.has('sops')) continue;
    const meta = b.get('metadata');
    const name = meta instanceof TreeMap && typeof meta.get('name') === 'string' ? (meta.get('name') as string) : '(unnamed)';
    const fields = ['data', 'stringData'].filter((f) => hasValues(b.get(f)));
    if (fields.length > 0) out.push(`Secret ${name} has plaintext ${fields.join(' and ')}`);
  }
  return out;
}

function ruleWanting(config: SopsConfig | undefined, file: string, cwd: string): string | undefined {
  if (!config || resolve(file) === resolve(config.file)) return undefined;
  const p = rulePath(config, file, cwd);
  // A rule without path_regex matches every file; it says nothing about which files must be encrypted.
  const rule = config.creationRules.find((r) => r.pathRegex !== undefined && ruleMatches(r, p));
  return rule?.pathRegex;
}

async function checkFile(file: string, config: SopsConfig | undefined, opts: CheckOptions, explicit: boolean): Promise<Found[]> {
  const { cwd } = opts;
  const format = formatForPath(file);
  const wantedBy = ruleWanting(config, file, cwd);
  if (!explicit && !SCANNED.has(format) && wantedBy === undefined) return [];
  let bytes: Buffer;
  try {
    bytes = await readBytes(file);
  } catch (e) {
    if (!isFluxstrapError(e)) throw e;
    return [{ reason: e.message }];
  }
  let branches: Branch[];
  try {
    branches = loadPlain(format, bytes);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    // A file that does not parse cannot be shown to hold no plaintext: a hook must not pass it.
    const rule = wantedBy !== undefined ? ` (it matches creation rule ${JSON.stringify(wantedBy)})` : '';
    return [{ ...(e.line > 0 ? { line: e.line } : {}), reason: `does not parse as ${format}: ${e.message}${rule}` }];
  }
  if (!hasMetadata(format, branches)) {
    const findings: Found[] = (format === 'yaml' || format === 'json' ? plaintextSecrets(branches) : []).map((reason) => ({ reason }));
    if (wantedBy !== undefined) findings.push({ reason: `matches creation rule ${JSON.stringify(wantedBy)} but has no sops metadata` });
    return findings;
  }
  try {
    await openDocument(bytes, format, file, opts.sources);
    return [];
  } catch (e) {
    if (!isFluxstrapError(e)) throw e;
    if (e.code === 'E_DECRYPT' && /no key at hand|key groups needed/.test(e.message)) {
      return opts.strictKeys ? [{ reason: `the given keys cannot open it (${e.hint ?? ''})` }] : [];
    }
    return [{ ...(e.location?.line !== undefined ? { line: e.location.line } : {}), reason: e.message }];
  }
}

export async function check(paths: string[], opts: CheckOptions): Promise<Finding[]> {
  const { cwd } = opts;
  const configFile = await findConfig(cwd, opts.env, opts.config);
  const config = configFile ? await loadConfig(configFile) : undefined;
  const findings: Finding[] = [];
  for (const p of paths.length > 0 ? paths : ['.']) {
    const st = await stat(p).catch(() => undefined);
    if (!st) {
      findings.push({ file: p, reason: 'no such file or directory' });
      continue;
    }
    const explicitFile = !st.isDirectory();
    for await (const file of walk(p)) {
      if (basename(file) === '.sops.yaml') continue;
      const shown = relative(cwd, file) || file;
      for (const found of await checkFile(file, config, opts, explicitFile)) findings.push({ file: shown, ...found });
    }
  }
  return findings;
}
