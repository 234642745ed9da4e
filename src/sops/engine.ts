import { randomBytes } from 'node:crypto';
import { FluxstrapError } from '../core/errors.ts';
import { sealMac, verifyMac } from './mac.ts';
import { encryptDataKey, newStanza, recoverDataKey, rfc3339Now, type KeySources } from './datakey.ts';
import { MetadataError, SOPS_VERSION, stanzaName, type Metadata, type Stanza } from './metadata.ts';
import { selectionRulesSet, DEFAULT_UNENCRYPTED_SUFFIX, type Rules } from './rules.ts';
import { emitEncrypted, emitPlain, hasMetadata, loadEncrypted, loadPlain, type Encrypted, type Format, type StoreOptions } from './stores.ts';
import { FormatError, type Branch } from './tree.ts';
import { decryptTree, encryptTree, ValueError } from './walk.ts';

/**
 * Whole-document operations on bytes: encrypt, decrypt (with the MAC check), updatekeys (same
 * data key, values untouched) and rotate (new data key, every value re-encrypted). File IO and
 * `.sops.yaml` are the caller's; errors are FluxstrapErrors naming `file`.
 */

/**
 * The line that sets a metadata key: the last that names it as YAML, JSON, dotenv (`sops_` prefix)
 * or INI spell a key, since sops writes its metadata after the data. 0 when none does.
 */
function metadataLine(bytes: Buffer, key: string): number {
  const lines = bytes.toString('utf8').split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]?.trimStart() ?? '';
    const name = [`"${key}"`, `sops_${key}`, key].find((n) => line.startsWith(n));
    if (name !== undefined && /^\s*[:=]/.test(line.slice(name.length))) return i + 1;
  }
  return 0;
}

function formatError(e: unknown, file: string, bytes?: Buffer): never {
  if (e instanceof FormatError) {
    throw new FluxstrapError('E_CONFIG', e.message, { location: e.line > 0 ? { file, line: e.line } : { file } });
  }
  if (e instanceof MetadataError) {
    const line = e.key !== undefined && bytes ? metadataLine(bytes, e.key) : 0;
    const location = line > 0 ? { file, line } : { file, field: e.key === undefined ? 'sops' : `sops.${e.key}` };
    throw new FluxstrapError('E_CONFIG', `invalid sops metadata: ${e.message}`, e.hint === undefined ? { location } : { location, hint: e.hint });
  }
  throw e;
}

export function parseEncrypted(bytes: Buffer, format: Format, file: string): Encrypted {
  try {
    return loadEncrypted(format, bytes);
  } catch (e) {
    return formatError(e, file, bytes);
  }
}

export function parsePlain(bytes: Buffer, format: Format, file: string): Branch[] {
  try {
    return loadPlain(format, bytes);
  } catch (e) {
    return formatError(e, file);
  }
}

export interface EncryptParams {
  keyGroups: Stanza[][];
  shamirThreshold: number;
  rules: Rules;
}

function withRulesDefaulted(rules: Rules, format: Format): Rules {
  // sops ignores selection rules for binary files (there is one value) and adds no default.
  if (format === 'binary') return rules.macOnlyEncrypted ? { macOnlyEncrypted: true } : {};
  if (selectionRulesSet(rules).length > 1) {
    throw new FluxstrapError(
      'E_USAGE',
      'use only one of --encrypted-regex, --unencrypted-regex, --encrypted-suffix, --unencrypted-suffix, --encrypted-comment-regex, --unencrypted-comment-regex',
    );
  }
  return selectionRulesSet(rules).length === 0 ? { ...rules, unencryptedSuffix: DEFAULT_UNENCRYPTED_SUFFIX } : rules;
}

export async function encryptDocument(
  bytes: Buffer,
  format: Format,
  file: string,
  params: EncryptParams,
  sources: KeySources,
  store: StoreOptions = {},
  outputFormat: Format = format,
): Promise<string> {
  const branches = parsePlain(bytes, format, file);
  if (hasMetadata(format, branches)) {
    throw new FluxstrapError('E_PRECONDITION', 'the file is already encrypted', { location: { file }, hint: 'decrypt it first, or use rotate/updatekeys' });
  }
  if (params.keyGroups.every((g) => g.length === 0)) {
    throw new FluxstrapError('E_USAGE', 'no recipients: give --age or --pgp, or a .sops.yaml creation rule with keys', {
      hint: 'fluxstrap encrypt --age age1… FILE',
    });
  }
  const rules = withRulesDefaulted(params.rules, format);
  const dataKey = randomBytes(32);
  const { branches: encrypted, mac } = encryptTree(branches, dataKey, rules, { file });
  const { groups, threshold } = await encryptDataKey(dataKey, params.keyGroups, params.shamirThreshold, sources);
  const lastModified = rfc3339Now();
  const md: Metadata = { lastModified, mac: sealMac(mac, dataKey, lastModified), version: SOPS_VERSION, rules, shamirThreshold: threshold, keyGroups: groups };
  try {
    return emitEncrypted(outputFormat, encrypted, md, store);
  } catch (e) {
    return formatError(e, file);
  }
}

export interface Opened {
  branches: Branch[];
  /** The same document as read, values still encrypted (for IV reuse). */
  encrypted: Branch[];
  metadata: Metadata;
  dataKey: Uint8Array;
}

export interface OpenOptions {
  ignoreMac?: boolean;
}

/** Decrypt every value and check the MAC (unless ignoreMac). */
export async function openDocument(bytes: Buffer, format: Format, file: string, sources: KeySources, opts: OpenOptions = {}): Promise<Opened> {
  const { branches, metadata } = parseEncrypted(bytes, format, file);
  const dataKey = await recoverDataKey(metadata, sources, file);
  let result;
  try {
    result = decryptTree(branches, dataKey, metadata.rules, { rawStrings: format === 'binary' });
  } catch (e) {
    if (e instanceof ValueError) {
      throw new FluxstrapError('E_DECRYPT', `a value does not decrypt (${e.message}): the file was changed or is corrupt`, {
        location: { file, field: e.path },
      });
    }
    throw e;
  }
  if (!opts.ignoreMac) verifyMac(metadata, dataKey, result.mac, file);
  return { branches: result.branches, encrypted: branches, metadata, dataKey };
}

export async function decryptDocument(
  bytes: Buffer,
  format: Format,
  file: string,
  sources: KeySources,
  opts: OpenOptions & { outputFormat?: Format; store?: StoreOptions } = {},
): Promise<Buffer> {
  const { branches } = await openDocument(bytes, format, file, sources, opts);
  try {
    return emitPlain(opts.outputFormat ?? format, branches, opts.store ?? {});
  } catch (e) {
    return formatError(e, file);
  }
}

export interface RekeyResult {
  output: string;
  /** Recipients before and after, by public name, for the report. */
  before: string[];
  after: string[];
}

const names = (groups: Stanza[][]): string[] => groups.flat().map((s) => `${s.type}:${stanzaName(s)}`);

/** sops updatekeys: the same data key for the new key groups; values, MAC and lastmodified untouched. */
export async function updateKeys(
  bytes: Buffer,
  format: Format,
  file: string,
  keyGroups: Stanza[][],
  shamirThreshold: number,
  sources: KeySources,
  store: StoreOptions = {},
): Promise<RekeyResult> {
  const { branches, metadata } = parseEncrypted(bytes, format, file);
  const dataKey = await recoverDataKey(metadata, sources, file);
  const { groups, threshold } = await encryptDataKey(dataKey, keyGroups, shamirThreshold || metadata.shamirThreshold, sources, {
    dataKey,
    groups: metadata.keyGroups,
  });
  const md: Metadata = { ...metadata, keyGroups: groups, shamirThreshold: groups.length > 1 ? threshold : metadata.shamirThreshold };
  return { output: emitEncrypted(format, branches, md, store), before: names(metadata.keyGroups), after: names(groups) };
}

export interface RotateOptions extends OpenOptions {
  addAge?: string[];
  rmAge?: string[];
  addPgp?: string[];
  rmPgp?: string[];
  addKms?: Stanza[];
  rmKms?: Stanza[];
  /** Vault transit keys to add and to remove (matched by their sops name, `<address>/v1/<engine>/keys/<name>`). */
  addVault?: Stanza[];
  rmVault?: Stanza[];
}

/** sops rotate: a new data key, every value re-encrypted, --add-* into group 0, --rm-* anywhere. */
export async function rotate(
  bytes: Buffer,
  format: Format,
  file: string,
  sources: KeySources,
  opts: RotateOptions,
  store: StoreOptions = {},
): Promise<RekeyResult> {
  const { branches, metadata } = await openDocument(bytes, format, file, sources, opts);
  const remove = new Set([
    ...(opts.rmAge ?? []).map((r) => `age:${r}`),
    ...(opts.rmPgp ?? []).map((f) => `pgp:${f.replace(/\s+/g, '').toUpperCase()}`),
    ...names([opts.rmKms ?? [], opts.rmVault ?? []]),
  ]);
  const groups = metadata.keyGroups.map((g) => g.filter((s) => !remove.has(`${s.type}:${stanzaName(s)}`)));
  const first = groups[0] ?? [];
  for (const r of opts.addAge ?? []) if (!first.some((s) => s.type === 'age' && stanzaName(s) === r)) first.push(newStanza('age', r));
  for (const f of opts.addPgp ?? []) first.push(newStanza('pgp', f));
  for (const k of [...(opts.addKms ?? []), ...(opts.addVault ?? [])])
    if (!first.some((s) => s.type === k.type && stanzaName(s) === stanzaName(k))) first.push(k);
  if (groups.every((g) => g.length === 0)) throw new FluxstrapError('E_USAGE', 'rotating would leave the file without any key', { location: { file } });
  const dataKey = randomBytes(32);
  const { branches: encrypted, mac } = encryptTree(branches, dataKey, metadata.rules, { file });
  const enc = await encryptDataKey(dataKey, groups, metadata.shamirThreshold, sources);
  const lastModified = rfc3339Now();
  const md: Metadata = { ...metadata, keyGroups: enc.groups, shamirThreshold: enc.threshold, lastModified, mac: sealMac(mac, dataKey, lastModified) };
  return { output: emitEncrypted(format, encrypted, md, store), before: names(metadata.keyGroups), after: names(enc.groups) };
}
