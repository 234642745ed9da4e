// A bootstrap of a cluster keyed by Azure Key Vault through a Service Principal (fluxstrap.yaml
// sopsKey), on the real apiserver and controllers: no age key anywhere, no sops-age Secret, the
// Service Principal Secret made from the environment, kustomize-controller's Deployment reading it
// through envFrom, and a second run changing nothing. Key Vault itself is not reachable here, so
// the cluster reaches no encrypted file (what a cluster on its first day looks like).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectKube } from '../../src/adapters/kube.ts';
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import { canary } from '../helpers/canary.ts';
import { assertBuilt, startCluster } from '../cluster/index.ts';
import type { Cluster } from '../cluster/index.ts';
import { cliWithoutAgeKey, commitAndPush, fleetConfig, writeTree } from '../cluster/fleet.ts';
import { keepLogsOnFailure } from '../cluster/testing.ts';

const TOKEN_ENV = 'FLUXSTRAP_CLOUD_KEY_TEST_TOKEN';
const SP = {
  AZURE_TENANT_ID: '11111111-2222-3333-4444-555555555555',
  AZURE_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
  AZURE_CLIENT_SECRET: canary('sp-bootstrap'),
};

interface Doc {
  success: boolean;
  tasks: { kind: string; outcome: string; notes?: string[]; error?: { message: string } }[];
}

void describe('bootstrap through a cloud identity alone (sopsKey.azureKv with a Service Principal)', { timeout: 15 * 60_000 }, () => {
  let cluster: Cluster;
  let kube: KubeAdapter;
  let home: string;
  let dir: string;
  let env: Record<string, string>;

  const fluxstrap = (args: string[]) => cliWithoutAgeKey(args, { cwd: dir, home, env, secrets: [SP.AZURE_CLIENT_SECRET] });
  const bootstrap = async (): Promise<Doc> => {
    const r = await fluxstrap(['--json', 'bootstrap', '--timeout', '3m']);
    assert.equal(r.exitCode, 0, `${r.stderr}\n${r.stdout}\n${cluster.logTails(20)}`);
    return JSON.parse(r.stdout) as Doc;
  };
  const task = (doc: Doc, kind: string) => doc.tasks.find((t) => t.kind === kind);

  before(async () => {
    assertBuilt();
    home = mkdtempSync(join(tmpdir(), 'fluxstrap-cloud-key-'));
    cluster = await startCluster({ flux: 'on-deployment' });
    kube = await connectKube({ kubeconfig: cluster.kubeconfig });
    dir = join(home, 'repo');
    const url = cluster.git.httpUrl('cloud-key.git');
    env = { [TOKEN_ENV]: cluster.git.password, ...SP };
    const files: Record<string, string> = {
      'fluxstrap.yaml': fleetConfig(cluster, url, TOKEN_ENV),
      'clusters/test/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [app.yaml]\n',
      'clusters/test/app.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {a: b}\n',
    };
    writeTree(dir, files);
    const init = await fluxstrap([
      'init',
      '--cluster',
      'test',
      '--git-url',
      url,
      '--branch',
      'main',
      '--sops-backend',
      'azure-kv',
      '--azure-kv-key',
      'https://v.vault.azure.net/keys/sops/0123',
      '--azure-identity',
      'service-principal',
    ]);
    assert.equal(init.exitCode, 0, init.stderr);
    await commitAndPush(cluster, dir, url, 'fleet');
  });
  keepLogsOnFailure(() => cluster);
  after(async () => {
    await cluster?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  void it('creates no sops-age Secret, the Service Principal Secret from the environment, and the controller reads it through envFrom', async () => {
    const doc = await bootstrap();
    assert.equal(task(doc, 'sops-age-secret')?.outcome, 'ok');
    assert.match(task(doc, 'sops-age-secret')?.notes?.join('\n') ?? '', /decrypts through its cloud identity .*no sops-age Secret/);
    assert.equal(task(doc, 'azure-credentials-secret')?.outcome, 'changed');
    assert.equal(await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' }), undefined);
    const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-azure-credentials' });
    assert.deepEqual(
      Object.fromEntries(Object.entries((secret?.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])),
      SP,
    );
    const deployment = await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'flux-system', name: 'kustomize-controller' });
    const containers = (deployment?.spec as { template: { spec: { containers: { envFrom?: unknown }[] } } }).template.spec.containers;
    assert.deepEqual(containers[0]?.envFrom, [{ secretRef: { name: 'sops-azure-credentials' } }]);
    const ks = await kube.get({ apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', namespace: 'flux-system', name: 'flux-system' });
    assert.deepEqual((ks?.spec as { decryption?: unknown }).decryption, { provider: 'sops' });
  });

  void it('a second bootstrap changes nothing; without the credentials it names the missing variables', async () => {
    const again = await bootstrap();
    assert.deepEqual(
      again.tasks.filter((t) => t.outcome === 'changed').map((t) => t.kind),
      [],
    );
    const saved = env;
    env = { [TOKEN_ENV]: cluster.git.password };
    try {
      const r = await fluxstrap(['--json', 'bootstrap', '--timeout', '3m']);
      assert.equal(r.exitCode, 1);
      const doc = JSON.parse(r.stdout) as Doc;
      assert.match(
        task(doc, 'azure-credentials-secret')?.error?.message ?? '',
        /^no Service Principal credentials: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET are missing from the environment$/,
      );
    } finally {
      env = saved;
    }
  });
});
