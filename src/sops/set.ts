import { FluxstrapError } from '../core/errors.ts';
import { rfc3339Now, type KeySources } from './datakey.ts';
import { openDocument, type OpenOptions } from './engine.ts';
import { sealMac } from './mac.ts';
import type { Metadata } from './metadata.ts';
import { emitEncrypted, type Format, type StoreOptions } from './stores.ts';
import { setAt, unsetAt, type PathStep } from './tree-path.ts';
import type { Value } from './tree.ts';
import { encryptTree, ivStash } from './walk.ts';

/**
 * sops set / unset: one value of the first document changed under the same data key. Every other
 * value keeps its IV, and so its exact `ENC[…]` text: the diff is the changed line plus the
 * `lastmodified` and `mac` lines. Setting a value that is already there changes nothing.
 */

export type ValueEdit = { path: PathStep[]; value: Value } | { path: PathStep[]; unset: true };

export interface EditResult {
  /** The new file, or undefined when the document already was as asked. */
  output?: string;
}

export async function editValue(
  bytes: Buffer,
  format: Format,
  file: string,
  sources: KeySources,
  edit: ValueEdit,
  store: StoreOptions = {},
  opts: OpenOptions = {},
): Promise<EditResult> {
  if (format === 'binary') throw new FluxstrapError('E_USAGE', 'a binary file holds one value: encrypt a new file instead', { location: { file } });
  const opened = await openDocument(bytes, format, file, sources, opts);
  const [doc] = opened.branches;
  if (!doc) throw new FluxstrapError('E_CONFIG', 'the file has no document', { location: { file } });
  const changed = 'unset' in edit ? unsetAt(doc, edit.path) : setAt(doc, edit.path, edit.value);
  if (!changed) return {};
  const { dataKey, metadata } = opened;
  const { branches, mac } = encryptTree(opened.branches, dataKey, metadata.rules, { stash: ivStash(opened.encrypted, dataKey, metadata.rules), file });
  const lastModified = rfc3339Now();
  const md: Metadata = { ...metadata, lastModified, mac: sealMac(mac, dataKey, lastModified) };
  return { output: emitEncrypted(format, branches, md, store) };
}
