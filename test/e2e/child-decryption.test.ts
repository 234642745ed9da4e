import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { gitEnv } from '../../src/adapters/git.ts';
import { startGitServer } from '../cluster/git-server.ts';
import type { GitServer } from '../cluster/git-server.ts';
import { cliPath, runCli } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { requireTool, runTool } from '../helpers/tools.ts';

/**
 * Child Kustomizations that reach SOPS files without decryption: the lint in `check --cluster` and
 * in bootstrap's preflight, and `init --child-decryption`, which writes decryption into each one
 * in place, through the built CLI on real files (encrypted by fluxstrap, read back as YAML).
 */

const TOKEN_ENV = 'FLUXSTRAP_CHILD_DECRYPTION_TOKEN';
let home: string;
let keyFile: string;

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: undefined,
  ...extra,
});
const cli = (r: FluxRepo, args: string[]): CliResult => runCli(args, { cwd: r.repo, env: env() });
const init = (r: FluxRepo, ...args: string[]) => cli(r, ['init', '--cluster', r.cluster, '--repo', r.repo, '--key-file', keyFile, ...args]);

/** Two child Kustomizations in one multi-document file between a ConfigMap and comments; `infra`'s spec is in Flux's (alphabetical) order, `apps`' is not. */
const APPS = `# Everything the cluster runs, in dependency order.
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cluster-settings
  namespace: flux-system
data:
  region: eu-west-1   # kept as written
---
# Infrastructure first.
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infra
  namespace: flux-system
spec:
  interval: 10m
  path: ./infrastructure   # shared controllers
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  sourceRef: {kind: GitRepository, name: flux-system}
  path: ./apps
  prune: true
  interval: 5m
# the end
`;

const secret = (name: string) => `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\n  namespace: default\nstringData:\n  password: ${name}-value\n`;

/** The repository with both Secrets encrypted by fluxstrap for the cluster's key; `init` has run once (without --child-decryption). */
async function twoChildren(cluster: string, extra: Record<string, string> = {}, initFlags: string[] = []): Promise<FluxRepo> {
  const r = await fluxRepo({
    cluster,
    gotkSync: 'pristine',
    seedRoot: false,
    files: {
      [`clusters/${cluster}/kustomization.yaml`]:
        'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - flux-system\n  - apps.yaml\n',
      [`clusters/${cluster}/apps.yaml`]: APPS,
      'infrastructure/kustomization.yaml': 'resources:\n  - db.sops.yaml\n',
      'infrastructure/db.sops.yaml': secret('db'),
      'apps/kustomization.yaml': 'resources:\n  - api.sops.yaml\n',
      'apps/api.sops.yaml': secret('api'),
      ...extra,
    },
  });
  const first = init(r, ...initFlags);
  assert.equal(first.code, 0, first.stderr);
  for (const f of ['infrastructure/db.sops.yaml', 'apps/api.sops.yaml']) {
    const enc = cli(r, ['encrypt', '--in-place', f]);
    assert.equal(enc.code, 0, enc.stderr);
  }
  return r;
}

const appsFile = (r: FluxRepo) => join(r.repo, r.clusterPath, 'apps.yaml');
const decryptionOf = (text: string) =>
  Object.fromEntries(
    parseAllDocuments(text)
      .map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec?: { decryption?: unknown } })
      .filter((o) => o.kind === 'Kustomization')
      .map((o) => [o.metadata.name, o.spec?.decryption]),
  );

before(async () => {
  home = await tempDir('child-decryption-home');
  keyFile = join(home, 'cluster.agekey');
  const key = runCli(['keys', 'new', '--out', keyFile], { env: env() });
  assert.equal(key.code, 0, key.stderr);
});

void describe('init --child-decryption', () => {
  void it('check --cluster finds both Kustomizations at file:line; --check shows the edit and writes nothing; the run edits in place; a second run changes nothing', async () => {
    const r = await twoChildren('prod');
    const lint = cli(r, ['check', '--cluster', r.cluster]);
    assert.equal(lint.code, 1, lint.stderr);
    assert.match(
      lint.stdout,
      new RegExp(
        `^${r.clusterPath}/apps\\.yaml:12: Kustomization flux-system/infra applies SOPS-encrypted infrastructure/db\\.sops\\.yaml without decryption\\.provider sops \\(fix: fluxstrap init --cluster prod --child-decryption\\)$`,
        'm',
      ),
    );
    assert.match(
      lint.stdout,
      new RegExp(`^${r.clusterPath}/apps\\.yaml:25: Kustomization flux-system/apps applies SOPS-encrypted apps/api\\.sops\\.yaml`, 'm'),
    );

    const before = await snapshot(r.repo);
    const check = init(r, '--child-decryption', '--check');
    assert.equal(check.code, 3, check.stderr);
    assert.match(
      check.stderr,
      /decryption \{provider: sops, secretRef: \{name: sops-age\}\} on Kustomization flux-system\/infra \(for infrastructure\/db\.sops\.yaml\), Kustomization flux-system\/apps \(for apps\/api\.sops\.yaml\)/,
    );
    assert.match(check.stderr, /^ {4}\+\s+decryption:$/m);
    assert.deepEqual(await snapshot(r.repo), before, '--check writes nothing');

    const run = init(r, '--child-decryption');
    assert.equal(run.code, 0, run.stderr);
    const text = await readFile(appsFile(r), 'utf8');
    assert.deepEqual(decryptionOf(text), {
      infra: { provider: 'sops', secretRef: { name: 'sops-age' } },
      apps: { provider: 'sops', secretRef: { name: 'sops-age' } },
    });
    // The header comment, the ConfigMap document and its trailing comment are untouched; the
    // decryption block goes where Flux's order puts it in `infra`, last in `apps`.
    assert.ok(text.startsWith(APPS.slice(0, APPS.indexOf('# Infrastructure first.'))), text);
    assert.match(text, /# Infrastructure first\.\napiVersion: kustomize\.toolkit\.fluxcd\.io\/v1\n/);
    assert.match(
      text,
      /\nspec:\n {2}decryption:\n {4}provider: sops\n {4}secretRef:\n {6}name: sops-age\n {2}interval: 10m\n {2}path: \.\/infrastructure # shared controllers\n/,
    );
    assert.match(text, /\n {2}interval: 5m\n {2}decryption:\n {4}provider: sops\n/);
    assert.match(text, /# the end\n$/);
    assert.equal(cli(r, ['check', '--cluster', r.cluster]).code, 0, 'the lint is satisfied');

    const again = init(r, '--child-decryption', '--check');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /nothing to do/);
    const second = init(r, '--child-decryption');
    assert.equal(second.code, 0, second.stderr);
    assert.equal(await readFile(appsFile(r), 'utf8'), text, 'idempotent');
  });

  void it('controller mode: provider sops without secretRef (the controller flag names the Secret); a decryption block already there keeps what it holds', async () => {
    const r = await twoChildren('ctl', {}, ['--decryption', 'controller']);
    // `apps` already decrypts with a Secret of its own, but names no provider.
    await writeFile(appsFile(r), APPS.replace('  interval: 5m\n', '  interval: 5m\n  decryption:\n    secretRef: {name: apps-key}   # its own key\n'));
    const lint = cli(r, ['check', '--cluster', r.cluster]);
    assert.equal(lint.code, 1, 'controller-level decryption does not exempt a Kustomization from provider sops');
    assert.match(lint.stdout, /Kustomization flux-system\/infra applies SOPS-encrypted/);
    const run = init(r, '--child-decryption');
    assert.equal(run.code, 0, run.stderr);
    const text = await readFile(appsFile(r), 'utf8');
    assert.deepEqual(decryptionOf(text), { infra: { provider: 'sops' }, apps: { provider: 'sops', secretRef: { name: 'apps-key' } } });
    assert.match(text, /secretRef: \{ name: apps-key \} # its own key/);
    assert.equal(cli(r, ['check', '--cluster', r.cluster]).code, 0);
  });

  void it('a Kustomization whose spec.path does not exist: one error line at its spec.path, nothing changed', async () => {
    const r = await twoChildren('bad');
    await writeFile(
      appsFile(r),
      `${APPS}---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: gone\n  namespace: flux-system\nspec:\n  interval: 5m\n  path: ./apps/gone\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n`,
    );
    const before = await snapshot(r.repo);
    const run = init(r, '--child-decryption');
    assert.equal(run.code, 1, run.stderr);
    const [first, ...rest] = run.stderr
      .trimEnd()
      .split('\n')
      .filter((l) => l.startsWith('error:') || l.startsWith('hint:'));
    assert.equal(first, `error: Kustomization flux-system/gone: spec.path ./apps/gone does not exist in the repository (${r.clusterPath}/apps.yaml:44)`);
    assert.ok(rest.length === 1 && rest[0]?.startsWith('hint: '), run.stderr);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    assert.deepEqual(await snapshot(r.repo), before, 'nothing changed, not even the Kustomizations that could be fixed');
  });
});

void describe('bootstrap preflight runs the lint', () => {
  let server: GitServer;
  before(async () => {
    requireTool('git');
    server = await startGitServer(await tempDir('child-decryption-git'));
  });
  after(() => server.stop());

  void it('fails before any change, naming each Kustomization at file:line, its SOPS file and init --child-decryption', async () => {
    const url = server.httpUrl('children.git');
    const r = await twoChildren('pre', {}, ['--git-url', url, '--branch', 'main', '--git-token-env', TOKEN_ENV, '--git-username', server.username]);
    await r.git('add', '-A');
    await r.git('commit', '--quiet', '-m', 'two children without decryption');
    await runTool('git', ['push', '--quiet', url, 'HEAD:main'], {
      cwd: r.repo,
      env: gitEnv({ kind: 'basic', username: server.username, password: server.password }),
    });
    const kubeconfig = join(home, 'kubeconfig');
    await writeFile(kubeconfig, DEAD_KUBECONFIG);
    // The CLI runs beside this process, which serves the Git requests bootstrap makes.
    const run = await new Promise<CliResult>((resolve, reject) => {
      execFile(
        process.execPath,
        [cliPath, 'bootstrap', '--check', '--json', '--cluster', r.cluster],
        { cwd: r.repo, env: { ...process.env, CI: '1', NO_COLOR: '1', ...env({ KUBECONFIG: kubeconfig, [TOKEN_ENV]: server.password }) } },
        (e, stdout, stderr) => {
          const code = e === null ? 0 : typeof e.code === 'number' ? e.code : undefined;
          if (code === undefined) reject(e ?? new Error('no exit code'));
          else resolve({ code, stdout, stderr });
        },
      );
    });
    assert.equal(run.code, 1, run.stderr);
    const doc = JSON.parse(run.stdout) as { tasks: { kind: string; outcome: string; error?: { message: string; hint?: string } }[] };
    const [preflight, ...rest] = doc.tasks;
    assert.deepEqual([preflight?.kind, preflight?.outcome], ['preflight', 'failed']);
    assert.ok(
      rest.every((t) => t.outcome === 'skipped'),
      'nothing after preflight runs',
    );
    const message = preflight?.error?.message ?? '';
    assert.match(
      message,
      new RegExp(
        `Kustomization flux-system/infra \\(${r.clusterPath}/apps\\.yaml:12\\) applies SOPS-encrypted infrastructure/db\\.sops\\.yaml but has no spec\\.decryption`,
      ),
    );
    assert.match(message, new RegExp(`Kustomization flux-system/apps \\(${r.clusterPath}/apps\\.yaml:25\\) applies SOPS-encrypted apps/api\\.sops\\.yaml`));
    assert.match(
      preflight?.error?.hint ?? '',
      /run `fluxstrap init --cluster pre --child-decryption` \(it writes spec\.decryption provider sops into clusters\/pre\/apps\.yaml, in place\)/,
    );
  });
});
