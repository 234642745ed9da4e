import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readText } from '../adapters/files.ts';
import { FluxstrapError } from '../core/errors.ts';
import { KNOWN_COMPONENTS } from './install.ts';
import type { ManifestBundle } from './install.ts';

/** The Flux version fluxstrap ships manifests for and is tested with. */
export const DEFAULT_FLUX_VERSION = 'v2.9.5';

const shipped = (version: string) => fileURLToPath(new URL(`../../manifests/flux/${version}/`, import.meta.url));

export interface LoadedManifests {
  bundle: ManifestBundle;
  /** The components the bundle holds. */
  components: string[];
  /** Where they came from, for messages. */
  source: string;
}

/**
 * A Flux release's manifests (manifests.tar.gz unpacked): from `--flux-manifests DIR`, the copy
 * shipped for the default version, or the release on GitHub (verified, cached). Only the files a
 * release holds are read.
 */
export async function loadManifests(version: string, dir?: string, download?: { env: NodeJS.ProcessEnv; userAgent: string }): Promise<LoadedManifests> {
  if (dir === undefined && version !== DEFAULT_FLUX_VERSION && download === undefined) {
    throw new FluxstrapError('E_NOT_FOUND', `fluxstrap ships the manifests of Flux ${DEFAULT_FLUX_VERSION}, not ${version}`, {
      location: { field: '--flux-version' },
      hint: `download manifests.tar.gz of Flux ${version} from https://github.com/fluxcd/flux2/releases, unpack it and pass --flux-manifests DIR`,
    });
  }
  const fetched =
    dir === undefined && version !== DEFAULT_FLUX_VERSION && download
      ? await (await import('./release.ts')).releaseManifests(version, download.env, download.userAgent)
      : undefined;
  const from = dir ?? fetched ?? shipped(version);
  const names = await readdir(from).catch(() => {
    throw new FluxstrapError('E_NOT_FOUND', 'Flux manifests folder not found', {
      location: { file: from },
      hint: '--flux-manifests takes the folder of an unpacked manifests.tar.gz',
    });
  });
  const bundle = new Map<string, string>();
  for (const name of ['rbac.yaml', 'policies.yaml', ...KNOWN_COMPONENTS.map((c) => `${c}.yaml`)]) {
    if (names.includes(name)) bundle.set(name, await readText(join(from, name)));
  }
  const components = KNOWN_COMPONENTS.filter((c) => isComponentBundle(bundle.get(`${c}.yaml`), c));
  if (!bundle.has('rbac.yaml') || !bundle.has('policies.yaml') || components.length === 0) {
    throw new FluxstrapError('E_CONFIG', 'not the manifests of a Flux release', {
      location: { file: from },
      hint: "expected rbac.yaml, policies.yaml and <controller>.yaml files, as in a release's manifests.tar.gz",
    });
  }
  return {
    bundle,
    components,
    source: dir ?? (fetched === undefined ? `the Flux ${version} manifests shipped with fluxstrap` : `the Flux ${version} release on GitHub`),
  };
}

/** A controller's bundle names its Deployment and its image, as every Flux release's does. */
function isComponentBundle(text: string | undefined, component: string): boolean {
  return text !== undefined && /^kind: Deployment$/m.test(text) && text.includes(`image: fluxcd/${component}:`);
}
