import { readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readText } from '../adapters/files.ts';
import { runTasks } from '../core/engine.ts';
import { CONFIG_FILE, configuredAgeKey, findRepo } from '../cluster/config.ts';
import type { AgeKeySource } from '../cluster/config.ts';
import { ExitCode, FluxstrapError, usageError } from '../core/errors.ts';
import { version } from '../core/version.ts';
import type { TaskInstance, TaskKind } from '../core/task.ts';
import { KUSTOMIZATION_FILES } from '../adapters/kustomize.ts';
import { parseAgeKeyFile, recipientOf } from '../keys/age.ts';
import { checkedPublicKeys } from '../keys/recipients.ts';
import { identitiesFromEnv } from './keys.ts';
import { isArmoredPgp } from '../keys/identities.ts';
import { clusterRootKind } from '../tasks/cluster-root.ts';
import { decryptionPatchKind } from '../tasks/decryption-patch.ts';
import { readAgeIdentities } from '../tasks/context.ts';
import { configuredEntry, fluxstrapConfigKind, fluxstrapConfigTaskParams } from '../tasks/fluxstrap-config.ts';
import type { GitFlags } from '../tasks/fluxstrap-config.ts';
import type { FileState, RepoContext } from '../tasks/file-content.ts';
import { gitignoreKind, PRIVATE_KEY_PATTERNS } from '../tasks/gitignore.ts';
import { gotkSyncKind } from '../tasks/gotk-sync.ts';
import { gotkComponentsKind } from '../tasks/gotk-components.ts';
import { fluxComponentsParams } from './init-flux.ts';
import type { FluxInstallFlags } from './init-flux.ts';
import { makefileKind } from '../tasks/makefile.ts';
import { ageRecipientsFile, publicKeyFileKind } from '../tasks/public-key-file.ts';
import { sopsConfigKind } from '../tasks/sops-config.ts';
import { clusterSops, reachedPlainSecrets } from '../tasks/sops-files.ts';
import { info } from './io.ts';
import type { CommandIo } from './io.ts';

/** `fluxstrap init`: the repository tasks for one cluster, run by the engine. */

export interface InitOptions extends GitFlags, FluxInstallFlags {
  cluster: string;
  path?: string;
  keyFile?: string;
  age?: string[];
  repo?: string;
  check?: boolean;
  diff?: boolean;
}

/** The public side of the cluster's key: what .sops.yaml and the exported key file need. */
type PublicKey = { type: 'age'; recipients: string[] } | { type: 'pgp'; fingerprint: string; armored: string };

export async function runInit(opts: InitOptions, g: CommandIo): Promise<number> {
  const repo = await repoDir(findRepo(opts.repo, g.env, g.cwd));
  const entry = await configuredEntry(repo, opts.cluster);
  const clusterPath = await clusterDir(repo, opts.cluster, opts.path ?? entry?.path);
  const key = await publicKey(opts, configuredAgeKey(entry, undefined, g.env, { repoDir: repo, cwd: g.cwd }), g.env);
  const ctx: RepoContext = { paths: { repo } };
  const config = await fluxstrapConfigTaskParams(repo, opts.cluster, clusterPath, { ...opts, ageKeyFile: key.type === 'age' ? opts.keyFile : undefined }, g.cwd);
  const current = (await configuredEntry(repo, opts.cluster))?.git;
  const url = config.set?.git?.url ?? current?.url ?? config.fill?.git?.url;
  const sync = url === undefined ? undefined : { url, branch: config.set?.git?.branch ?? current?.branch ?? config.fill?.git?.branch ?? 'main', path: clusterPath };
  const flux = await fluxComponentsParams(repo, `${clusterPath}/flux-system/gotk-components.yaml`, opts, { env: g.env, userAgent: `fluxstrap/${version}` });
  const tasks = [
    ...(flux === undefined ? [] : [{ name: `${clusterPath}/flux-system/gotk-components.yaml`, kind: gotkComponentsKind, params: flux.params }]),
    ...(await initTasks(repo, clusterPath, opts.cluster, key, opts.keyFile, sync)),
    { name: `${CONFIG_FILE} entry for cluster ${opts.cluster}`, kind: fluxstrapConfigKind, params: config },
  ];

  // Every file is read and planned before anything is written, so a bad input anywhere (an
  // invalid .sops.yaml, a broken kustomization.yaml) stops init before it changes a first file.
  for (const t of tasks) t.kind.plan(t.params, await t.kind.observe(t.params, ctx), ctx);

  const reporter = await g.reporter({ diff: opts.diff === true || opts.check === true });
  const { recap, success, results } = await runTasks({ title: `init ${clusterPath}`, tasks, ctx, reporter, check: opts.check === true });
  if (!success) return ExitCode.failed;
  if (recap.changed === 0 && recap.wouldChange === 0) info(g, 'nothing to do: the repository is ready for encrypted secrets');
  if (flux !== undefined && flux.omitted.length > 0) {
    info(g, `note: ${flux.omitted.join(', ')} left out of gotk-components.yaml: the Flux ${flux.params.version} manifests at hand lack them (pass --flux-manifests DIR with the release's manifests.tar.gz unpacked to include them)`);
  }
  const makefile = results.find((r) => r.kind === makefileKind.kind);
  if (makefile && makefile.notes.length > 0) info(g, `\nprovision target to add to your Makefile:\n\n${await renderMakefile(opts.cluster)}`);
  return opts.check === true && recap.wouldChange > 0 ? ExitCode.changesPending : ExitCode.ok;
}

async function initTasks(repo: string, clusterPath: string, cluster: string, key: PublicKey, keyFile: string | undefined, sync: { url: string; branch: string; path: string } | undefined): Promise<TaskInstance<RepoContext>[]> {
  const fluxSystem = `${clusterPath}/flux-system`;
  const kustomization = await kustomizationFile(repo, fluxSystem);
  const makefile = (await firstExisting(repo, ['Makefile', 'makefile', 'GNUmakefile'])) ?? 'Makefile';
  const pubFile = `${clusterPath}/.sops.pub.${key.type === 'age' ? 'age' : 'asc'}`;
  const inRepoKey = keyFile === undefined ? undefined : relative(repo, resolve(keyFile));
  const ignore = [...PRIVATE_KEY_PATTERNS, ...(inRepoKey && !inRepoKey.startsWith('..') && !isAbsolute(inRepoKey) ? [`/${inRepoKey}`] : [])];
  const task = <P>(name: string, kind: TaskKind<P, FileState, RepoContext>, params: P): TaskInstance<RepoContext> => ({ name, kind, params });
  // The rules must cover what the cluster's Kustomizations apply, wherever it lives.
  const sops = await clusterSops(repo, { path: clusterPath });
  const { reach } = sops;
  // Plaintext Secrets it reaches elsewhere too, so that encrypting them finds the cluster's rule.
  const reached = [...sops.files.map((f) => f.name), ...(await reachedPlainSecrets(repo, sops, clusterPath))];
  return [
    task(reached.length > 0 ? `.sops.yaml creation rules for the ${reached.length} Secret file(s) ${clusterPath} reaches (${reach.kustomizations.length} Kustomization(s))` : `.sops.yaml creation rule for ${clusterPath}`, sopsConfigKind, {
      file: '.sops.yaml',
      clusterPath,
      age: key.type === 'age' ? key.recipients : [],
      pgp: key.type === 'pgp' ? [key.fingerprint] : [],
      encryptedRegex: '^(data|stringData)$',
      reached,
    }),
    task(`public key ${pubFile}`, publicKeyFileKind, {
      file: pubFile,
      content: key.type === 'age' ? ageRecipientsFile(clusterPath, key.recipients) : key.armored,
    }),
    task(`decryption patch in ${kustomization}`, decryptionPatchKind, { file: kustomization, gotkSync: `${fluxSystem}/gotk-sync.yaml`, secretName: 'sops-age' }),
    task(`${fluxSystem}/gotk-sync.yaml as flux bootstrap generates it`, gotkSyncKind, { file: `${fluxSystem}/gotk-sync.yaml`, ...(sync ? { generate: sync } : {}) }),
    task(`${clusterPath} kustomization includes flux-system`, clusterRootKind, { file: await kustomizationFile(repo, clusterPath) }),
    task(`${makefile} provision target`, makefileKind, { file: makefile, content: await renderMakefile(cluster) }),
    task('.gitignore keeps private keys out of Git', gitignoreKind, { file: '.gitignore', entries: ignore }),
  ];
}

async function repoDir(dir: string): Promise<string> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new FluxstrapError('E_NOT_FOUND', 'repository folder not found', { location: { file: dir }, hint: 'pass --repo DIR, the root of the GitOps repository' });
  return dir;
}

/** The cluster folder, relative to the repository with `/` separators; it must exist. */
async function clusterDir(repo: string, cluster: string, path: string | undefined): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(cluster)) throw usageError(`invalid cluster name ${JSON.stringify(cluster)}`, 'letters, digits, ".", "_" and "-"');
  const rel = relative(repo, resolve(repo, path ?? `clusters/${cluster}`)).split('\\').join('/');
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw usageError(`--path must be a folder inside the repository: ${path ?? ''}`);
  const st = await stat(join(repo, rel)).catch(() => undefined);
  if (!st?.isDirectory()) {
    const known = await readdir(join(repo, 'clusters'), { withFileTypes: true }).catch(() => []);
    const names = known.filter((d) => d.isDirectory()).map((d) => `clusters/${d.name}`);
    throw new FluxstrapError('E_NOT_FOUND', 'unknown cluster path', {
      location: { file: rel },
      hint: names.length > 0 ? `clusters in this repository: ${names.join(', ')} (or pass --path)` : 'run init on the folder flux bootstrap uses for the cluster (--path), after creating it',
    });
  }
  return rel;
}

/** The key named by the flags, else the one configured for the cluster, else every age key sops would find. */
async function publicKey(opts: InitOptions, configured: AgeKeySource | undefined, env: NodeJS.ProcessEnv): Promise<PublicKey> {
  if (opts.age && opts.age.length > 0) {
    return { type: 'age', recipients: checkedPublicKeys('age', opts.age, '--age') };
  }
  if (opts.keyFile === undefined) {
    const identities = configured !== undefined ? await readAgeIdentities(configured, env) : await identitiesFromEnv(env);
    return { type: 'age', recipients: unique(identities.map((i) => i.recipient)) };
  }
  const text = await readText(opts.keyFile);
  if (isArmoredPgp(text)) {
    const { readPgpKey } = await import('../keys/pgp.ts');
    const key = await readPgpKey(text, opts.keyFile);
    return { type: 'pgp', fingerprint: key.fingerprint, armored: key.publicKey };
  }
  return { type: 'age', recipients: unique((await parseAgeKeyFile(text, opts.keyFile, recipientOf)).map((i) => i.recipient)) };
}

const unique = (xs: string[]) => [...new Set(xs)];

/** kustomize reads kustomization.yaml, kustomization.yml or Kustomization: use the one present. */
async function kustomizationFile(repo: string, dir: string): Promise<string> {
  return (await firstExisting(repo, KUSTOMIZATION_FILES.map((n) => `${dir}/${n}`))) ?? `${dir}/kustomization.yaml`;
}

async function firstExisting(repo: string, candidates: string[]): Promise<string | undefined> {
  for (const c of candidates) if ((await stat(join(repo, c)).catch(() => undefined))?.isFile()) return c;
  return undefined;
}

async function renderMakefile(cluster: string): Promise<string> {
  const template = await readText(fileURLToPath(new URL('../../templates/Makefile.provision', import.meta.url)));
  return template.replaceAll('{{cluster}}', cluster);
}
