// The harness as a kubelet: applying the generated gotk-components.yaml (Flux's default
// components) starts the controllers, their Deployments report Available only while the real
// process is healthy.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_CONTROLLERS, FLUX_NAMESPACE, type ControllerName } from '../cluster/index.ts';
import { condition } from '../cluster/kube.ts';
import { waitFor } from '../cluster/proc.ts';
import { clusterForFile } from '../cluster/testing.ts';

const suite = clusterForFile({ flux: 'on-deployment' });

interface Deployment {
  metadata: { generation: number; labels?: Record<string, string> };
  spec: { template: { spec: { containers: { image: string; args?: string[] }[] } } };
  status?: { observedGeneration?: number; availableReplicas?: number; conditions?: { type: string; status: string; reason?: string }[] };
}

interface Manifest {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Deployment['spec'];
}

function manifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Manifest);
}

async function deployment(name: ControllerName): Promise<Deployment> {
  return JSON.parse(await suite.cluster.kubectl(['get', 'deployment', '-n', FLUX_NAMESPACE, name, '-o', 'json'])) as Deployment;
}

async function waitAvailable(name: ControllerName, available: boolean): Promise<Deployment> {
  return waitFor(
    `Deployment ${name} Available=${available}`,
    async () => {
      const d = await deployment(name);
      return condition(d, 'Available')?.status === (available ? 'True' : 'False') ? d : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 250 },
  );
}

void describe('flux-system Deployments mirror the local controller processes', () => {
  void test('gotk-components.yaml matches the built controllers', () =>
    suite.run(() => {
      const objects = manifests(suite.cluster.gotkComponentsPath);
      const deployments = objects.filter((o) => o.kind === 'Deployment');
      assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), [...DEFAULT_CONTROLLERS].sort());
      for (const d of deployments) {
        const name = d.metadata.name as ControllerName;
        assert.equal(d.spec?.template.spec.containers[0]?.image, `ghcr.io/fluxcd/${name}:${suite.cluster.controllerVersions[name]}`);
      }
      for (const o of objects) {
        assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'flux', `${o.kind}/${o.metadata.name}`);
        assert.equal(o.metadata.labels?.['app.kubernetes.io/instance'], FLUX_NAMESPACE, `${o.kind}/${o.metadata.name}`);
        assert.equal(o.metadata.labels?.['app.kubernetes.io/version'], suite.cluster.fluxVersion, `${o.kind}/${o.metadata.name}`);
      }
      assert.ok(objects.some((o) => o.kind === 'CustomResourceDefinition' && o.metadata.name === 'kustomizations.kustomize.toolkit.fluxcd.io'));
    }));

  void test('gotk-components.yaml has the objects and controller arguments of the real `flux install --export` of the default components', () =>
    suite.run(() => {
      // The real file (Flux v2.7.5) differs in versions and CRD schemas only.
      const real = manifests(join(import.meta.dirname, '..', 'fixtures', 'flux', 'gotk-components.yaml'));
      const ours = manifests(suite.cluster.gotkComponentsPath);
      const ids = (list: Manifest[]): string[] => list.map((o) => `${o.kind}/${o.metadata.name}`).sort();
      assert.deepEqual(ids(ours), ids(real));
      const args = (list: Manifest[]): Record<string, string[] | undefined> =>
        Object.fromEntries(list.filter((o) => o.kind === 'Deployment').map((d) => [d.metadata.name, d.spec?.template.spec.containers[0]?.args]));
      assert.deepEqual(args(ours), args(real));
    }));

  void test('applying gotk-components.yaml makes every Deployment Available and kstatus-Current', () =>
    suite.run(async () => {
      await suite.cluster.kubectl(['apply', '--server-side', '-f', suite.cluster.gotkComponentsPath]);
      for (const name of DEFAULT_CONTROLLERS) {
        const d = await waitAvailable(name, true);
        assert.equal(d.status?.observedGeneration, d.metadata.generation);
        assert.equal(d.status?.availableReplicas, 1);
        assert.equal(condition(d, 'Progressing')?.reason, 'NewReplicaSetAvailable');
        assert.equal(await suite.cluster.controllers.healthy(name), true);
      }
      // The same check `flux install` and `kubectl rollout status` rely on.
      await suite.cluster.kubectl(['rollout', 'status', '-n', FLUX_NAMESPACE, 'deployment/source-controller', '--timeout=30s']);
    }));

  void test('stopping a controller makes its Deployment unavailable, starting it again restores it', () =>
    suite.run(async () => {
      await waitAvailable('source-controller', true);
      await suite.cluster.controllers.stop('source-controller');
      assert.equal(await suite.cluster.controllers.healthy('source-controller'), false);
      const down = await waitAvailable('source-controller', false);
      assert.equal(down.status?.availableReplicas ?? 0, 0);
      assert.equal(condition(await deployment('kustomize-controller'), 'Available')?.status, 'True');

      await suite.cluster.controllers.start('source-controller');
      await waitAvailable('source-controller', true);
    }));
});
