import { posix } from 'node:path';

/**
 * The two files `flux bootstrap` (and `fluxstrap init`) generate in a cluster's flux-system
 * folder; every message about a missing one is made here.
 */
export const GOTK_FILES = ['gotk-components.yaml', 'gotk-sync.yaml'] as const;
export type GotkFile = (typeof GOTK_FILES)[number];

/** What the commands can fill in; the rest is shown as a placeholder. */
export interface GotkSource {
  cluster: string;
  /** The cluster folder in the repository, e.g. `clusters/prod`. */
  clusterPath: string;
  url?: string | undefined;
  branch?: string | undefined;
}

/** `missing` in the cluster's flux-system folder (`folder`: the folder itself is missing): what is true, and what to run. */
export function missingGotkFiles(missing: readonly GotkFile[], src: GotkSource, folder = false): { what: string; fix: string } {
  const names = missing.map((f) => posix.join(src.clusterPath, 'flux-system', f));
  const what = folder
    ? `${posix.join(src.clusterPath, 'flux-system')}/ is missing: Flux was never set up for this cluster`
    : `${names.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} missing`;
  const path = src.clusterPath === `clusters/${src.cluster}` ? '' : ` --path ${src.clusterPath}`;
  const git = missing.includes('gotk-sync.yaml')
    ? ` --git-url ${src.url ?? '<git URL>'}${src.branch !== undefined && src.branch !== 'main' ? ` --branch ${src.branch}` : ''}`
    : '';
  return { what, fix: `run \`fluxstrap init --cluster ${src.cluster}${path}${git}\` (it generates them as flux bootstrap does), then commit and push` };
}
