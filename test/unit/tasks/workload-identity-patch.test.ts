import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { identityPatches, OBJECT_LEVEL_GATE } from '../../../src/flux/workload-identity.ts';
import { parseConfig } from '../../../src/sops/config.ts';
import { stanzaName } from '../../../src/sops/metadata.ts';
import { sopsConfigKind } from '../../../src/tasks/sops-config.ts';
import { workloadIdentityPatchKind } from '../../../src/tasks/workload-identity-patch.ts';
import { planFile } from '../../helpers/file-tasks.ts';

/** The identity patches in flux-system/kustomization.yaml, and cloud keys in the .sops.yaml rule. */

const FILE = 'clusters/c/flux-system/kustomization.yaml';
const HAND =
  'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n# ours\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\npatches:\n- path: my-patch.yaml\n';

void describe('workload identity patches', () => {
  void it('JSON pointers escape / in label names; object level moves the annotation off the controller and adds the gate', () => {
    const wi = identityPatches({ type: 'azure-workload-identity', clientId: 'id' });
    assert.match(wi[1]?.patch ?? '', /path: \/spec\/template\/metadata\/labels\/azure.workload.identity~1use/);
    const object = identityPatches({ type: 'aws-irsa', roleArn: 'arn:aws:iam::1:role/r' }, { objectLevel: { serviceAccountName: 'sa' } });
    assert.deepEqual(
      object.map((p) => p.target.kind),
      ['Deployment'],
    );
    assert.match(object[0]?.patch ?? '', new RegExp(OBJECT_LEVEL_GATE));
  });

  void it('added once after what the file has, comments and hand patches kept; a second run changes nothing', () => {
    const patches = identityPatches({ type: 'gcp-workload-identity', serviceAccount: 'a@p.iam.gserviceaccount.com' });
    const params = { file: FILE, patches, resources: ['sops-identity.yaml'] };
    const { after } = planFile(workloadIdentityPatchKind, params, HAND);
    assert.ok(after?.includes('# ours'));
    const doc = parse(after ?? '') as { resources: string[]; patches: { path?: string; target?: { kind: string } }[] };
    assert.deepEqual(doc.resources, ['gotk-components.yaml', 'gotk-sync.yaml', 'sops-identity.yaml']);
    assert.deepEqual(
      doc.patches.map((p) => p.path ?? p.target?.kind),
      ['my-patch.yaml', 'ServiceAccount'],
    );
    assert.deepEqual(planFile(workloadIdentityPatchKind, params, after).changes, []);
  });
});

void describe('.sops.yaml rule with cloud keys', () => {
  void it('kms, gcp_kms and azure_keyvault as sops spells them; idempotent', () => {
    const params = {
      file: '.sops.yaml',
      clusterPath: 'clusters/c',
      age: [],
      pgp: [],
      kms: ['arn:aws:kms:eu-west-1:1:key/a'],
      gcpKms: ['projects/p/locations/l/keyRings/r/cryptoKeys/k'],
      azureKeyvault: ['https://v.vault.azure.net/keys/k/1'],
      encryptedRegex: '^(data|stringData)$',
    };
    const { after } = planFile(sopsConfigKind, params, undefined);
    const rule = parseConfig(after ?? '', '.sops.yaml').creationRules[0];
    assert.deepEqual(
      rule?.keyGroups[0]?.map((s) => `${s.type}:${stanzaName(s)}`),
      ['kms:arn:aws:kms:eu-west-1:1:key/a', 'gcp_kms:projects/p/locations/l/keyRings/r/cryptoKeys/k', 'azure_kv:https://v.vault.azure.net/keys/k/1'],
    );
    assert.deepEqual(planFile(sopsConfigKind, params, after).changes, []);
  });
});
