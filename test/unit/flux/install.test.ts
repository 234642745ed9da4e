import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../helpers/cli.ts';
import { defaultInstallOptions, generateComponents, readHeader, validateInstallOptions } from '../../../src/flux/install.ts';
import { DEFAULT_FLUX_VERSION, loadManifests } from '../../../src/flux/manifests.ts';
import { generateSync } from '../../../src/flux/sync.ts';

interface Container {
  image: string;
  args: string[];
}
interface PodSpec {
  containers: Container[];
  imagePullSecrets?: unknown;
  tolerations?: unknown;
  nodeSelector?: unknown;
}
interface Obj {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } & Record<string, unknown>;
  roleRef?: { name: string };
}
const objects = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as Obj);
const fixture = (name: string) => readFileSync(join(repoRoot, 'test', 'fixtures', 'flux', name), 'utf8');

void describe('gotk-sync.yaml', () => {
  void it('is byte for byte what flux bootstrap wrote in the seed repository', () => {
    assert.equal(
      generateSync({ url: 'https://github.com/kristiangogov/homelab.git', branch: 'main', path: 'clusters/production' }),
      fixture('gotk-sync.pristine.yaml'),
    );
  });
  void it('takes a provider (GitHub App) and keeps keys sorted', () => {
    const repo = objects(generateSync({ url: 'https://github.com/me/x.git', branch: 'dev', path: './clusters/a', provider: 'github' }))[0];
    assert.deepEqual(Object.keys((repo?.spec ?? {}) as object), ['interval', 'provider', 'ref', 'secretRef', 'url']);
  });
});

void describe('gotk-components.yaml', async () => {
  const { bundle, components } = await loadManifests(DEFAULT_FLUX_VERSION);
  const gen = (o: Partial<ReturnType<typeof defaultInstallOptions>> = {}) =>
    objects(generateComponents(bundle, { ...defaultInstallOptions(DEFAULT_FLUX_VERSION), components: ['source-controller', 'kustomize-controller'], ...o }));
  const deploy = (objs: Obj[], name: string) => objs.find((o) => o.kind === 'Deployment' && o.metadata.name === name);

  void it('ships source-controller and kustomize-controller at least', () => {
    assert.ok(components.includes('source-controller') && components.includes('kustomize-controller'), components.join());
  });

  void it('labels every object, namespaces the namespaced ones, suffixes the RBAC and follows the suffix in roleRefs', () => {
    const objs = gen();
    for (const o of objs) {
      assert.equal(o.metadata.labels?.['app.kubernetes.io/version'], DEFAULT_FLUX_VERSION, `${o.kind}/${o.metadata.name}`);
      assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'flux');
      const clusterScoped = ['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind);
      assert.equal(o.metadata.namespace, clusterScoped ? undefined : 'flux-system', `${o.kind}/${o.metadata.name}`);
    }
    const roles = new Set(objs.filter((o) => o.kind === 'ClusterRole').map((o) => o.metadata.name));
    for (const b of objs.filter((o) => o.kind === 'ClusterRoleBinding')) {
      assert.match(b.metadata.name, /-flux-system$/);
      assert.ok(b.roleRef?.name === 'cluster-admin' || roles.has(b.roleRef?.name ?? ''), `${b.metadata.name} → ${b.roleRef?.name}`);
    }
    assert.equal(deploy(objs, 'kustomize-controller')?.spec?.template.metadata.labels['app.kubernetes.io/instance'], 'flux-system');
  });

  void it('applies the install options the way flux install does', () => {
    const objs = gen({
      registry: 'reg.home/flux',
      imagePullSecret: 'pull',
      networkPolicy: false,
      watchAllNamespaces: false,
      logLevel: 'error',
      tolerationKeys: ['gpu'],
      clusterDomain: 'lab.local',
    });
    assert.equal(
      objs.some((o) => o.kind === 'NetworkPolicy'),
      false,
    );
    const sc = deploy(objs, 'source-controller')?.spec?.template.spec;
    assert.ok(sc);
    assert.equal(sc.containers[0]?.image, 'reg.home/flux/source-controller:v1.9.5');
    assert.deepEqual(sc.imagePullSecrets, [{ name: 'pull' }]);
    assert.deepEqual(sc.tolerations, [{ key: 'gpu', operator: 'Exists' }]);
    assert.deepEqual(sc.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.deepEqual(sc.containers[0]?.args.slice(0, 3), ['--events-addr=', '--watch-all-namespaces=false', '--log-level=error']);
    assert.equal(sc.containers[0]?.args[6], '--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.lab.local.');
  });

  void it('points events at notification-controller when it is installed', () => {
    if (!components.includes('notification-controller')) {
      const text = generateComponents(
        new Map([
          ...bundle,
          ['notification-controller.yaml', bundle.get('kustomize-controller.yaml')?.replaceAll('kustomize-controller', 'notification-controller') ?? ''],
        ]),
        { ...defaultInstallOptions(DEFAULT_FLUX_VERSION), components: ['source-controller', 'kustomize-controller', 'notification-controller'] },
      );
      assert.match(text, /--events-addr=http:\/\/notification-controller\.\$\(RUNTIME_NAMESPACE\)\.svc\.cluster\.local\.\//);
      return;
    }
    assert.match(generateComponents(bundle, defaultInstallOptions(DEFAULT_FLUX_VERSION)), /--events-addr=http:\/\/notification-controller\./);
  });

  void it('writes the header flux writes, and reads it back', () => {
    const text = generateComponents(bundle, { ...defaultInstallOptions(DEFAULT_FLUX_VERSION), components: ['source-controller', 'kustomize-controller'] });
    assert.deepEqual(readHeader(text), { version: DEFAULT_FLUX_VERSION, components: ['source-controller', 'kustomize-controller'] });
    assert.deepEqual(readHeader(fixture('gotk-components.yaml')), {
      version: 'v2.7.5',
      components: ['source-controller', 'kustomize-controller', 'helm-controller', 'notification-controller'],
    });
  });

  void it('refuses options flux refuses', () => {
    const o = { ...defaultInstallOptions(DEFAULT_FLUX_VERSION), components: ['source-controller', 'kustomize-controller'] };
    assert.throws(() => validateInstallOptions({ ...o, components: ['kustomize-controller'] }, components), /must include source-controller/);
    assert.throws(() => validateInstallOptions({ ...o, components: [...o.components, 'x'] }, components), /unknown Flux component x/);
    assert.throws(() => validateInstallOptions({ ...o, tolerationKeys: ['a b'] }, components), /invalid toleration key/);
    assert.throws(() => validateInstallOptions({ ...o, registry: '' }, components), /invalid --registry/);
    assert.doesNotThrow(() => validateInstallOptions(o, components));
  });
});
