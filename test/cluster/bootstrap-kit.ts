// The fleet repository, CLI runs and cluster snapshots that the bootstrap tests against the real
// harness cluster share (bootstrap.test.ts, faults.test.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { gitEnv } from '../../src/adapters/git.ts';
import type { GitAuth } from '../../src/adapters/git.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import type { KubeAdapter, KubeObject } from '../../src/adapters/kube/port.ts';
import { startCluster } from './index.ts';
import type { Cluster } from './index.ts';
import { assertNoLeaks, recordRun, registerCanary } from '../helpers/canary.ts';
import { ownedTempDir } from '../helpers/tmp.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const NODE = join(ROOT, 'node_modules/.bin/node');
const CLI = join(ROOT, 'src/cli.ts');
export const CLUSTER_PATH = 'clusters/test';
export const TOKEN_ENV = 'FLUXSTRAP_TEST_GIT_TOKEN';

const tmp: string[] = [];
// Named for this process, so a later run removes them if this one is killed before `after`.
export const tempDir = (prefix: string) => {
  const d = ownedTempDir(prefix);
  tmp.push(d);
  return d;
};
// The leak guard covers the cluster tests too: every CLI run's output and every file left in
// these folders (repositories, kubeconfigs, key files aside) is scanned before they go.
after(() => {
  try {
    assertNoLeaks(tmp);
  } finally {
    for (const d of tmp) rmSync(d, { recursive: true, force: true });
  }
});

/** The plaintext value of the repositories' SOPS Secret: a canary for the leak guard. */
export const DB_PASSWORD = 'not-a-real-password-1234';
registerCanary(DB_PASSWORD);

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliHooks {
  env?: Record<string, string>;
  /** Sees stderr as it grows; true SIGKILLs the process at that point. */
  killWhen?: (stderr: string) => boolean;
  killOn?: Promise<unknown>;
  /** Sees stderr as it grows, to fault the run from outside at a point of its progress. */
  onStderr?: (stderr: string) => void;
}

/** A step of the plain renderer's progress has ended (`✔ name` / `● name`). */
export const stepEnded = (stderr: string, step: string): boolean => stderr.split('\n').some((l) => /^[✔●] /.test(l) && l.slice(2).startsWith(step));

/** Run the CLI with the hooks of CliHooks. */
export function cli(args: string[], opts: CliHooks & { cwd?: string } = {}): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [CLI, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, CI: '1', NO_COLOR: '1', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(stderr);
      if (opts.killWhen?.(stderr)) child.kill('SIGKILL');
    });
    void opts.killOn?.then(
      () => child.kill('SIGKILL'),
      () => undefined,
    );
    child.on('error', reject);
    child.on('close', (code, signal) => {
      recordRun({ args, stdout, stderr, revealsSecrets: false });
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

export async function git(args: string[], cwd: string, auth: GitAuth = { kind: 'none' }): Promise<string> {
  const { execa } = await import('execa');
  const res = await execa('git', args, {
    cwd,
    env: { ...gitEnv(auth), GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
    reject: false,
  });
  assert.equal(res.exitCode, 0, `git ${args.join(' ')}: ${res.stderr}`);
  return res.stdout.trim();
}

export interface Repo {
  dir: string;
  keyFile: string;
  url: string;
  auth: GitAuth;
  env: Record<string, string>;
  /** Flags every run of this repo gets. */
  flags: string[];
}

export interface RepoOptions {
  name: string;
  transport: 'https' | 'ssh';
  /** The seed's layout: decryption hand-added to gotk-sync.yaml, a root that omits flux-system/. */
  seedLayout?: boolean;
  /** An encrypted file inside flux-system/, which breaks a bootstrap. */
  sopsInFluxSystem?: boolean;
  /** fluxstrap.yaml's git.auth instead of the transport's (e.g. a GitHub App); the push still uses the harness's login. */
  gitAuth?: Record<string, unknown>;
}

/**
 * A fleet repository as `fluxstrap keys new` + `init` + `encrypt` make it: flux-system/ with the
 * harness's gotk-components.yaml, gotk-sync.yaml and a kustomization.yaml carrying the decryption
 * patch; an app folder with a namespace and a SOPS-encrypted Secret; pushed to the Git server.
 */
export async function makeRepo(cluster: Cluster, o: RepoOptions): Promise<Repo> {
  const home = tempDir('repo');
  const dir = join(home, 'repo');
  const keyFile = join(home, 'age.key');
  const keys = await cli(['keys', 'new', '--out', keyFile]);
  assert.equal(keys.code, 0, keys.stderr);
  const recipient = /age1[0-9a-z]+/.exec(readFileSync(keyFile, 'utf8'))?.[0] ?? '';
  const url = o.transport === 'https' ? cluster.git.httpUrl(`${o.name}.git`) : cluster.git.sshUrl(`${o.name}.git`);
  registerCanary(cluster.git.password);
  let auth: GitAuth;
  let gitAuth: Record<string, unknown>;
  if (o.transport === 'https') {
    auth = { kind: 'basic', username: cluster.git.username, password: cluster.git.password };
    gitAuth = { https: { username: cluster.git.username, passwordEnv: TOKEN_ENV } };
  } else {
    const knownHostsFile = join(home, 'known_hosts');
    writeFileSync(knownHostsFile, `${cluster.git.knownHosts}\n`);
    const identityFile = join(home, 'deploy_key');
    copyFileSync(cluster.git.sshPrivateKeyPath, identityFile);
    auth = { kind: 'ssh', identityFile, knownHostsFile };
    gitAuth = { ssh: { keyFile: identityFile, knownHostsFile } };
  }

  if (o.gitAuth) gitAuth = o.gitAuth;

  const fs = join(dir, CLUSTER_PATH, 'flux-system');
  if (o.seedLayout) mkdirSync(fs, { recursive: true });
  mkdirSync(join(dir, CLUSTER_PATH, 'apps'), { recursive: true });
  const write = (rel: string, text: string) => writeFileSync(join(dir, rel), text);
  write(
    'fluxstrap.yaml',
    stringify({
      clusters: {
        test: { path: CLUSTER_PATH, kube: { kubeconfig: cluster.kubeconfig }, git: { url, branch: 'main', auth: gitAuth }, ageKey: { file: keyFile } },
      },
    }),
  );
  if (o.seedLayout) {
    // What flux bootstrap commits (here generated by init in a scratch repository), with the
    // decryption the seed hand-added to gotk-sync.yaml, where the next flux bootstrap wipes it.
    const gen = join(home, 'generated');
    mkdirSync(join(gen, CLUSTER_PATH), { recursive: true });
    const init = await cli([
      'init',
      '--cluster',
      'test',
      '--path',
      CLUSTER_PATH,
      '--age-key-file',
      keyFile,
      '--repo',
      gen,
      '--git-url',
      url,
      '--branch',
      'main',
    ]);
    assert.equal(init.code, 0, init.stderr);
    copyFileSync(join(gen, CLUSTER_PATH, 'flux-system', 'gotk-components.yaml'), join(fs, 'gotk-components.yaml'));
    const sync = parseAllDocuments(readFileSync(join(gen, CLUSTER_PATH, 'flux-system', 'gotk-sync.yaml'), 'utf8'));
    const ks = sync.find((d) => d.get('kind') === 'Kustomization');
    ks?.setIn(['spec', 'decryption'], ks.createNode({ provider: 'sops', secretRef: { name: 'sops-age' } }));
    write(`${CLUSTER_PATH}/flux-system/gotk-sync.yaml`, sync.map((d) => d.toString()).join('---\n'));
    write(
      `${CLUSTER_PATH}/flux-system/kustomization.yaml`,
      stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['gotk-components.yaml', 'gotk-sync.yaml'] }),
    );
  }
  // The seed's root lists its apps but not flux-system/.
  write(`${CLUSTER_PATH}/kustomization.yaml`, stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['apps'] }));
  write(
    `${CLUSTER_PATH}/apps/kustomization.yaml`,
    stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['namespace.yaml', 'db.sops.yaml'] }),
  );
  write(`${CLUSTER_PATH}/apps/namespace.yaml`, stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'apps' } }));
  write(
    `${CLUSTER_PATH}/apps/db.sops.yaml`,
    stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'apps' },
      type: 'Opaque',
      stringData: { username: 'app', password: DB_PASSWORD },
    }),
  );
  if (o.seedLayout) {
    write('.sops.yaml', stringify({ creation_rules: [{ path_regex: '.*\\.sops\\.ya?ml$', encrypted_regex: '^(data|stringData)$', age: recipient }] }));
  } else {
    // Flux itself (gotk-components, gotk-sync), .sops.yaml rule, decryption patch in
    // flux-system/kustomization.yaml, flux-system in the root.
    const init = await cli([
      'init',
      '--cluster',
      'test',
      '--path',
      CLUSTER_PATH,
      '--age-key-file',
      keyFile,
      '--repo',
      dir,
      '--git-url',
      url,
      '--branch',
      'main',
    ]);
    assert.equal(init.code, 0, init.stderr);
  }
  const enc = await cli(['encrypt', '--in-place', `${CLUSTER_PATH}/apps/db.sops.yaml`], { cwd: dir });
  assert.equal(enc.code, 0, enc.stderr);
  assert.match(readFileSync(join(dir, CLUSTER_PATH, 'apps/db.sops.yaml'), 'utf8'), /ENC\[AES256_GCM/);
  if (o.sopsInFluxSystem) copyFileSync(join(dir, CLUSTER_PATH, 'apps/db.sops.yaml'), join(fs, 'db.sops.yaml'));

  await git(['init', '--quiet', '--initial-branch=main'], dir);
  await git(['add', '-A'], dir);
  await git(['commit', '--quiet', '-m', 'fleet'], dir);
  await git(['push', '--quiet', url, 'main'], dir, auth);
  const env: Record<string, string> = o.transport === 'https' && !o.gitAuth ? { [TOKEN_ENV]: cluster.git.password } : {};
  return { dir, keyFile, url, auth, env, flags: ['--repo', dir] };
}

export const bootstrap = (repo: Repo, extra: string[] = [], opts: CliHooks = {}) =>
  cli(['bootstrap', ...repo.flags, '--timeout', '3m', ...extra], { ...opts, env: { ...repo.env, ...opts.env } });

export interface JsonDoc {
  success: boolean;
  recap: { ok: number; changed: number; wouldChange: number; failed: number; skipped: number };
  tasks: {
    name: string;
    kind: string;
    outcome: string;
    durationMs: number;
    changes: { action: string; target: string }[];
    error?: { code: string; message: string; hint?: string };
  }[];
}

export async function bootstrapJson(repo: Repo, extra: string[] = [], env: Record<string, string> = {}): Promise<{ run: Run; doc: JsonDoc }> {
  const run = await cli(['--json', 'bootstrap', ...repo.flags, '--timeout', '3m', ...extra], { env: { ...repo.env, ...env } });
  let doc: JsonDoc;
  try {
    doc = JSON.parse(run.stdout) as JsonDoc;
  } catch {
    assert.fail(`no JSON document (exit ${run.code}): ${run.stderr}\n${run.stdout}`);
  }
  return { run, doc };
}

export const notOk = (doc: JsonDoc) => JSON.stringify(doc.tasks.filter((t) => t.outcome !== 'ok'));
export const failedTask = (doc: JsonDoc) => doc.tasks.find((t) => t.outcome === 'failed');

/** Everything a bootstrap leaves in the cluster, minus what changes on every write, for comparing runs. */
export async function snapshot(kube: KubeAdapter): Promise<Record<string, unknown>> {
  const strip = (o: KubeObject) => {
    const { resourceVersion: _r, managedFields: _m, uid: _u, creationTimestamp: _c, generation: _g, ...meta } = o.metadata;
    const annotations = Object.fromEntries(Object.entries(meta.annotations ?? {}).filter(([k]) => !k.startsWith('reconcile.fluxcd.io/')));
    return { ...o, metadata: { ...meta, annotations }, status: undefined };
  };
  const out: Record<string, unknown> = {};
  const lists: [string, string, string?][] = [
    ['v1', 'Namespace'],
    ['apiextensions.k8s.io/v1', 'CustomResourceDefinition'],
    ['v1', 'Secret', 'flux-system'],
    ['v1', 'Secret', 'apps'],
    ['apps/v1', 'Deployment', 'flux-system'],
    ['v1', 'ServiceAccount', 'flux-system'],
    ['rbac.authorization.k8s.io/v1', 'ClusterRole'],
    ['source.toolkit.fluxcd.io/v1', 'GitRepository', 'flux-system'],
    ['kustomize.toolkit.fluxcd.io/v1', 'Kustomization', 'flux-system'],
    ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'],
    ['v1', 'Service', 'flux-system'],
    ['networking.k8s.io/v1', 'NetworkPolicy', 'flux-system'],
    ['v1', 'ResourceQuota', 'flux-system'],
  ];
  for (const [apiVersion, kind, namespace] of lists) {
    const items = await kube.list(apiVersion, kind, namespace ? { namespace } : {});
    for (const o of items) {
      if (kind === 'Namespace' && !['flux-system', 'apps'].includes(o.metadata.name)) continue;
      if (kind.startsWith('ClusterRole') && !/^(crd-controller|flux|cluster-reconciler)/.test(o.metadata.name)) continue;
      out[`${kind}/${namespace ?? ''}/${o.metadata.name}`] = strip(o);
    }
  }
  return out;
}

/**
 * The snapshot with what differs between two clusters by construction taken out: the Git URL
 * (each harness has its own port), Secret values (each repo has its own key; key names stay),
 * the applied-hash annotation, which covers the URL, and allocated Service IPs.
 */
export async function portableSnapshot(kube: KubeAdapter, repo: Repo): Promise<unknown> {
  const snap = await snapshot(kube);
  for (const o of Object.values(snap) as KubeObject[]) {
    if (o.kind === 'Secret') o.data = Object.keys(o.data ?? {}).sort();
    if (o.kind === 'Service') {
      const spec = o.spec as Record<string, unknown>;
      delete spec.clusterIP;
      delete spec.clusterIPs;
    }
    delete o.metadata.annotations?.['fluxstrap.dev/applied-hash'];
  }
  return JSON.parse(JSON.stringify(snap).replaceAll(repo.url, '<git-url>')) as unknown;
}

/** A loopback port nothing listens on. */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

export async function nothingChanged(kube: KubeAdapter): Promise<void> {
  assert.equal(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: 'flux-system' }), undefined, 'preflight must not create anything');
}

export async function assertDecrypted(kube: KubeAdapter): Promise<void> {
  const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'apps', name: 'db' });
  assert.ok(secret, 'Secret apps/db exists');
  const data = secret.data as Record<string, string>;
  assert.equal(Buffer.from(data.password ?? '', 'base64').toString(), DB_PASSWORD);
  const managers = ((secret.metadata.managedFields as { manager?: string }[] | undefined) ?? []).map((m) => m.manager);
  assert.ok(managers.includes('kustomize-controller'), `applied by kustomize-controller (managers: ${managers.join(', ')})`);
}

/** A fresh cluster per scenario: these start from an empty cluster each. */
export async function withFreshCluster(
  name: string,
  transport: 'https' | 'ssh',
  fn: (c: Cluster, kube: KubeAdapter, repo: Repo) => Promise<void>,
): Promise<void> {
  const c = await startCluster({ flux: 'on-deployment' });
  try {
    const kube = await connectKube({ kubeconfig: c.kubeconfig });
    await fn(c, kube, await makeRepo(c, { name, transport }));
  } catch (e) {
    c.keep(`test failed: ${name}`);
    throw new Error(`${(e as Error).message}\n${c.logTails(20)}\nlogs kept in ${c.logsDir}`, { cause: e });
  } finally {
    await c.stop();
  }
}
