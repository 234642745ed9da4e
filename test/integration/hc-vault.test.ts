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
import { commitAndPush, decryptedToken, ensureNamespace, plainSecret, readyFailed, syncDecrypting } from '../cluster/fleet.ts';
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

/** A repository <name> whose app/secret.yaml (Secret default/<name>) fluxstrap encrypted for the Vault key only, pushed to the harness. */
async function pushVaultEncrypted(name: string, value: string, token: string): Promise<string> {
  const dir = join(work, name);
  mkdirSync(join(dir, 'app'), { recursive: true });
  const plain = join(work, `${name}-plain.yaml`);
  writeFileSync(plain, plainSecret(name, value));
  allowSecretsIn(plain);
  const r = runCli(['encrypt', '--hc-vault-transit', `${vault.address}/v1/transit/keys/flux`, '--encrypted-regex', '^(data|stringData)$', plain], {
    env: { VAULT_TOKEN: token, HOME: join(work, 'no-home'), SOPS_AGE_KEY_FILE: '', SOPS_AGE_KEY: '' },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, new RegExp(value));
  writeFileSync(join(dir, 'app', 'secret.yaml'), r.stdout);
  const url = suite.cluster.git.httpUrl(`vault/${name}.git`);
  await commitAndPush(suite.cluster, dir, url, 'vault-encrypted secret');
  return url;
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

/** Secret default/<name> encrypted with writer's token, synced in namespace with reader's token in sops-hcvault. */
async function syncWithToken(namespace: string, name: string, value: string, writer: string, reader: string): Promise<void> {
  await ensureNamespace(suite.cluster, namespace);
  const url = await pushVaultEncrypted(name, value, writer);
  await writeTokenSecret(namespace, reader);
  await syncDecrypting(suite.cluster, { namespace, name, url, decryptionSecret: 'sops-hcvault' });
}

void describe('kustomize-controller decrypts with a Vault token', () => {
  void test('a Secret encrypted by fluxstrap for a Vault transit key arrives decrypted', () =>
    suite.run(async () => {
      const token = await vault.tokenFor(['transit/flux']);
      registerCanary(token);
      await syncWithToken('flux-system', 'vault-ok', 'vault-s3cret-value', token, token);
      assert.equal(await decryptedToken(suite.cluster, 'vault-ok'), 'vault-s3cret-value');
    }));

  void test('a token without permission: the Kustomization fails on decryption and nothing is applied', () =>
    suite.run(async () => {
      await vault.createKey('elsewhere');
      const [writer, denied] = await Promise.all([vault.tokenFor(['transit/flux']), vault.tokenFor(['transit/elsewhere'])]);
      registerCanary(writer);
      registerCanary(denied);
      await syncWithToken('vault-denied', 'vault-denied', 'never-decrypted', writer, denied);
      const ready = await readyFailed(suite.cluster, 'vault-denied', 'vault-denied');
      assert.equal(ready.reason, 'BuildFailed', ready.message);
      assert.match(ready.message ?? '', /decrypt/i);
      console.log(`# kustomize-controller reported: ${ready.message ?? ''}`);
      const leaked = await suite.cluster.kubectl(['get', 'secret', '-n', 'default', 'vault-denied', '--ignore-not-found']);
      assert.equal(leaked.trim(), '');
    }));
});
