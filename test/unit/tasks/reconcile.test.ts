import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../../../src/adapters/kube/port.ts';
import { planReconcile, reconciling } from '../../../src/tasks/reconcile.ts';
import { planWaits } from '../../../src/tasks/wait-controllers.ts';

const REV = 'main@sha1:abc';
const flux = (kind: string, status: Record<string, unknown>, generation = 1, spec: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'x/v1',
  kind,
  metadata: { name: 'flux-system', namespace: 'flux-system', generation },
  spec,
  status,
});
const ready = (s: string, extra: Record<string, unknown> = {}) => ({
  observedGeneration: 1,
  conditions: [{ type: 'Ready', status: s, reason: 'R', message: 'm' }],
  ...extra,
});
const sourceAt = (rev: string) => flux('GitRepository', ready('True', { artifact: { revision: rev } }));
const ksAt = (rev: string) => flux('Kustomization', ready('True', { lastAppliedRevision: rev }));
const refs = {
  source: { ref: { apiVersion: 'x/v1', kind: 'GitRepository', name: 'flux-system', namespace: 'flux-system' } },
  kustomization: { ref: { apiVersion: 'x/v1', kind: 'Kustomization', name: 'flux-system', namespace: 'flux-system' } },
};

void describe('planReconcile', () => {
  const table: { name: string; source?: KubeObject; ks?: KubeObject; want: string[] }[] = [
    { name: 'both at the revision → nothing (a second run reports zero changes)', source: sourceAt(REV), ks: ksAt(REV), want: [] },
    { name: 'source behind → both', source: sourceAt('main@sha1:old'), ks: ksAt('main@sha1:old'), want: ['GitRepository', 'Kustomization'] },
    { name: 'source there, Kustomization behind → Kustomization only', source: sourceAt(REV), ks: ksAt('main@sha1:old'), want: ['Kustomization'] },
    { name: 'objects missing (check mode) → both', want: ['GitRepository', 'Kustomization'] },
    {
      name: 'Ready=False at the revision → reconcile',
      source: sourceAt(REV),
      ks: flux('Kustomization', ready('False', { lastAppliedRevision: REV })),
      want: ['Kustomization'],
    },
    {
      name: 'at the revision while Flux reconciles again (Ready=Unknown) → nothing',
      source: sourceAt(REV),
      ks: flux('Kustomization', ready('Unknown', { lastAppliedRevision: REV })),
      want: [],
    },
  ];
  for (const t of table) {
    void it(t.name, () => {
      const facts = {
        revision: REV,
        source: { ...refs.source, ...(t.source ? { obj: t.source } : {}) },
        kustomization: { ...refs.kustomization, ...(t.ks ? { obj: t.ks } : {}) },
      };
      assert.deepEqual(
        planReconcile(facts).map((c) => c.target.split(' ')[0]),
        t.want,
      );
    });
  }
});

void describe('reconciling', () => {
  void it('a new object, an unobserved generation or Ready=Unknown is in progress', () => {
    assert.equal(reconciling(flux('Kustomization', {})), true);
    assert.equal(reconciling(flux('Kustomization', ready('True'), 2)), true);
    assert.equal(reconciling(flux('Kustomization', ready('Unknown'))), true);
  });
  void it('Ready=True or False after observing the generation is settled; a missing object does nothing by itself', () => {
    assert.equal(reconciling(flux('Kustomization', ready('True'))), false);
    assert.equal(reconciling(flux('Kustomization', ready('False'))), false);
    assert.equal(reconciling(undefined), false);
  });
});

void describe('planWaits', () => {
  void it('planWaits lists only what is not done', () => {
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'a', namespace: 'flux-system' };
    assert.deepEqual(
      planWaits([
        { ref, state: { done: true, reason: 'ok' } },
        { ref: { ...ref, name: 'b' }, state: { done: false, reason: 'no' } },
      ]).map((c) => c.target),
      ['Deployment flux-system/b'],
    );
  });
});
