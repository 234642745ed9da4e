import { isMap, isSeq, Scalar, stringify } from 'yaml';
import type { YAMLMap, YAMLSeq } from 'yaml';
import { z } from 'zod';
import { yamlValues } from '../core/bounded-yaml.ts';
import { configError } from '../core/errors.ts';
import { fileKind } from './file-content.ts';
import { locate, parseAllEditable, parseEditable, rootMap, seqAt, str } from './yaml-edit.ts';

/**
 * SOPS decryption for the `flux-system` Kustomization, written where `flux bootstrap` never
 * writes: a patch in `flux-system/kustomization.yaml` (bootstrap creates that file only when it
 * is missing, and regenerates gotk-sync.yaml on every run, losing hand edits: fluxcd/flux2#524).
 * In controller mode a second patch gives kustomize-controller `--sops-age-secret`, aimed at that
 * Deployment alone (helm- or source-controller refuse an unknown flag and would not start).
 */

export const decryptionPatchParams = z.object({
  /** `clusters/NAME/flux-system/kustomization.yaml` */
  file: z.string(),
  /** `clusters/NAME/flux-system/gotk-sync.yaml`: a hand-added block there is moved into the patch. */
  gotkSync: z.string(),
  secretName: z.string().default('sops-age'),
  /** The whole block instead of `{provider: sops, secretRef: secretName}`: a cloud identity needs no Secret. */
  decryption: z.record(z.string(), z.unknown()).optional(),
  /**
   * `kustomization`: the key's Secret named in the Kustomization's decryption; `controller`
   * (Flux >= 2.7): kustomize-controller's `--sops-age-secret` names it and the Kustomization
   * keeps `provider: sops` alone. Unset: the mode the file already has (else kustomization).
   */
  mode: z.enum(['kustomization', 'controller']).optional(),
  /**
   * `secretName` is the only Secret that can decrypt (Vault's token, never in the age key's
   * Secret): a secretRef naming another one, written before or hand-added, is changed to it.
   */
  secretRefFixed: z.boolean().default(false),
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

const CONTROLLER_FLAG = '--sops-age-secret=';
const ARGS_PATH = '/spec/template/spec/containers/0/args/-';

interface JsonOp {
  op?: unknown;
  path?: unknown;
  value?: unknown;
}

/** The plain value of an inline patch (a JSON6902 list or a strategic-merge object); undefined when it is neither. */
function inlinePatch(entry: unknown, file: string): JsonOp[] | Record<string, unknown> | undefined {
  const text = isMap(entry) ? str(entry.get('patch', true)) : undefined;
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = yamlValues(text, file)[0];
  } catch {
    return undefined;
  }
  if (Array.isArray(value)) return value.every((o) => typeof o === 'object' && o !== null) ? (value as JsonOp[]) : undefined;
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

/** The decryption value an inline patch sets, and how to write another one in its place. */
function decryptionIn(entry: unknown, file: string): { value: unknown; replace(value: unknown): unknown } | undefined {
  const patch = inlinePatch(entry, file);
  if (Array.isArray(patch)) {
    const op = patch.find((o) => o.path === '/spec/decryption' && (o.op === 'add' || o.op === 'replace'));
    if (op === undefined) return undefined;
    return { value: op.value, replace: (value) => patch.map((o) => (o === op ? { ...o, value } : o)) };
  }
  const spec = patch?.spec;
  if (typeof spec !== 'object' || spec === null || !('decryption' in spec)) return undefined;
  return { value: spec.decryption, replace: (value) => ({ ...patch, spec: { ...spec, decryption: value } }) };
}

/** The `--sops-age-secret=` ops of an inline JSON6902 patch of the kustomize-controller Deployment. */
function controllerFlagOps(entry: unknown, file: string): { ops: JsonOp[]; flags: JsonOp[] } | undefined {
  if (!isMap(entry)) return undefined;
  const target = entry.get('target', true);
  if (!isMap(target) || str(target.get('kind', true)) !== 'Deployment' || str(target.get('name', true)) !== 'kustomize-controller') return undefined;
  const ops = inlinePatch(entry, file);
  if (!Array.isArray(ops)) return undefined;
  const flags = ops.filter((o) => o.op === 'add' && o.path === ARGS_PATH && typeof o.value === 'string' && o.value.startsWith(CONTROLLER_FLAG));
  return flags.length === 0 ? undefined : { ops, flags };
}

function literal(value: unknown): Scalar {
  const s = new Scalar(stringify(value));
  s.type = Scalar.BLOCK_LITERAL;
  return s;
}

const hasSecretRef = (v: unknown) => typeof v === 'object' && v !== null && 'secretRef' in v;

/** The block naming `name` instead, when it names another Secret; undefined when it is right. */
function renamedSecretRef(v: unknown, name: string): Record<string, unknown> | undefined {
  if (!hasSecretRef(v)) return undefined;
  const block = v as { secretRef?: { name?: unknown } };
  return block.secretRef?.name === name ? undefined : { ...(v as Record<string, unknown>), secretRef: { name } };
}

type Entry = { list: YAMLSeq; item: unknown };

/** The patch setting the flux-system Kustomization's decryption, the one giving kustomize-controller the flag, and the mode they make. */
function decryptionEntries(root: YAMLMap, file: string): { decryption?: Entry; flag?: Entry; current: DecryptionMode } {
  const entries = ['patches', 'patchesJson6902', 'patchesStrategicMerge'].flatMap((key) => {
    const list = root.get(key, true);
    return isSeq(list) ? list.items.map((item) => ({ list, item })) : [];
  });
  const decryption = entries.find((e) => setsDecryption(e.item));
  const flag = entries.find((e) => e.list === root.get('patches', true) && controllerFlagOps(e.item, file) !== undefined);
  const current = flag !== undefined && decryption !== undefined && !hasSecretRef(decryptionIn(decryption.item, file)?.value) ? 'controller' : 'kustomization';
  return { ...(decryption ? { decryption } : {}), ...(flag ? { flag } : {}), current };
}

export type DecryptionMode = 'kustomization' | 'controller';

/**
 * The cluster's decryption as its flux-system kustomization.yaml sets it: the mode, and the
 * Secret the patch names (absent in controller mode, or for a cloud key service). Undefined when
 * the file sets no decryption yet.
 */
export function decryptionSettings(text: string | undefined, file: string): { mode: DecryptionMode; secretRef?: string } | undefined {
  if (text === undefined) return undefined;
  const y = parseEditable(text, file);
  const root = rootMap(y, file, 'kustomization.yaml');
  if (root === undefined) return undefined;
  const { decryption, current } = decryptionEntries(root, file);
  if (decryption === undefined) return undefined;
  const name = (decryptionIn(decryption.item, file)?.value as { secretRef?: { name?: unknown } } | null | undefined)?.secretRef?.name;
  return { mode: current, ...(typeof name === 'string' ? { secretRef: name } : {}) };
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
    const { decryption, flag, current } = decryptionEntries(root, p.file);
    // Without --decryption the repository keeps the mode it has: a second `init` never switches it back.
    const mode = p.mode ?? current;
    const changes: string[] = [];

    if (decryption === undefined) {
      const sync = inputs[p.gotkSync];
      const moved = sync === undefined ? undefined : findHandAddedDecryption(sync, p.gotkSync);
      const kept = moved && p.secretRefFixed ? (renamedSecretRef(moved.value, p.secretName) ?? moved.value) : moved?.value;
      const value = mode === 'controller' ? { provider: 'sops' } : (kept ?? p.decryption ?? { provider: 'sops', secretRef: { name: p.secretName } });
      const entry = y.doc.createNode({
        patch: literal([{ op: 'add', path: '/spec/decryption', value }]),
        target: { kind: 'Kustomization', name: 'flux-system' },
      }) as YAMLMap;
      seqAt(y, p.file, root, 'patches').items.push(entry);
      changes.push(
        `${created ? 'create it with the gotk resources and ' : ''}patch decryption into Kustomization flux-system${moved ? ` (moved from ${p.gotkSync})` : ''}`,
      );
    } else if (p.mode !== undefined) {
      const found = decryptionIn(decryption.item, p.file);
      const wantRef = mode === 'kustomization';
      if (found === undefined || !isMap(decryption.item)) {
        throw configError(
          `cannot switch decryption to ${mode} mode: this patch of Kustomization flux-system is not an inline patch fluxstrap can edit`,
          locate(y, p.file, decryption.item),
        );
      }
      if (hasSecretRef(found.value) !== wantRef) {
        const { secretRef: _, ...rest } = (typeof found.value === 'object' && found.value !== null ? found.value : {}) as Record<string, unknown>;
        decryption.item.set(
          'patch',
          literal(found.replace(wantRef ? { provider: 'sops', ...rest, secretRef: { name: p.secretName } } : { provider: 'sops', ...rest })),
        );
        changes.push(
          wantRef
            ? `set decryption secretRef ${p.secretName} on Kustomization flux-system`
            : 'drop secretRef from the flux-system decryption (the controller flag names the Secret)',
        );
      }
    }
    if (decryption !== undefined && p.secretRefFixed && mode === 'kustomization') {
      const found = decryptionIn(decryption.item, p.file);
      const renamed = found && renamedSecretRef(found.value, p.secretName);
      if (renamed && found && isMap(decryption.item)) {
        decryption.item.set('patch', literal(found.replace(renamed)));
        changes.push(`set decryption secretRef ${p.secretName} on Kustomization flux-system`);
      }
    }

    if (mode === 'controller' && flag === undefined) {
      const entry = y.doc.createNode({
        patch: literal([{ op: 'add', path: ARGS_PATH, value: `${CONTROLLER_FLAG}${p.secretName}` }]),
        target: { kind: 'Deployment', name: 'kustomize-controller' },
      }) as YAMLMap;
      seqAt(y, p.file, root, 'patches').items.push(entry);
      changes.push(`add ${CONTROLLER_FLAG}${p.secretName} to kustomize-controller`);
    } else if (mode === 'kustomization' && flag !== undefined && p.mode !== undefined) {
      const { ops, flags } = controllerFlagOps(flag.item, p.file) ?? { ops: [], flags: [] };
      const rest = ops.filter((o) => !flags.includes(o));
      if (rest.length === 0) flag.list.items.splice(flag.list.items.indexOf(flag.item), 1);
      else (flag.item as YAMLMap).set('patch', literal(rest));
      changes.push(`remove ${CONTROLLER_FLAG} from kustomize-controller`);
    }
    return changes.length === 0 ? undefined : { content: y.toString(), summary: changes.join('; ') };
  },
});
