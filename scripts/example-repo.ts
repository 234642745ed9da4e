// The example GitOps repository that the demo and the bootstrap benchmark bootstrap: made with
// `fluxstrap keys new`, `init` and `encrypt`, and pushed to the test cluster's Git server.
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { gitEnv } from '../src/adapters/git.ts';
import type { Cluster } from '../test/cluster/index.ts';
import { track } from '../test/cluster/proc.ts';

export const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
export const EXAMPLE_CLUSTER = 'demo';
const PASSWORD_ENV = 'DEMO_GIT_PASSWORD';

export interface ShOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Keep stdout (returned) and stderr (discarded) off the terminal. */
  quiet?: boolean;
}

/** Run a program; by default with the terminal attached, so fluxstrap shows its normal view. */
export function sh(cmd: string, args: string[], opts: ShOptions = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', opts.quiet ? 'pipe' : 'inherit', opts.quiet ? 'pipe' : 'inherit'],
    });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export async function must(cmd: string, args: string[], opts: ShOptions = {}): Promise<string> {
  const r = await sh(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${[cmd, ...args].join(' ')} exited with ${r.code}${r.stderr ? `: ${r.stderr.trim().split('\n').pop()}` : ''}`);
  return r.stdout;
}

export interface ExampleRepo {
  repo: string;
  keyFile: string;
  /** Environment for fluxstrap: the Git password variable fluxstrap.yaml names, SOPS_AGE_KEY_FILE. */
  env: NodeJS.ProcessEnv;
  /** The cluster folder, e.g. clusters/demo. */
  path: string;
  gitUrl: string;
}

/**
 * Make the repository in `work/<name>` and push it to `<name>.git` on the cluster's Git server.
 * `step` announces each stage (the demo prints it; the benchmark stays silent).
 */
/**
 * `initArgs` are added to init's flags; `gitArgs` replace its Git source flags (default: the HTTP
 * URL with the server's account and DEMO_GIT_PASSWORD), e.g. for an ssh:// URL and a deploy key.
 */
export async function makeExampleRepo(
  cluster: Cluster,
  work: string,
  opts: { name?: string; step?: (title: string) => void; quiet?: boolean; initArgs?: string[]; gitArgs?: (gitUrl: string) => string[] } = {},
): Promise<ExampleRepo> {
  const name = opts.name ?? 'homelab';
  const step = opts.step ?? (() => undefined);
  const quiet = opts.quiet ?? false;
  const repo = join(work, name);
  const keyFile = join(work, 'keys', `${name}.agekey`);
  const gitUrl = cluster.git.httpUrl(`${name}.git`);
  const env: NodeJS.ProcessEnv = { [PASSWORD_ENV]: cluster.git.password, SOPS_AGE_KEY_FILE: keyFile };
  const path = `clusters/${EXAMPLE_CLUSTER}`;
  const clusterDir = join(repo, path);
  mkdirSync(join(clusterDir, 'apps'), { recursive: true });
  await must('git', ['init', '--quiet', '--initial-branch=main', repo]);

  step('fluxstrap keys new — an age key for the cluster (never overwrites an existing key)');
  await must(process.execPath, [cli, 'keys', 'new', '--out', keyFile], { env, quiet });

  // What the user writes: the app, and where the cluster's API server is.
  writeFileSync(join(clusterDir, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - apps\n');
  writeFileSync(
    join(clusterDir, 'apps', 'kustomization.yaml'),
    'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - namespace.yaml\n  - db-credentials.yaml\n',
  );
  writeFileSync(join(clusterDir, 'apps', 'namespace.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo-app\n');
  writeFileSync(
    join(clusterDir, 'apps', 'db-credentials.yaml'),
    'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-credentials\n  namespace: demo-app\ntype: Opaque\nstringData:\n' +
      `  username: app\n  password: ${Math.random().toString(36).slice(2)}\n`,
  );
  writeFileSync(join(repo, 'fluxstrap.yaml'), `clusters:\n  ${EXAMPLE_CLUSTER}:\n    kube:\n      kubeconfig: ${cluster.kubeconfig}\n`);

  step('fluxstrap init — Flux itself (gotk-components, gotk-sync), .sops.yaml rule, public key, decryption patch that survives flux bootstrap, fluxstrap.yaml');
  await must(
    process.execPath,
    [
      cli,
      'init',
      '--cluster',
      EXAMPLE_CLUSTER,
      '--age-key-file',
      keyFile,
      '--repo',
      repo,
      ...(opts.gitArgs?.(gitUrl) ?? ['--git-url', gitUrl, '--branch', 'main', '--git-username', cluster.git.username, '--git-token-env', PASSWORD_ENV]),
      ...(opts.initArgs ?? []),
    ],
    { env, quiet },
  );

  step('fluxstrap encrypt — the Secret is encrypted in place with the rule from .sops.yaml');
  await must(process.execPath, [cli, 'encrypt', '--in-place', join(clusterDir, 'apps', 'db-credentials.yaml')], { env, cwd: repo, quiet });

  step("git push to the cluster's Git server (HTTP, basic auth)");
  await must('git', ['add', '-A'], { cwd: repo });
  await must('git', ['-c', 'user.name=demo', '-c', 'user.email=demo@example.invalid', 'commit', '--quiet', '-m', 'Cluster demo with SOPS'], { cwd: repo });
  // The password travels in the child's environment (a header built from it), never in argv or the URL.
  const basic = Buffer.from(`${cluster.git.username}:${cluster.git.password}`).toString('base64');
  await must('git', ['push', '--quiet', gitUrl, 'main'], {
    cwd: repo,
    env: { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}` },
  });
  return { repo, keyFile, env, path, gitUrl };
}
/**
 * Add cluster `name` to the example repository as an operator does for a second cluster: a copy
 * of the example's apps, a fluxstrap.yaml entry with its own kubeconfig, its Flux files and
 * .sops.yaml rule from init; committed and pushed to the Git
 * server of `gitHost` (the cluster whose server the example lives on).
 */
export async function addFleetCluster(example: ExampleRepo, gitHost: Cluster, name: string, kubeconfig: string): Promise<void> {
  // The same apps; the cluster's own flux-system comes from init below.
  cpSync(join(example.repo, example.path), join(example.repo, 'clusters', name), { recursive: true, filter: (src) => !src.endsWith('/flux-system') });
  const configFile = join(example.repo, 'fluxstrap.yaml');
  const config = parse(readFileSync(configFile, 'utf8')) as { clusters: Record<string, Record<string, unknown>> };
  config.clusters[name] = { ...config.clusters[EXAMPLE_CLUSTER], path: `clusters/${name}`, kube: { kubeconfig } };
  writeFileSync(configFile, stringify(config));
  await must(
    process.execPath,
    [cli, 'init', '--cluster', name, '--age-key-file', example.keyFile, '--repo', example.repo, '--git-url', example.gitUrl, '--branch', 'main'],
    { env: example.env, quiet: true },
  );
  await must('git', ['add', '-A'], { cwd: example.repo });
  await must('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '--quiet', '-m', `cluster ${name}`], { cwd: example.repo });
  await must('git', ['push', '--quiet', example.gitUrl, 'main'], {
    cwd: example.repo,
    env: gitEnv({ kind: 'basic', username: gitHost.git.username, password: gitHost.git.password }),
  });
}
