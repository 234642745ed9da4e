import { readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readText, readTextIfExists } from '../adapters/files.ts';
import { CONTROLLER_DECRYPTION_SINCE, hasControllerDecryption, readHeader } from '../flux/install.ts';
import { runTasks } from '../core/engine.ts';
import { CONFIG_FILE, configuredAgeKey, configuredPgpKey, expandPath, findRepo, githubRepoOf, isGitHubUrl } from '../cluster/config.ts';
import { confirm } from '../adapters/prompt.ts';
import { githubRepositoryKind } from '../tasks/github-repository.ts';
import type { GitHubContext } from '../tasks/github-repository.ts';
import { deployKeyTitle } from '../tasks/deploy-key.ts';
import { githubDeployKeyKind } from '../tasks/github-deploy-key.ts';
import type { AgeKeySource, ClusterConfig, PgpKeySource, SshAuth } from '../cluster/config.ts';
import { knownHostsKind } from '../tasks/known-hosts.ts';
import type { KnownHostsContext } from '../tasks/known-hosts.ts';
import { sshDeployKeyKind } from '../tasks/ssh-deploy-key.ts';
import { gitCredentialsFileKind } from '../tasks/git-credentials-file.ts';
import { exitCodeOf, FluxstrapError, usageError } from '../core/errors.ts';
import { version } from '../core/version.ts';
import type { TaskInstance, TaskKind } from '../core/task.ts';
import { KUSTOMIZATION_FILES } from '../adapters/kustomize.ts';
import { parseAgeKeyFile, recipientOf } from '../keys/age.ts';
import { checkedPublicKeys } from '../keys/recipients.ts';
import { identitiesFromEnv } from './keys.ts';
import { isArmoredPgp } from '../keys/identities.ts';
import { clusterRootKind } from '../tasks/cluster-root.ts';
import { childDecryptionKind } from '../tasks/child-decryption.ts';
import { decryptionPatchKind } from '../tasks/decryption-patch.ts';
import { readAgeIdentities, readPgpKeySource } from '../tasks/context.ts';
import { configuredEntry, defaultGitSopsFile, fluxstrapConfigKind, fluxstrapConfigTaskParams } from '../tasks/fluxstrap-config.ts';
import type { GitFlags } from '../tasks/fluxstrap-config.ts';
import type { RepoContext } from '../tasks/file-content.ts';
import { gitignoreKind, PRIVATE_KEY_PATTERNS } from '../tasks/gitignore.ts';
import { gotkSyncKind } from '../tasks/gotk-sync.ts';
import { gotkComponentsKind } from '../tasks/gotk-components.ts';
import { fluxComponentsParams } from './init-flux.ts';
import { sopsBackend, type SopsBackend, type SopsBackendFlags } from './init-backend.ts';
import { IDENTITY_SA_FILE, identityServiceAccountKind, workloadIdentityPatchKind } from '../tasks/workload-identity-patch.ts';
import type { FluxInstallFlags } from './init-flux.ts';
import { makefileKind } from '../tasks/makefile.ts';
import { ageRecipientsFile, publicKeyFileKind } from '../tasks/public-key-file.ts';
import { sopsConfigKind } from '../tasks/sops-config.ts';
import { clusterSops, reachedPlainSecrets } from '../tasks/sops-files.ts';
import { info } from './io.ts';
import type { CommandIo } from './io.ts';

/** `fluxstrap init`: the repository tasks for one cluster, run by the engine. */

export interface InitOptions extends GitFlags, FluxInstallFlags, SopsBackendFlags {
  cluster: string;
  /** Fingerprint (SHA256:…) of the Git server's scanned SSH host key, confirmed by the user. */
  acceptHostKey?: string;
  /** Create the GitHub repository when it does not exist (needs `yes`). */
  createRepo?: boolean;
  public?: boolean;
  yes?: boolean;
  path?: string;
  keyFile?: string;
  age?: string[];
  repo?: string;
  check?: boolean;
  diff?: boolean;
  /** Write decryption into each Kustomization the cluster applies that reaches SOPS files without it. */
  childDecryption?: boolean;
  /** `mac_only_encrypted` in a new creation rule (default true; commander's --no-mac-only-encrypted). */
  macOnlyEncrypted?: boolean;
  /** Where the key's Secret is named: the flux-system Kustomization, or kustomize-controller's flag. */
  decryption?: 'kustomization' | 'controller';
}

/** The public side of the cluster's key: what .sops.yaml and the exported key file need. */
type PublicKey = { type: 'age'; recipients: string[] } | { type: 'pgp'; fingerprint: string; armored: string };

export async function runInit(opts: InitOptions, g: CommandIo): Promise<number> {
  const repo = await repoDir(findRepo(opts.repo, g.env, g.cwd));
  const entry = await configuredEntry(repo, opts.cluster);
  const clusterPath = await clusterDir(repo, opts.cluster, opts.path ?? entry?.path);
  const backend = sopsBackend(opts);
  if (opts.decryption === 'controller' && backend.secretName !== undefined) {
    // kustomize-controller's --sops-age-secret is read for age keys; the Vault token is named per Kustomization.
    throw usageError(
      `--decryption controller names an age key Secret: with --sops-backend ${backend.name} the flux-system Kustomization names ${backend.secretName}`,
      'drop --decryption controller',
    );
  }
  const clusterPgp = backend.name === 'pgp' ? await clusterPgpKey(opts, entry, repo, g) : undefined;
  if (opts.decryption === 'controller') {
    if (clusterPgp)
      throw new FluxstrapError(
        'E_USAGE',
        '--decryption controller names an age Secret (kustomize-controller --sops-age-secret): a PGP cluster key is named by the Kustomization',
        { location: { field: '--decryption' }, hint: 'drop --decryption controller (the sops-gpg Secret goes into the flux-system decryption patch)' },
      );
    await requireControllerDecryption(repo, `${clusterPath}/flux-system/gotk-components.yaml`, opts.fluxVersion);
  }
  // A cloud key service needs no age key; one given as well is a second way in (a break-glass key).
  const explicitKey = opts.keyFile !== undefined || (opts.age?.length ?? 0) > 0;
  const key =
    clusterPgp ?? (backend.cloud && !explicitKey ? undefined : await publicKey(opts, configuredAgeKey(entry, {}, g.env, { repoDir: repo, cwd: g.cwd }), g.env));
  const ctx: RepoContext & KnownHostsContext & GitHubContext = { paths: { repo }, env: g.env, log: (m) => info(g, m) };
  const config = await fluxstrapConfigTaskParams(
    repo,
    opts.cluster,
    clusterPath,
    { ...opts, ageKeyFile: key?.type === 'age' ? opts.keyFile : undefined, pgpKeyFile: clusterPgp ? opts.pgpKeyFile : undefined, sopsKey: backend.sopsKey },
    g.cwd,
  );
  const current = (await configuredEntry(repo, opts.cluster))?.git;
  const url = config.set?.git?.url ?? current?.url ?? config.fill?.git?.url;
  const sync =
    url === undefined ? undefined : { url, branch: config.set?.git?.branch ?? current?.branch ?? config.fill?.git?.branch ?? 'main', path: clusterPath };
  const flux = await fluxComponentsParams(repo, `${clusterPath}/flux-system/gotk-components.yaml`, opts, { env: g.env, userAgent: `fluxstrap/${version}` });
  // One question at a terminal covers both: create the repository when missing, push the layout to it.
  const confirmed =
    opts.yes === true ||
    (opts.createRepo === true &&
      opts.check !== true &&
      g.stdin.isTTY === true &&
      url !== undefined &&
      (await confirm(`create ${url} on GitHub if it is missing, and push the initial layout to it? [y/N] `, g.stdin, g.stderr)));
  const github = githubTasks({ ...opts, yes: confirmed || opts.check === true }, url, { ...current, ...config.set?.git }, repo, sync);
  const auth = config.set?.git?.auth ?? current?.auth;
  const sopsAuth: CredentialsAuth = { ...current?.auth, ...config.set?.git?.auth };
  const tasks = [
    // First: a repository GitHub refuses to create stops init before it writes a file.
    ...github.repository,
    ...(flux === undefined ? [] : [{ name: `${clusterPath}/flux-system/gotk-components.yaml`, kind: gotkComponentsKind, params: flux.params }]),
    ...(await initTasks(repo, clusterPath, opts.cluster, key, opts.pgpKeyFile ?? opts.keyFile, sync, backend, opts, {
      githubApp: auth !== undefined && 'githubApp' in auth,
      gitSopsFile: gitSopsFileOf(repo, opts.cluster, sopsAuth.sopsFile),
    })),
    ...deployKeyTasks(repo, g.cwd, opts, url, auth),
    ...github.deployKey,
    ...credentialsFileTasks(
      repo,
      opts.cluster,
      key,
      sopsAuth,
      current?.auth !== undefined && 'https' in current.auth ? current.auth.https.username : undefined,
    ),
    { name: `${CONFIG_FILE} entry for cluster ${opts.cluster}`, kind: fluxstrapConfigKind, params: config },
  ];

  const reporter = await g.reporter({ diff: opts.diff === true || opts.check === true });
  // Every file is read and planned before anything is written, so a bad input anywhere (an
  // invalid .sops.yaml, a broken kustomization.yaml) stops init before it changes a first file.
  const { recap, success, results } = await runTasks({ title: `init ${clusterPath}`, tasks, ctx, reporter, check: opts.check === true, planFirst: true });
  if (!success) return exitCodeOf({ failed: true });
  if (recap.changed === 0 && recap.wouldChange === 0) info(g, 'nothing to do: the repository is ready for encrypted secrets');
  if (flux !== undefined && flux.omitted.length > 0) {
    info(
      g,
      `note: ${flux.omitted.join(', ')} left out of gotk-components.yaml: the Flux ${flux.params.version} manifests at hand lack them (pass --flux-manifests DIR with the release's manifests.tar.gz unpacked to include them)`,
    );
  }
  if (opts.createRepo === true && opts.check !== true && sync !== undefined) {
    const target = github.repository[0]?.params as { tokenEnv: string } | undefined;
    await pushLayout(g, {
      repo,
      url: sync.url,
      branch: sync.branch,
      tokenEnv: target?.tokenEnv ?? 'GITHUB_TOKEN',
      cluster: opts.cluster,
      files: layoutFiles(repo, tasks),
      confirmed,
    });
  }
  const makefile = results.find((r) => r.kind === makefileKind.kind);
  if (makefile && makefile.notes.length > 0) info(g, `\nprovision target to add to your Makefile:\n\n${await renderMakefile(opts.cluster)}`);
  return exitCodeOf({ failed: false, changesPending: opts.check === true && recap.wouldChange > 0 });
}

/** source-controller authenticates as the GitHub App of the Secret's githubApp* keys only with this provider. */
const GITHUB_APP_PATCH = { target: { kind: 'GitRepository', name: 'flux-system' }, patch: '- op: add\n  path: /spec/provider\n  value: github\n' };

async function initTasks(
  repo: string,
  clusterPath: string,
  cluster: string,
  key: PublicKey | undefined,
  keyFile: string | undefined,
  sync: { url: string; branch: string; path: string } | undefined,
  backend: SopsBackend,
  { decryption, macOnlyEncrypted, childDecryption }: Pick<InitOptions, 'decryption' | 'macOnlyEncrypted' | 'childDecryption'>,
  { githubApp, gitSopsFile }: { githubApp: boolean; gitSopsFile: string | undefined },
): Promise<TaskInstance<RepoContext>[]> {
  const fluxSystem = `${clusterPath}/flux-system`;
  const kustomization = await kustomizationFile(repo, fluxSystem);
  const makefile = (await firstExisting(repo, ['Makefile', 'makefile', 'GNUmakefile'])) ?? 'Makefile';
  const pubFile = `${clusterPath}/.sops.pub.${key?.type === 'pgp' ? 'asc' : 'age'}`;
  // kustomize-controller imports PGP keys from the `.asc` entries of a Secret, age identities from `.agekey` ones.
  const secretName = backend.secretName ?? (key?.type === 'pgp' ? 'sops-gpg' : 'sops-age');
  const inRepoKey = keyFile === undefined ? undefined : relative(repo, resolve(keyFile));
  const ignore = [...PRIVATE_KEY_PATTERNS, ...(inRepoKey && !inRepoKey.startsWith('..') && !isAbsolute(inRepoKey) ? [`/${inRepoKey}`] : [])];
  const task = <P, O>(name: string, kind: TaskKind<P, O, RepoContext>, params: P): TaskInstance<RepoContext> => ({ name, kind, params });
  // The rules must cover what the cluster's Kustomizations apply, wherever it lives.
  const sops = await clusterSops(repo, { path: clusterPath });
  const { reach } = sops;
  // Plaintext Secrets it reaches elsewhere too, so that encrypting them finds the cluster's rule.
  const reached = [...sops.files.map((f) => f.name), ...(await reachedPlainSecrets(repo, sops, clusterPath))];
  return [
    task(
      reached.length > 0
        ? `.sops.yaml creation rules for the ${reached.length} Secret file(s) ${clusterPath} reaches (${reach.kustomizations.length} Kustomization(s))`
        : `.sops.yaml creation rule for ${clusterPath}`,
      sopsConfigKind,
      {
        file: '.sops.yaml',
        clusterPath,
        age: key?.type === 'age' ? key.recipients : [],
        pgp: key?.type === 'pgp' ? [key.fingerprint] : [],
        ...backend.ruleKeys,
        encryptedRegex: '^(data|stringData)$',
        macOnlyEncrypted: macOnlyEncrypted !== false,
        reached,
        ...(gitSopsFile === undefined ? {} : { bootstrapFiles: [gitSopsFile] }),
      },
    ),
    ...(key === undefined
      ? []
      : [
          task(`public key ${pubFile}`, publicKeyFileKind, {
            file: pubFile,
            content: key.type === 'age' ? ageRecipientsFile(clusterPath, key.recipients) : key.armored,
          }),
        ]),
    task(`decryption patch in ${kustomization}`, decryptionPatchKind, {
      file: kustomization,
      gotkSync: `${fluxSystem}/gotk-sync.yaml`,
      secretName,
      secretRefFixed: backend.secretName !== undefined,
      ...(decryption ? { mode: decryption } : {}),
      ...(backend.decryption ? { decryption: { ...backend.decryption, ...(key ? { secretRef: { name: secretName } } : {}) } } : {}),
    }),
    ...(childDecryption === true
      ? [
          task(`decryption on the Kustomizations ${clusterPath} applies that reach SOPS files`, childDecryptionKind, {
            clusterPath,
            fluxSystemKustomization: kustomization,
            ...(decryption ? { mode: decryption } : {}),
            ...(key || backend.secretName !== undefined ? { secretName } : {}),
          }),
        ]
      : []),
    ...(backend.serviceAccount
      ? [
          task(`${fluxSystem}/${IDENTITY_SA_FILE} (object-level identity)`, identityServiceAccountKind, {
            file: `${fluxSystem}/${IDENTITY_SA_FILE}`,
            content: backend.serviceAccount,
          }),
        ]
      : []),
    ...(backend.patches.length === 0
      ? []
      : [
          task(`cloud identity for SOPS in ${kustomization}`, workloadIdentityPatchKind, {
            file: kustomization,
            patches: backend.patches,
            resources: backend.serviceAccount ? [IDENTITY_SA_FILE] : [],
          }),
        ]),
    ...(githubApp
      ? [
          task(`provider: github on GitRepository flux-system in ${kustomization}`, workloadIdentityPatchKind, {
            file: kustomization,
            patches: [GITHUB_APP_PATCH],
            resources: [],
            purpose: 'GitHub App auth (provider: github)',
          }),
        ]
      : []),
    task(`${fluxSystem}/gotk-sync.yaml as flux bootstrap generates it`, gotkSyncKind, {
      file: `${fluxSystem}/gotk-sync.yaml`,
      ...(sync ? { generate: sync } : {}),
    }),
    task(`${clusterPath} kustomization includes flux-system`, clusterRootKind, { file: await kustomizationFile(repo, clusterPath) }),
    task(`${makefile} provision target`, makefileKind, { file: makefile, content: await renderMakefile(cluster) }),
    task('.gitignore keeps private keys out of Git', gitignoreKind, { file: '.gitignore', entries: ignore }),
  ];
}

/** The repository files init manages (relative paths), the ones pushed as the initial layout. */
function layoutFiles(repo: string, tasks: { params: unknown }[]): string[] {
  const files = tasks
    .map((t) => (t.params as { file?: unknown }).file)
    .filter((f): f is string => typeof f === 'string')
    .map((f) => (isAbsolute(f) ? relative(repo, f) : f))
    .filter((f) => !f.startsWith('..') && !isAbsolute(f));
  return [...new Set([...files, CONFIG_FILE])];
}

/**
 * After --create-repo: the layout init wrote, committed (only its files) and pushed to the new
 * repository's branch over HTTPS with the GitHub token, when the branch does not exist there yet.
 * Confirmed by --yes or at a terminal; without either nothing is pushed and the way to do it is said.
 */
async function pushLayout(
  g: CommandIo,
  o: { repo: string; url: string; branch: string; tokenEnv: string; cluster: string; files: string[]; confirmed: boolean },
): Promise<void> {
  const target = githubRepoOf(o.url);
  const token = g.env[o.tokenEnv];
  if (target === undefined || token === undefined || token === '') return;
  const httpsUrl = `https://${new URL(o.url).hostname}/${target.owner}/${target.repo}.git`;
  const git = await import('../adapters/git.ts');
  const remote = { url: httpsUrl, auth: { kind: 'basic' as const, username: 'x-access-token', password: token } };
  if (await git.hasRemoteBranch(remote, o.branch)) return;
  const files = (await Promise.all(o.files.map(async (f) => ((await stat(join(o.repo, f)).catch(() => undefined))?.isFile() ? f : undefined)))).filter(
    (f) => f !== undefined,
  );
  if (!o.confirmed) {
    info(
      g,
      `not pushed: ${httpsUrl} has no branch ${o.branch} yet; commit the layout and \`git push ${httpsUrl} HEAD:${o.branch}\`, or run init --create-repo again with --yes (or at a terminal) to have it pushed`,
    );
    return;
  }
  const commit = await git.commitFiles(o.repo, files, `fluxstrap init: layout of cluster ${o.cluster}`, o.branch);
  await git.pushNewBranch(remote, o.repo, o.branch);
  info(g, `pushed ${commit === undefined ? 'HEAD' : commit.slice(0, 12)} to ${httpsUrl} (branch ${o.branch})`);
}

/**
 * With --create-repo: the repository on GitHub (created when missing, the token's access checked)
 * and, with SSH auth, the deploy key registered there. Without it GitHub is not called: bootstrap
 * checks the repository and registers the key.
 */
function githubTasks(
  opts: InitOptions,
  url: string | undefined,
  git: { provider?: string | undefined; github?: { apiUrl?: string | undefined; tokenEnv?: string | undefined } | undefined; auth?: object | undefined },
  repo: string,
  sync: { branch: string; path: string } | undefined,
): Record<'repository' | 'deployKey', TaskInstance<RepoContext & KnownHostsContext & GitHubContext>[]> {
  if (opts.createRepo !== true) return { repository: [], deployKey: [] };
  if (url === undefined || (git.provider ?? (isGitHubUrl(url) ? 'github' : 'generic')) !== 'github') {
    throw usageError(
      '--create-repo creates repositories on GitHub',
      'pass --git-url https://github.com/OWNER/REPO.git (or git@github.com:OWNER/REPO.git), or --github-api-url for GitHub Enterprise',
    );
  }
  const auth = git.auth as { https?: { passwordEnv: string }; ssh?: SshAuth } | undefined;
  const target = {
    url,
    ...(git.github?.apiUrl !== undefined ? { apiUrl: git.github.apiUrl } : {}),
    tokenEnv: git.github?.tokenEnv ?? auth?.https?.passwordEnv ?? 'GITHUB_TOKEN',
  };
  const kind = <P>(k: TaskKind<P, unknown, GitHubContext>) => k as TaskKind<unknown, unknown, RepoContext & KnownHostsContext & GitHubContext>;
  const ssh = auth?.ssh;
  return {
    repository: [
      {
        name: `GitHub repository ${url}`,
        kind: kind(githubRepositoryKind),
        params: { ...target, create: true, private: opts.public !== true, access: ssh ? 'admin' : 'read', confirmed: opts.yes === true },
      },
    ],
    deployKey:
      ssh === undefined
        ? []
        : [
            {
              name: 'deploy key registered on GitHub',
              kind: kind(githubDeployKeyKind),
              params: {
                ...target,
                keyFile: expandPath(ssh.keyFile, repo),
                title: deployKeyTitle('flux-system', sync?.branch ?? 'main', 'flux-system', sync?.path ?? ''),
                readOnly: ssh.readWrite !== true,
              },
            },
          ],
  };
}

/**
 * With SSH auth: the deploy key, generated when its file does not exist, and the Git server's
 * host keys, obtained when the known_hosts file does not exist (both are kept when they do).
 */
function deployKeyTasks(
  repo: string,
  cwd: string,
  opts: InitOptions,
  url: string | undefined,
  auth: object | undefined,
): TaskInstance<RepoContext & KnownHostsContext>[] {
  if (auth === undefined || !('ssh' in auth) || url === undefined) return [];
  const ssh = auth.ssh as SshAuth;
  const keyFile = expandPath(ssh.keyFile, repo);
  const knownHostsFile = expandPath(ssh.knownHostsFile, repo);
  const show = (f: string) => (relative(cwd, f).startsWith('..') ? f : relative(cwd, f));
  return [
    {
      name: `SSH deploy key ${show(keyFile)}`,
      kind: sshDeployKeyKind,
      params: { keyFile, ...(ssh.keyAlgorithm !== undefined ? { algorithm: ssh.keyAlgorithm } : {}), comment: `fluxstrap-${opts.cluster}` },
    },
    {
      name: `SSH host keys ${show(knownHostsFile)}`,
      kind: knownHostsKind,
      params: { file: knownHostsFile, url, verify: true, ...(opts.acceptHostKey !== undefined ? { acceptHostKey: opts.acceptHostKey } : {}) },
    },
  ];
}

/** git.auth as init has it, for the encrypted credentials. */
interface CredentialsAuth {
  https?: { username?: string | undefined; passwordEnv: string };
  ssh?: SshAuth;
  githubApp?: unknown;
  sopsFile?: string | undefined;
}

/** git.auth.sopsFile relative to the repository (`/` separators); it must be inside it. */
function gitSopsFileOf(repo: string, cluster: string, sopsFile: string | undefined): string | undefined {
  if (sopsFile === undefined) return undefined;
  const file = relative(repo, expandPath(sopsFile, repo)).split('\\').join('/');
  if (file.startsWith('..') || isAbsolute(file))
    throw usageError(`git.auth.sopsFile ${sopsFile} must be inside the repository`, `e.g. --git-sops-file ${defaultGitSopsFile(cluster)}`);
  return file;
}

/**
 * With git.auth.sopsFile: the Git credentials (the token of --git-token-env, the deploy key given
 * or generated above) encrypted for the cluster's age key into that file, for bootstrap to apply.
 */
function credentialsFileTasks(
  repo: string,
  cluster: string,
  key: PublicKey | undefined,
  auth: CredentialsAuth,
  username: string | undefined,
): TaskInstance<RepoContext & KnownHostsContext>[] {
  const file = gitSopsFileOf(repo, cluster, auth.sopsFile);
  if (file === undefined) return [];
  if (key?.type !== 'age')
    throw usageError(
      "the encrypted Git credentials (git.auth.sopsFile) are encrypted for the cluster's age key",
      "pass --age-key-file or --age with the cluster's age key",
    );
  const source =
    auth.https !== undefined
      ? { https: { username: auth.https.username ?? username ?? 'git', passwordEnv: auth.https.passwordEnv } }
      : auth.ssh !== undefined
        ? { ssh: { keyFile: expandPath(auth.ssh.keyFile, repo), knownHostsFile: expandPath(auth.ssh.knownHostsFile, repo) } }
        : undefined;
  if (source === undefined)
    throw usageError(
      'git.auth.sopsFile needs the credentials to encrypt',
      'pass --git-token-env VAR (HTTPS) or an ssh:// --git-url (a deploy key is generated) or --git-ssh-key FILE --git-known-hosts FILE',
    );
  return [{ name: `Git credentials encrypted in ${file}`, kind: gitCredentialsFileKind, params: { file, age: key.recipients, source } }];
}

/** Controller-level decryption needs a kustomize-controller with `--sops-age-secret`: refused for the Flux releases before it. */
async function requireControllerDecryption(repo: string, componentsFile: string, flag: string | undefined): Promise<void> {
  const hint = `pass --flux-version ${CONTROLLER_DECRYPTION_SINCE} or newer (upgrading Flux), or use --decryption kustomization`;
  if (flag !== undefined) {
    if (!hasControllerDecryption(flag))
      throw new FluxstrapError('E_USAGE', `--decryption controller needs Flux ${CONTROLLER_DECRYPTION_SINCE} or newer, --flux-version is ${flag}`, {
        location: { field: '--flux-version' },
        hint,
      });
    return;
  }
  const text = await readTextIfExists(join(repo, componentsFile));
  const version = text === undefined ? undefined : readHeader(text).version;
  if (version !== undefined && text !== undefined && !hasControllerDecryption(version)) {
    const line = text.slice(0, text.indexOf('# Flux Version:')).split('\n').length;
    throw new FluxstrapError('E_USAGE', `--decryption controller needs Flux ${CONTROLLER_DECRYPTION_SINCE} or newer; the cluster runs Flux ${version}`, {
      location: { file: componentsFile, line },
      hint,
    });
  }
}

async function repoDir(dir: string): Promise<string> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory())
    throw new FluxstrapError('E_NOT_FOUND', 'repository folder not found', {
      location: { file: dir },
      hint: 'pass --repo DIR, the root of the GitOps repository',
    });
  return dir;
}

/** The cluster folder, relative to the repository with `/` separators; it must exist. */
async function clusterDir(repo: string, cluster: string, path: string | undefined): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(cluster)) throw usageError(`invalid cluster name ${JSON.stringify(cluster)}`, 'letters, digits, ".", "_" and "-"');
  const rel = relative(repo, resolve(repo, path ?? `clusters/${cluster}`))
    .split('\\')
    .join('/');
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw usageError(`--path must be a folder inside the repository: ${path ?? ''}`);
  const st = await stat(join(repo, rel)).catch(() => undefined);
  if (!st?.isDirectory()) {
    const known = await readdir(join(repo, 'clusters'), { withFileTypes: true }).catch(() => []);
    const names = known.filter((d) => d.isDirectory()).map((d) => `clusters/${d.name}`);
    throw new FluxstrapError('E_NOT_FOUND', 'unknown cluster path', {
      location: { file: rel },
      hint:
        names.length > 0
          ? `clusters in this repository: ${names.join(', ')} (or pass --path)`
          : 'run init on the folder flux bootstrap uses for the cluster (--path), after creating it',
    });
  }
  return rel;
}

/** The key named by the flags, else the one configured for the cluster, else every age key sops would find. */
async function publicKey(opts: InitOptions, configured: AgeKeySource | undefined, env: NodeJS.ProcessEnv): Promise<PublicKey> {
  if (opts.age && opts.age.length > 0) {
    const recipients = checkedPublicKeys('age', opts.age, '--age');
    // SSH recipients open files for people; the cluster's own key must be one kustomize-controller can import.
    if (recipients.every((r) => r.startsWith('ssh-'))) {
      throw usageError(
        '--age names only SSH recipients: kustomize-controller cannot decrypt with an SSH key (it imports only age identities from the sops-age Secret)',
        'add the age1… recipient of the cluster key (fluxstrap keys new) next to the SSH ones',
      );
    }
    return { type: 'age', recipients };
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

/**
 * The cluster's PGP key for `--sops-backend pgp`: --pgp-key-file, else the sopsKey.pgp the entry
 * already has. Read as bootstrap will read it, so a key the cluster cannot use (public only,
 * locked by a passphrase) is refused before anything is written.
 */
async function clusterPgpKey(
  opts: InitOptions,
  entry: ClusterConfig | undefined,
  repo: string,
  { env, cwd }: Pick<CommandIo, 'env' | 'cwd'>,
): Promise<PublicKey | undefined> {
  if (opts.pgpKeyFile === undefined && opts.keyFile !== undefined) return undefined;
  if (opts.pgpKeyFile !== undefined && entry?.ageKey !== undefined) {
    throw new FluxstrapError('E_USAGE', `cluster "${opts.cluster}" has an age key in ${CONFIG_FILE} (ageKey): its key is one Secret`, {
      location: { field: '--pgp-key-file' },
      hint: `remove clusters.${opts.cluster}.ageKey from ${CONFIG_FILE} to make the PGP key the cluster key (then re-encrypt with \`fluxstrap updatekeys\`)`,
    });
  }
  const source: PgpKeySource | undefined =
    opts.pgpKeyFile !== undefined ? { type: 'file', file: expandPath(opts.pgpKeyFile, cwd) } : configuredPgpKey(entry, repo);
  if (source === undefined)
    throw usageError(
      "--sops-backend pgp needs the cluster's private key: --pgp-key-file FILE",
      'export it without a passphrase: gpg --export-secret-keys --armor FINGERPRINT > FILE (kept out of Git), or make one with `fluxstrap keys new --pgp`',
    );
  const key = await readPgpKeySource(source, env);
  const { readPgpKey } = await import('../keys/pgp.ts');
  return { type: 'pgp', fingerprint: key.fingerprint, armored: (await readPgpKey(key.armored, key.source)).publicKey };
}

const unique = (xs: string[]) => [...new Set(xs)];

/** kustomize reads kustomization.yaml, kustomization.yml or Kustomization: use the one present. */
async function kustomizationFile(repo: string, dir: string): Promise<string> {
  return (
    (await firstExisting(
      repo,
      KUSTOMIZATION_FILES.map((n) => `${dir}/${n}`),
    )) ?? `${dir}/kustomization.yaml`
  );
}

async function firstExisting(repo: string, candidates: string[]): Promise<string | undefined> {
  for (const c of candidates) if ((await stat(join(repo, c)).catch(() => undefined))?.isFile()) return c;
  return undefined;
}

async function renderMakefile(cluster: string): Promise<string> {
  const template = await readText(fileURLToPath(new URL('../../templates/Makefile.provision', import.meta.url)));
  return template.replaceAll('{{cluster}}', cluster);
}
