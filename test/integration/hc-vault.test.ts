// The real kustomize-controller decrypts a Secret that fluxstrap encrypted with a Vault transit
// key of a real Vault dev server (`npm run cluster:build -- --with-vault`), with the token that
// fluxstrap's `sops-hcvault-secret` task put into the sops-hcvault Secret from fluxstrap.yaml's
// `sopsKey.vault.tokenEnv`; a token without permission surfaces the controller's error and
// applies nothing.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { allowSecretsIn, registerCanary } from '../helpers/canary.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { condition } from '../cluster/kube.ts';
import { run, waitFor } from '../cluster/proc.ts';
import { clusterForFile } from '../cluster/testing.ts';
import { startVault, type VaultDev } from '../cluster/vault.ts';

const suite = clusterForFile({ flux: 'now', controllers: ['source-controller', 'kustomize-controller'] });
let vault: VaultDev;
let work: string;

void before(async () => {
  work = await tempDir('hc-vault-cluster');
  vault = await startVault(work);
  await vault.createKey('flux');
});
void after(async () => {
  await vault?.stop();
});

type FluxObject = Parameters<typeof condition>[0];

async function fluxObject(kind: string, namespace: string, name: string): Promise<FluxObject> {
  return JSON.parse(await suite.cluster.kubectl(['get', kind, '-n', namespace, name, '-o', 'json'])) as FluxObject;
}

/** A repository whose app/secret.yaml fluxstrap encrypted for the Vault key only, pushed to the harness. */
async function pushVaultEncrypted(name: string, secretName: string, value: string, token: string): Promise<string> {
  const dir = join(work, name);
  mkdirSync(join(dir, 'app'), { recursive: true });
  const plain = join(work, `${name}-plain.yaml`);
  writeFileSync(
    plain,
    [
      'apiVersion: v1',
      'kind: Secret',
      'metadata:',
      `  name: ${secretName}`,
      '  namespace: default',
      'type: Opaque',
      'stringData:',
      `  token: ${value}`,
      '',
    ].join('\n'),
  );
  allowSecretsIn(plain);
  const r = runCli(['encrypt', '--hc-vault-transit', `${vault.address}/v1/transit/keys/flux`, '--encrypted-regex', '^(data|stringData)$', plain], {
    env: { VAULT_TOKEN: token, HOME: join(work, 'no-home'), SOPS_AGE_KEY_FILE: '', SOPS_AGE_KEY: '' },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, new RegExp(value));
  writeFileSync(join(dir, 'app', 'secret.yaml'), r.stdout);
  const git = (...args: string[]): Promise<string> => run('git', ['-C', dir, ...args]);
  await git('init', '--quiet', '--initial-branch=main');
  await git('add', '.');
  await git('-c', 'user.name=fluxstrap-test', '-c', 'user.email=test@fluxstrap.invalid', 'commit', '--quiet', '-m', 'vault-encrypted secret');
  const auth = Buffer.from(`${suite.cluster.git.username}:${suite.cluster.git.password}`).toString('base64');
  await run('git', [
    '-C',
    dir,
    '-c',
    `http.extraHeader=Authorization: Basic ${auth}`,
    'push',
    '--quiet',
    suite.cluster.git.httpUrl(`vault/${name}.git`),
    'main',
  ]);
  return suite.cluster.git.httpUrl(`vault/${name}.git`);
}

/** fluxstrap's own task writes the sops-hcvault Secret: a playbook of that one step, run against the cluster. */
async function writeTokenSecret(namespace: string, token: string): Promise<void> {
  const repo = await tempDir('hc-vault-repo');
  writeFileSync(
    join(repo, 'fluxstrap.yaml'),
    [
      'clusters:',
      '  test:',
      '    kube:',
      `      kubeconfig: ${suite.cluster.kubeconfig}`,
      '    sopsKey:',
      '      vault:',
      `        address: ${vault.address}`,
      '        tokenEnv: FLUX_VAULT_TOKEN',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(repo, 'token.yaml'),
    `name: vault token\ntasks:\n  - name: SOPS Vault token Secret\n    sops-hcvault-secret: {namespace: ${namespace}, name: sops-hcvault}\n`,
  );
  const r = runCli(['run', 'token.yaml', '--cluster', 'test'], { cwd: repo, env: { FLUX_VAULT_TOKEN: token } });
  assert.equal(r.code, 0, r.stderr);
  const stored = JSON.parse(await suite.cluster.kubectl(['get', 'secret', '-n', namespace, 'sops-hcvault', '-o', 'json'])) as { data?: Record<string, string> };
  assert.deepEqual(Object.keys(stored.data ?? {}), ['sops.vault-token']);
  assert.equal(Buffer.from(stored.data?.['sops.vault-token'] ?? '', 'base64').toString('utf8'), token);
}

async function applySync(namespace: string, name: string, url: string): Promise<void> {
  const apply = (objects: object[]): Promise<string> =>
    suite.cluster.kubectl(['apply', '--server-side', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n---\n'));
  await apply([
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `${name}-git`, namespace },
      stringData: { username: suite.cluster.git.username, password: suite.cluster.git.password },
    },
    {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'GitRepository',
      metadata: { name, namespace },
      spec: { url, interval: '1m', timeout: '20s', ref: { branch: 'main' }, secretRef: { name: `${name}-git` } },
    },
  ]);
  await waitFor(
    `GitRepository ${namespace}/${name} Ready`,
    async () => (condition(await fluxObject('gitrepository', namespace, name), 'Ready')?.status === 'True' ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  await apply([
    {
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name, namespace },
      spec: {
        interval: '1m',
        retryInterval: '5s',
        path: './app',
        prune: true,
        timeout: '30s',
        sourceRef: { kind: 'GitRepository', name },
        decryption: { provider: 'sops', secretRef: { name: 'sops-hcvault' } },
      },
    },
  ]);
}

async function ensureNamespace(name: string): Promise<void> {
  await suite.cluster.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
}

void describe('kustomize-controller decrypts with a Vault token', () => {
  void test('a Secret encrypted by fluxstrap for a Vault transit key arrives decrypted', () =>
    suite.run(async () => {
      const token = await vault.tokenFor(['transit/flux']);
      registerCanary(token);
      await ensureNamespace('flux-system');
      const url = await pushVaultEncrypted('ok', 'vault-ok', 'vault-s3cret-value', token);
      await writeTokenSecret('flux-system', token);
      await applySync('flux-system', 'vault-ok', url);
      const value = await waitFor(
        'Secret default/vault-ok applied by kustomize-controller',
        async () => {
          const out = await suite.cluster.kubectl(['get', 'secret', '-n', 'default', 'vault-ok', '-o', 'json', '--ignore-not-found']);
          const t = out.trim() === '' ? undefined : (JSON.parse(out) as { data?: { token?: string } }).data?.token;
          return t === undefined ? undefined : Buffer.from(t, 'base64').toString('utf8');
        },
        { timeoutMs: 90_000, intervalMs: 500 },
      );
      assert.equal(value, 'vault-s3cret-value');
    }));

  void test('a token without permission: the Kustomization fails on decryption and nothing is applied', () =>
    suite.run(async () => {
      await vault.createKey('elsewhere');
      const [writer, denied] = await Promise.all([vault.tokenFor(['transit/flux']), vault.tokenFor(['transit/elsewhere'])]);
      registerCanary(writer);
      registerCanary(denied);
      await ensureNamespace('vault-denied');
      const url = await pushVaultEncrypted('denied', 'vault-denied', 'never-decrypted', writer);
      await writeTokenSecret('vault-denied', denied);
      await applySync('vault-denied', 'vault-denied', url);
      const ready = await waitFor(
        'Kustomization vault-denied Ready=False',
        async () => {
          const c = condition(await fluxObject('kustomization', 'vault-denied', 'vault-denied'), 'Ready');
          return c?.status === 'False' && c.reason !== 'Progressing' ? c : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 500 },
      );
      assert.equal(ready.reason, 'BuildFailed', ready.message);
      assert.match(ready.message ?? '', /decrypt/i);
      console.log(`# kustomize-controller reported: ${ready.message ?? ''}`);
      const leaked = await suite.cluster.kubectl(['get', 'secret', '-n', 'default', 'vault-denied', '--ignore-not-found']);
      assert.equal(leaked.trim(), '');
    }));
});
