import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../../../../src/adapters/kube/port.ts';
import {
  artifactRevision,
  conditionOf,
  crdEstablished,
  deploymentAvailable,
  fluxReadyAt,
  formatConditions,
  lastAppliedRevision,
  lastAttemptedRevision,
  lastHandledReconcileAt,
} from '../../../../src/adapters/kube/readiness.ts';

/** The readiness rules are pure: each is a verdict on one object as read, or on its absence. */

const REV = 'main@sha1:abc';

const obj = (kind: string, status: Record<string, unknown>, generation = 1, spec: Record<string, unknown> = {}): KubeObject => ({
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
const repoAt = (rev: string, s = 'True', extra: Record<string, unknown> = {}) => obj('GitRepository', ready(s, { artifact: { revision: rev }, ...extra }));
const ksAt = (rev: string, s = 'True', extra: Record<string, unknown> = {}) => obj('Kustomization', ready(s, { lastAppliedRevision: rev, ...extra }));

void describe('conditions', () => {
  const o = obj('Kustomization', {
    conditions: [
      { type: 'Ready', status: 'False', reason: 'BuildFailed', message: 'no file' },
      { type: 'Healthy', status: 'True' },
    ],
  });
  void it('finds a condition by type; none on a missing object or one without status', () => {
    assert.equal(conditionOf(o, 'Ready')?.reason, 'BuildFailed');
    assert.equal(conditionOf(o, 'Reconciling'), undefined);
    assert.equal(conditionOf(undefined, 'Ready'), undefined);
    assert.equal(conditionOf({ apiVersion: 'v1', kind: 'X', metadata: { name: 'x' } }, 'Ready'), undefined);
  });
  void it('formats every condition on one line', () => {
    assert.equal(formatConditions(o), 'Ready=False (BuildFailed: no file); Healthy=True');
    assert.equal(formatConditions(undefined), 'no conditions');
    assert.equal(formatConditions(obj('X', { conditions: 'garbage' })), 'no conditions');
  });
});

void describe('deploymentAvailable', () => {
  const dep = (status: Record<string, unknown>, replicas?: number): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd', namespace: 'n', generation: 2 },
    spec: replicas === undefined ? {} : { replicas },
    status,
  });
  const available = { observedGeneration: 2, updatedReplicas: 1, availableReplicas: 1, conditions: [{ type: 'Available', status: 'True' }] };

  void it('ready: observed, every replica updated and available, Available=True (one replica when spec.replicas is unset)', () => {
    assert.deepEqual(deploymentAvailable(dep(available)), { done: true, reason: 'available' });
    assert.equal(deploymentAvailable(dep(available, 1)).done, true);
  });
  void it('not ready: missing', () => assert.deepEqual(deploymentAvailable(undefined), { done: false, reason: 'does not exist' }));
  void it('stale generation: an older generation observed, or none yet', () => {
    assert.match(deploymentAvailable(dep({ ...available, observedGeneration: 1 })).reason, /not yet observed/);
    assert.match(deploymentAvailable(dep({ updatedReplicas: 1, availableReplicas: 1 })).reason, /not yet observed/);
  });
  void it('not ready: replicas short, updated or available', () => {
    assert.equal(deploymentAvailable(dep(available, 2)).reason, '1/2 replicas available, 1/2 updated');
    assert.equal(deploymentAvailable(dep({ ...available, updatedReplicas: 0 })).done, false);
    assert.equal(deploymentAvailable(dep({ ...available, availableReplicas: 0 })).failed, undefined);
  });
  void it('not ready: Available is not True although the counts are there', () => {
    assert.match(deploymentAvailable(dep({ ...available, conditions: [{ type: 'Available', status: 'False' }] })).reason, /Available is not True/);
  });
  void it('failure: progress deadline exceeded ends the wait', () => {
    const s = deploymentAvailable(
      dep({ observedGeneration: 2, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'rs timed out' }] }),
    );
    assert.equal(s.failed, true);
    assert.match(s.reason, /progress deadline exceeded: rs timed out/);
  });
  void it('Progressing=False for another reason is not a failure', () => {
    assert.equal(
      deploymentAvailable(dep({ ...available, availableReplicas: 0, conditions: [{ type: 'Progressing', status: 'False', reason: 'Other' }] })).failed,
      undefined,
    );
  });
});

void describe('crdEstablished', () => {
  const crd = (conditions: unknown[]): KubeObject => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'c' },
    status: { conditions },
  });
  void it('ready: Established=True', () =>
    assert.deepEqual(crdEstablished(crd([{ type: 'Established', status: 'True' }])), { done: true, reason: 'established' }));
  void it('not ready: missing, no conditions yet, Established=False', () => {
    assert.equal(crdEstablished(undefined).reason, 'does not exist');
    assert.deepEqual(crdEstablished(crd([])), { done: false, reason: 'not established yet' });
    assert.equal(
      crdEstablished(
        crd([
          { type: 'Established', status: 'False' },
          { type: 'NamesAccepted', status: 'True' },
        ]),
      ).failed,
      undefined,
    );
  });
  void it('failure: names not accepted (a clash with another CRD) never becomes established', () => {
    const s = crdEstablished(crd([{ type: 'NamesAccepted', status: 'False', message: 'plural taken' }]));
    assert.equal(s.failed, true);
    assert.match(s.reason, /names not accepted: plural taken/);
  });
});

void describe('fluxReadyAt', () => {
  const ks = fluxReadyAt(REV, lastAppliedRevision, { handledBefore: 'a', attemptedOf: lastAttemptedRevision });
  const repo = fluxReadyAt(REV, artifactRevision, { handledBefore: 'a' });

  void it('ready: a GitRepository whose artifact, a Kustomization whose last applied revision, is the revision', () => {
    assert.deepEqual(repo(repoAt(REV)), { done: true, reason: `at ${REV}` });
    assert.equal(ks(ksAt(REV)).done, true);
  });
  void it('ready while Flux reconciles again (Ready=Unknown) at the revision: the revision only advances on success', () => {
    assert.equal(ks(ksAt(REV, 'Unknown')).done, true);
  });
  void it('not ready: missing, no revision yet, another revision, Ready=False at the revision before our request is handled', () => {
    assert.equal(ks(undefined).reason, 'does not exist');
    assert.match(repo(obj('GitRepository', ready('Unknown'))).reason, /Ready=Unknown \(m\), at no revision/);
    assert.match(ks(ksAt('main@sha1:old')).reason, /at main@sha1:old/);
    const s = ks(ksAt(REV, 'False', { lastHandledReconcileAt: 'a', lastAttemptedRevision: REV }));
    assert.equal(s.done, false);
    assert.equal(s.failed, undefined);
  });
  void it('stale generation: the controller has not observed the current spec, whatever the revision says', () => {
    assert.match(ks(obj('Kustomization', ready('True', { lastAppliedRevision: REV }), 2)).reason, /not yet reconciled/);
    assert.equal(ks(obj('Kustomization', { lastAppliedRevision: REV })).done, false);
  });
  void it('failure: Ready=False once the request was handled and this revision was attempted', () => {
    const s = ks(ksAt('main@sha1:old', 'False', { lastHandledReconcileAt: 'b', lastAttemptedRevision: REV }));
    assert.equal(s.failed, true);
    assert.equal(s.reason, 'not ready: R: m');
  });
  void it('keeps waiting when the failure is about an older revision, or the request is not handled yet', () => {
    assert.equal(ks(ksAt('main@sha1:old', 'False', { lastHandledReconcileAt: 'b', lastAttemptedRevision: 'main@sha1:old' })).failed, undefined);
    assert.equal(ks(ksAt('main@sha1:old', 'False', { lastHandledReconcileAt: 'a', lastAttemptedRevision: REV })).failed, undefined);
  });
  void it('without attemptedOf a handled Ready=False fails; without handledBefore it never does', () => {
    assert.equal(repo(repoAt('main@sha1:old', 'False', { lastHandledReconcileAt: 'b' })).failed, true);
    assert.equal(fluxReadyAt(REV, artifactRevision)(repoAt('main@sha1:old', 'False', { lastHandledReconcileAt: 'b' })).failed, undefined);
  });
  void it('failure: a suspended object is never reconciled', () => {
    const s = fluxReadyAt(REV, artifactRevision)(obj('GitRepository', ready('True', { artifact: { revision: REV } }), 1, { suspend: true }));
    assert.equal(s.failed, true);
    assert.match(s.reason, /suspended/);
  });
});

void describe('revision fields', () => {
  void it('read the status fields Flux reports, undefined when absent', () => {
    const o = obj('Kustomization', { lastAppliedRevision: 'a', lastAttemptedRevision: 'b', lastHandledReconcileAt: 'c', artifact: { revision: 'd' } });
    assert.deepEqual([lastAppliedRevision(o), lastAttemptedRevision(o), lastHandledReconcileAt(o), artifactRevision(o)], ['a', 'b', 'c', 'd']);
    const bare = obj('Kustomization', {});
    assert.deepEqual(
      [lastAppliedRevision(bare), lastAttemptedRevision(bare), lastHandledReconcileAt(bare), artifactRevision(bare)],
      [undefined, undefined, undefined, undefined],
    );
    assert.equal(lastHandledReconcileAt(undefined), undefined);
  });
});
