import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { missingWiring } from '../../../src/flux/workload-identity.ts';

/** What a built flux-system lacks of each identity's wiring (the patches' effect, read back). */

const controller = (labels: Record<string, string>, container: Record<string, unknown>) => ({
  kind: 'Deployment',
  metadata: { name: 'kustomize-controller' },
  spec: { template: { metadata: { labels }, spec: { containers: [container] } } },
});
const sa = (name: string, annotations: Record<string, string>) => ({ kind: 'ServiceAccount', metadata: { name, annotations } });

void describe('missingWiring', () => {
  void it('wired objects lack nothing', () => {
    assert.deepEqual(missingWiring({ type: 'aws-irsa', roleArn: 'r' }, [sa('kustomize-controller', { 'eks.amazonaws.com/role-arn': 'r' })]), []);
    assert.deepEqual(
      missingWiring({ type: 'aws-irsa', roleArn: 'r' }, [sa('sops-kms', { 'eks.amazonaws.com/role-arn': 'r' })], 'sops-kms'),
      [],
      'object level: the decryption ServiceAccount',
    );
    assert.deepEqual(missingWiring({ type: 'azure-service-principal', secretName: 'sp' }, [controller({}, { envFrom: [{ secretRef: { name: 'sp' } }] })]), []);
    assert.deepEqual(
      missingWiring({ type: 'azure-aad-pod-identity', binding: 'b' }, [
        controller({ aadpodidbinding: 'b' }, { env: [{ name: 'AZURE_AUTH_METHOD', value: 'msi' }] }),
      ]),
      [],
    );
  });

  void it('each missing piece is one line naming the object and what it lacks', () => {
    assert.deepEqual(missingWiring({ type: 'azure-workload-identity', clientId: 'c', tenantId: 't' }, [controller({}, {})]), [
      'ServiceAccount kustomize-controller lacks the annotation azure.workload.identity/client-id: c',
      'ServiceAccount kustomize-controller lacks the annotation azure.workload.identity/tenant-id: t',
      'Deployment kustomize-controller lacks the pod label azure.workload.identity/use: true',
    ]);
    assert.deepEqual(missingWiring({ type: 'azure-aad-pod-identity', binding: 'b' }, [controller({ aadpodidbinding: 'x' }, {})]), [
      'Deployment kustomize-controller lacks the pod label aadpodidbinding: b',
      'Deployment kustomize-controller lacks the env AZURE_AUTH_METHOD=msi',
    ]);
    assert.deepEqual(missingWiring({ type: 'azure-service-principal', secretName: 'sp' }, [controller({}, { envFrom: [{ secretRef: { name: 'other' } }] })]), [
      'Deployment kustomize-controller lacks envFrom the Secret sp',
    ]);
  });
});
