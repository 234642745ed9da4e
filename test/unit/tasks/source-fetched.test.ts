import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../../../src/adapters/kube/port.ts';
import { FETCHED_WITH, fetchedWith } from '../../../src/tasks/source-fetched.ts';

const FP = 'SHA256:new';
const repo = (annotations: Record<string, string>, status: Record<string, unknown>, generation = 1): KubeObject => ({
  apiVersion: 'source.toolkit.fluxcd.io/v1',
  kind: 'GitRepository',
  metadata: { name: 'flux-system', namespace: 'flux-system', generation, annotations },
  status: { observedGeneration: 1, ...status },
});
const ready = (s: string, message = '') => ({ conditions: [{ type: 'Ready', status: s, reason: 'r', message }] });
const asked = { [FETCHED_WITH]: FP, 'reconcile.fluxcd.io/requestedAt': 't1' };

void describe('the source fetched with the new key', () => {
  void it('done only when our request for this key was handled and the source is Ready', () => {
    assert.equal(fetchedWith(FP, repo(asked, { lastHandledReconcileAt: 't1', ...ready('True') })).done, true);
  });

  void it('not done: no request for this key, a request not handled yet, an older request handled', () => {
    assert.equal(fetchedWith(FP, repo({ ...asked, [FETCHED_WITH]: 'SHA256:old' }, { lastHandledReconcileAt: 't1', ...ready('True') })).done, false);
    assert.equal(fetchedWith(FP, repo(asked, { ...ready('True') })).done, false);
    assert.equal(fetchedWith(FP, repo(asked, { lastHandledReconcileAt: 't0', ...ready('True') })).done, false);
    assert.equal(fetchedWith(undefined, repo(asked, { lastHandledReconcileAt: 't1', ...ready('True') })).done, false, '--check before the key exists');
    assert.equal(fetchedWith(FP, undefined).done, false);
  });

  void it('a handled request that left the source not Ready fails the wait with the controller’s message', () => {
    const s = fetchedWith(FP, repo(asked, { lastHandledReconcileAt: 't1', ...ready('False', 'unable to authenticate') }));
    assert.equal(s.failed, true);
    assert.match(s.reason, /unable to authenticate/);
  });

  void it('a generation not observed yet is not done', () => {
    assert.equal(fetchedWith(FP, repo(asked, { lastHandledReconcileAt: 't1', ...ready('True') }, 2)).done, false);
  });
});
