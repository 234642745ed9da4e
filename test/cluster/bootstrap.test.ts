// `fluxstrap bootstrap` end to end against the real harness cluster: kube-apiserver + etcd, the
// real source-controller and kustomize-controller, and the local Git server (HTTP basic auth and
// SSH). Every run is the built CLI's code path (`node src/cli.ts`), as `make provision` runs it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { gitEnv } from '../../src/adapters/git.ts';
import type { GitAuth } from '../../src/adapters/git.ts';
import { connectKube, deploymentAvailable } from '../../src/adapters/kube.ts';
import type { KubeAdapter, KubeObject } from '../../src/adapters/kube.ts';
import { startCluster } from './index.ts';
import { clusterForFile } from './testing.ts';
import type { Cluster } from './index.ts';
import { ownedTempDir } from '../helpers/tmp.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const NODE = join(ROOT, 'node_modules/.bin/node');
const CLI = join(ROOT, 'src/cli.ts');
const CLUSTER_PATH = 'clusters/test';
const TOKEN_ENV = 'FLUXSTRAP_TEST_GIT_TOKEN';

const tmp: string[] = [];
// Named for this process, so a later run removes them if this one is killed before `after`.
const tempDir = (prefix: string) => {
  const d = ownedTempDir(prefix);
  tmp.push(d);
  return d;
};
after(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run the CLI; `killWhen` sees stderr as it grows and may SIGKILL the process at that point. */
function cli(args: string[], opts: { cwd?: string; env?: Record<string, string>; killWhen?: (stderr: string) => boolean; killOn?: Promise<unknown> } = {}): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [CLI, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, CI: '1', NO_COLOR: '1', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (opts.killWhen?.(stderr)) child.kill('SIGKILL');
    });
    void opts.killOn?.then(() => child.kill('SIGKILL'), () => undefined);
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
}

async function git(args: string[], cwd: string, auth: GitAuth = { kind: 'none' }): Promise<string> {
  const { execa } = await import('execa');
  const res = await execa('git', args, { cwd, env: { ...gitEnv(auth), GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' }, reject: false });
  assert.equal(res.exitCode, 0, `git ${args.join(' ')}: ${res.stderr}`);
  return res.stdout.trim();
}

interface Repo {
  dir: string;
  keyFile: string;
  url: string;
  auth: GitAuth;
  env: Record<string, string>;
  /** Flags every run of this repo gets. */
  flags: string[];
}

interface RepoOptions {
  name: string;
  transport: 'https' | 'ssh';
  /** The seed's layout: decryption hand-added to gotk-sync.yaml, a root that omits flux-system/. */
  seedLayout?: boolean;
  /** An encrypted file inside flux-system/, which breaks a bootstrap. */
  sopsInFluxSystem?: boolean;
}

/**
 * A fleet repository as `fluxstrap keys new` + `init` + `encrypt` make it: flux-system/ with the
 * harness's gotk-components.yaml, gotk-sync.yaml and a kustomization.yaml carrying the decryption
 * patch; an app folder with a namespace and a SOPS-encrypted Secret; pushed to the Git server.
 */
async function makeRepo(cluster: Cluster, o: RepoOptions): Promise<Repo> {
  const home = tempDir('repo');
  const dir = join(home, 'repo');
  const keyFile = join(home, 'age.key');
  const keys = await cli(['keys', 'new', '--out', keyFile]);
  assert.equal(keys.code, 0, keys.stderr);
  const recipient = /age1[0-9a-z]+/.exec(readFileSync(keyFile, 'utf8'))?.[0] ?? '';
  const url = o.transport === 'https' ? cluster.git.httpUrl(`${o.name}.git`) : cluster.git.sshUrl(`${o.name}.git`);
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

  const fs = join(dir, CLUSTER_PATH, 'flux-system');
  if (o.seedLayout) mkdirSync(fs, { recursive: true });
  mkdirSync(join(dir, CLUSTER_PATH, 'apps'), { recursive: true });
  const write = (rel: string, text: string) => writeFileSync(join(dir, rel), text);
  write('fluxstrap.yaml', stringify({ clusters: { test: { path: CLUSTER_PATH, kube: { kubeconfig: cluster.kubeconfig }, git: { url, branch: 'main', auth: gitAuth }, ageKey: { file: keyFile } } } }));
  if (o.seedLayout) {
    // What flux bootstrap commits (here generated by init in a scratch repository), with the
    // decryption the seed hand-added to gotk-sync.yaml, where the next flux bootstrap wipes it.
    const gen = join(home, 'generated');
    mkdirSync(join(gen, CLUSTER_PATH), { recursive: true });
    const init = await cli(['init', '--cluster', 'test', '--path', CLUSTER_PATH, '--age-key-file', keyFile, '--repo', gen, '--git-url', url, '--branch', 'main']);
    assert.equal(init.code, 0, init.stderr);
    copyFileSync(join(gen, CLUSTER_PATH, 'flux-system', 'gotk-components.yaml'), join(fs, 'gotk-components.yaml'));
    const sync = parseAllDocuments(readFileSync(join(gen, CLUSTER_PATH, 'flux-system', 'gotk-sync.yaml'), 'utf8'));
    const ks = sync.find((d) => d.get('kind') === 'Kustomization');
    ks?.setIn(['spec', 'decryption'], ks.createNode({ provider: 'sops', secretRef: { name: 'sops-age' } }));
    write(`${CLUSTER_PATH}/flux-system/gotk-sync.yaml`, sync.map((d) => d.toString()).join('---\n'));
    write(`${CLUSTER_PATH}/flux-system/kustomization.yaml`, stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['gotk-components.yaml', 'gotk-sync.yaml'] }));
  }
  // The seed's root lists its apps but not flux-system/.
  write(`${CLUSTER_PATH}/kustomization.yaml`, stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['apps'] }));
  write(`${CLUSTER_PATH}/apps/kustomization.yaml`, stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['namespace.yaml', 'db.sops.yaml'] }));
  write(`${CLUSTER_PATH}/apps/namespace.yaml`, stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'apps' } }));
  write(`${CLUSTER_PATH}/apps/db.sops.yaml`, stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'apps' }, type: 'Opaque',
    stringData: { username: 'app', password: 'not-a-real-password-1234' } }));
  if (o.seedLayout) {
    write('.sops.yaml', stringify({ creation_rules: [{ path_regex: '.*\\.sops\\.ya?ml$', encrypted_regex: '^(data|stringData)$', age: recipient }] }));
  } else {
    // Flux itself (gotk-components, gotk-sync), .sops.yaml rule, decryption patch in
    // flux-system/kustomization.yaml, flux-system in the root.
    const init = await cli(['init', '--cluster', 'test', '--path', CLUSTER_PATH, '--age-key-file', keyFile, '--repo', dir, '--git-url', url, '--branch', 'main']);
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
  const env: Record<string, string> = o.transport === 'https' ? { [TOKEN_ENV]: cluster.git.password } : {};
  return { dir, keyFile, url, auth, env, flags: ['--repo', dir] };
}

const bootstrap = (repo: Repo, extra: string[] = [], opts: { env?: Record<string, string>; killWhen?: (stderr: string) => boolean; killOn?: Promise<unknown> } = {}) =>
  cli(['bootstrap', ...repo.flags, '--timeout', '3m', ...extra], {
    env: { ...repo.env, ...opts.env },
    ...(opts.killWhen ? { killWhen: opts.killWhen } : {}),
    ...(opts.killOn ? { killOn: opts.killOn } : {}),
  });

interface JsonDoc {
  success: boolean;
  recap: { ok: number; changed: number; wouldChange: number; failed: number; skipped: number };
  tasks: { name: string; kind: string; outcome: string; durationMs: number; changes: { action: string; target: string }[]; error?: { code: string; message: string; hint?: string } }[];
}

async function bootstrapJson(repo: Repo, extra: string[] = [], env: Record<string, string> = {}): Promise<{ run: Run; doc: JsonDoc }> {
  const run = await cli(['--json', 'bootstrap', ...repo.flags, '--timeout', '3m', ...extra], { env: { ...repo.env, ...env } });
  let doc: JsonDoc;
  try {
    doc = JSON.parse(run.stdout) as JsonDoc;
  } catch {
    assert.fail(`no JSON document (exit ${run.code}): ${run.stderr}\n${run.stdout}`);
  }
  return { run, doc };
}

const notOk = (doc: JsonDoc) => JSON.stringify(doc.tasks.filter((t) => t.outcome !== 'ok'));
const failedTask = (doc: JsonDoc) => doc.tasks.find((t) => t.outcome === 'failed');

/** Everything a bootstrap leaves in the cluster, minus what changes on every write, for comparing runs. */
async function snapshot(kube: KubeAdapter): Promise<Record<string, unknown>> {
  const strip = (o: KubeObject) => {
    const { resourceVersion: _r, managedFields: _m, uid: _u, creationTimestamp: _c, generation: _g, ...meta } = o.metadata;
    const annotations = Object.fromEntries(Object.entries(meta.annotations ?? {}).filter(([k]) => !k.startsWith('reconcile.fluxcd.io/')));
    return { ...o, metadata: { ...meta, annotations }, status: undefined };
  };
  const out: Record<string, unknown> = {};
  const lists: [string, string, string?][] = [
    ['v1', 'Namespace'], ['apiextensions.k8s.io/v1', 'CustomResourceDefinition'], ['v1', 'Secret', 'flux-system'], ['v1', 'Secret', 'apps'],
    ['apps/v1', 'Deployment', 'flux-system'], ['v1', 'ServiceAccount', 'flux-system'], ['rbac.authorization.k8s.io/v1', 'ClusterRole'],
    ['source.toolkit.fluxcd.io/v1', 'GitRepository', 'flux-system'], ['kustomize.toolkit.fluxcd.io/v1', 'Kustomization', 'flux-system'],
    ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'], ['v1', 'Service', 'flux-system'], ['networking.k8s.io/v1', 'NetworkPolicy', 'flux-system'],
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
async function portableSnapshot(kube: KubeAdapter, repo: Repo): Promise<unknown> {
  const snap = await snapshot(kube);
  for (const o of Object.values(snap) as KubeObject[]) {
    if (o.kind === 'Secret') o.data = Object.keys((o.data ?? {})).sort();
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
async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

async function nothingChanged(kube: KubeAdapter): Promise<void> {
  assert.equal(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: 'flux-system' }), undefined, 'preflight must not create anything');
}

async function assertDecrypted(kube: KubeAdapter): Promise<void> {
  const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'apps', name: 'db' });
  assert.ok(secret, 'Secret apps/db exists');
  const data = secret.data as Record<string, string>;
  assert.equal(Buffer.from(data.password ?? '', 'base64').toString(), 'not-a-real-password-1234');
  const managers = (secret.metadata.managedFields as { manager?: string }[] | undefined ?? []).map((m) => m.manager);
  assert.ok(managers.includes('kustomize-controller'), `applied by kustomize-controller (managers: ${managers.join(', ')})`);
}

let cluster: Cluster;
let kube: KubeAdapter;
let repo: Repo;
let reference: Record<string, unknown>;
// One cluster for this file's first suite; a cluster that cannot start fails each test with why.
const suite = clusterForFile({ flux: 'on-deployment' }, async (c) => {
  cluster = c;
  kube = await connectKube({ kubeconfig: c.kubeconfig });
  repo = await makeRepo(c, { name: 'fleet', transport: 'https' });
});

void describe('fluxstrap bootstrap against the real harness cluster', { timeout: 40 * 60_000 }, () => {

  void it('refuses the seed layout at preflight, naming the fix, and changes nothing', () => suite.run(async () => {
    const seed = await makeRepo(cluster, { name: 'seed', transport: 'https' , seedLayout: true });
    const { run, doc } = await bootstrapJson(seed);
    assert.equal(run.code, 1);
    const t = failedTask(doc);
    assert.equal(t?.kind, 'preflight');
    assert.match(t?.error?.message ?? '', /does not list flux-system/);
    assert.match(t?.error?.message ?? '', /gotk-sync\.yaml was edited by hand/);
    assert.match(t?.error?.hint ?? '', /add `- flux-system`/);
    await nothingChanged(kube);
  }));

  void it('refuses an encrypted file inside flux-system/ at preflight', () => suite.run(async () => {
    const bad = await makeRepo(cluster, { name: 'sops-in-flux-system', transport: 'https', sopsInFluxSystem: true });
    const { run, doc } = await bootstrapJson(bad);
    assert.equal(run.code, 1);
    const t = failedTask(doc);
    assert.equal(t?.kind, 'preflight');
    assert.match(t?.error?.message ?? '', /SOPS-encrypted files inside flux-system\/ \(clusters\/test\/flux-system\/db\.sops\.yaml\)/);
    assert.match(t?.error?.hint ?? '', /move them/);
    await nothingChanged(kube);
  }));

  void it('refuses a wrong age key at preflight', () => suite.run(async () => {
    const other = join(tempDir('key'), 'other.key');
    assert.equal((await cli(['keys', 'new', '--out', other])).code, 0);
    const { run, doc } = await bootstrapJson(repo, ['--age-key-file', other]);
    assert.equal(run.code, 1);
    const t = failedTask(doc);
    assert.equal(t?.kind, 'preflight');
    assert.match(t?.error?.message ?? '', /the \.sops\.yaml rule at \.sops\.yaml:\d+ \(for clusters\/test\/apps\/db\.sops\.yaml\) does not list the age key/);
    assert.match(t?.error?.message ?? '', /cannot open 1 of the 1 SOPS file\(s\) the cluster reaches: clusters\/test\/apps\/db\.sops\.yaml/);
    await nothingChanged(kube);
  }));

  void it('refuses expired Git credentials at preflight', () => suite.run(async () => {
    const { run, doc } = await bootstrapJson(repo, [], { [TOKEN_ENV]: 'expired-token' });
    assert.equal(run.code, 1);
    const t = failedTask(doc);
    assert.equal(t?.kind, 'preflight');
    assert.equal(t?.error?.code, 'E_GIT');
    assert.match(t?.error?.hint ?? '', /token can read/);
    assert.doesNotMatch(run.stdout + run.stderr, /expired-token/);
    await nothingChanged(kube);
  }));

  void it('refuses an unreachable API at preflight', () => suite.run(async () => {
    const dead = join(tempDir('kc'), 'kubeconfig');
    writeFileSync(dead, readFileSync(cluster.kubeconfig, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${await closedPort()}`));
    const { run, doc } = await bootstrapJson(repo, ['--kubeconfig', dead]);
    assert.equal(run.code, 1);
    const t = failedTask(doc);
    assert.equal(t?.kind, 'preflight');
    assert.equal(t?.error?.code, 'E_KUBE');
    assert.match(t?.error?.message ?? '', /unreachable \(ECONNREFUSED\)/);
    await nothingChanged(kube);
  }));

  void it('refuses missing permissions at preflight', () => suite.run(async () => {
    await cluster.kubectl(['create', 'serviceaccount', 'limited', '-n', 'default']);
    const token = (await cluster.kubectl(['create', 'token', 'limited', '-n', 'default'])).trim();
    const limited = join(tempDir('kc'), 'kubeconfig');
    writeFileSync(limited, readFileSync(cluster.kubeconfig, 'utf8').replace(/token: .*/, `token: ${token}`));
    const { run, doc } = await bootstrapJson(repo, ['--kubeconfig', limited]);
    assert.equal(run.code, 1);
    const t = failedTask(doc);
    assert.equal(t?.kind, 'preflight');
    assert.match(t?.error?.message ?? '', /may not create namespaces, patch namespaces/);
    assert.match(t?.error?.hint ?? '', /cluster-admin/);
    await nothingChanged(kube);
  }));

  void it('--check on the empty cluster reports what it would do, exits 3 and changes nothing', () => suite.run(async () => {
    const { run, doc } = await bootstrapJson(repo, ['--check']);
    assert.equal(run.code, 3, run.stderr);
    assert.deepEqual(doc.tasks.filter((t) => t.outcome === 'would-change').map((t) => t.kind),
      ['namespace', 'git-credentials', 'sops-age-secret', 'flux-components', 'wait-controllers', 'flux-sync', 'reconcile']);
    await nothingChanged(kube);
  }));

  void it('bootstraps an empty cluster over HTTPS: the SOPS Secret arrives decrypted, applied by kustomize-controller', () => suite.run(async () => {
    const run = await bootstrap(repo);
    assert.equal(run.code, 0, `${run.stderr}\n${cluster.logTails(30)}`);
    await assertDecrypted(kube);
    const ks = await kube.get({ apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', namespace: 'flux-system', name: 'flux-system' });
    assert.deepEqual((ks?.spec as { decryption?: unknown }).decryption, { provider: 'sops', secretRef: { name: 'sops-age' } });
    const age = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' });
    assert.deepEqual(Object.keys(age?.data as object), ['age.agekey']);
    assert.doesNotMatch(run.stderr, /AGE-SECRET-KEY|not-a-real-password/);
    reference = await snapshot(kube);
  }));

  void it('reports zero changes on a second run', (t) => suite.run(async () => {
    const { run, doc } = await bootstrapJson(repo);
    t.diagnostic(`no-op run: ${run.ms} ms wall; ${doc.tasks.map((x) => `${x.kind} ${x.durationMs} ms`).join(', ')}`);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(doc.tasks.filter((t) => t.outcome !== 'ok').map((t) => `${t.name}: ${t.outcome} ${JSON.stringify(t.changes)}`), []);
    assert.equal(doc.recap.changed, 0);
    const check = await bootstrapJson(repo, ['--check']);
    assert.equal(check.run.code, 0, check.run.stderr);
    assert.equal(check.doc.recap.wouldChange, 0);
  }));

  void it('works the same through an exec credential plugin (the client-library path of the kube adapter)', () => suite.run(async () => {
    const dir = tempDir('exec');
    const kc = readFileSync(cluster.kubeconfig, 'utf8');
    const token = /token: (\S+)/.exec(kc)?.[1] ?? '';
    const plugin = join(dir, 'credential.sh');
    writeFileSync(plugin, `#!/bin/sh\nprintf '%s' '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${token}"}}'\n`, { mode: 0o700 });
    const execKc = join(dir, 'kubeconfig');
    writeFileSync(execKc, kc.replace(/ {4}token: \S+/, `    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ${plugin}\n      interactiveMode: Never`));
    assert.doesNotMatch(readFileSync(execKc, 'utf8'), /^ {4}token:/m);
    const { run, doc } = await bootstrapJson(repo, ['--kubeconfig', execKc]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(doc.recap.changed, 0, notOk(doc));
  }));

  void it('restores a deleted sops-age Secret', () => suite.run(async () => {
    await kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' });
    const { run, doc } = await bootstrapJson(repo);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(doc.tasks.filter((t) => t.outcome === 'changed').map((t) => t.kind), ['sops-age-secret']);
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' }));
  }));

  void it('takes over a sops-age Secret made the seed\'s way (kubectl apply), removing the values it left in an annotation', () => suite.run(async () => {
    const ref = { apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' };
    const ours = await kube.get(ref);
    await kube.delete(ref);
    await cluster.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sops-age', namespace: 'flux-system' }, type: 'Opaque', data: ours?.data }));
    const seeded = await kube.get(ref);
    assert.ok(seeded?.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration']);
    const { run, doc } = await bootstrapJson(repo);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(doc.tasks.filter((t) => t.outcome === 'changed').map((t) => t.kind), ['sops-age-secret']);
    const after = await kube.get(ref);
    assert.equal(after?.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], undefined);
    assert.deepEqual(after?.data, ours?.data);
    assert.doesNotMatch(run.stdout + run.stderr, /AGE-SECRET-KEY/);
    assert.equal((await bootstrapJson(repo)).doc.recap.changed, 0);
  }));

  void it('refuses to overwrite a sops-age Secret that differs, unless --rotate-secrets', () => suite.run(async () => {
    const other = join(tempDir('key'), 'other.key');
    assert.equal((await cli(['keys', 'new', '--out', other])).code, 0);
    const both = join(tempDir('key'), 'both.key');
    writeFileSync(both, readFileSync(repo.keyFile, 'utf8') + readFileSync(other, 'utf8'));
    const refused = await bootstrapJson(repo, ['--age-key-file', both]);
    assert.equal(refused.run.code, 1);
    const t = failedTask(refused.doc);
    assert.equal(t?.kind, 'sops-age-secret');
    assert.equal(t?.error?.code, 'E_PRECONDITION');
    assert.match(t?.error?.message ?? '', /missing age-2\.agekey/);
    const rotated = await bootstrapJson(repo, ['--age-key-file', both, '--rotate-secrets']);
    assert.equal(rotated.run.code, 0, rotated.run.stderr);
    const age = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' });
    assert.deepEqual(Object.keys(age?.data as object).sort(), ['age-2.agekey', 'age.agekey']);
    assert.doesNotMatch(rotated.run.stdout + rotated.run.stderr, /AGE-SECRET-KEY/);
    // Back to the single key, for the comparisons below.
    assert.equal((await bootstrapJson(repo, ['--rotate-secrets'])).run.code, 0);
  }));

  void it('times out waiting for a controller that is down, naming the Deployment and its conditions', () => suite.run(async () => {
    await cluster.controllers.stop('source-controller');
    try {
      const unavailable = async () => {
        for (let i = 0; i < 100; i++) {
          const d = await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'flux-system', name: 'source-controller' });
          if (!deploymentAvailable(d).done) return;
          await new Promise((r) => setTimeout(r, 200));
        }
        assert.fail('the Deployment never turned unavailable');
      };
      await unavailable();
      const run = await cli(['--json', 'bootstrap', ...repo.flags, '--timeout', '3s'], { env: repo.env });
      const doc = JSON.parse(run.stdout) as JsonDoc;
      const t = failedTask(doc);
      assert.equal(t?.kind, 'wait-controllers');
      assert.equal(t?.error?.code, 'E_TIMEOUT');
      assert.match(t?.error?.message ?? '', /timed out after 3s waiting for Deployment flux-system\/source-controller to be Available: .*conditions: Available=False \(MinimumReplicasUnavailable/);
    } finally {
      await cluster.controllers.start('source-controller');
    }
  }));

  void it('ends in the same state as the first run', () => suite.run(async () => {
    assert.deepEqual(await snapshot(kube), reference);
  }));
});

/** A fresh cluster per scenario: these start from an empty cluster each. */
async function withFreshCluster(name: string, transport: 'https' | 'ssh', fn: (c: Cluster, kube: KubeAdapter, repo: Repo) => Promise<void>): Promise<void> {
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

void describe('bootstrap over SSH', { timeout: 15 * 60_000 }, () => {
  void it('bootstraps an empty cluster with a deploy key and known_hosts, then reports zero changes', async () => {
    await withFreshCluster('fleet-ssh', 'ssh', async (_c, kube, repo) => {
      const first = await bootstrap(repo);
      assert.equal(first.code, 0, first.stderr);
      await assertDecrypted(kube);
      const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'flux-system' });
      assert.deepEqual(Object.keys(secret?.data as object).sort(), ['identity', 'known_hosts']);
      const { doc } = await bootstrapJson(repo);
      assert.equal(doc.recap.changed, 0, notOk(doc));
    });
  });
});

/** The task names of the built-in playbook, in order (the step boundaries). */
const STEPS = ['Preflight', 'Namespace flux-system', 'Git credentials Secret', 'SOPS age Secret', 'Flux components', 'Wait for the Flux controllers', 'Sync objects', 'Reconcile at the bootstrapped commit'];

void describe('interrupted and concurrent bootstraps end like an uninterrupted one', { timeout: 60 * 60_000 }, () => {
  let reference: unknown;
  void it('an uninterrupted run, for reference', async () => {
    await withFreshCluster('kill', 'https', async (_c, kube, repo) => {
      const run = await bootstrap(repo);
      assert.equal(run.code, 0, run.stderr);
      reference = await portableSnapshot(kube, repo);
    });
  });
  for (const [i, step] of STEPS.entries()) {
    void it(`killed right after "${step}": the next run converges to the state of an uninterrupted run`, async () => {
      await withFreshCluster(`kill-${i}`, 'https', async (_c, kube, repo) => {
        const killed = await bootstrap(repo, [], { killWhen: (err) => err.split('\n').some((l) => /^[✔●] /.test(l) && l.slice(2).startsWith(step)) });
        assert.equal(killed.signal, 'SIGKILL', `the run ended before the kill point: ${killed.stderr}`);
        const next = await bootstrap(repo);
        assert.equal(next.code, 0, next.stderr);
        await assertDecrypted(kube);
        const { doc } = await bootstrapJson(repo);
        assert.equal(doc.recap.changed, 0, notOk(doc));
        assert.deepEqual(await portableSnapshot(kube, repo), reference);
      });
    });
  }
  void it('killed in the middle of the component apply: the next run applies the rest', async () => {
    await withFreshCluster('kill-mid', 'https', async (_c, kube, repo) => {
      // Kill once some CRDs exist and not all: the process is inside the component apply.
      const total = readFileSync(join(repo.dir, CLUSTER_PATH, 'flux-system', 'gotk-components.yaml'), 'utf8').split('kind: CustomResourceDefinition').length - 1;
      const midApply = (async () => {
        for (;;) {
          const n = (await kube.list('apiextensions.k8s.io/v1', 'CustomResourceDefinition').catch(() => [])).length;
          if (n >= 1 && n < total) return n;
          if (n >= total) throw new Error('the component apply finished before the kill');
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const dead = await bootstrap(repo, [], { killOn: midApply });
      assert.equal(dead.signal, 'SIGKILL', dead.stderr);
      assert.ok((await midApply) < total);
      const partial = await kube.list('apiextensions.k8s.io/v1', 'CustomResourceDefinition');
      const next = await bootstrap(repo);
      assert.equal(next.code, 0, next.stderr);
      await assertDecrypted(kube);
      assert.ok((await kube.list('apiextensions.k8s.io/v1', 'CustomResourceDefinition')).length >= partial.length);
      const { doc } = await bootstrapJson(repo);
      assert.equal(doc.recap.changed, 0, notOk(doc));
      assert.deepEqual(await portableSnapshot(kube, repo), reference);
    });
  });
  void it('two bootstraps of the same cluster at once: both succeed, without a lock, and the objects are those of one run', async () => {
    await withFreshCluster('concurrent', 'https', async (_c, kube, repo) => {
      const [a, b] = await Promise.all([bootstrap(repo), bootstrap(repo)]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      await assertDecrypted(kube);
      const { doc } = await bootstrapJson(repo);
      assert.equal(doc.recap.changed, 0, notOk(doc));
      assert.deepEqual(await portableSnapshot(kube, repo), reference);
    });
  });
});
