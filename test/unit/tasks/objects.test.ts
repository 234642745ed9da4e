import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../../../src/adapters/kube/port.ts';
import { APPLIED_ANNOTATION, contains, differingPaths, manifestHash, planObjects, withAppliedHash } from '../../../src/tasks/objects.ts';

const cm = (data: Record<string, string>, extra: Partial<KubeObject['metadata']> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'c', namespace: 'flux-system', ...extra },
  data,
});

void describe('planObjects', () => {
  const desired = withAppliedHash(cm({ a: '1' }));
  const table: { name: string; facts: Parameters<typeof planObjects>[0]; want: string[] }[] = [
    { name: 'missing → create', facts: [{ desired }], want: ['create ConfigMap flux-system/c'] },
    {
      name: 'hash and fields match → nothing (no dry-run was needed)',
      facts: [{ desired, live: { ...desired, metadata: { ...desired.metadata, resourceVersion: '7' } } }],
      want: [],
    },
    {
      name: 'dry-run equals live but for volatile metadata → nothing',
      facts: [
        {
          desired,
          live: { ...desired, metadata: { ...desired.metadata, resourceVersion: '7', managedFields: [1] } },
          dryRun: { ...desired, metadata: { ...desired.metadata, resourceVersion: '8', managedFields: [2] } },
        },
      ],
      want: [],
    },
    {
      name: 'dry-run differs → update naming the paths',
      facts: [{ desired, live: cm({ a: '0' }), dryRun: desired }],
      want: ['update ConfigMap flux-system/c'],
    },
    {
      name: 'live, no dry-run possible (kind not served) → nothing to compare',
      facts: [{ desired, kindMissing: true }],
      want: ['create ConfigMap flux-system/c'],
    },
  ];
  for (const t of table) {
    void it(t.name, () =>
      assert.deepEqual(
        planObjects(t.facts).map((c) => `${c.action} ${c.target}`),
        t.want,
      ),
    );
  }

  void it('summarises an update by the paths that differ, and shows only them', () => {
    const [change] = planObjects([{ desired, live: cm({ a: '0', b: '2' }), dryRun: cm({ a: '1', b: '2' }) }]);
    assert.match(change?.summary ?? '', /data\.a/);
    assert.doesNotMatch(change?.after ?? '', /b:/);
  });

  void it('records the applied manifest when only the bookkeeping annotation differs', () => {
    const [change] = planObjects([{ desired, live: cm({ a: '1' }), dryRun: desired }]);
    assert.equal(change?.summary, 'record the applied manifest');
  });
});

void describe('object comparison helpers', () => {
  void it('contains: maps are subsets, lists are whole', () => {
    assert.equal(contains({ a: 1, b: { c: 2, d: 3 } }, { b: { c: 2 } }), true);
    assert.equal(contains({ a: [1, 2] }, { a: [1] }), false);
    assert.equal(contains({ a: [{ x: 1, y: 2 }] }, { a: [{ x: 1 }] }), true);
    assert.equal(contains({ a: '1' }, { a: 1 }), false);
  });
  void it('keys named __proto__ or constructor are compared as keys, never as inherited members', () => {
    const ownProto = (v: unknown) => JSON.parse(`{"__proto__": ${JSON.stringify(v)}}`) as Record<string, unknown>;
    assert.equal(contains({}, ownProto({})), false);
    assert.equal(contains(ownProto({}), ownProto({})), true);
    assert.equal(contains({}, { constructor: {} }), false);
    assert.deepEqual(differingPaths({ s: {} }, { s: ownProto({}) }), [['s', '__proto__']]);
    assert.deepEqual(differingPaths({}, ownProto({})), [['__proto__']]);
    const [change] = planObjects([{ desired: cm({}), live: cm({}), dryRun: { ...cm({}), ...ownProto({ x: '1' }) } }]);
    assert.equal(change?.summary, 'fields __proto__');
    assert.equal(change?.after, '__proto__:\n  x: "1"\n');
  });
  void it('manifestHash ignores key order', () => {
    assert.equal(manifestHash(cm({ a: '1', b: '2' })), manifestHash(cm({ b: '2', a: '1' })));
    assert.notEqual(manifestHash(cm({ a: '1' })), manifestHash(cm({ a: '2' })));
  });
  void it('withAppliedHash keeps existing annotations', () => {
    const o = withAppliedHash(cm({}, { annotations: { keep: 'me' } }));
    assert.equal(o.metadata.annotations?.keep, 'me');
    assert.match(o.metadata.annotations?.[APPLIED_ANNOTATION] ?? '', /^[0-9a-f]{32}$/);
  });
  void it('differingPaths stops at depth 3', () => {
    assert.deepEqual(differingPaths({ a: { b: { c: { d: 1 } } } }, { a: { b: { c: { d: 2 } } } }), [['a', 'b', 'c']]);
    assert.deepEqual(differingPaths({ l: { 'x.io/y': '1' } }, { l: { 'x.io/y': '2' } }), [['l', 'x.io/y']]);
    assert.deepEqual(differingPaths({ a: 1 }, { a: 1 }), []);
  });
});
