import { stat } from 'node:fs/promises';
import { usageError } from '../core/errors.ts';
import { join } from 'node:path';
import type { GotkComponentsParams } from '../tasks/gotk-components.ts';
import { DEFAULT_COMPONENTS, defaultInstallOptions, generateComponents, validateInstallOptions } from '../flux/install.ts';
import type { InstallOptions } from '../flux/install.ts';
import { DEFAULT_FLUX_VERSION, loadManifests } from '../flux/manifests.ts';

/** The `flux install` options init takes, as commander parses them. */
export interface FluxInstallFlags {
  fluxVersion?: string;
  fluxManifests?: string;
  components?: string;
  componentsExtra?: string;
  registry?: string;
  imagePullSecret?: string;
  watchAllNamespaces?: boolean;
  networkPolicy?: boolean;
  tolerationKeys?: string;
  clusterDomain?: string;
  logLevel?: string;
  force?: boolean;
}

const list = (v: string | undefined) =>
  v === undefined
    ? []
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

/**
 * The gotk-components.yaml task's params: generated when the file is missing or a version/option
 * was given; undefined when an existing file is left as it is. `omitted` names default components
 * that the manifests at hand lack (so the user knows what they do not get).
 */
export async function fluxComponentsParams(
  repo: string,
  file: string,
  f: FluxInstallFlags,
  download: { env: NodeJS.ProcessEnv; userAgent: string },
): Promise<{ params: GotkComponentsParams; omitted: string[] } | undefined> {
  const explicit = [
    f.fluxVersion,
    f.fluxManifests,
    f.components,
    f.componentsExtra,
    f.registry,
    f.imagePullSecret,
    f.watchAllNamespaces,
    f.networkPolicy,
    f.tolerationKeys,
    f.clusterDomain,
    f.logLevel,
  ].some((v) => v !== undefined);
  const exists = (await stat(join(repo, file)).catch(() => undefined))?.isFile() === true;
  if (exists && !explicit) return undefined;
  const version = normalizeVersion(f.fluxVersion ?? DEFAULT_FLUX_VERSION);
  const manifests = await loadManifests(version, f.fluxManifests, download);
  const defaults = defaultInstallOptions(version);
  // flux's default set, less what the manifests at hand lack, unless the user named the components.
  const base = f.components === undefined ? DEFAULT_COMPONENTS.filter((c) => manifests.components.includes(c)) : list(f.components);
  const omitted = f.components === undefined ? DEFAULT_COMPONENTS.filter((c) => !manifests.components.includes(c)) : [];
  const o: InstallOptions = {
    ...defaults,
    components: [...base, ...list(f.componentsExtra)],
    ...(f.registry !== undefined ? { registry: f.registry } : {}),
    ...(f.imagePullSecret !== undefined ? { imagePullSecret: f.imagePullSecret } : {}),
    ...(f.watchAllNamespaces !== undefined ? { watchAllNamespaces: f.watchAllNamespaces } : {}),
    ...(f.networkPolicy !== undefined ? { networkPolicy: f.networkPolicy } : {}),
    ...(f.tolerationKeys !== undefined ? { tolerationKeys: list(f.tolerationKeys) } : {}),
    ...(f.clusterDomain !== undefined ? { clusterDomain: f.clusterDomain } : {}),
    ...(f.logLevel !== undefined ? { logLevel: f.logLevel } : {}),
  };
  validateInstallOptions(o, manifests.components);
  return {
    params: { file, content: generateComponents(manifests.bundle, o), version, components: o.components as string[], explicit, force: f.force === true },
    omitted,
  };
}

/** `2.9.5` and `v2.9.5` name the same release, as for the flux CLI. */
export function normalizeVersion(v: string): string {
  const tag = /^\d/.test(v) ? `v${v}` : v;
  if (!/^v\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$/.test(tag)) throw usageError(`invalid --flux-version ${JSON.stringify(v)}`, 'a Flux release such as v2.9.5');
  return tag;
}
