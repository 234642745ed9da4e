import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { KubeObject } from '../../../src/adapters/kube/port.ts';
import { FluxstrapError, isFluxstrapError } from '../../../src/core/errors.ts';
import { clusterRuleRecipients } from '../../../src/sops/config.ts';
import { planComponents } from '../../../src/tasks/flux-components.ts';
import { accessChecks, BASE_OBJECTS, pendingDeployKey, pluralOf, postQuantumProblem, preflightKind, versionProblem } from '../../../src/tasks/preflight.ts';
import { verificationProblems } from '../../../src/tasks/verify-decryption.ts';

const obj = (apiVersion: string, kind: string, namespace?: string): KubeObject => ({
  apiVersion,
  kind,
  metadata: { name: kind.toLowerCase(), ...(namespace ? { namespace } : {}) },
});

void describe('preflight helpers', () => {
  void it('pluralOf covers the kinds of a Flux install', () => {
    assert.deepEqual(
      ['NetworkPolicy', 'GitRepository', 'Kustomization', 'CustomResourceDefinition', 'ClusterRoleBinding', 'Service', 'Ingress'].map(pluralOf),
      ['networkpolicies', 'gitrepositories', 'kustomizations', 'customresourcedefinitions', 'clusterrolebindings', 'services', 'ingresses'],
    );
  });
  void it('accessChecks asks create and patch once per resource, plus Secrets', () => {
    const checks = accessChecks(
      [obj('apps/v1', 'Deployment', 'flux-system'), obj('apps/v1', 'Deployment', 'flux-system'), obj('v1', 'Namespace')],
      'flux-system',
    );
    assert.deepEqual(
      checks.map((c) => `${c.verb} ${c.group}/${c.resource} ${c.namespace ?? '-'}`),
      [
        'create apps/deployments flux-system',
        'patch apps/deployments flux-system',
        'create /namespaces -',
        'patch /namespaces -',
        'create /secrets flux-system',
        'patch /secrets flux-system',
      ],
    );
  });
  const versions: [string, number, number, boolean][] = [
    ['v1.36.3', 1, 36, true],
    ['v1.32.0', 1, 32, true],
    ['v1.31.9', 1, 31, false],
    ['v0.0.0-master', Number.NaN, Number.NaN, false],
  ];
  for (const [v, major, minor, ok] of versions) {
    void it(`version ${v} ${ok ? 'passes' : 'is refused'}`, () => assert.equal(versionProblem(v, major, minor, '1.32') === undefined, ok));
  }
  void it('compares the key with the creation rule for the cluster folder, not with any rule', async () => {
    const [prod, other, fallback] = [
      'age13runq29jhy9kfpaegczrzttykerswh0qprq59msgd754yermtfmsa3hwg2',
      'age19j4d6v9j7rx5fs629fu387qz4zmlpsqjexa4s08tkfrrmfdl5cwqjlaupd',
      'age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs',
    ];
    const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-rule-'));
    try {
      const config = join(dir, '.sops.yaml');
      writeFileSync(
        config,
        `creation_rules:\n  - path_regex: ^clusters/prod/.*\n    age: ${prod}\n  - path_regex: ^clusters/dev/.*\n    key_groups:\n      - age: [${other}]\n`,
      );
      assert.deepEqual(await clusterRuleRecipients(config, join(dir, 'clusters/prod'), { name: 'prod', path: 'clusters/prod' }), [prod]);
      assert.deepEqual(await clusterRuleRecipients(config, join(dir, 'clusters/dev'), { name: 'dev', path: 'clusters/dev' }), [other]);
      await assert.rejects(
        clusterRuleRecipients(config, join(dir, 'clusters/edge'), { name: 'edge', path: 'clusters/edge' }),
        (e) => isFluxstrapError(e) && e.code === 'E_CONFIG' && /no creation rule .* clusters\/edge/.test(e.message),
      );
      writeFileSync(config, `creation_rules:\n  - path_regex: ^clusters/prod/.*\n    age: ${prod}\n  - age: ${fallback}\n`);
      assert.deepEqual(await clusterRuleRecipients(config, join(dir, 'clusters/edge'), { name: 'edge', path: 'clusters/edge' }), [fallback]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  void it('under --check, a repository not readable before its deploy key is registered is one pending read that ends the check', () => {
    const ctx = { cluster: { git: { url: 'ssh://git@github.com/me/fleet.git' } } } as never;
    const [change, ...rest] = preflightKind.plan(
      { minKubernetes: '1.32', scope: 'repository', deferRead: false },
      { problems: [], notes: [], pending: 'register the read-only deploy key (deploy key "t" on me/fleet)' },
      ctx,
    );
    assert.deepEqual(rest, []);
    assert.equal(change?.action, 'run');
    assert.equal(change?.target, 'repository ssh://git@github.com/me/fleet.git');
    assert.match(change?.summary ?? '', /once registered \(register the read-only deploy key .*\): its layout/);
    assert.equal(change?.checkHorizon, true);
  });
  void it('checks, before the repository is read, access to what every Flux install applies', () => {
    assert.deepEqual(
      accessChecks(BASE_OBJECTS, 'flux-system').map((c) => `${c.verb} ${c.group}/${c.resource} ${c.namespace ?? ''}`.trim()),
      [
        'create /namespaces',
        'patch /namespaces',
        'create apiextensions.k8s.io/customresourcedefinitions',
        'patch apiextensions.k8s.io/customresourcedefinitions',
        'create rbac.authorization.k8s.io/clusterroles',
        'patch rbac.authorization.k8s.io/clusterroles',
        'create rbac.authorization.k8s.io/clusterrolebindings',
        'patch rbac.authorization.k8s.io/clusterrolebindings',
        'create apps/deployments flux-system',
        'patch apps/deployments flux-system',
        'create /secrets flux-system',
        'patch /secrets flux-system',
      ],
    );
  });
  void it('finds no pending deploy key where no forge registers one', async () => {
    const on = (provider: string, auth: object) => ({ cluster: { git: { provider, auth } } }) as never;
    assert.equal(await pendingDeployKey(on('generic', { type: 'ssh', keyFile: 'k' })), undefined);
    assert.equal(await pendingDeployKey(on('github', { type: 'https' })), undefined);
  });
  void it('defers the repository only to a forge that would register its deploy key: else the read failure is a problem', async () => {
    for (const [provider, auth] of [
      ['generic', { type: 'ssh', keyFile: 'k' }],
      ['github', { type: 'https' }],
    ] as const) {
      const ctx = {
        cluster: { name: 'lab', path: 'clusters/lab', git: { provider, auth, url: 'ssh://git@h/me/r.git' } },
        source: () => Promise.reject(new FluxstrapError('E_GIT', 'git ls-remote: Permission denied (publickey)')),
        kube: () => Promise.reject(new FluxstrapError('E_KUBE', 'connection refused')),
      } as never;
      for (const params of [
        { minKubernetes: '1.32', scope: 'all', deferRead: true },
        { minKubernetes: '1.32', scope: 'repository', deferRead: false },
      ] as const) {
        const facts = await preflightKind.observe(params, ctx, { check: true });
        assert.equal(facts.pending, undefined, `${provider} ${params.scope}`);
        assert.deepEqual(facts.problems.map((q) => q.code).sort(), ['E_GIT', 'E_KUBE']);
      }
    }
  });
  void it('fails with every problem and its fix, keeping the code of a single one', () => {
    assert.deepEqual(preflightKind.plan({ minKubernetes: '1.32', scope: 'all', deferRead: false }, { problems: [], notes: [] }, undefined as never), []);
    assert.throws(
      () =>
        preflightKind.plan(
          { minKubernetes: '1.32', scope: 'all', deferRead: false },
          { problems: [{ what: 'a', fix: 'fa', code: 'E_GIT' }], notes: [] },
          undefined as never,
        ),
      (e) => isFluxstrapError(e) && e.code === 'E_GIT' && e.message === 'preflight: a' && e.hint === 'fa',
    );
    assert.throws(
      () =>
        preflightKind.plan(
          { minKubernetes: '1.32', scope: 'all', deferRead: false },
          {
            problems: [
              { what: 'a', fix: 'fa' },
              { what: 'b', fix: 'fb' },
            ],
            notes: [],
          },
          undefined as never,
        ),
      (e) => isFluxstrapError(e) && e.code === 'E_PRECONDITION' && /\(1\) a; \(2\) b/.test(e.message) && e.hint === '(1) fa; (2) fb',
    );
  });
});

void describe('post-quantum keys', () => {
  const controller = (tag: string): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'kustomize-controller', namespace: 'flux-system' },
    spec: { template: { spec: { containers: [{ name: 'manager', image: `ghcr.io/fluxcd/kustomize-controller:${tag}` }] } } },
  });
  const pq = [{ postQuantum: true, recipient: 'age1pq1x' }];
  void it('are refused with a controller older than v1.9 (Flux v2.7.5 ships v1.7.3)', () => {
    assert.match(postQuantumProblem(pq, [controller('v1.7.3')])?.what ?? '', /kustomize-controller v1\.7/);
  });
  void it('pass with v1.9 and newer, and classic keys pass with any', () => {
    assert.equal(postQuantumProblem(pq, [controller('v1.9.5')]), undefined);
    assert.equal(postQuantumProblem([{ postQuantum: false, recipient: 'age1x' }], [controller('v1.7.3')]), undefined);
  });
});

void describe('component order', () => {
  void it('namespaces, then CRDs, then the rest in build order', () => {
    const facts = [
      obj('apps/v1', 'Deployment', 'ns'),
      obj('apiextensions.k8s.io/v1', 'CustomResourceDefinition'),
      obj('v1', 'Service', 'ns'),
      obj('v1', 'Namespace'),
    ].map((desired) => ({ desired }));
    assert.deepEqual(
      planComponents(facts).map((c) => c.target.split(' ')[0]),
      ['Namespace', 'CustomResourceDefinition', 'Deployment', 'Service'],
    );
  });
});

void describe('verificationProblems', () => {
  const want = [{ file: 'clusters/a/s.sops.yaml', namespace: 'apps', name: 's', hashes: { a: 'h1', b: 'h2' } }];
  const base = { kustomization: 'Kustomization flux-system/flux-system', decryption: { provider: 'sops' }, want, check: false };
  void it('passes when every key holds the decrypted value', () =>
    assert.deepEqual(verificationProblems({ ...base, have: { 'apps/s': { a: 'h1', b: 'h2' } } }), []));
  void it('names missing Secrets, missing keys and differing keys, never values', () => {
    assert.deepEqual(verificationProblems({ ...base, have: { 'apps/s': undefined } }), ['Secret apps/s (from clusters/a/s.sops.yaml) is not in the cluster']);
    assert.deepEqual(verificationProblems({ ...base, have: { 'apps/s': { a: 'x' } } }), [
      'Secret apps/s lacks b',
      'Secret apps/s holds other values (still encrypted?) under a',
    ]);
  });
  void it('a key named constructor missing from the live Secret is missing, not a differing Object member', () => {
    const proto = [{ ...(want[0] as (typeof want)[number]), hashes: { constructor: 'h1', __proto__: 'h2' } }];
    assert.deepEqual(verificationProblems({ ...base, want: proto, have: { 'apps/s': {} } }), ['Secret apps/s lacks constructor']);
  });
  // kustomize-controller's --sops-age-secret supplies a key, never decryption itself.
  void it('requires decryption on the Kustomization', () => {
    assert.deepEqual(verificationProblems({ ...base, decryption: null, have: { 'apps/s': { a: 'h1', b: 'h2' } } }), [
      'Kustomization flux-system/flux-system has no spec.decryption (provider sops)',
    ]);
  });
  void it('checks every child Kustomization that applies SOPS files, and names the one applying a missing Secret', () => {
    const by = 'Kustomization flux-system/apps (clusters/a/apps.yaml:1)';
    const have = { 'apps/s': { a: 'h1', b: 'h2' } };
    const children = [{ ref: by, exists: true, decryption: 'sops' }];
    assert.deepEqual(verificationProblems({ ...base, have, children }), []);
    assert.deepEqual(verificationProblems({ ...base, want: [{ ...(want[0] as (typeof want)[0]), by }], have: {}, children }), [
      `Secret apps/s (from clusters/a/s.sops.yaml, applied by ${by}) is not in the cluster`,
    ]);
    assert.deepEqual(verificationProblems({ ...base, have, children: [{ ref: by, exists: false }] }), [`${by} is not in the cluster`]);
    assert.deepEqual(verificationProblems({ ...base, have, children: [{ ref: by, exists: true, failing: 'BuildFailed: age: no identity matched' }] }), [
      `${by} has no spec.decryption (provider sops)`,
      `${by} is not Ready: BuildFailed: age: no identity matched`,
    ]);
  });
  void it('has nothing to verify in check mode before the first bootstrap', () => {
    const { decryption: _d, ...rest } = base;
    assert.deepEqual(verificationProblems({ ...rest, check: true, have: {} }), []);
    assert.equal(verificationProblems({ ...rest, check: false, have: {} }).length, 1);
  });
});
