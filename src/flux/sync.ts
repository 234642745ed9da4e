import { stringify } from 'yaml';
import { GEN_WARNING } from './install.ts';

/**
 * gotk-sync.yaml as flux2's pkg/manifestgen/sync writes it (`flux bootstrap`): the GitRepository
 * and the Kustomization named flux-system, keys sorted as sigs.k8s.io/yaml sorts them, and never
 * a decryption block (that lives in a patch in kustomization.yaml, where flux never rewrites it).
 */
export interface SyncOptions {
  url: string;
  branch: string;
  /** The cluster folder in the repository, e.g. clusters/home. */
  path: string;
  namespace?: string;
  secretName?: string;
  /** GitRepository.spec.provider (`github` for GitHub App auth). */
  provider?: string;
}

export function generateSync(o: SyncOptions): string {
  const ns = o.namespace ?? 'flux-system';
  const repo = {
    apiVersion: 'source.toolkit.fluxcd.io/v1',
    kind: 'GitRepository',
    metadata: { name: 'flux-system', namespace: ns },
    spec: sorted({
      interval: '1m0s',
      ...(o.provider ? { provider: o.provider } : {}),
      ref: { branch: o.branch },
      secretRef: { name: o.secretName ?? 'flux-system' },
      url: o.url,
    }),
  };
  const ks = {
    apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
    kind: 'Kustomization',
    metadata: { name: 'flux-system', namespace: ns },
    spec: { interval: '10m0s', path: `./${o.path.replace(/^\.\//, '')}`, prune: true, sourceRef: { kind: 'GitRepository', name: 'flux-system' } },
  };
  return `${GEN_WARNING}\n---\n${stringify(repo)}---\n${stringify(ks)}`;
}

const sorted = <T extends Record<string, unknown>>(o: T): T => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))) as T;
