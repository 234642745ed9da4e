// A bootstrap of a cluster keyed by Azure Key Vault through a Service Principal (fluxstrap.yaml
// sopsKey), on the real apiserver and controllers: no age key anywhere, no sops-age Secret, the
// Service Principal Secret made from the environment, kustomize-controller's Deployment reading it
// through envFrom, and a second run changing nothing. Key Vault itself is not reachable here, so
// the cluster reaches no encrypted file (what a cluster on its first day looks like).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canary } from '../helpers/canary.ts';
import { cliWithoutAgeKey, commitAndPush, fleetConfig, fleetSuite, initArgs, taskOf, writeTree, type BootstrapDoc } from '../cluster/fleet.ts';

const TOKEN_ENV = 'FLUXSTRAP_CLOUD_KEY_TEST_TOKEN';
const SP = {
  AZURE_TENANT_ID: '11111111-2222-3333-4444-555555555555',
  AZURE_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
  AZURE_CLIENT_SECRET: canary('sp-bootstrap'),
};

void describe('bootstrap through a cloud identity alone (sopsKey.azureKv with a Service Principal)', { timeout: 15 * 60_000 }, () => {
  let env: Record<string, string>;

  const fluxstrap = (args: string[]) => cliWithoutAgeKey(args, { cwd: s.dir, home: s.home, env, secrets: [SP.AZURE_CLIENT_SECRET] });
  const bootstrap = async (): Promise<BootstrapDoc> => {
    const r = await fluxstrap(['--json', 'bootstrap', '--timeout', '3m']);
    assert.equal(r.exitCode, 0, `${r.stderr}\n${r.stdout}\n${s.cluster.logTails(20)}`);
    return JSON.parse(r.stdout) as BootstrapDoc;
  };
  const s = fleetSuite('cloud-key', {
    setup: async ({ cluster, dir }) => {
      const url = cluster.git.httpUrl('cloud-key.git');
      env = { [TOKEN_ENV]: cluster.git.password, ...SP };
      writeTree(dir, {
        'fluxstrap.yaml': fleetConfig(cluster, url, TOKEN_ENV),
        'clusters/test/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [app.yaml]\n',
        'clusters/test/app.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {a: b}\n',
      });
      const backend = ['--sops-backend', 'azure-kv', '--azure-kv-key', 'https://v.vault.azure.net/keys/sops/0123', '--azure-identity', 'service-principal'];
      const init = await fluxstrap(initArgs(url, ...backend));
      assert.equal(init.exitCode, 0, init.stderr);
      await commitAndPush(cluster, dir, url, 'fleet');
    },
  });

  void it('creates no sops-age Secret, the Service Principal Secret from the environment, and the controller reads it through envFrom', async () => {
    const doc = await bootstrap();
    assert.equal(taskOf(doc, 'sops-age-secret')?.outcome, 'ok');
    assert.match(taskOf(doc, 'sops-age-secret')?.notes?.join('\n') ?? '', /decrypts through its cloud identity .*no sops-age Secret/);
    assert.equal(taskOf(doc, 'azure-credentials-secret')?.outcome, 'changed');
    assert.equal(await s.kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' }), undefined);
    const secret = await s.kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-azure-credentials' });
    assert.deepEqual(
      Object.fromEntries(Object.entries((secret?.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])),
      SP,
    );
    const deployment = await s.kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'flux-system', name: 'kustomize-controller' });
    const containers = (deployment?.spec as { template: { spec: { containers: { envFrom?: unknown }[] } } }).template.spec.containers;
    assert.deepEqual(containers[0]?.envFrom, [{ secretRef: { name: 'sops-azure-credentials' } }]);
    const ks = await s.kube.get({ apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', namespace: 'flux-system', name: 'flux-system' });
    assert.deepEqual((ks?.spec as { decryption?: unknown }).decryption, { provider: 'sops' });
  });

  void it('a second bootstrap changes nothing; without the credentials it names the missing variables', async () => {
    const again = await bootstrap();
    assert.deepEqual(
      again.tasks.filter((t) => t.outcome === 'changed').map((t) => t.kind),
      [],
    );
    const saved = env;
    env = { [TOKEN_ENV]: s.cluster.git.password };
    try {
      const r = await fluxstrap(['--json', 'bootstrap', '--timeout', '3m']);
      assert.equal(r.exitCode, 1);
      const doc = JSON.parse(r.stdout) as BootstrapDoc;
      assert.match(
        taskOf(doc, 'azure-credentials-secret')?.error?.message ?? '',
        /^no Service Principal credentials: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET are missing from the environment$/,
      );
    } finally {
      env = saved;
    }
  });
});
