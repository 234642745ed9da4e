// A bootstrap of a cluster keyed by HashiCorp Vault transit (fluxstrap.yaml sopsKey.vault), on the
// real apiserver and controllers and a real Vault dev server: init --sops-backend vault writes the
// rule and the decryption, fluxstrap encrypts the app's Secret with the rule, preflight proves the
// token from tokenEnv opens it, bootstrap writes sops-hcvault and no sops-age, kustomize-controller
// applies the Secret decrypted, verify-decryption compares it, and status checks the token.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canary, registerCanary } from '../helpers/canary.ts';
import { cliWithoutAgeKey, commitAndPush, fleetConfig, fleetSuite, initArgs, taskOf, writeTree, type BootstrapDoc } from '../cluster/fleet.ts';
import { startVault, type VaultDev } from '../cluster/vault.ts';

const GIT_TOKEN_ENV = 'FLUXSTRAP_VAULT_TEST_GIT_TOKEN';
const VALUE = canary('vault-bootstrap');

void describe('bootstrap with sopsKey.vault', { timeout: 15 * 60_000 }, () => {
  let vault: VaultDev;
  let env: Record<string, string>;
  const tokens: string[] = [];

  const fluxstrap = (args: string[]) => cliWithoutAgeKey(args, { cwd: s.dir, home: s.home, env, secrets: [VALUE, vault.rootToken, ...tokens] });
  const s = fleetSuite('vault-bootstrap', {
    setup: async ({ cluster, home, dir }) => {
      vault = await startVault(home);
      await vault.createKey('flux');
      const [clusterToken, userToken] = await Promise.all([vault.tokenFor(['transit/flux']), vault.tokenFor(['transit/flux'])]);
      tokens.push(clusterToken, userToken);
      tokens.forEach(registerCanary);
      const url = cluster.git.httpUrl('vault-bootstrap.git');
      // The user's own token encrypts; the cluster's (FLUX_VAULT_TOKEN) is what bootstrap hands over.
      env = { [GIT_TOKEN_ENV]: cluster.git.password, VAULT_TOKEN: userToken, FLUX_VAULT_TOKEN: clusterToken };
      writeTree(dir, {
        'fluxstrap.yaml': fleetConfig(cluster, url, GIT_TOKEN_ENV),
        'clusters/test/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [secret.yaml]\n',
        'clusters/test/secret.yaml': `apiVersion: v1\nkind: Secret\nmetadata: {name: vault-app, namespace: default}\nstringData: {token: ${VALUE}}\n`,
      });
      const backend = ['--sops-backend', 'vault', '--vault-transit-uri', `${vault.address}/v1/transit/keys/flux`, '--vault-token-env', 'FLUX_VAULT_TOKEN'];
      const init = await fluxstrap(initArgs(url, ...backend));
      assert.equal(init.exitCode, 0, init.stderr);
      const enc = await fluxstrap(['encrypt', '-i', 'clusters/test/secret.yaml']);
      assert.equal(enc.exitCode, 0, enc.stderr);
      await commitAndPush(cluster, dir, url, 'fleet');
    },
    cleanup: async () => {
      await vault?.stop();
    },
  });

  void it('preflight opens the file with the cluster token; sops-hcvault holds it, no sops-age; the Secret arrives decrypted and is verified', async () => {
    const r = await fluxstrap(['--json', 'bootstrap', '--timeout', '3m']);
    assert.equal(r.exitCode, 0, `${r.stderr}\n${r.stdout}\n${s.cluster.logTails(20)}`);
    const doc = JSON.parse(r.stdout) as BootstrapDoc;
    assert.match(taskOf(doc, 'preflight')?.notes?.join('\n') ?? '', /the Vault token in FLUX_VAULT_TOKEN opens clusters\/test\/secret\.yaml/);
    assert.equal(taskOf(doc, 'sops-hcvault-secret')?.outcome, 'changed');
    assert.match(taskOf(doc, 'sops-age-secret')?.notes?.join('\n') ?? '', /Vault transit \(sopsKey\.vault\): no sops-age Secret/);
    assert.equal(taskOf(doc, 'verify-decryption')?.outcome, 'ok');
    assert.equal(await s.kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' }), undefined);
    const stored = await s.kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-hcvault' });
    assert.equal(Buffer.from((stored?.data as Record<string, string>)['sops.vault-token'] ?? '', 'base64').toString('utf8'), tokens[0]);
    const app = await s.kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'default', name: 'vault-app' });
    assert.equal(Buffer.from((app?.data as Record<string, string>).token ?? '', 'base64').toString('utf8'), VALUE);
  });

  void it('status proves the stored token opens the file; a second bootstrap changes nothing', async () => {
    const s = await fluxstrap(['--json', 'status']);
    const findings = (JSON.parse(s.stdout) as { findings: { check: string; status: string; message: string }[] }).findings;
    const hv = findings.find((f) => f.check === 'sops-hcvault-secret');
    assert.equal(hv?.status, 'ok', JSON.stringify(findings));
    assert.match(hv?.message ?? '', /^Secret flux-system\/sops-hcvault holds a Vault token that opens clusters\/test\/secret\.yaml$/);
    const again = await fluxstrap(['--json', 'bootstrap', '--timeout', '3m']);
    assert.equal(again.exitCode, 0, again.stderr);
    assert.deepEqual(
      (JSON.parse(again.stdout) as BootstrapDoc).tasks.filter((t) => t.outcome === 'changed').map((t) => t.kind),
      [],
    );
  });
});
