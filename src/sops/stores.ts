import { emitDotenv, parseDotenv } from './dotenv.ts';
import { emitIni, parseIni } from './ini.ts';
import { emitJson, parseJson } from './json.ts';
import { flattenMetadata, metadataTree, parseMetadata, unflattenMetadata, type Metadata } from './metadata.ts';
import { FormatError, TreeMap, type Branch, type Item } from './tree.ts';
import { emitYaml, parseYaml } from './yaml.ts';

/**
 * One entry point per direction for the five formats, and where each keeps its metadata: a
 * top-level `sops` key (YAML, in every document; JSON; binary's JSON envelope), `sops_*` lines
 * (dotenv), a `[sops]` section (INI).
 */

export const FORMATS = ['yaml', 'json', 'dotenv', 'ini', 'binary'] as const;
export type Format = (typeof FORMATS)[number];

/** sops' choice by extension; anything unknown is binary. */
export function formatForPath(path: string): Format {
  const ext = /\.([^./\\]+)$/.exec(path)?.[1]?.toLowerCase();
  if (ext === 'yaml' || ext === 'yml') return 'yaml';
  if (ext === 'json') return 'json';
  if (ext === 'env') return 'dotenv';
  if (ext === 'ini') return 'ini';
  return 'binary';
}

export interface StoreOptions {
  /** YAML indent (sops default 4) or JSON indent (default: a tab). */
  indent?: number;
}

const DOTENV_PREFIX = 'sops_';

export function loadPlain(format: Format, bytes: Buffer): Branch[] {
  const text = (): string => bytes.toString('utf8');
  switch (format) {
    case 'yaml':
      return parseYaml(text());
    case 'json':
      return [parseJson(text())];
    case 'dotenv':
      return [parseDotenv(text())];
    case 'ini':
      return [parseIni(text())];
    case 'binary':
      return [new TreeMap([{ key: 'data', value: new Uint8Array(bytes) }])];
  }
}

/** Whether a plaintext load already carries sops metadata (sops refuses to encrypt it again). */
export function hasMetadata(format: Format, branches: Branch[]): boolean {
  const first = branches[0];
  if (!first) return false;
  if (format === 'dotenv') return first.items.some((i) => typeof i.key === 'string' && i.key.startsWith(DOTENV_PREFIX));
  if (format === 'binary') return looksLikeBinaryEnvelope(first);
  return first.has('sops');
}

function looksLikeBinaryEnvelope(first: Branch): boolean {
  const data = first.get('data');
  if (!(data instanceof Uint8Array)) return false;
  try {
    const m = parseJson(Buffer.from(data).toString('utf8'));
    return m.has('sops') && m.has('data');
  } catch {
    return false;
  }
}

export interface Encrypted {
  branches: Branch[];
  metadata: Metadata;
}

function splitMetadata(branches: Branch[], take: (b: Branch) => TreeMap | undefined): Encrypted {
  const first = branches[0];
  const md = first ? take(first) : undefined;
  if (!md) throw new FormatError('sops metadata not found: the file is not encrypted');
  for (const b of branches.slice(1)) take(b);
  return { branches, metadata: parseMetadata(md) };
}

function takeKey(key: string): (b: Branch) => TreeMap | undefined {
  return (b) => {
    const v = b.get(key);
    b.delete(key);
    return v instanceof TreeMap ? v : undefined;
  };
}

function takeFlat(b: Branch, isMeta: (i: Item) => boolean, name: (k: string) => string, value: (v: string) => string): TreeMap | undefined {
  const meta = b.items.filter(isMeta);
  if (meta.length === 0) return undefined;
  const rest = b.items.filter((i) => !isMeta(i));
  b.items.splice(0, b.items.length, ...rest);
  return unflattenMetadata(meta.map((i) => [name(i.key as string), value(typeof i.value === 'string' ? i.value : '')]));
}

export function loadEncrypted(format: Format, bytes: Buffer): Encrypted {
  const text = bytes.toString('utf8');
  switch (format) {
    case 'yaml':
      return splitMetadata(parseYaml(text), takeKey('sops'));
    case 'json':
    case 'binary': {
      const loaded = splitMetadata([parseJson(text)], takeKey('sops'));
      if (format === 'binary' && !loaded.branches[0]?.has('data')) throw new FormatError('binary envelope without a data key');
      return loaded;
    }
    case 'dotenv':
      return splitMetadata([parseDotenv(text)], (b) =>
        takeFlat(
          b,
          (i) => typeof i.key === 'string' && i.key.startsWith(DOTENV_PREFIX),
          (k) => k.slice(DOTENV_PREFIX.length),
          (v) => v,
        ),
      );
    case 'ini':
      return splitMetadata([parseIni(text)], (b) => {
        const section = b.get('sops');
        if (!(section instanceof TreeMap)) return undefined;
        b.delete('sops');
        return takeFlat(
          section,
          (i) => typeof i.key === 'string',
          (k) => k,
          (v) => v.replaceAll('\\n', '\n'),
        );
      });
  }
}

function withMetadata(b: Branch, md: TreeMap, key = 'sops'): Branch {
  return new TreeMap([...b.items, { key, value: md }]);
}

export function emitEncrypted(format: Format, branches: Branch[], metadata: Metadata, opts: StoreOptions = {}): string {
  const md = metadataTree(metadata);
  const first = branches[0] ?? new TreeMap();
  switch (format) {
    case 'yaml':
      return emitYaml(
        branches.map((b) => withMetadata(b, md)),
        opts.indent === undefined ? {} : { indent: opts.indent },
      );
    case 'json':
    case 'binary':
      return emitJson(withMetadata(first, md), jsonIndent(opts));
    case 'dotenv':
      return emitDotenv(new TreeMap([...first.items, ...flattenMetadata(md, DOTENV_PREFIX).map(([key, value]) => ({ key, value }))]));
    case 'ini': {
      const section = new TreeMap(flattenMetadata(md, '').map(([key, value]) => ({ key, value: value.replaceAll('\n', '\\n') })));
      return emitIni(withMetadata(first, section));
    }
  }
}

function jsonIndent(opts: StoreOptions): string {
  return opts.indent === undefined || opts.indent < 0 ? '\t' : ' '.repeat(opts.indent);
}

export function emitPlain(format: Format, branches: Branch[], opts: StoreOptions = {}): Buffer {
  const first = branches[0] ?? new TreeMap();
  switch (format) {
    case 'yaml':
      return Buffer.from(emitYaml(branches, opts.indent === undefined ? {} : { indent: opts.indent }));
    case 'json':
      return Buffer.from(emitJson(first, jsonIndent(opts)));
    case 'dotenv':
      return Buffer.from(emitDotenv(first));
    case 'ini':
      return Buffer.from(emitIni(first));
    case 'binary': {
      const data = first.get('data');
      if (data instanceof Uint8Array) return Buffer.from(data);
      if (typeof data === 'string') return Buffer.from(data, 'utf8');
      throw new FormatError('binary output needs a single "data" value');
    }
  }
}
