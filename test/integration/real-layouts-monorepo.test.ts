// The second real layout, flux2-kustomize-helm-example (test/fixtures/flux2-kustomize-helm-example,
// see its SOURCES.md), bootstrapped on the real harness cluster: clusters/production holds only
// flux-system/ and Flux Kustomizations (infra-controllers → infra-configs → apps, chained by
// dependsOn) whose spec.path points at ./infrastructure/… and ./apps/production, an overlay of
// ./apps/base. The SOPS-encrypted Secrets live there.
//
// Trimmed: its HelmReleases install charts from the internet, which this machine cannot reach, so
// infrastructure/controllers keeps its Namespaces only, infrastructure/configs gets a Secret
// instead of the ClusterIssuer (whose CRD comes with cert-manager), and apps/base/podinfo a
// Secret instead of the HelmRepository and HelmRelease. The Kustomizations, their paths, dependsOn,
// wait and patches stay the example's; decryption is added to the two that apply Secrets by
// `fluxstrap init --child-decryption`, the fix `fluxstrap check --cluster` names.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { GitAuth } from '../../src/adapters/git.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import { ownedTempDir } from '../helpers/tmp.ts';
import type { Cluster } from '../cluster/index.ts';
import { assertConverged, cli, kustomization, namespace, pushAll, ROOT, secret } from '../cluster/layouts.ts';
import { clusterForFile } from '../cluster/testing.ts';

const FIXTURE = join(ROOT, 'test/fixtures/flux2-kustomize-helm-example/repo');
const TOKEN_ENV = 'FLUXSTRAP_TEST_GIT_TOKEN';

const SECRETS = [
  {
    file: 'infrastructure/configs/cloudflare.sops.yaml',
    ks: 'infra-configs',
    at: 'clusters/production/infrastructure.yaml:18',
    ns: 'cert-manager',
    name: 'cloudflare-api-token',
    key: 'api-token',
    value: 'made-up-cloudflare-token',
  },
  {
    file: 'apps/base/podinfo/secret.sops.yaml',
    ks: 'apps',
    at: 'clusters/production/apps.yaml:2',
    ns: 'podinfo',
    name: 'podinfo-secrets',
    key: 'redis-password',
    value: 'made-up-redis-password',
  },
];

const tmp: string[] = [];
after(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

interface Repo {
  dir: string;
  env: Record<string, string>;
  flags: string[];
}

/** The trimmed example, `init`-ed for a new key (Flux itself generated), its Secrets encrypted, pushed. */
async function monorepo(cluster: Cluster): Promise<Repo> {
  const home = ownedTempDir('monorepo');
  tmp.push(home);
  const dir = join(home, 'repo');
  cpSync(FIXTURE, dir, { recursive: true });
  rmSync(join(dir, 'clusters/staging'), { recursive: true });
  // The example's gotk files are placeholders for `flux bootstrap` to fill: init generates them.
  rmSync(join(dir, 'clusters/production/flux-system'), { recursive: true });
  const keyFile = join(home, 'age.key');
  assert.equal((await cli(['keys', 'new', '--out', keyFile])).code, 0);
  const url = cluster.git.httpUrl('monorepo.git');
  const auth: GitAuth = { kind: 'basic', username: cluster.git.username, password: cluster.git.password };

  const write = (rel: string, text: string) => writeFileSync(join(dir, rel), text);
  write('infrastructure/controllers/namespaces.yaml', ['cert-manager', 'ingress-nginx'].map(namespace).join('---\n'));
  write('infrastructure/controllers/kustomization.yaml', kustomization(['namespaces.yaml']));
  write('infrastructure/configs/kustomization.yaml', kustomization(['cloudflare.sops.yaml']));
  write(
    'apps/base/podinfo/kustomization.yaml',
    readFileSync(join(dir, 'apps/base/podinfo/kustomization.yaml'), 'utf8').replace('  - repository.yaml\n  - release.yaml\n', '  - secret.sops.yaml\n'),
  );
  write('apps/production/kustomization.yaml', kustomization(['../base/podinfo']));
  for (const s of SECRETS) write(s.file, secret(s.ns, s.name, { [s.key]: s.value }));

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
  for (const s of SECRETS) {
    const enc = await cli(['encrypt', '--in-place', s.file], { cwd: dir });
    assert.equal(enc.code, 0, enc.stderr);
  }
  // Encrypted, before the fix: check --cluster names each Kustomization that applies a Secret without decryption, at its line.
  const lint = await cli(['check', '--cluster', 'production', '--repo', dir]);
  assert.equal(lint.code, 1, lint.stderr);
  for (const s of SECRETS)
    assert.match(
      lint.stdout,
      new RegExp(`${s.at}: Kustomization flux-system/${s.ks} applies SOPS-encrypted ${s.file.replace(/\./g, '\\.')} without decryption`),
    );
  const fix = await cli(['init', '--cluster', 'production', '--repo', dir, '--child-decryption']);
  assert.equal(fix.code, 0, fix.stderr);
  assert.match(fix.stderr, /decryption \{provider: sops, secretRef: \{name: sops-age\}\} on Kustomization flux-system\/infra-configs/);
  assert.match(fix.stderr, /decryption \{provider: sops, secretRef: \{name: sops-age\}\} on Kustomization flux-system\/apps/);

  const clean = await cli(['check', '--cluster', 'production', '--repo', dir, '--key-file', keyFile]);
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  await pushAll(dir, url, auth, 'flux2-kustomize-helm-example, trimmed');
  return {
    dir,
    env: { [TOKEN_ENV]: cluster.git.password },
    flags: ['--cluster', 'production', '--repo', dir, '--kubeconfig', cluster.kubeconfig, '--age-key-file', keyFile],
  };
}

let kube: KubeAdapter;
let repo: Repo;
const suite = clusterForFile({ flux: 'on-deployment' }, async (c) => {
  kube = await connectKube({ kubeconfig: c.kubeconfig });
  repo = await monorepo(c);
});

void describe('flux2-kustomize-helm-example on the real harness cluster', { timeout: 30 * 60_000 }, () => {
  void it('bootstraps; infra-controllers, infra-configs and apps become Ready in order with their Secrets decrypted; a second run changes nothing', () =>
    suite.run(async () => {
      const run = await cli(['bootstrap', ...repo.flags, '--timeout', '4m'], { env: repo.env });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /the age key opens all 2 SOPS file\(s\) the cluster reaches/);
      await assertConverged(kube, ['infra-controllers', 'infra-configs', 'apps'], SECRETS);
      const again = await cli(['--json', 'bootstrap', ...repo.flags, '--timeout', '3m'], { env: repo.env });
      assert.equal(again.code, 0, again.stderr);
      assert.equal((JSON.parse(again.stdout) as { recap: { changed: number } }).recap.changed, 0, again.stdout);
    }));

  void it('status reports each Kustomization and the Secrets it reaches, and is healthy', () =>
    suite.run(async () => {
      const run = await cli(['--json', 'status', ...repo.flags], { env: repo.env });
      const doc = JSON.parse(run.stdout) as { success: boolean; findings: { check: string; status: string; message: string }[] };
      assert.equal(doc.success, true, JSON.stringify(doc.findings.filter((f) => f.status !== 'ok')));
      const reach = doc.findings.find((f) => f.check === 'sops-reach')?.message ?? '';
      for (const s of SECRETS) assert.match(reach, new RegExp(`Kustomization flux-system/${s.ks} .*${s.file.replace(/\./g, '\\.')}`), reach);
    }));
});
