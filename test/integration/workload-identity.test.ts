// `init --sops-backend aws-kms|gcp-kms|azure-kv` against the real kustomize (kubectl kustomize of
// the harness' kubectl) and the real kube-apiserver: the flux-system folder init writes builds,
// and the built objects, applied, carry each cloud identity where the Flux SOPS guide puts it by hand.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { allowSecretsIn, canary } from '../helpers/canary.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { clusterForFile } from '../cluster/testing.ts';

const file = clusterForFile({ flux: 'off' });

interface Obj {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
}
interface Container {
  args?: string[];
  env?: { name: string; value?: string }[];
  envFrom?: { secretRef?: { name: string } }[];
}
interface DeploymentSpec {
  template: { metadata: { labels: Record<string, string> }; spec: { containers: Container[] } };
}

/** init for cluster `c` with these flags, then the flux-system folder built by the real kustomize. */
async function initAndBuild(flags: string[], repo?: string): Promise<{ built: string; objects: Obj[]; repo: string }> {
  const dir = repo ?? (await tempDir('identity'));
  mkdirSync(join(dir, 'clusters', 'c', 'flux-system'), { recursive: true });
  const r = runCli(['init', '--cluster', 'c', '--repo', dir, '--git-url', 'https://git.example.com/fleet.git', ...flags], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const built = await file.cluster.kubectl(['kustomize', join(dir, 'clusters', 'c', 'flux-system')]);
  return { built, objects: parseAllDocuments(built).map((d) => d.toJSON() as Obj), repo: dir };
}

/** Apply like Flux would (CRDs first), then read back what the apiserver stored. */
async function applyAndGet(
  built: string,
): Promise<{ sa: (name: string) => Promise<Obj>; controller: () => Promise<DeploymentSpec>; decryption: () => Promise<unknown> }> {
  const docs = built.split(/^---$/m);
  await file.cluster.kubectl(
    ['apply', '--server-side', '--force-conflicts', '-f', '-'],
    docs.filter((d) => /^kind: CustomResourceDefinition$/m.test(d)).join('---\n'),
  );
  await file.cluster.kubectl(['wait', '--for=condition=established', '--timeout=60s', 'crd', '--all']);
  await file.cluster.kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], built);
  const get = async (kind: string, name: string): Promise<Obj> =>
    JSON.parse(await file.cluster.kubectl(['get', kind, name, '-n', 'flux-system', '-o', 'json'])) as Obj;
  return {
    sa: (name) => get('serviceaccount', name),
    controller: async () => (await get('deployment', 'kustomize-controller')).spec as unknown as DeploymentSpec,
    decryption: async () => (await get('kustomizations.kustomize.toolkit.fluxcd.io', 'flux-system')).spec?.decryption,
  };
}

const container = (d: DeploymentSpec): Container => d.template.spec.containers[0] ?? {};

void describe('cloud identities for kustomize-controller, built by kustomize and applied', () => {
  void it("aws-kms with IRSA: role annotation on the controller's ServiceAccount, decryption without a Secret", () =>
    file.run(async () => {
      const role = 'arn:aws:iam::111122223333:role/flux-sops';
      const { built } = await initAndBuild(['--sops-backend', 'aws-kms', '--kms-arn', 'arn:aws:kms:eu-west-1:111122223333:key/abcd', '--aws-role-arn', role]);
      const got = await applyAndGet(built);
      assert.equal((await got.sa('kustomize-controller')).metadata.annotations?.['eks.amazonaws.com/role-arn'], role);
      assert.deepEqual(await got.decryption(), { provider: 'sops' });
    }));

  void it('aws-kms at object level: a ServiceAccount with the role, the Kustomization decrypts as it, the controller has the feature gate', () =>
    file.run(async () => {
      const role = 'arn:aws:iam::111122223333:role/flux-sops-object';
      const { built } = await initAndBuild([
        '--sops-backend',
        'aws-kms',
        '--kms-arn',
        'arn:aws:kms:eu-west-1:111122223333:key/abcd',
        '--aws-role-arn',
        role,
        '--object-level-identity',
        'sops-kms',
      ]);
      const got = await applyAndGet(built);
      assert.equal((await got.sa('sops-kms')).metadata.annotations?.['eks.amazonaws.com/role-arn'], role);
      assert.deepEqual(await got.decryption(), { provider: 'sops', serviceAccountName: 'sops-kms' });
      assert.ok(container(await got.controller()).args?.includes('--feature-gates=ObjectLevelWorkloadIdentity=true'));
    }));

  void it('gcp-kms with GKE Workload Identity', () =>
    file.run(async () => {
      const gsa = 'flux-sops@proj-1.iam.gserviceaccount.com';
      const { built } = await initAndBuild([
        '--sops-backend',
        'gcp-kms',
        '--gcp-kms-key',
        'projects/proj-1/locations/global/keyRings/flux/cryptoKeys/sops',
        '--gcp-service-account',
        gsa,
      ]);
      const got = await applyAndGet(built);
      assert.equal((await got.sa('kustomize-controller')).metadata.annotations?.['iam.gke.io/gcp-service-account'], gsa);
    }));

  void it('azure-kv: workload identity (client id + pod label), AAD pod identity (label + MSI), Service Principal (envFrom)', () =>
    file.run(async () => {
      const key = ['--sops-backend', 'azure-kv', '--azure-kv-key', 'https://v.vault.azure.net/keys/sops/0123'];
      let got = await applyAndGet(
        (await initAndBuild([...key, '--azure-identity', 'workload-identity', '--azure-client-id', '11111111-2222-3333-4444-555555555555'])).built,
      );
      assert.equal((await got.sa('kustomize-controller')).metadata.annotations?.['azure.workload.identity/client-id'], '11111111-2222-3333-4444-555555555555');
      assert.equal((await got.controller()).template.metadata.labels['azure.workload.identity/use'], 'true');

      got = await applyAndGet((await initAndBuild([...key, '--azure-identity', 'aad-pod-identity', '--aad-pod-identity-binding', 'sops-akv'])).built);
      const aad = await got.controller();
      assert.equal(aad.template.metadata.labels.aadpodidbinding, 'sops-akv');
      assert.ok(container(aad).env?.some((e) => e.name === 'AZURE_AUTH_METHOD' && e.value === 'msi'));

      got = await applyAndGet((await initAndBuild([...key, '--azure-identity', 'service-principal'])).built);
      assert.deepEqual(container(await got.controller()).envFrom, [{ secretRef: { name: 'sops-azure-credentials' } }]);
    }));

  void it('azure-kv Service Principal: fluxstrap makes the Secret the envFrom patch names from a SOPS file, opened in memory, values never shown', () =>
    file.run(async () => {
      const repo = await tempDir('identity-sp');
      const keyFile = join(repo, '..', `${basename(repo)}.agekey`);
      const key = runCli(['keys', 'new', '--out', keyFile]);
      assert.equal(key.code, 0, key.stderr);
      const values = {
        AZURE_TENANT_ID: '11111111-2222-3333-4444-555555555555',
        AZURE_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
        AZURE_CLIENT_SECRET: canary('azure-sp'),
      };
      const plain = join(repo, '..', `${basename(repo)}-sp.env`);
      writeFileSync(
        plain,
        Object.entries(values)
          .map(([k, v]) => `${k}=${v}\n`)
          .join(''),
      );
      allowSecretsIn(plain);
      mkdirSync(join(repo, 'secrets'), { recursive: true });
      const enc = runCli(['encrypt', '--age', key.stdout.trim(), '--output', join(repo, 'secrets', 'azure-sp.env'), plain]);
      assert.equal(enc.code, 0, enc.stderr);
      const { built } = await initAndBuild(
        [
          '--sops-backend',
          'azure-kv',
          '--azure-kv-key',
          'https://v.vault.azure.net/keys/sops/0123',
          '--azure-identity',
          'service-principal',
          '--azure-credentials-secret',
          'sp-creds',
          '--azure-credentials-file',
          join(repo, 'secrets', 'azure-sp.env'),
        ],
        repo,
      );
      const got = await applyAndGet(built);
      assert.deepEqual(container(await got.controller()).envFrom, [{ secretRef: { name: 'sp-creds' } }]);

      // The bootstrap playbook's task alone (the rest needs a Git server): the Secret from fluxstrap.yaml's sopsKey.
      const playbook = join(repo, '..', `${basename(repo)}-sp.yaml`);
      writeFileSync(playbook, 'name: Service Principal\ntasks:\n  - azure-credentials-secret: {}\n');
      const run = (): ReturnType<typeof runCli> =>
        runCli(['run', playbook, '--cluster', 'c', '--repo', repo, '--kubeconfig', file.cluster.kubeconfig, '--age-key-file', keyFile], { cwd: repo });
      let r = run();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /changed=1/);
      assert.ok(!`${r.stdout}${r.stderr}`.includes(values.AZURE_CLIENT_SECRET));
      const secret = JSON.parse(await file.cluster.kubectl(['get', 'secret', 'sp-creds', '-n', 'flux-system', '-o', 'json'])) as {
        data: Record<string, string>;
      };
      assert.deepEqual(Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])), values);
      r = run();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /ok=1 changed=0/);
    }));

  void it('a second init changes nothing; a malformed ARN or a missing option is one line naming the flag, nothing written', async () => {
    const repo = await tempDir('identity-bad');
    mkdirSync(join(repo, 'clusters', 'c', 'flux-system'), { recursive: true });
    const flags = ['init', '--cluster', 'c', '--repo', repo, '--git-url', 'https://git.example.com/fleet.git', '--sops-backend', 'aws-kms'];
    let r = runCli([...flags, '--kms-arn', 'arn:aws:kms:eu-west-1:key/abcd'], { cwd: repo });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: not an AWS KMS key ARN: arn:aws:kms:eu-west-1:key\/abcd \(--kms-arn\)\nhint: /);
    r = runCli(flags, { cwd: repo });
    assert.match(r.stderr, /^error: --sops-backend aws-kms needs --kms-arn\n/);
    r = runCli([...flags, '--kms-arn', 'arn:aws:kms:eu-west-1:111122223333:key/abcd', '--aws-role-arn', 'arn:aws:iam::1:user/x'], { cwd: repo });
    assert.match(r.stderr, /^error: not an IAM role ARN: arn:aws:iam::1:user\/x \(--aws-role-arn\)\n/);
    assert.equal(runCli(['init', '--help']).code, 0);
    assert.deepEqual(readdirSync(repo), ['clusters'], 'nothing written');
    const good = [...flags, '--kms-arn', 'arn:aws:kms:eu-west-1:111122223333:key/abcd', '--aws-role-arn', 'arn:aws:iam::111122223333:role/r'];
    assert.equal(runCli(good, { cwd: repo }).code, 0);
    assert.match(runCli(good, { cwd: repo }).stderr, /nothing to do/);
  });
});
