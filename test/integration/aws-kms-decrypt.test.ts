// End to end with AWS KMS: a Secret encrypted by fluxstrap for a local-kms key, pushed to the
// harness' Git server, arrives decrypted through the real kustomize-controller, which reaches
// local-kms through AWS_ENDPOINT_URL_KMS. The harness runs controllers as local processes with
// the test's environment (it ignores the Deployment's env), so the endpoint is set on this process
// before the cluster starts: what a Deployment env patch gives the controller in a real cluster.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { allowSecretsIn, canary } from '../helpers/canary.ts';
import { runCli } from '../helpers/cli.ts';
import { startLocalKms, type LocalKms } from '../helpers/local-kms.ts';
import { tempDir } from '../helpers/tmp.ts';
import { commitAndPush, decryptedToken, ensureNamespace, plainSecret, syncDecrypting } from '../cluster/fleet.ts';
import { clusterForFile } from '../cluster/testing.ts';

let kms: LocalKms | undefined;
// Registered before the cluster's own hook, so the controllers start with the KMS environment.
before(async () => {
  kms = await startLocalKms();
  Object.assign(process.env, kms.env);
});
after(() => kms?.stop());

const suite = clusterForFile({ flux: 'now', controllers: ['source-controller', 'kustomize-controller'] }, (c) => ensureNamespace(c, 'flux-system'));

void describe('a Secret encrypted by fluxstrap with AWS KMS', () => {
  void test('is applied decrypted by kustomize-controller from local-kms', () =>
    suite.run(async () => {
      assert.ok(kms);
      const value = canary('kms-e2e');
      const work = await tempDir('kms-e2e');
      const dir = join(work, 'repo');
      mkdirSync(join(dir, 'app'), { recursive: true });
      const plain = join(work, 'plain.yaml');
      writeFileSync(plain, plainSecret('kms-e2e', value));
      allowSecretsIn(plain);
      const r = runCli(['encrypt', '--kms', kms.keys[0], '--encryption-context', 'cluster:test', '--encrypted-regex', '^(data|stringData)$', plain], {
        env: kms.env,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, new RegExp(value));
      writeFileSync(join(dir, 'app', 'secret.yaml'), r.stdout);
      const url = suite.cluster.git.httpUrl('kms.git');
      await commitAndPush(suite.cluster, dir, url, 'kms secret');
      // kustomize-controller's own identity path (fluxcd/pkg/auth) does not take static keys from
      // its environment here ("failed to create provider access token for the controller"), so the
      // static credentials go the way Flux documents for them: `sops.aws-kms` in the decryption Secret.
      const sopsAws = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'sops-aws', namespace: 'flux-system' },
        stringData: {
          'sops.aws-kms': `aws_access_key_id: ${kms.env.AWS_ACCESS_KEY_ID ?? ''}\naws_secret_access_key: ${kms.env.AWS_SECRET_ACCESS_KEY ?? ''}\n`,
        },
      };
      await syncDecrypting(suite.cluster, { namespace: 'flux-system', name: 'kms', url, decryptionSecret: 'sops-aws', objects: [sopsAws] });
      const token = await decryptedToken(suite.cluster, 'kms-e2e');
      assert.equal(token, value);
    }));
});
