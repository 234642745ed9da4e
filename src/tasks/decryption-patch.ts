import { isMap, isSeq, Scalar, stringify } from 'yaml';
import type { YAMLMap } from 'yaml';
import { z } from 'zod';
import { configError } from '../core/errors.ts';
import { fileKind } from './file-content.ts';
import { locate, parseAllEditable, parseEditable, rootMap, seqAt, str } from './yaml-edit.ts';

/**
 * SOPS decryption for the `flux-system` Kustomization, written where `flux bootstrap` never
 * writes: a patch in `flux-system/kustomization.yaml` (bootstrap creates that file only when it
 * is missing, and regenerates gotk-sync.yaml on every run, losing hand edits: fluxcd/flux2#524).
 */

export const decryptionPatchParams = z.object({
  /** `clusters/NAME/flux-system/kustomization.yaml` */
  file: z.string(),
  /** `clusters/NAME/flux-system/gotk-sync.yaml`: a hand-added block there is moved into the patch. */
  gotkSync: z.string(),
  secretName: z.string().default('sops-age'),
  /** The whole block instead of `{provider: sops, secretRef: secretName}`: a cloud identity needs no Secret. */
  decryption: z.record(z.string(), z.unknown()).optional(),
});
export type DecryptionPatchParams = z.infer<typeof decryptionPatchParams>;

export interface HandAddedDecryption {
  /** The block's value, e.g. `{provider: sops, secretRef: {name: sops-age}}`. */
  value: unknown;
  /** Character offsets of the lines that hold it (from the start of its key's line). */
  from: number;
  to: number;
}

/** A `decryption:` block in the flux-system Kustomization of gotk-sync.yaml, which flux never writes. */
export function findHandAddedDecryption(text: string, file: string): HandAddedDecryption | undefined {
  const { docs } = parseAllEditable(text, file);
  for (const doc of docs) {
    const root = doc.contents;
    if (!isMap(root) || str(root.get('kind', true)) !== 'Kustomization') continue;
    const meta = root.get('metadata', true);
    if (!isMap(meta) || str(meta.get('name', true)) !== 'flux-system') continue;
    const spec = root.get('spec', true);
    if (!isMap(spec)) continue;
    const pair = spec.items.find((p) => str(p.key) === 'decryption');
    const keyStart = (pair?.key as { range?: [number, number, number] } | undefined)?.range?.[0];
    const valueEnd = (pair?.value as { range?: [number, number, number] } | undefined)?.range?.[2];
    if (!pair || keyStart === undefined || valueEnd === undefined) continue;
    const from = text.lastIndexOf('\n', keyStart - 1) + 1;
    const eol = text.indexOf('\n', Math.max(valueEnd - 1, keyStart));
    return { value: (pair.value as { toJSON(): unknown }).toJSON(), from, to: eol === -1 ? text.length : eol + 1 };
  }
  return undefined;
}

/** Whether a kustomize patch entry already sets the flux-system Kustomization's decryption. */
function setsDecryption(entry: unknown): boolean {
  if (!isMap(entry)) return typeof str(entry) === 'string' && /decryption/.test(str(entry) ?? '');
  const target = entry.get('target', true);
  const kind = isMap(target) ? str(target.get('kind', true)) : undefined;
  const patch = str(entry.get('patch', true)) ?? '';
  return (kind === undefined || kind === 'Kustomization') && /decryption/.test(patch) && (kind !== undefined || /kind:\s*Kustomization/.test(patch));
}

const NEW_FILE = 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n';

export const decryptionPatchKind = fileKind<DecryptionPatchParams>({
  kind: 'decryption-patch',
  params: decryptionPatchParams,
  file: (p) => p.file,
  inputs: (p) => [p.gotkSync],
  desired(p, { content, inputs }) {
    const existing = content === undefined ? undefined : parseEditable(content, p.file);
    const created = existing === undefined || rootMap(existing, p.file, 'kustomization.yaml') === undefined;
    const y = created ? parseEditable(NEW_FILE, p.file) : existing;
    const root = rootMap(y, p.file, 'kustomization.yaml') as YAMLMap;
    const kind = root.get('kind', true);
    if (str(kind) !== undefined && str(kind) !== 'Kustomization') {
      throw configError(`expected a kustomize Kustomization, found kind ${str(kind)}`, locate(y, p.file, kind));
    }
    for (const key of ['patches', 'patchesJson6902', 'patchesStrategicMerge']) {
      const list = root.get(key, true);
      if (isSeq(list) && list.items.some(setsDecryption)) return undefined;
    }
    const sync = inputs[p.gotkSync];
    const moved = sync === undefined ? undefined : findHandAddedDecryption(sync, p.gotkSync);
    const value = moved?.value ?? p.decryption ?? { provider: 'sops', secretRef: { name: p.secretName } };
    const ops = new Scalar(stringify([{ op: 'add', path: '/spec/decryption', value }]));
    ops.type = Scalar.BLOCK_LITERAL;
    const entry = y.doc.createNode({ patch: ops, target: { kind: 'Kustomization', name: 'flux-system' } }) as YAMLMap;
    seqAt(y, p.file, root, 'patches').items.push(entry);
    return {
      content: y.toString(),
      summary: `${created ? 'create it with the gotk resources and ' : ''}patch decryption into Kustomization flux-system${moved ? ` (moved from ${p.gotkSync})` : ''}`,
    };
  },
});

