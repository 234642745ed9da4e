import { isMap, isSeq, Scalar } from 'yaml';
import { z } from 'zod';
import { configError } from '../core/errors.ts';
import { fileKind } from './file-content.ts';
import { locate, parseEditable, rootMap, seqAt, str } from './yaml-edit.ts';

/**
 * Patches of the flux-system objects kept in `flux-system/kustomization.yaml`, where `flux
 * bootstrap` never writes: the cloud-identity patches of flux/workload-identity.ts, and
 * `provider: github` on the GitRepository for GitHub App auth. Each is added once (an entry with
 * the same target and patch text is left alone), everything else in the file kept. The
 * decryption block itself is decryption-patch.ts's.
 */

export const workloadIdentityPatchParams = z.object({
  /** `clusters/NAME/flux-system/kustomization.yaml` */
  file: z.string(),
  patches: z.array(
    z.object({
      target: z.object({ kind: z.string(), name: z.string(), namespace: z.string().optional() }),
      patch: z.string(),
    }),
  ),
  /** Files of the flux-system folder to list in `resources` (the object-level ServiceAccount). */
  resources: z.array(z.string()).default([]),
  /** What the patches are for, in the change summary. */
  purpose: z.string().optional(),
});
export type WorkloadIdentityPatchParams = z.infer<typeof workloadIdentityPatchParams>;

const NEW_FILE = 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n';

const normal = (s: string): string => s.replace(/\s+/g, ' ').trim();

export const workloadIdentityPatchKind = fileKind<WorkloadIdentityPatchParams>({
  kind: 'workload-identity-patch',
  params: workloadIdentityPatchParams,
  file: (p) => p.file,
  desired(p, { content }) {
    const y = parseEditable(content ?? NEW_FILE, p.file);
    const root = rootMap(y, p.file, 'kustomization.yaml');
    if (!root) throw configError('kustomization.yaml must be a map', { file: p.file });
    const kind = root.get('kind', true);
    if (str(kind) !== undefined && str(kind) !== 'Kustomization') {
      throw configError(`expected a kustomize Kustomization, found kind ${str(kind)}`, locate(y, p.file, kind));
    }
    const existing = root.get('patches', true);
    const present = (want: WorkloadIdentityPatchParams['patches'][number]): boolean =>
      isSeq(existing) &&
      existing.items.some((e) => {
        if (!isMap(e)) return false;
        const target = e.get('target', true);
        return (
          isMap(target) &&
          str(target.get('kind', true)) === want.target.kind &&
          str(target.get('name', true)) === want.target.name &&
          normal(str(e.get('patch', true)) ?? '') === normal(want.patch)
        );
      });
    const missing = p.patches.filter((want) => !present(want));
    const listed = root.get('resources', true);
    const unlisted = p.resources.filter((r) => !(isSeq(listed) && listed.items.some((i) => str(i)?.replace(/^\.\//, '') === r)));
    if (missing.length === 0 && unlisted.length === 0) return undefined;
    if (unlisted.length > 0) seqAt(y, p.file, root, 'resources').items.push(...unlisted.map((r) => new Scalar(r)));
    const seq = seqAt(y, p.file, root, 'patches');
    for (const want of missing) {
      const text = new Scalar(want.patch);
      text.type = Scalar.BLOCK_LITERAL;
      seq.items.push(y.doc.createNode({ patch: text, target: want.target }));
    }
    const what = [...new Set([...missing.map((m) => `${m.target.kind} ${m.target.name}`), ...unlisted])].join(', ');
    return {
      content: y.toString(),
      summary: `${content === undefined ? 'create it with the gotk resources and ' : ''}patch ${p.purpose ?? 'the cloud identity for SOPS'} into ${what}`,
    };
  },
});

export const IDENTITY_SA_FILE = 'sops-identity.yaml';

/** The ServiceAccount object-level workload identity decrypts as, in its own file of flux-system. */
export const identityServiceAccountKind = fileKind<{ file: string; content: string }>({
  kind: 'identity-service-account',
  params: z.object({ file: z.string(), content: z.string() }),
  file: (p) => p.file,
  desired: (p, { content }) =>
    content === p.content
      ? undefined
      : {
          content: p.content,
          summary: content === undefined ? 'the ServiceAccount the flux-system Kustomization decrypts as' : "the ServiceAccount's identity changed",
        },
});
