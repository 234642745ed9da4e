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
import { condition } from '../cluster/kube.ts';
import { run, waitFor } from '../cluster/proc.ts';
import { clusterForFile } from '../cluster/testing.ts';

let kms: LocalKms | undefined;
// Registered before the cluster's own hook, so the controllers start with the KMS environment.
before(async () => {
  kms = await startLocalKms();
  Object.assign(process.env, kms.env);
});
after(() => kms?.stop());

const suite = clusterForFile({ flux: 'now', controllers: ['source-controller', 'kustomize-controller'] }, async (c) => {
  await c.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'flux-system' } }));
});

type FluxObject = Parameters<typeof condition>[0];

void describe('a Secret encrypted by fluxstrap with AWS KMS', () => {
  void test('is applied decrypted by kustomize-controller from local-kms', () =>
    suite.run(async () => {
      assert.ok(kms);
      const value = canary('kms-e2e');
      const work = await tempDir('kms-e2e');
      const dir = join(work, 'repo');
      mkdirSync(join(dir, 'app'), { recursive: true });
      const plain = join(work, 'plain.yaml');
      writeFileSync(
        plain,
        ['apiVersion: v1', 'kind: Secret', 'metadata:', '  name: kms-e2e', '  namespace: default', 'type: Opaque', 'stringData:', `  token: ${value}`, ''].join(
          '\n',
        ),
      );
      allowSecretsIn(plain);
      const r = runCli(['encrypt', '--kms', kms.keys[0], '--encryption-context', 'cluster:test', '--encrypted-regex', '^(data|stringData)$', plain], {
        env: kms.env,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, new RegExp(value));
      writeFileSync(join(dir, 'app', 'secret.yaml'), r.stdout);
      const git = (...args: string[]): Promise<string> => run('git', ['-C', dir, ...args]);
      await git('init', '--quiet', '--initial-branch=main');
      await git('add', '.');
      await git('-c', 'user.name=fluxstrap-test', '-c', 'user.email=test@fluxstrap.invalid', 'commit', '--quiet', '-m', 'kms secret');
      const auth = Buffer.from(`${suite.cluster.git.username}:${suite.cluster.git.password}`).toString('base64');
      await run('git', ['-C', dir, '-c', `http.extraHeader=Authorization: Basic ${auth}`, 'push', '--quiet', suite.cluster.git.httpUrl('kms.git'), 'main']);

      const apply = (objects: object[]): Promise<string> =>
        suite.cluster.kubectl(['apply', '--server-side', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n---\n'));
      await apply([
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'kms-git', namespace: 'flux-system' },
          stringData: { username: suite.cluster.git.username, password: suite.cluster.git.password },
        },
        {
          apiVersion: 'source.toolkit.fluxcd.io/v1',
          kind: 'GitRepository',
          metadata: { name: 'kms', namespace: 'flux-system' },
          spec: { url: suite.cluster.git.httpUrl('kms.git'), interval: '1m', timeout: '20s', ref: { branch: 'main' }, secretRef: { name: 'kms-git' } },
        },
      ]);
      await waitFor(
        'GitRepository flux-system/kms Ready',
        async () => {
          const obj = JSON.parse(await suite.cluster.kubectl(['get', 'gitrepository', '-n', 'flux-system', 'kms', '-o', 'json'])) as FluxObject;
          return condition(obj, 'Ready')?.status === 'True' ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      // kustomize-controller's own identity path (fluxcd/pkg/auth) does not take static keys from
      // its environment here ("failed to create provider access token for the controller"), so the
      // static credentials go the way Flux documents for them: `sops.aws-kms` in the decryption Secret.
      await apply([
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'sops-aws', namespace: 'flux-system' },
          stringData: {
            'sops.aws-kms': `aws_access_key_id: ${kms.env.AWS_ACCESS_KEY_ID ?? ''}\naws_secret_access_key: ${kms.env.AWS_SECRET_ACCESS_KEY ?? ''}\n`,
          },
        },
      ]);
      await apply([
        {
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
          kind: 'Kustomization',
          metadata: { name: 'kms', namespace: 'flux-system' },
          spec: {
            interval: '1m',
            retryInterval: '5s',
            path: './app',
            prune: true,
            timeout: '30s',
            sourceRef: { kind: 'GitRepository', name: 'kms' },
            decryption: { provider: 'sops', secretRef: { name: 'sops-aws' } },
          },
        },
      ]);
      const token = await waitFor(
        'Secret default/kms-e2e applied by kustomize-controller',
        async () => {
          const out = await suite.cluster.kubectl(['get', 'secret', '-n', 'default', 'kms-e2e', '-o', 'json', '--ignore-not-found']);
          if (out.trim() === '') return undefined;
          const data = (JSON.parse(out) as { data?: { token?: string } }).data?.token;
          return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
        },
        { timeoutMs: 90_000, intervalMs: 500 },
      );
      assert.equal(token, value);
    }));
});
