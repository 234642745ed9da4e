// The pure parts of the build recipe: turning upstream go.mod replaces into wrapper-module
// replaces, and pointing flux2's bases at the controllers' module files.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseReplaces, wrapperReplaces } from '../cluster/build.ts';
import { component } from '../cluster/components.ts';
import { localizeReleaseAssets } from '../cluster/gotk.ts';

void describe('wrapper module replaces', () => {
  const goMod = [
    'module k8s.io/kubernetes',
    'replace github.com/fluxcd/x/api => ./api',
    'replace gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1 // pinned',
    'replace (',
    '\tk8s.io/api => ./staging/src/k8s.io/api',
    '\tsigs.k8s.io/kustomize/api v0.1.0 => sigs.k8s.io/kustomize/api v0.21.1',
    '\tgithub.com/elsewhere => ../elsewhere',
    ')',
  ].join('\n');

  void test('parses single-line and block replaces, without comments', () => {
    assert.deepEqual(parseReplaces(goMod), [
      { from: 'github.com/fluxcd/x/api', to: './api' },
      { from: 'gopkg.in/yaml.v3', to: 'gopkg.in/yaml.v3 v3.0.1' },
      { from: 'k8s.io/api', to: './staging/src/k8s.io/api' },
      { from: 'sigs.k8s.io/kustomize/api v0.1.0', to: 'sigs.k8s.io/kustomize/api v0.21.1' },
      { from: 'github.com/elsewhere', to: '../elsewhere' },
    ]);
  });

  void test('keeps version replaces, maps kubernetes staging dirs to published modules, drops other dirs', () => {
    assert.deepEqual(wrapperReplaces(component('kubernetes'), goMod), [
      'gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1',
      'k8s.io/api => k8s.io/api v0.36.3',
      'sigs.k8s.io/kustomize/api v0.1.0 => sigs.k8s.io/kustomize/api v0.21.1',
    ]);
    assert.deepEqual(wrapperReplaces(component('source-controller'), goMod), [
      'gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1',
      'sigs.k8s.io/kustomize/api v0.1.0 => sigs.k8s.io/kustomize/api v0.21.1',
    ]);
  });
});

void describe('flux2 bases', () => {
  const base = (version: string): string =>
    [
      'resources:',
      `- https://github.com/fluxcd/source-controller/releases/download/${version}/source-controller.crds.yaml`,
      `- https://github.com/fluxcd/source-controller/releases/download/${version}/source-controller.deployment.yaml`,
      '- account.yaml',
    ].join('\n');

  void test('release assets become the module copies', () => {
    assert.equal(
      localizeReleaseAssets(base('v1.9.5'), 'source-controller', 'v1.9.5'),
      ['resources:', '- ../../../upstream/source-controller/crd', '- ../../../upstream/source-controller/manager', '- account.yaml'].join('\n'),
    );
  });

  void test('a Flux release bundling another controller version is refused', () => {
    assert.throws(() => localizeReleaseAssets(base('v1.9.4'), 'source-controller', 'v1.9.5'), /does not reference source-controller v1\.9\.5/);
  });
});
