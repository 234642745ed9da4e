// The seed homelab's layout (test/fixtures/homelab, see its SOURCES.md) bootstrapped on the real
// harness cluster: the encrypted Secrets live where the cluster's Flux Kustomizations point
// (infrastructure/, monitoring/, services/), not in clusters/production/.
//
// Trimmed: the seed's children are HelmReleases of charts on the internet, which this machine
// cannot reach, and Deployments (no kubelet here). Each child's
// production folder is rewritten to apply only the Namespaces and the seed's own
// `<base>/secret.sops.yaml` paths, so the Kustomizations, their spec.path, dependsOn, wait and
// decryption, and the .sops.yaml catch-all stay the seed's. gotk-components.yaml is the harness's.
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { GitAuth } from '../../src/adapters/git.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import { ownedTempDir } from '../helpers/tmp.ts';
import type { Cluster } from '../cluster/index.ts';
import { assertConverged, cli, kustomization, namespace, pushAll, ROOT } from '../cluster/layouts.ts';
import { clusterForFile } from '../cluster/testing.ts';

const FIXTURE = join(ROOT, 'test/fixtures/homelab');
const TOKEN_ENV = 'FLUXSTRAP_TEST_GIT_TOKEN';

/** The reached Secrets: file, namespace/name, a key and its made-up value (test/fixtures/homelab/plain). */
const SECRETS = [
  {
    file: 'infrastructure/base/networking/secret.sops.yaml',
    ks: 'infrastructure',
    ns: 'cloudflared',
    name: 'cloudflared-token',
    key: 'token',
    value: 'made-up-tunnel-token-for-tests',
  },
  {
    file: 'monitoring/base/grafana/secret.sops.yaml',
    ks: 'monitoring',
    ns: 'monitoring',
    name: 'grafana-admin',
    key: 'admin-password',
    value: 'made-up-grafana-password',
  },
  {
    file: 'services/base/karakeep/secret.sops.yaml',
    ks: 'services',
    ns: 'karakeep',
    name: 'karakeep-secrets',
    key: 'MEILI_MASTER_KEY',
    value: 'made-up-meili-master-key',
  },
  {
    file: 'services/base/silverbullet/secret.sops.yaml',
    ks: 'services',
    ns: 'silverbullet',
    name: 'silverbullet-auth',
    key: 'SB_USER',
    value: 'made-up-user:made-up-password',
  },
];

const tmp: string[] = [];
after(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

interface Repo {
  dir: string;
  keyFile: string;
  env: Record<string, string>;
  flags: string[];
}

/** The trimmed seed, `init`-ed for a new key, its Secrets encrypted to it, pushed to the harness's Git server. */
async function seedRepo(cluster: Cluster): Promise<Repo> {
  const home = ownedTempDir('homelab');
  tmp.push(home);
  const dir = join(home, 'repo');
  cpSync(join(FIXTURE, 'repo'), dir, { recursive: true });
  const keyFile = join(home, 'age.key');
  assert.equal((await cli(['keys', 'new', '--out', keyFile])).code, 0);
  const url = cluster.git.httpUrl('homelab.git');
  const auth: GitAuth = { kind: 'basic', username: cluster.git.username, password: cluster.git.password };

  copyFileSync(cluster.gotkComponentsPath, join(dir, 'clusters/production/flux-system/gotk-components.yaml'));
  rmSync(join(dir, 'clusters/staging'), { recursive: true });
  const trim = (folder: string, namespaces: string[], secrets: string[], extra: Record<string, string> = {}) => {
    rmSync(join(dir, folder), { recursive: true });
    mkdirSync(join(dir, folder), { recursive: true });
    const files = { 'namespaces.yaml': namespaces.map(namespace).join('---\n'), ...extra };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, folder, name), text);
    writeFileSync(join(dir, folder, 'kustomization.yaml'), kustomization([...Object.keys(files), ...secrets.map((s) => `../base/${s}`)]));
  };
  trim('infrastructure/production', ['cloudflared'], ['networking/secret.sops.yaml']);
  trim('monitoring/production', ['monitoring'], ['grafana/secret.sops.yaml']);
  trim('services/production', ['karakeep', 'silverbullet'], ['karakeep/secret.sops.yaml', 'silverbullet/secret.sops.yaml']);
  trim('policies/production', [], [], {
    'policies.yaml': stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'policies', namespace: 'default' },
      data: { trimmed: 'kyverno policies need kyverno' },
    }),
  });

  const init = await cli([
    'init',
    '--cluster',
    'production',
    '--repo',
    dir,
    '--age-key-file',
    keyFile,
    '--git-url',
    url,
    '--branch',
    'main',
    '--git-username',
    cluster.git.username,
    '--git-token-env',
    TOKEN_ENV,
  ]);
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stderr, /add the cluster's key to the creation rule at \.sops\.yaml:2/);
  // The repository moved to the harness's Git server: gotk-sync.yaml follows, as `flux bootstrap` would write it there.
  const sync = join(dir, 'clusters/production/flux-system/gotk-sync.yaml');
  writeFileSync(sync, readFileSync(sync, 'utf8').replace('https://github.com/kristiangogov/homelab.git', url));
  for (const s of SECRETS) {
    copyFileSync(join(FIXTURE, 'plain', s.file), join(dir, s.file));
    const enc = await cli(['encrypt', '--in-place', s.file], { cwd: dir });
    assert.equal(enc.code, 0, enc.stderr);
  }
  await pushAll(dir, url, auth, 'the seed homelab, trimmed');
  return { dir, keyFile, env: { [TOKEN_ENV]: cluster.git.password }, flags: ['--cluster', 'production', '--repo', dir, '--kubeconfig', cluster.kubeconfig] };
}

let kube: KubeAdapter;
let repo: Repo;
const suite = clusterForFile({ flux: 'on-deployment' }, async (c) => {
  kube = await connectKube({ kubeconfig: c.kubeconfig });
  repo = await seedRepo(c);
});

void describe('the seed homelab on the real harness cluster', { timeout: 30 * 60_000 }, () => {
  void it('a wrong key is refused at preflight, naming every Secret the cluster reaches, and nothing is created', () =>
    suite.run(async () => {
      const wrong = join(repo.dir, '..', 'wrong.key');
      assert.equal((await cli(['keys', 'new', '--out', wrong])).code, 0);
      const run = await cli(['bootstrap', ...repo.flags, '--age-key-file', wrong, '--timeout', '3m'], { env: repo.env });
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /cannot open 4 of the 4 SOPS file\(s\) the cluster reaches/);
      for (const s of SECRETS)
        assert.ok(
          run.stderr.includes(`${s.file} (reached by Kustomization flux-system/${s.ks} (clusters/production/${s.ks}.yaml:1)`),
          `${s.file} named:\n${run.stderr}`,
        );
      assert.equal(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: 'flux-system' }), undefined, 'preflight created nothing');
    }));

  void it('the right key bootstraps; every child Kustomization becomes Ready with its Secrets decrypted; a second run changes nothing', () =>
    suite.run(async () => {
      const run = await cli(['bootstrap', ...repo.flags, '--timeout', '4m'], { env: repo.env });
      assert.equal(run.code, 0, run.stderr);
      for (const ks of ['infrastructure', 'monitoring', 'services']) {
        assert.match(
          run.stderr,
          new RegExp(`Kustomization flux-system/${ks} \\(clusters/production/${ks}\\.yaml:1\\): \\d SOPS-encrypted Secret\\(s\\) decrypted in the cluster`),
          run.stderr,
        );
      }
      await assertConverged(kube, ['infrastructure', 'monitoring', 'services', 'policies'], SECRETS);
      const again = await cli(['--json', 'bootstrap', ...repo.flags, '--timeout', '3m'], { env: repo.env });
      assert.equal(again.code, 0, again.stderr);
      const doc = JSON.parse(again.stdout) as { recap: { changed: number } };
      assert.equal(doc.recap.changed, 0, again.stdout);
    }));

  void it('status reports per Kustomization and is healthy', () =>
    suite.run(async () => {
      const run = await cli(['--json', 'status', ...repo.flags], { env: repo.env });
      const doc = JSON.parse(run.stdout) as { success: boolean; findings: { check: string; status: string; message: string }[] };
      assert.equal(doc.success, true, JSON.stringify(doc.findings.filter((f) => f.status !== 'ok')));
      const reach = doc.findings.find((f) => f.check === 'sops-reach');
      for (const s of SECRETS) assert.ok(reach?.message.includes(s.file), reach?.message);
      assert.match(doc.findings.find((f) => f.check === 'sops-files')?.message ?? '', /opens all 4 SOPS file\(s\) the cluster reaches/);
    }));
});
