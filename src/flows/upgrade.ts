import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { readTextIfExists } from '../adapters/files.ts';
import { yamlValues } from '../core/bounded-yaml.ts';
import { resolveClusterFlags } from '../cluster/resolve.ts';
import type { ClusterFlags } from '../cluster/config.ts';
import { FluxstrapError, usageError } from '../core/errors.ts';
import type { TaskInstance } from '../core/task.ts';
import { version as fluxstrapVersion } from '../core/version.ts';
import { generateComponents, installOptionsOf, validateInstallOptions } from '../flux/install.ts';
import type { InstallOptions } from '../flux/install.ts';
import { loadManifests } from '../flux/manifests.ts';
import { compareVersions, fluxCrds } from '../flux/upgrade.ts';
import type { TaskContext } from '../tasks/context.ts';
import { fluxStorageVersionsKind } from '../tasks/flux-storage-versions.ts';
import { fluxUpgradePreflightKind } from '../tasks/flux-upgrade-preflight.ts';
import { gotkComponentsKind } from '../tasks/gotk-components.ts';
import { missingGotkFiles } from '../tasks/gotk-files.ts';
import { exitCodeOf, runClusterTasks, runSettings } from './bootstrap.ts';
import { normalizeVersion } from './init-flux.ts';
import { info } from './io.ts';
import type { CommandIo } from './io.ts';

/**
 * `fluxstrap upgrade`: gotk-components.yaml regenerated for another Flux version with the install
 * options the file was generated with, after a preflight proves the upgrade safe (stored versions,
 * removed APIs in the repository, strict substitution, Kubernetes version). Only that file is
 * written; Flux applies it from Git once pushed (or `bootstrap` does). `--migrate-storage` also
 * moves the live CRDs off stored versions the new CRDs no longer serve.
 */
export interface UpgradeOptions extends ClusterFlags {
  fluxVersion: string;
  fluxManifests?: string;
  migrateStorage?: boolean;
  force?: boolean;
  check?: boolean;
  diff?: boolean;
  timeout?: string;
}

type Obj = Record<string, unknown>;

export async function runUpgrade(opts: UpgradeOptions, g: CommandIo): Promise<number> {
  const to = normalizeVersion(opts.fluxVersion);
  const settings = runSettings({ ...opts, rotateSecrets: false });
  const cluster = await resolveClusterFlags(opts, g.env, g.cwd);
  const file = `${cluster.path}/flux-system/gotk-components.yaml`;
  const current = await readTextIfExists(join(cluster.repoDir, ...file.split('/')));
  if (current === undefined) {
    const { what, fix } = missingGotkFiles(['gotk-components.yaml'], {
      cluster: cluster.name,
      clusterPath: cluster.path,
      url: cluster.git.url,
      branch: cluster.git.branch,
    });
    throw new FluxstrapError('E_NOT_FOUND', `${what}: there is no Flux to upgrade`, { location: { file }, hint: fix });
  }
  const from = installOptionsOf(current, file);
  const order = compareVersions(to, from.version);
  if (order === 0)
    throw usageError(`${file} is already Flux ${to} (--flux-version)`, 'nothing to upgrade; to change install options, run fluxstrap init --force with them');
  if (order < 0)
    throw usageError(
      `--flux-version ${to} is older than Flux ${from.version} in ${file}`,
      'downgrades are not supported: the older CRDs may not serve what the cluster stores',
    );

  const download = { env: g.env, userAgent: `fluxstrap/${fluxstrapVersion}` };
  const target = await loadManifests(to, opts.fluxManifests, download);
  const options: InstallOptions = { ...from, version: to };
  validateInstallOptions(options, target.components);
  const content = generateComponents(target.bundle, options);
  const edits = await handEdits(current, from, file, download);
  if (edits.unknown !== undefined) info(g, `note: ${edits.unknown}`);
  const refuse = edits.generated !== undefined && edits.objects.length > 0 && opts.force !== true;

  const crds = [...fluxCrds(yamlValues(content, file)).values()];
  const task = <P>(name: string, kind: TaskInstance<TaskContext>['kind'], params: P): TaskInstance<TaskContext> => ({ name, kind, params });
  const tasks = [
    task(`upgrade preflight: Flux ${from.version} → ${to}`, fluxUpgradePreflightKind, {
      from: from.version,
      to,
      targetCrds: crds,
      migrateStorage: opts.migrateStorage === true,
    }),
    // Retried: a CRD just changed answers 429 while its storage re-initializes.
    ...(opts.migrateStorage === true
      ? [{ ...task(`stored versions of the Flux CRDs served by Flux ${to}`, fluxStorageVersionsKind, { targetCrds: crds }), retries: 3, retryDelayMs: 2000 }]
      : []),
    task(`${file} at Flux ${to}`, gotkComponentsKind as TaskInstance<TaskContext>['kind'], {
      file,
      content,
      version: to,
      components: options.components,
      explicit: true,
      force: true,
    }),
  ];
  if (refuse) {
    // A hand-edited file is never replaced unasked. The edits are shown as the --check --diff of
    // putting back what flux generates for the file's own version: exactly what an upgrade would lose.
    const view = await g.reporter({ diff: true });
    const restore = task(`hand edits in ${file} that the upgrade would drop`, gotkComponentsKind as TaskInstance<TaskContext>['kind'], {
      file,
      content: edits.generated,
      version: from.version,
      components: from.components,
      explicit: true,
      force: true,
    });
    await runClusterTasks({ title: `upgrade ${cluster.path} to Flux ${to}`, tasks: [restore] }, cluster, { ...settings, check: true }, view, g.env);
    throw new FluxstrapError(
      'E_PRECONDITION',
      `edited by hand: ${edits.objects.slice(0, 5).join(', ')}${edits.objects.length > 5 ? ` and ${edits.objects.length - 5} more` : ''} not as Flux ${from.version} generates; nothing was written`,
      {
        location: { file },
        hint: 'the diff above shows the edits upgrade would drop: keep them as patches in flux-system/kustomization.yaml, then run again with --force',
      },
    );
  }
  const check = settings.check;
  const view = await g.reporter({ diff: opts.diff === true || check });
  const result = await runClusterTasks({ title: `upgrade ${cluster.path} to Flux ${to}`, tasks }, cluster, settings, view, g.env);
  const code = exitCodeOf([{ success: result.success, wouldChange: result.recap.wouldChange }], check);
  if (result.success && !check) info(g, `next: commit and push ${file}; Flux applies it from Git (or run fluxstrap bootstrap --cluster ${cluster.name})`);
  return code;
}

/**
 * The objects of gotk-components.yaml that differ from what flux generates for its version and
 * options. Needs that version's manifests (shipped, cached, or from the release); without them the
 * check is skipped with a note rather than blocking an upgrade away from a version no longer at hand.
 */
async function handEdits(
  current: string,
  o: InstallOptions,
  file: string,
  download: { env: NodeJS.ProcessEnv; userAgent: string },
): Promise<{ objects: string[]; generated?: string; unknown?: string }> {
  let generated: string;
  try {
    generated = generateComponents((await loadManifests(o.version, undefined, download)).bundle, o);
  } catch (e) {
    return {
      objects: [],
      unknown: `${file} not checked for hand edits: the Flux ${o.version} manifests are not at hand (${e instanceof Error ? e.message : String(e)})`,
    };
  }
  const byId = (text: string) =>
    new Map(
      yamlValues(text, file).flatMap((v) => {
        if (typeof v !== 'object' || v === null) return [];
        const o = v as Obj;
        const meta = (o.metadata ?? {}) as Obj;
        const ns = typeof meta.namespace === 'string' ? `${meta.namespace}/` : '';
        return [[`${String(o.kind)} ${ns}${String(meta.name)}`, o] as const];
      }),
    );
  const [have, want] = [byId(current), byId(generated)];
  return { generated, objects: [...new Set([...have.keys(), ...want.keys()])].filter((id) => !isDeepStrictEqual(have.get(id), want.get(id))) };
}
