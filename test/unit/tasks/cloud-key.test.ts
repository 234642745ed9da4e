import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import type { KubeObject } from '../../../src/adapters/kube/port.ts';
import type { CloudSopsKey } from '../../../src/cluster/config.ts';
import { identityPatches } from '../../../src/flux/workload-identity.ts';
import { newStanza } from '../../../src/sops/datakey.ts';
import { encryptDocument } from '../../../src/sops/engine.ts';
import { cloudIdentity, cloudKeyCheck, usesAgeSecret } from '../../../src/tasks/cloud-key.ts';
import type { FluxBuild } from '../../../src/tasks/source.ts';
import { tempDir } from '../../helpers/tmp.ts';

/**
 * The static checks of a cloud key against a repository on disk (Google Cloud KMS: no service is
 * called, and the result says so). AWS KMS's call is tested against local-kms in test/e2e/cloud-keys.test.ts.
 */

const GCP = 'projects/p/locations/global/keyRings/flux/cryptoKeys/sops';
const OTHER = 'projects/p/locations/global/keyRings/flux/cryptoKeys/other';
const KEY: CloudSopsKey = { type: 'gcp-kms', resourceId: GCP, serviceAccount: 'flux-sops@p.iam.gserviceaccount.com' };
const cluster = { name: 'gke', path: 'clusters/gke' };

let recipient: string;

/** A SOPS file encrypted for age, with a gcp_kms entry for `resourceId` as sops writes one. */
async function sopsFileFor(resourceId: string): Promise<string> {
  const enc = await encryptDocument(
    Buffer.from('apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  a: b\n'),
    'yaml',
    's.yaml',
    { keyGroups: [[newStanza('age', recipient)]], shamirThreshold: 0, rules: { encryptedRegex: '^(data|stringData)$' } },
    { age: [], pgpFiles: [], gpg: false },
  );
  return enc.replace(
    '\n    lastmodified:',
    `\n    gcp_kms:\n        - resource_id: ${resourceId}\n          created_at: "2026-01-01T00:00:00Z"\n          enc: CiQAc29tZWNpcGhlcnRleHQ=\n    lastmodified:`,
  );
}

async function repoWith(rule: string, files: Record<string, string>): Promise<string> {
  const dir = await tempDir('cloud-key');
  await mkdir(join(dir, 'clusters/gke'), { recursive: true });
  await writeFile(join(dir, '.sops.yaml'), `creation_rules:\n  - path_regex: ^clusters/gke/.*\n    gcp_kms: ${rule}\n    age: ${recipient}\n`);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'clusters/gke', name), text);
  return dir;
}

function build(objects: KubeObject[], decryption: Record<string, unknown> = { provider: 'sops' }): FluxBuild {
  const ks: KubeObject = {
    apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
    kind: 'Kustomization',
    metadata: { name: 'flux-system', namespace: 'flux-system' },
    spec: { path: './clusters/gke', decryption },
  };
  const repo: KubeObject = { apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'GitRepository', metadata: { name: 'flux-system', namespace: 'flux-system' } };
  return { result: { objects: [...objects, repo, ks], engine: 'native' }, components: objects, sync: { gitRepository: repo, kustomization: ks } };
}
const sa = (annotations: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ServiceAccount',
  metadata: { name: 'kustomize-controller', namespace: 'flux-system', annotations },
});

void describe('cloud key checks', () => {
  before(async () => {
    recipient = await identityToRecipient(await generateIdentity());
  });

  void it('rule, files and wiring in order: passed, and the service named as not reached', async () => {
    const dir = await repoWith(GCP, { 'secret.yaml': await sopsFileFor(GCP) });
    const r = await cloudKeyCheck(cluster, KEY, dir, build([sa({ 'iam.gke.io/gcp-service-account': 'flux-sops@p.iam.gserviceaccount.com' })]), {});
    assert.deepEqual(r.problems, []);
    assert.equal(r.passed.length, 2);
    assert.match(r.passed[0] ?? '', /rule for each of the 1 SOPS file\(s\) the cluster reaches lists the Google Cloud KMS key projects\/p/);
    assert.match(
      r.notes.at(-1) ?? '',
      /^warning: fluxstrap cannot reach Google Cloud KMS \(it has no client for it\): the key was not tried; only the \.sops\.yaml rule, the files' entries and the identity wiring were checked$/,
    );
  });

  void it('a rule without the key, a file not encrypted for it and a missing annotation are three problems', async () => {
    const dir = await repoWith(OTHER, { 'secret.yaml': await sopsFileFor(OTHER) });
    const r = await cloudKeyCheck(cluster, KEY, dir, build([sa()]), {});
    assert.equal(r.problems.length, 3);
    assert.match(
      r.problems[0]?.what ?? '',
      /^the \.sops\.yaml rule at \.sops\.yaml:2 \(for clusters\/gke\/secret\.yaml\) does not list the Google Cloud KMS key /,
    );
    assert.match(r.problems[0]?.fix ?? '', /--sops-backend gcp-kms --gcp-kms-key/);
    assert.match(
      r.problems[1]?.what ?? '',
      /^1 of the 1 SOPS file\(s\) the cluster reaches are not encrypted for the Google Cloud KMS key .*: clusters\/gke\/secret\.yaml$/,
    );
    assert.match(r.problems[2]?.what ?? '', /lacks the annotation iam\.gke\.io\/gcp-service-account: flux-sops@p\.iam\.gserviceaccount\.com/);
  });

  void it('with no file yet, the rule for the cluster folder is what counts', async () => {
    const dir = await repoWith(OTHER, {});
    const r = await cloudKeyCheck(cluster, KEY, dir, undefined, {});
    assert.match(r.problems[0]?.what ?? '', /\(for files under clusters\/gke\) does not list/);
  });

  void it('every identity maps to the patches init writes; age stays in use only where the build names a Secret', () => {
    const sp = cloudIdentity({ type: 'azure-kv', vaultUrl: 'https://v', key: 'k', version: '1', servicePrincipal: { secretName: 'sp' } });
    assert.deepEqual(sp, { type: 'azure-service-principal', secretName: 'sp' });
    assert.equal(identityPatches(sp ?? { type: 'aws-irsa', roleArn: '' }).length, 1);
    assert.equal(cloudIdentity({ type: 'aws-kms', arn: 'a' }), undefined);
    assert.equal(usesAgeSecret({}, build([])), true);
    assert.equal(usesAgeSecret({ cloudKey: KEY }, build([])), false);
    assert.equal(usesAgeSecret({ cloudKey: KEY }, build([], { provider: 'sops', secretRef: { name: 'sops-age' } })), true);
  });
});
