import { posix } from 'node:path';

/**
 * The two files the flux CLI generates in a cluster's flux-system folder. fluxstrap reads them
 * (the components it applies, the sync objects it creates) but does not write them: every message
 * about a missing one is made here, so it changes in one place if that changes.
 */
export const GOTK_FILES = ['gotk-components.yaml', 'gotk-sync.yaml'] as const;
export type GotkFile = (typeof GOTK_FILES)[number];

/** What the commands can fill in; the rest is shown as a placeholder. */
export interface GotkSource {
  /** The cluster folder in the repository, e.g. `clusters/prod`. */
  clusterPath: string;
  url?: string | undefined;
  branch?: string | undefined;
  /** Git auth is configured: the GitRepository must name the Secret fluxstrap writes. */
  auth?: boolean;
}

/** The flux commands that write `file`, as they generate it for `flux bootstrap`. */
function commandFor(file: GotkFile, src: GotkSource): string {
  const out = posix.join(src.clusterPath, 'flux-system', file);
  if (file === 'gotk-components.yaml') return `flux install --export > ${out}`;
  const source = `flux create source git flux-system --url=${src.url ?? '<git URL>'} --branch=${src.branch ?? 'main'}${src.auth === true ? ' --secret-ref=flux-system' : ''} --export > ${out}`;
  const sync = `flux create kustomization flux-system --source=GitRepository/flux-system --path=./${src.clusterPath} --prune=true --export >> ${out}`;
  return `${source} && ${sync}`;
}

/** `missing` in the cluster's flux-system folder: what is true, and what to run. */
export function missingGotkFiles(missing: readonly GotkFile[], src: GotkSource): { what: string; fix: string } {
  const names = missing.map((f) => posix.join(src.clusterPath, 'flux-system', f));
  const what = `${names.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} missing: the flux CLI generates ${missing.length === 1 ? 'it' : 'them'}, fluxstrap does not`;
  const fix = `run ${missing.map((f) => `\`${commandFor(f, src)}\``).join(', then ')}, and commit; or let \`flux bootstrap\` write and commit ${missing.length === 1 ? 'it' : 'them'}`;
  return { what, fix };
}
