// Impersonation from the kubeconfig (`as`, `as-groups`, `as-uid`, `as-user-extra`) against the real
// kube-apiserver: the kubeconfig's own identity is a ServiceAccount that may do nothing but
// impersonate; only the impersonated user and group may touch ConfigMaps. So a request that
// succeeds went as them, and a uid or extra the ServiceAccount may not claim is refused by the
// apiserver, which proves those headers are sent too.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { connectKube } from '../../src/adapters/kube.ts';
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import { FluxstrapError } from '../../src/core/errors.ts';
import { clusterForFile } from '../cluster/testing.ts';

const NS = 'impersonation';
const RBAC = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'impersonator', namespace: NS } },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'impersonate-jane' },
    rules: [
      { apiGroups: [''], resources: ['users'], verbs: ['impersonate'], resourceNames: ['jane'] },
      { apiGroups: [''], resources: ['groups'], verbs: ['impersonate'], resourceNames: ['deployers'] },
      { apiGroups: ['authentication.k8s.io'], resources: ['uids'], verbs: ['impersonate'], resourceNames: ['jane-uid'] },
      { apiGroups: ['authentication.k8s.io'], resources: ['userextras/scopes'], verbs: ['impersonate'], resourceNames: ['deploy'] },
    ],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'impersonate-jane' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'impersonate-jane' },
    subjects: [{ kind: 'ServiceAccount', name: 'impersonator', namespace: NS }],
  },
  // jane may read ConfigMaps; only the group deployers may write them.
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'read', namespace: NS },
    rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'write', namespace: NS },
    rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'patch'] }],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'jane-reads', namespace: NS },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'jane' }],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'deployers-write', namespace: NS },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'write' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'deployers' }],
  },
];

let token = '';
const file = clusterForFile({ flux: 'off' }, async (c) => {
  await c.kubectl(['apply', '-f', '-'], RBAC.map((o) => stringify(o)).join('---\n'));
  token = (await c.kubectl(['create', 'token', 'impersonator', '-n', NS, '--duration=1h'])).trim();
});

const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-impersonation-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** The ServiceAccount's kubeconfig, with these impersonation fields. */
async function asServiceAccount(user: Record<string, unknown>): Promise<KubeAdapter> {
  const admin = parse(readFileSync(file.cluster.kubeconfig, 'utf8')) as { clusters: { cluster: Record<string, unknown> }[] };
  const path = join(dir, `kubeconfig-${n++}`);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'sa',
      clusters: [{ name: 'test', cluster: admin.clusters[0]?.cluster }],
      users: [{ name: 'sa', user: { token, ...user } }],
      contexts: [{ name: 'sa', context: { cluster: 'test', user: 'sa', namespace: NS } }],
    }),
    { mode: 0o600 },
  );
  return connectKube({ kubeconfig: path });
}

const CHECKS = [
  { verb: 'get', group: '', resource: 'configmaps', namespace: NS },
  { verb: 'create', group: '', resource: 'configmaps', namespace: NS },
];
// No namespace: it goes to the context's, as with kubectl.
const configMap = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: 'v' } });

const forbidden =
  (what: RegExp) =>
  (e: unknown): boolean =>
    e instanceof FluxstrapError && e.code === 'E_KUBE' && /HTTP 403/.test(e.message) && what.test(e.message);

void describe('kubeconfig impersonation against the real apiserver', () => {
  void it('without as, the ServiceAccount may do nothing with ConfigMaps', () =>
    file.run(async () => {
      const kube = await asServiceAccount({});
      assert.deepEqual(
        (await kube.accessReview(CHECKS)).map((r) => r.allowed),
        [false, false],
      );
      await assert.rejects(kube.apply(configMap('plain')), forbidden(/system:serviceaccount:impersonation:impersonator/));
    }));

  void it('as jane in deployers (with the uid and extra it may claim): the requests go as jane, so the write succeeds', () =>
    file.run(async () => {
      const kube = await asServiceAccount({ as: 'jane', 'as-groups': ['deployers'], 'as-uid': 'jane-uid', 'as-user-extra': { scopes: ['deploy'] } });
      assert.deepEqual(
        (await kube.accessReview(CHECKS)).map((r) => r.allowed),
        [true, true],
      );
      const applied = await kube.apply(configMap('as-jane'));
      assert.equal(applied.metadata.namespace, NS);
      assert.match(await file.cluster.kubectl(['get', 'configmap', 'as-jane', '-n', NS, '-o', 'name']), /configmap\/as-jane/);
    }));

  void it('as jane without the group: only what jane herself may (the group header is what grants the write)', () =>
    file.run(async () => {
      const kube = await asServiceAccount({ as: 'jane' });
      assert.deepEqual(
        (await kube.accessReview(CHECKS)).map((r) => r.allowed),
        [true, false],
      );
      await assert.rejects(kube.apply(configMap('jane-alone')), forbidden(/User "jane" cannot/));
    }));

  void it('a group, uid or extra the ServiceAccount may not claim is refused by the apiserver: every header is sent', () =>
    file.run(async () => {
      for (const [user, what] of [
        [{ as: 'jane', 'as-groups': ['deployers', 'admins'] }, /groups/],
        [{ as: 'jane', 'as-uid': 'other-uid' }, /uids/],
        [{ as: 'jane', 'as-user-extra': { scopes: ['deploy', 'admin'] } }, /userextras\/scopes/],
        [{ as: 'john' }, /users/],
      ] as const) {
        const kube = await asServiceAccount(user);
        await assert.rejects(kube.apply(configMap('refused')), forbidden(what), JSON.stringify(user));
      }
    }));
});
