import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../helpers/cli.ts';
import { defaultInstallOptions, generateComponents, installOptionsOf } from '../../../src/flux/install.ts';
import { loadManifests } from '../../../src/flux/manifests.ts';
import {
  apiRemovalFindings,
  compareVersions,
  fluxCrds,
  kubernetesSupport,
  parseFluxVersion,
  postBuildKustomizations,
  storedVersionFindings,
  strictSubstitution,
  substitutionFindings,
} from '../../../src/flux/upgrade.ts';

const fixture = readFileSync(join(repoRoot, 'test', 'fixtures', 'flux', 'gotk-components.yaml'), 'utf8');
const docs = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as unknown);
const v275 = fluxCrds(docs(fixture));
const v295 = fluxCrds(
  docs(
    generateComponents((await loadManifests('v2.9.5')).bundle, {
      ...defaultInstallOptions('v2.9.5'),
      components: ['source-controller', 'kustomize-controller', 'helm-controller'],
    }),
  ),
);

void describe('Flux CRDs of a gotk-components.yaml', () => {
  void it('reads served and storage versions: v2.7.5 (real flux file) still serves v1beta2, v2.9.5 no longer does', () => {
    assert.deepEqual(v275.get('helmrepositories.source.toolkit.fluxcd.io'), {
      name: 'helmrepositories.source.toolkit.fluxcd.io',
      group: 'source.toolkit.fluxcd.io',
      kind: 'HelmRepository',
      served: ['v1', 'v1beta2'],
      storage: 'v1',
    });
    assert.deepEqual(v295.get('helmrepositories.source.toolkit.fluxcd.io')?.served, ['v1']);
    assert.deepEqual(v295.get('helmreleases.helm.toolkit.fluxcd.io')?.served, ['v2']);
    assert.equal(v275.size, 11);
  });
});

void describe('stored versions', () => {
  void it('names each CRD that stored a version the target drops; the live storage version decides whether it can be migrated in place', () => {
    const found = storedVersionFindings(
      [
        { name: 'helmrepositories.source.toolkit.fluxcd.io', storage: 'v1', storedVersions: ['v1beta2', 'v1'] },
        { name: 'gitrepositories.source.toolkit.fluxcd.io', storage: 'v1', storedVersions: ['v1'] },
        { name: 'kustomizations.kustomize.toolkit.fluxcd.io', storage: 'v1beta2', storedVersions: ['v1beta2'] },
        { name: 'alerts.notification.toolkit.fluxcd.io', storage: 'v1beta3', storedVersions: ['v1beta2'] },
      ],
      v295,
    );
    assert.deepEqual(found, [
      {
        crd: 'helmrepositories.source.toolkit.fluxcd.io',
        group: 'source.toolkit.fluxcd.io',
        kind: 'HelmRepository',
        stale: ['v1beta2'],
        storage: 'v1',
        migratable: true,
      },
      {
        crd: 'kustomizations.kustomize.toolkit.fluxcd.io',
        group: 'kustomize.toolkit.fluxcd.io',
        kind: 'Kustomization',
        stale: ['v1beta2'],
        storage: 'v1beta2',
        migratable: false,
      },
    ]);
  });
});

void describe('API removals in the repository', () => {
  void it('gives file:line of the apiVersion and the version to use; served versions and foreign kinds pass', () => {
    const text = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: a}',
      '---',
      '# a comment',
      'kind: HelmRelease',
      'apiVersion: helm.toolkit.fluxcd.io/v2beta2',
      'metadata:',
      '  name: podinfo',
      '---',
      'apiVersion: source.toolkit.fluxcd.io/v1',
      'kind: GitRepository',
      'metadata: {name: ok}',
      '---',
      'apiVersion: image.toolkit.fluxcd.io/v1beta2',
      'kind: ImagePolicy',
      'metadata: {name: not-installed}',
      '',
    ].join('\n');
    assert.deepEqual(apiRemovalFindings([{ file: 'clusters/a/apps.yaml', text }], v295), [
      {
        file: 'clusters/a/apps.yaml',
        line: 7,
        kind: 'HelmRelease',
        name: 'podinfo',
        apiVersion: 'helm.toolkit.fluxcd.io/v2beta2',
        newApiVersion: 'helm.toolkit.fluxcd.io/v2',
      },
    ]);
    assert.deepEqual(apiRemovalFindings([{ file: 'x.yaml', text }], v275), []);
  });

  void it('a file that is not YAML is an error naming it', () => {
    assert.throws(
      () => apiRemovalFindings([{ file: 'bad.yaml', text: 'a: [1\n' }], v295),
      (e: Error & { location?: { file?: string; line?: number } }) => /invalid YAML/.test(e.message) && e.location?.file === 'bad.yaml',
    );
  });

  void it('an alias bomb is refused, not expanded', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      ...Array.from(
        { length: 9 },
        (_, i) =>
          `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`,
      ),
    ].join('\n');
    assert.throws(
      () => apiRemovalFindings([{ file: 'bomb.yaml', text: bomb }], v295),
      (e: Error & { location?: { file?: string } }) => /alias/.test(e.message) && e.location?.file === 'bomb.yaml',
    );
  });
});

void describe('strict post-build substitution', () => {
  const ks = [
    'apiVersion: kustomize.toolkit.fluxcd.io/v1',
    'kind: Kustomization',
    'metadata: {name: apps, namespace: flux-system}',
    'spec:',
    '  path: ./clusters/a/apps/',
    '  sourceRef: {kind: GitRepository, name: flux-system}',
    '  postBuild:',
    '    substitute: {DOMAIN: example.org}',
    '    substituteFrom: [{kind: ConfigMap, name: vars}, {kind: Secret, name: s, optional: true}]',
    '---',
    'apiVersion: kustomize.toolkit.fluxcd.io/v1',
    'kind: Kustomization',
    'metadata: {name: other}',
    'spec: {path: ./x, sourceRef: {kind: GitRepository, name: elsewhere}, postBuild: {}}',
    '---',
    'apiVersion: kustomize.toolkit.fluxcd.io/v1',
    'kind: Kustomization',
    'metadata: {name: plain}',
    'spec: {path: ./y}',
    '',
  ].join('\n');

  void it('finds Kustomizations with postBuild, their path, source and variables', () => {
    const found = postBuildKustomizations([{ file: 'clusters/a/apps.yaml', text: ks }]);
    assert.deepEqual(
      found.map((k) => [k.name, k.namespace, k.path, k.sameRepo, k.line]),
      [
        ['apps', 'flux-system', 'clusters/a/apps', true, 1],
        ['other', 'flux-system', 'x', false, 11],
      ],
    );
    assert.deepEqual(found[0]?.substitute, ['DOMAIN']);
    assert.deepEqual(found[0]?.substituteFrom, [
      { kind: 'ConfigMap', name: 'vars', optional: false },
      { kind: 'Secret', name: 's', optional: true },
    ]);
  });

  void it('reports ${VAR} without default or value at its line; defaults, escapes, defined names and disabled objects pass', () => {
    const text = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: a}',
      'data:',
      '  a: ${DOMAIN}',
      '  b: https://${HOST}/${PATH_PART}',
      '  c: ${DEF:=x} ${DEF2:-} ${DEF3=y}',
      '  d: $${ESCAPED}',
      '---',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: b',
      '  annotations: {kustomize.toolkit.fluxcd.io/substitute: disabled}',
      'data: {x: "${IGNORED}"}',
      '---',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: c}',
      'data: {y: "${LATE}"}',
      '',
    ].join('\n');
    const found = substitutionFindings([{ file: 'clusters/a/apps/cm.yaml', text }], 'flux-system/apps', new Set(['DOMAIN', 'PATH_PART']));
    assert.deepEqual(
      found.map((f) => `${f.file}:${f.line} ${f.variable}`),
      ['clusters/a/apps/cm.yaml:6 HOST', 'clusters/a/apps/cm.yaml:20 LATE'],
    );
  });

  void it('a long line of near-matches stays linear', () => {
    const text = `a: "${'${A'.repeat(200_000)}"\n`;
    const t0 = performance.now();
    assert.deepEqual(substitutionFindings([{ file: 'f.yaml', text }], 'k', new Set()), []);
    assert.ok(performance.now() - t0 < 2000);
  });

  void it('is on from Flux 2.9', () => {
    assert.equal(strictSubstitution('v2.8.6'), false);
    assert.equal(strictSubstitution('v2.9.0'), true);
  });
});

void describe('versions', () => {
  void it('compares and refuses what is not a release', () => {
    assert.ok(compareVersions('v2.9.5', 'v2.10.0') < 0);
    assert.equal(compareVersions('2.9.5', 'v2.9.5'), 0);
    assert.throws(() => parseFluxVersion('latest'), /invalid --flux-version "latest"/);
  });

  void it('Kubernetes against the range the Flux minor supports', () => {
    assert.deepEqual(kubernetesSupport('v2.9.5', 1, 36), { status: 'supported', range: ['1.34', '1.36'] });
    assert.equal(kubernetesSupport('v2.9.5', 1, 33).status, 'older');
    assert.equal(kubernetesSupport('v2.9.5', 1, 37).status, 'newer');
    assert.equal(kubernetesSupport('v2.99.0', 1, 36).status, 'unknown');
  });
});

void describe('install options read back from a gotk-components.yaml', () => {
  void it('the real v2.7.5 file: flux defaults with its four components', () => {
    assert.deepEqual(installOptionsOf(fixture, 'f.yaml'), {
      ...defaultInstallOptions('v2.7.5'),
      components: ['source-controller', 'kustomize-controller', 'helm-controller', 'notification-controller'],
    });
  });

  void it('a generation with every option gives those options back', async () => {
    const o = {
      ...defaultInstallOptions('v2.9.5'),
      components: ['source-controller', 'kustomize-controller'],
      registry: 'registry.home/fluxcd',
      imagePullSecret: 'pull',
      watchAllNamespaces: false,
      networkPolicy: false,
      logLevel: 'debug',
      clusterDomain: 'home.arpa',
      tolerationKeys: ['a', 'b/c'],
    };
    assert.deepEqual(installOptionsOf(generateComponents((await loadManifests('v2.9.5')).bundle, o), 'f.yaml'), o);
  });

  void it("a file without flux's header is refused, naming it", () => {
    assert.throws(
      () => installOptionsOf('apiVersion: v1\nkind: Namespace\nmetadata: {name: flux-system}\n', 'clusters/a/flux-system/gotk-components.yaml'),
      (e: Error & { location?: { file?: string } }) =>
        /no "# Flux Version:"/.test(e.message) && e.location?.file === 'clusters/a/flux-system/gotk-components.yaml',
    );
  });
});
