import { Scalar } from 'yaml';
import { z } from 'zod';
import { fileKind } from './file-content.ts';
import { insertAt, parseEditable, rootMap, seqAt, str } from './yaml-edit.ts';

/**
 * The cluster folder's own kustomization.yaml must list `flux-system`: when it exists, Flux builds
 * only what it lists, and without flux-system the Kustomization never applies Flux's own config
 * from Git (the seed's mistake), so the decryption patch would never reach the cluster. Without a
 * kustomization.yaml, Flux generates one with every manifest, flux-system included: nothing to do.
 */
export const clusterRootParams = z.object({
  /** `clusters/NAME/kustomization.yaml` (or the .yml / Kustomization spelling found there). */
  file: z.string(),
});
export type ClusterRootParams = z.infer<typeof clusterRootParams>;

const FLUX_SYSTEM = 'flux-system';
// `(?<!\/)`: a match starts at a run's first slash, so a long run of slashes costs linear time, not quadratic.
const normalize = (entry: string) => entry.replace(/^(\.\/)+/, '').replace(/(?<!\/)\/+$/, '');

export const clusterRootKind = fileKind<ClusterRootParams>({
  kind: 'cluster-root',
  params: clusterRootParams,
  file: (p) => p.file,
  desired(p, { content }) {
    if (content === undefined) return undefined;
    const y = parseEditable(content, p.file);
    const root = rootMap(y, p.file, 'kustomization.yaml');
    if (!root) return undefined;
    const resources = seqAt(y, p.file, root, 'resources');
    if (resources.items.some((r) => normalize(str(r) ?? '') === FLUX_SYSTEM)) return undefined;
    insertAt(resources, 0, new Scalar(FLUX_SYSTEM));
    return { content: y.toString(), summary: 'add flux-system to resources, so Flux applies its own configuration (and the decryption patch) from Git' };
  },
  notes: (_p, { content }) => (content === undefined ? ['no kustomization.yaml: Flux includes every manifest in the folder, flux-system too'] : []),
});
