// Where the cluster's key is named, proved with the real kustomize-controller: controller-level
// decryption (`init --decryption controller`: kustomize-controller's --sops-age-secret, the
// flux-system Kustomization with `provider: sops` and no secretRef), and switching back.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { gitEnv } from '../../src/adapters/git.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import { assertBuilt, startCluster } from '../cluster/index.ts';
import { keepLogsOnFailure } from '../cluster/testing.ts';
import type { Cluster } from '../cluster/index.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const TOKEN_ENV = 'FLUXSTRAP_DECRYPTION_TEST_TOKEN';
const FLUX_SYSTEM = { apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', namespace: 'flux-system', name: 'flux-system' };
const KUSTOMIZE_CONTROLLER = { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'flux-system', name: 'kustomize-controller' };
const DB = { apiVersion: 'v1', kind: 'Secret', namespace: 'default', name: 'db' };

interface Run {
  code: number | undefined;
  stdout: string;
  stderr: string;
}

async function fluxstrap(args: string[], cwd: string, env: Record<string, string> = {}, input?: string): Promise<Run> {
  const { execa } = await import('execa');
  const r = await execa(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'src/cli.ts'), ...args], {
    cwd,
    env: { CI: '1', NO_COLOR: '1', ...env },
    reject: false,
    ...(input === undefined ? {} : { input }),
  });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

async function git(args: string[], cwd: string, env: NodeJS.ProcessEnv = gitEnv({ kind: 'none' })): Promise<void> {
  const { execa } = await import('execa');
  const r = await execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, env, reject: false });
  assert.equal(r.exitCode, 0, `git ${args.join(' ')}: ${r.stderr}`);
}

void describe('controller-level decryption with the real kustomize-controller', { timeout: 15 * 60_000 }, () => {
  let cluster: Cluster;
  let kube: KubeAdapter;
  let home: string;
  let dir: string;
  let env: Record<string, string>;
  let url: string;

  const ok = async (args: string[], input?: string) => {
    const r = await fluxstrap(args, dir, env, input);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}\n${cluster.logTails(20)}`);
    return r;
  };
  const push = async (message: string) => {
    await git(['add', '.'], dir);
    await git(['commit', '--quiet', '-m', message], dir);
    await git(['push', '--quiet', url, 'main'], dir, gitEnv({ kind: 'basic', username: cluster.git.username, password: cluster.git.password }));
  };
  const password = async () => Buffer.from(((await kube.get(DB))?.data as Record<string, string> | undefined)?.password ?? '', 'base64').toString();

  before(async () => {
    assertBuilt();
    home = mkdtempSync(join(tmpdir(), 'fluxstrap-decryption-'));
    cluster = await startCluster({ flux: 'on-deployment' });
    kube = await connectKube({ kubeconfig: cluster.kubeconfig });
    dir = join(home, 'repo');
    const keyFile = join(home, 'age.key');
    env = { [TOKEN_ENV]: cluster.git.password };
    url = cluster.git.httpUrl('decryption.git');
    const files: Record<string, string> = {
      'fluxstrap.yaml': stringify({
        clusters: {
          test: {
            kube: { kubeconfig: cluster.kubeconfig },
            git: { url, auth: { https: { username: cluster.git.username, passwordEnv: TOKEN_ENV } } },
            ageKey: { file: keyFile },
          },
        },
      }),
      'clusters/test/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [apps]\n',
      'clusters/test/apps/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [db.sops.yaml]\n',
      'clusters/test/apps/db.sops.yaml': 'apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: default}\nstringData: {password: controller-level}\n',
    };
    for (const [rel, text] of Object.entries(files)) {
      mkdirSync(join(dir, rel, '..'), { recursive: true });
      writeFileSync(join(dir, rel), text);
    }
    await ok(['keys', 'new', '--out', keyFile]);
    // init writes Flux itself (gotk-components, gotk-sync for the URL), the rule and both decryption patches.
    await ok(['init', '--cluster', 'test', '--age-key-file', keyFile, '--git-url', url, '--branch', 'main', '--decryption', 'controller']);
    await ok(['encrypt', '--in-place', 'clusters/test/apps/db.sops.yaml']);
    await git(['init', '--quiet', '--initial-branch=main'], dir);
    await push('fleet');
  });
  keepLogsOnFailure(() => cluster);
  after(async () => {
    await cluster?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  void it('bootstraps with the key named only by --sops-age-secret: the Secret arrives decrypted', async () => {
    await ok(['bootstrap', '--timeout', '3m']);
    const ks = await kube.get(FLUX_SYSTEM);
    assert.deepEqual((ks?.spec as { decryption?: unknown }).decryption, { provider: 'sops' }, 'no secretRef: the controller flag supplies the key');
    const deployment = await kube.get(KUSTOMIZE_CONTROLLER);
    assert.match(JSON.stringify(deployment?.spec), /"--sops-age-secret=sops-age"/);
    assert.deepEqual(cluster.controllers.deploymentArgs('kustomize-controller'), ['--sops-age-secret=sops-age'], 'the process runs with the flag');
    assert.equal(await password(), 'controller-level');
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' }));
  });

  void it('a second bootstrap and status find nothing to change', async () => {
    const again = await ok(['--json', 'bootstrap', '--timeout', '3m']);
    assert.equal((JSON.parse(again.stdout) as { recap: { changed: number } }).recap.changed, 0);
    const status = await fluxstrap(['--json', 'status'], dir, env);
    const doc = JSON.parse(status.stdout) as { findings: { check: string; status: string; message: string }[] };
    assert.deepEqual(
      doc.findings.filter((f) => f.status !== 'ok'),
      [],
    );
    assert.equal(status.code, 0);
  });

  void it('switching back to kustomization mode: the controller loses the flag and decrypts through secretRef', async () => {
    await ok(['init', '--cluster', 'test', '--decryption', 'kustomization']);
    const set = await fluxstrap(
      ['set', 'clusters/test/apps/db.sops.yaml', '["stringData"]["password"]'],
      dir,
      { ...env, SOPS_AGE_KEY_FILE: join(home, 'age.key') },
      'kustomization-level',
    );
    assert.equal(set.code, 0, set.stderr);
    await push('decryption through secretRef');
    await ok(['bootstrap', '--timeout', '3m']);
    const ks = await kube.get(FLUX_SYSTEM);
    assert.deepEqual((ks?.spec as { decryption?: unknown }).decryption, { provider: 'sops', secretRef: { name: 'sops-age' } });
    assert.doesNotMatch(JSON.stringify((await kube.get(KUSTOMIZE_CONTROLLER))?.spec), /--sops-age-secret/);
    // The harness restarts the process within a second of the Deployment changing, as a rollout would.
    for (let i = 0; i < 30 && cluster.controllers.deploymentArgs('kustomize-controller').length > 0; i++) await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(cluster.controllers.deploymentArgs('kustomize-controller'), []);
    assert.equal(await password(), 'kustomization-level');
  });
});
