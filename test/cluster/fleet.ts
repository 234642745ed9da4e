// Repositories on the harness's Git server and the Flux objects that sync them, for the cluster
// tests that push their own files: the bootstrap tests (a fleet with fluxstrap.yaml) and the
// decryption tests (one encrypted Secret under app/, synced by a Kustomization of their own).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { stringify } from 'yaml';
import { gitEnv } from '../../src/adapters/git.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import { assertBuilt, startCluster, type Cluster } from './index.ts';
import { condition, type Condition } from './kube.ts';
import { run, waitFor } from './proc.ts';
import { keepLogsOnFailure } from './testing.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface FleetSuite {
  cluster: Cluster;
  kube: KubeAdapter;
  /** A folder of the test's own (keys, keyrings); removed after. */
  home: string;
  /** The fleet repository, <home>/repo. */
  dir: string;
}

/**
 * A describe() that bootstraps its own fleet: before its tests a temp home and a cluster whose
 * controllers start on their Deployments, then `setup`; after them the cluster stopped, `cleanup`
 * (servers, agents the setup started), the home removed. A failing test keeps the cluster's logs.
 */
export function fleetSuite(prefix: string, hooks: { setup: (s: FleetSuite) => Promise<void>; cleanup?: () => Promise<unknown> }): FleetSuite {
  const s = {} as FleetSuite;
  before(async () => {
    assertBuilt();
    s.home = mkdtempSync(join(tmpdir(), `fluxstrap-${prefix}-`));
    s.dir = join(s.home, 'repo');
    s.cluster = await startCluster({ flux: 'on-deployment' });
    s.kube = await connectKube({ kubeconfig: s.cluster.kubeconfig });
    await hooks.setup(s);
  });
  // Each may be unset when before() failed part way.
  const started = s as Partial<FleetSuite>;
  keepLogsOnFailure(() => started.cluster);
  after(async () => {
    await started.cluster?.stop();
    await hooks.cleanup?.();
    if (started.home !== undefined) rmSync(started.home, { recursive: true, force: true });
  });
  return s;
}

/** Writes each file (path relative to dir → text), making its folders. */
export function writeTree(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
}

/** fluxstrap.yaml with cluster `test`: the harness's apiserver, its Git server over HTTPS, the password read from tokenEnv. */
export function fleetConfig(cluster: Cluster, url: string, tokenEnv: string): string {
  return stringify({
    clusters: {
      test: { kube: { kubeconfig: cluster.kubeconfig }, git: { url, auth: { https: { username: cluster.git.username, passwordEnv: tokenEnv } } } },
    },
  });
}

/** `fluxstrap init` of cluster `test` for the fleet at url (main), with the SOPS backend's flags. */
export const initArgs = (url: string, ...backend: string[]): string[] => ['init', '--cluster', 'test', '--git-url', url, '--branch', 'main', ...backend];

/** A plain Secret default/<name> whose stringData.token is value: what the tests encrypt. */
export function plainSecret(name: string, value: string): string {
  return [
    'apiVersion: v1',
    'kind: Secret',
    'metadata:',
    `  name: ${name}`,
    '  namespace: default',
    'type: Opaque',
    'stringData:',
    `  token: ${value}`,
    '',
  ].join('\n');
}

/** Commits everything in dir on main, making the repository on the first call. */
export async function commitAll(dir: string, message: string): Promise<void> {
  const git = (...args: string[]): Promise<string> => run('git', ['-C', dir, ...args], { env: { ...process.env, ...gitEnv({ kind: 'none' }) } });
  if (!existsSync(join(dir, '.git'))) await git('init', '--quiet', '--initial-branch=main');
  await git('add', '-A');
  await git('-c', 'user.name=fluxstrap-test', '-c', 'user.email=test@fluxstrap.invalid', 'commit', '--quiet', '-m', message);
}

/** Pushes main to the harness's Git server over HTTPS with its login. */
export async function pushHttp(cluster: Cluster, dir: string, url: string): Promise<void> {
  const auth = gitEnv({ kind: 'basic', username: cluster.git.username, password: cluster.git.password });
  await run('git', ['-C', dir, 'push', '--quiet', url, 'main'], { env: { ...process.env, ...auth } });
}

/** commitAll, then pushHttp. */
export async function commitAndPush(cluster: Cluster, dir: string, url: string, message: string): Promise<void> {
  await commitAll(dir, message);
  await pushHttp(cluster, dir, url);
}

export interface SyncOptions {
  namespace: string;
  name: string;
  url: string;
  /** The Secret the Kustomization decrypts with. */
  decryptionSecret: string;
  /** Data of the Git credentials Secret; the harness's login by default. */
  auth?: Record<string, string>;
  /** Applied with the source, e.g. the decryption Secret. */
  objects?: object[];
}

type FluxObject = Parameters<typeof condition>[0];

async function fluxObject(cluster: Cluster, kind: string, namespace: string, name: string): Promise<FluxObject> {
  return JSON.parse(await cluster.kubectl(['get', kind, '-n', namespace, name, '-o', 'json'])) as FluxObject;
}

/**
 * Applies a Git credentials Secret, the given objects and a GitRepository, waits for the artifact
 * (a Kustomization created earlier would back off for 30s), then a decrypting Kustomization of ./app.
 */
export async function syncDecrypting(cluster: Cluster, s: SyncOptions): Promise<void> {
  const apply = (objects: object[]): Promise<string> =>
    cluster.kubectl(['apply', '--server-side', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n---\n'));
  await apply([
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `${s.name}-git`, namespace: s.namespace },
      stringData: s.auth ?? { username: cluster.git.username, password: cluster.git.password },
    },
    ...(s.objects ?? []),
    {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'GitRepository',
      metadata: { name: s.name, namespace: s.namespace },
      spec: { url: s.url, interval: '1m', timeout: '20s', ref: { branch: 'main' }, secretRef: { name: `${s.name}-git` } },
    },
  ]);
  await waitFor(
    `GitRepository ${s.namespace}/${s.name} Ready`,
    async () => (condition(await fluxObject(cluster, 'gitrepository', s.namespace, s.name), 'Ready')?.status === 'True' ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  await apply([
    {
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name: s.name, namespace: s.namespace },
      spec: {
        interval: '1m',
        retryInterval: '5s',
        path: './app',
        prune: true,
        timeout: '30s',
        sourceRef: { kind: 'GitRepository', name: s.name },
        decryption: { provider: 'sops', secretRef: { name: s.decryptionSecret } },
      },
    },
  ]);
}

/** The token of Secret default/<name> once kustomize-controller has applied it. */
export function decryptedToken(cluster: Cluster, name: string): Promise<string> {
  return waitFor(
    `Secret default/${name} applied by kustomize-controller`,
    async () => {
      const out = await cluster.kubectl(['get', 'secret', '-n', 'default', name, '-o', 'json', '--ignore-not-found']);
      if (out.trim() === '') return undefined;
      const token = (JSON.parse(out) as { data?: { token?: string } }).data?.token;
      return token === undefined ? undefined : Buffer.from(token, 'base64').toString('utf8');
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

/** The Kustomization's Ready condition once it has failed (not merely progressing). */
export function readyFailed(cluster: Cluster, namespace: string, name: string): Promise<Condition> {
  return waitFor(
    `Kustomization ${namespace}/${name} Ready=False`,
    async () => {
      const c = condition(await fluxObject(cluster, 'kustomization', namespace, name), 'Ready');
      return c?.status === 'False' && c.reason !== 'Progressing' ? c : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

export async function ensureNamespace(cluster: Cluster, name: string): Promise<void> {
  await cluster.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
}

export interface CliRun {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

/**
 * The built CLI in a fleet keyed by a cloud or Vault key, with no age key to fall back on (HOME
 * and SOPS_AGE_KEY_FILE point at nothing); fails if its output holds any of `secrets`.
 */
export async function cliWithoutAgeKey(
  args: string[],
  o: { cwd: string; home: string; env: Record<string, string>; secrets: readonly string[] },
): Promise<CliRun> {
  const { execa } = await import('execa');
  const r = await execa(process.execPath, [join(ROOT, 'dist/cli.js'), ...args], {
    cwd: o.cwd,
    reject: false,
    env: { CI: '1', NO_COLOR: '1', HOME: o.home, SOPS_AGE_KEY_FILE: join(o.home, 'no-age-key'), ...o.env },
  });
  const out = `${r.stdout}${r.stderr}`;
  assert.ok(!o.secrets.some((t) => out.includes(t)), 'a secret was printed');
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

/** What `fluxstrap --json bootstrap` prints, as far as these tests read it. */
export interface BootstrapDoc {
  success: boolean;
  tasks: { kind: string; outcome: string; notes?: string[]; error?: { message: string } }[];
}

export const taskOf = (doc: BootstrapDoc, kind: string) => doc.tasks.find((t) => t.kind === kind);
