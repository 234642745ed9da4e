import { join } from 'node:path';
import { isMap, isScalar } from 'yaml';
import type { Document, YAMLMap } from 'yaml';
import { z } from 'zod';
import { readTextIfExists, writeAtomic } from '../adapters/files.ts';
import { repoFs } from '../adapters/repo-fs.ts';
import { dataOf } from '../core/change.ts';
import type { Change } from '../core/change.ts';
import { configError, FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { decryptionFindings, ksId, reachOf } from '../flux/reach.ts';
import { decryptionSettings } from './decryption-patch.ts';
import type { RepoContext } from './file-content.ts';
import { locate, parseAllEditable, serialize, str } from './yaml-edit.ts';

/**
 * `decryption: {provider: sops}` written into each Flux Kustomization the cluster applies that
 * reaches SOPS-encrypted files without it (the lint of src/flux/reach.ts), in the file where it
 * is written: comments, key order and the file's other documents kept. In kustomization mode it
 * names the cluster's key Secret (`secretRef`); in controller mode kustomize-controller's
 * `--sops-age-secret` supplies the key, and the Kustomization still needs the provider.
 *
 * The cluster's own `flux-system` Kustomization is never edited here: its gotk-sync.yaml is
 * regenerated (decryption-patch puts its decryption in a patch instead), and a blanket patch
 * over every Kustomization reaches flux-system too, which broke on Flux 2.9 (fluxcd/flux2#5967).
 */

export const childDecryptionParams = z.object({
  /** The cluster folder, relative to the repository, e.g. `clusters/prod`. */
  clusterPath: z.string(),
  /** `clusters/NAME/flux-system/kustomization.yaml`: its decryption patch gives the mode and the Secret. */
  fluxSystemKustomization: z.string(),
  /** The mode to write for (`init --decryption`); default: the mode that file has, else kustomization. */
  mode: z.enum(['kustomization', 'controller']).optional(),
  /** The key Secret in kustomization mode when the flux-system patch names none; absent: provider only (a cloud key service). */
  secretName: z.string().optional(),
});
export type ChildDecryptionParams = z.infer<typeof childDecryptionParams>;

interface Target {
  name: string;
  namespace: string;
  /** The line of its document's contents, as the walk records it. */
  line: number;
  sops: string[];
}

interface ChildFacts {
  /** Files holding Kustomizations to fix, with their text as read. */
  files: { file: string; text: string; targets: Target[] }[];
  /** Kustomizations whose spec.path is not in the repository. */
  badPaths: { id: string; path: string; file: string; text: string; line: number }[];
  fluxSystem: string | undefined;
}

interface Write {
  file: string;
  content: string;
}

function decryptionValue(p: ChildDecryptionParams, fluxSystem: string | undefined): { provider: string; secretRef?: { name: string } } {
  const settings = decryptionSettings(fluxSystem, p.fluxSystemKustomization);
  const mode = p.mode ?? settings?.mode ?? 'kustomization';
  const secret = settings?.secretRef ?? p.secretName;
  return mode === 'kustomization' && secret !== undefined ? { provider: 'sops', secretRef: { name: secret } } : { provider: 'sops' };
}

/** Insert `key` where Flux's own (alphabetical) order would put it when the map follows that order, else last. */
function insertKey(doc: Document, map: YAMLMap, key: string, value: unknown): void {
  const keys = map.items.map((i) => str(i.key) ?? '');
  const sorted = keys.every((k, i) => i === 0 || (keys[i - 1] ?? '') <= k);
  const at = sorted ? keys.findIndex((k) => k > key) : -1;
  map.items.splice(at === -1 ? map.items.length : at, 0, doc.createPair(key, value));
}

/** The text with decryption set on each target's document; every other document is left as it was, byte for byte. */
export function withDecryption(text: string, file: string, targets: Target[], value: { provider: string; secretRef?: { name: string } }): string {
  const y = parseAllEditable(text, file);
  let out = '';
  let at = 0;
  let edited = 0;
  for (const doc of y.docs) {
    const root = doc.contents;
    if (!targets.some((t) => t.line === y.lineOf(root)) || !isMap(root)) continue;
    const spec = root.get('spec', true);
    if (!isMap(spec)) throw configError("the Kustomization's spec must be a map", locate(y, file, spec ?? root));
    const existing = spec.get('decryption', true);
    if (isMap(existing)) {
      // provider first, as Flux writes it; what else the block holds (a secretRef, a serviceAccountName) stays.
      if (existing.has('provider')) existing.set('provider', 'sops');
      else existing.items.unshift(doc.createPair('provider', 'sops'));
      if (value.secretRef && !existing.has('secretRef') && !existing.has('serviceAccountName')) existing.set('secretRef', doc.createNode(value.secretRef));
    } else if (existing === undefined || existing === null || (isScalar(existing) && existing.value === null)) {
      if (existing !== undefined) spec.delete('decryption');
      insertKey(doc, spec, 'decryption', value);
    } else {
      throw configError('spec.decryption must be a map', locate(y, file, existing));
    }
    const [start, , end] = doc.range;
    out += text.slice(at, start) + serialize(doc, text);
    at = end;
    edited++;
  }
  // The walk read the same text with the same parser: a target it found and this does not is a bug.
  if (edited < targets.length) throw new Error(`${file}: no Kustomization at line ${targets.map((t) => t.line).join(', ')} of the ones the walk found`);
  return out + text.slice(at);
}

const describeValue = (v: { provider: string; secretRef?: { name: string } }) =>
  `{provider: sops${v.secretRef ? `, secretRef: {name: ${v.secretRef.name}}` : ''}}`;

export const childDecryptionKind: TaskKind<ChildDecryptionParams, ChildFacts, RepoContext, Write> = {
  kind: 'child-decryption',
  params: childDecryptionParams,
  async observe(p, ctx) {
    const fs = repoFs(ctx.paths.repo);
    const reach = await reachOf(fs, { path: p.clusterPath });
    const fluxSystemDir = `${p.clusterPath}/flux-system/`;
    // The walk's root is the cluster's own sync Kustomization; gotk-sync.yaml is flux's to write.
    const children = new Set(
      reach.kustomizations.slice(1).filter((k) => k.at?.file !== undefined && !k.at.file.startsWith(fluxSystemDir) && ksId(k) !== 'flux-system/flux-system'),
    );
    const read = async (file: string) => (await readTextIfExists(join(ctx.paths.repo, ...file.split('/')))) ?? '';
    const badPaths: ChildFacts['badPaths'] = [];
    for (const k of children) {
      if (k.at?.file === undefined || (await fs.list(k.path)) !== undefined) continue;
      badPaths.push({ id: ksId(k), path: k.path, file: k.at.file, text: await read(k.at.file), line: k.at.line ?? 1 });
    }
    const byFile = new Map<string, Target[]>();
    for (const d of decryptionFindings(reach)) {
      const k = d.kustomization;
      if (!children.has(k) || k.at?.file === undefined) continue;
      byFile.set(k.at.file, [...(byFile.get(k.at.file) ?? []), { name: k.name, namespace: k.namespace, line: k.at.line ?? 1, sops: d.files }]);
    }
    const files: ChildFacts['files'] = [];
    for (const [file, targets] of byFile) files.push({ file, text: await read(file), targets });
    return { files, badPaths, fluxSystem: await readTextIfExists(join(ctx.paths.repo, ...p.fluxSystemKustomization.split('/'))) };
  },
  plan(p, facts): Change<Write>[] {
    const [bad] = facts.badPaths;
    if (bad) {
      // The line of spec.path itself, where the fix goes.
      const y = parseAllEditable(bad.text, bad.file);
      const root = y.docs.find((d) => y.lineOf(d.contents) === bad.line)?.contents;
      const spec = isMap(root) ? root.get('spec', true) : undefined;
      const path = isMap(spec) ? spec.get('path', true) : undefined;
      const more =
        facts.badPaths.length > 1
          ? ` (and ${facts.badPaths
              .slice(1)
              .map((b) => `Kustomization ${b.id}`)
              .join(', ')})`
          : '';
      throw new FluxstrapError('E_NOT_FOUND', `Kustomization ${bad.id}: spec.path ./${bad.path} does not exist in the repository${more}`, {
        location: { file: bad.file, line: y.lineOf(path) ?? bad.line },
        hint: 'point spec.path at a folder of the repository (from its root, as Flux reads it) or remove the Kustomization; nothing was changed',
      });
    }
    const value = decryptionValue(p, facts.fluxSystem);
    return facts.files.map(({ file, text, targets }) => {
      const content = withDecryption(text, file, targets, value);
      return {
        action: 'update',
        target: `file ${file}`,
        summary: `decryption ${describeValue(value)} on ${targets.map((t) => `Kustomization ${ksId(t)} (for ${t.sops.join(', ')})`).join(', ')}`,
        before: text,
        after: content,
        data: { file, content },
      };
    });
  },
  async apply(change, _p, ctx) {
    const { file, content } = dataOf(change);
    await writeAtomic(join(ctx.paths.repo, ...file.split('/')), content, { within: ctx.paths.repo });
  },
};
