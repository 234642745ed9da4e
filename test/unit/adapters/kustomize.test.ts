import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { applyJson6902, kustomizeBuild, mergePatch, parseObjects, parseObjectsCached } from '../../../src/adapters/kustomize.ts';
import type { KubeObject } from '../../../src/adapters/kube/port.ts';
import { isFluxstrapError } from '../../../src/core/errors.ts';

const FIXTURES = new URL('../../fixtures/flux/', import.meta.url).pathname;
const KUBECTL = '/usr/bin/kubectl';

function kubectlBuild(dir: string): KubeObject[] {
  try {
    return parseObjects(execFileSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 << 20 }), dir);
  } catch (e) {
    throw new Error(`kubectl kustomize is needed for this test (install kubectl at ${KUBECTL})`, { cause: e });
  }
}

const key = (o: KubeObject) => `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const byKey = (objs: KubeObject[]) => new Map(objs.map((o) => [key(o), o]));

const tmp: string[] = [];
after(async () => {
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});

/** A flux-system dir made of the fixture files and the given kustomization.yaml. */
async function fluxDir(kustomization: string, sync = 'gotk-sync.pristine.yaml'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fluxstrap-kustomize-'));
  tmp.push(dir);
  await copyFile(join(FIXTURES, 'gotk-components.yaml'), join(dir, 'gotk-components.yaml'));
  await copyFile(join(FIXTURES, sync), join(dir, 'gotk-sync.yaml'));
  await writeFile(join(dir, 'kustomization.yaml'), kustomization);
  return dir;
}

async function assertSameAsKubectl(dir: string): Promise<KubeObject[]> {
  const native = await kustomizeBuild(dir);
  assert.equal(native.engine, 'native', native.fallbackReason);
  const want = byKey(kubectlBuild(dir));
  const got = byKey(native.objects);
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [k, obj] of want) assert.deepEqual(got.get(k), obj, k);
  return native.objects;
}

void describe('kustomizeBuild against kubectl kustomize on the Flux v2.7.5 fixtures', () => {
  void it('builds the kustomization.yaml flux bootstrap writes', async () => {
    const dir = await fluxDir(await readFixture('kustomization.yaml'), 'gotk-sync.yaml');
    const objs = await assertSameAsKubectl(dir);
    assert.equal(objs.length, 32 + 2);
  });

  void it('applies the decryption patch, the Deployment args patch and the labels of a customised flux-system', async () => {
    const dir = await fluxDir(await readFixture('kustomization-with-decryption-patch.yaml'));
    const objs = await assertSameAsKubectl(dir);
    const ks = objs.find((o) => o.kind === 'Kustomization');
    assert.deepEqual(ks?.spec && (ks.spec as { decryption?: unknown }).decryption, { provider: 'sops', secretRef: { name: 'sops-age' } });
  });

  void it('applies strategic-merge patches to custom resources as JSON merge patches, from a file too', async () => {
    const dir = await fluxDir(`resources: [gotk-components.yaml, gotk-sync.yaml]
patches:
  - path: decryption.yaml
  - patch: |
      apiVersion: source.toolkit.fluxcd.io/v1
      kind: GitRepository
      metadata:
        name: flux-system
        namespace: flux-system
      spec:
        interval: 5m
        secretRef: null
  - patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: not-used
      spec:
        replicas: 2
    target:
      kind: Deployment
      name: "kustomize-.*"
`);
    await writeFile(
      join(dir, 'decryption.yaml'),
      `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  decryption:
    provider: sops
    secretRef:
      name: sops-age
`,
    );
    await assertSameAsKubectl(dir);
  });

  void it('builds a directory resource as its own kustomization', async () => {
    const parent = await fluxDir('');
    const dir = join(parent, 'flux-system');
    await mkdir(dir);
    for (const f of ['gotk-components.yaml', 'gotk-sync.yaml']) await rename(join(parent, f), join(dir, f));
    await writeFile(join(dir, 'kustomization.yaml'), 'resources: [gotk-components.yaml, gotk-sync.yaml]\n');
    await writeFile(
      join(parent, 'kustomization.yaml'),
      `resources: [flux-system]\npatches:\n  - patch: '[{"op": "remove", "path": "/spec/prune"}]'\n    target: {kind: Kustomization}\n`,
    );
    await assertSameAsKubectl(parent);
  });

  void it('hands features outside its subset to kubectl kustomize and says why', async () => {
    const dir = await fluxDir('resources: [gotk-components.yaml, gotk-sync.yaml]\nimages:\n  - name: ghcr.io/fluxcd/source-controller\n    newTag: v9.9.9\n');
    const res = await kustomizeBuild(dir, { kubectl: KUBECTL });
    assert.equal(res.engine, 'kubectl');
    assert.match(res.fallbackReason ?? '', /images/);
    const sc = res.objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'source-controller');
    assert.match(JSON.stringify(sc), /source-controller:v9\.9\.9/);
  });

  void it('hands strategic merges of lists into built-in kinds to kubectl (they merge by key)', async () => {
    const dir = await fluxDir(`resources: [gotk-components.yaml, gotk-sync.yaml]
patches:
  - patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: kustomize-controller
        namespace: flux-system
      spec:
        template:
          spec:
            containers:
              - name: manager
                args: ["--sops-age-secret=sops-age"]
`);
    const res = await kustomizeBuild(dir, { kubectl: KUBECTL });
    assert.equal(res.engine, 'kubectl');
    const kc = res.objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'kustomize-controller');
    assert.match(JSON.stringify(kc), /--sops-age-secret=sops-age/);
  });

  void it('refuses a target-less patch whose object is missing, as kustomize does', async () => {
    const dir = await fluxDir(
      'resources: [gotk-sync.yaml]\npatches:\n  - patch: |\n      kind: Kustomization\n      apiVersion: kustomize.toolkit.fluxcd.io/v1\n      metadata: {name: flux-system}\n      spec: {prune: false}\n',
    );
    await assert.rejects(kustomizeBuild(dir), (e) => isFluxstrapError(e) && e.code === 'E_CONFIG' && /matches no resource/.test(e.message));
  });

  void it('selects patch targets with Go regexp syntax, as kustomize does', async () => {
    const dir = await fluxDir(`resources: [gotk-components.yaml, gotk-sync.yaml]
patches:
  - patch: '[{"op": "add", "path": "/metadata/labels/picked", "value": "yes"}]'
    target: {kind: '[[:upper:]]eployment', name: '\\Qkustomize-controller\\E|(?i)HELM-.*'}
`);
    const objs = await assertSameAsKubectl(dir);
    const picked = objs.filter((o) => o.metadata.labels?.picked === 'yes').map((o) => o.metadata.name);
    assert.deepEqual(picked.sort(), ['helm-controller', 'kustomize-controller']);
  });

  void it('a backtracking target against a long name returns, selecting what kustomize selects', async () => {
    const dir = await fluxDir(`resources: [cm.yaml]
patches:
  - patch: '[{"op": "add", "path": "/data/picked", "value": "yes"}]'
    target: {kind: ConfigMap, name: '(a+)+b'}
`);
    await writeFile(join(dir, 'cm.yaml'), `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${'a'.repeat(40)}c}\ndata: {x: y}\n`);
    const [cm] = await assertSameAsKubectl(dir);
    assert.deepEqual(cm?.data, { x: 'y' });
  });

  void it('a target RE2 refuses is an E_CONFIG error naming the patch', async () => {
    const dir = await fluxDir("resources: [gotk-sync.yaml]\npatches:\n  - patch: '[]'\n    target: {kind: '(?!Kustomization)'}\n");
    await assert.rejects(
      kustomizeBuild(dir),
      (e) =>
        isFluxstrapError(e) &&
        e.code === 'E_CONFIG' &&
        e.location?.field === 'patches[0]' &&
        /^target\.kind "\^\(\?:\(\?!Kustomization\)\)\$" is not a valid regular expression: invalid or unsupported Perl syntax/.test(e.message),
    );
  });

  void it('names the file of a broken patch', async () => {
    const dir = await fluxDir(
      'resources: [gotk-components.yaml]\npatches:\n  - patch: \'[{"op": "replace", "path": "/spec/nope", "value": 1}]\'\n    target: {kind: Namespace}\n',
    );
    await assert.rejects(kustomizeBuild(dir), (e) => isFluxstrapError(e) && e.code === 'E_CONFIG' && e.location?.field === 'patches[0].patch[0]');
  });
});

void describe('keys from the repository never reach Object.prototype', () => {
  const polluted = () => (({}) as Record<string, unknown>).polluted;

  for (const path of ['/__proto__/polluted', '/constructor/prototype/polluted', '/spec/__proto__/polluted', '/constructor/polluted']) {
    void it(`refuses a JSON6902 patch at ${path}, naming the kustomization file`, async () => {
      const dir = await fluxDir(
        `resources: [gotk-sync.yaml]\npatches:\n  - patch: '[{"op": "add", "path": "${path}", "value": "yes"}]'\n    target: {kind: Kustomization}\n`,
      );
      await assert.rejects(kustomizeBuild(dir), (e) => {
        assert.ok(isFluxstrapError(e), String(e));
        assert.equal(e.code, 'E_CONFIG');
        assert.equal(e.location?.file, join(dir, 'kustomization.yaml'));
        assert.doesNotMatch(e.message, /\n/);
        assert.match(e.message, /path does not exist/);
        return true;
      });
      assert.equal(polluted(), undefined);
      assert.equal((Object as unknown as Record<string, unknown>).polluted, undefined);
    });
  }

  void it('replace, remove, move, copy and test through __proto__ or constructor are refused too', () => {
    const where = { file: 'k.yaml', field: 'patches[0]' };
    for (const op of [
      { op: 'replace', path: '/__proto__/polluted', value: 1 },
      { op: 'replace', path: '/constructor', value: 1 },
      { op: 'remove', path: '/toString' },
      { op: 'move', from: '/__proto__', path: '/x' },
      { op: 'copy', from: '/constructor/prototype', path: '/x' },
      { op: 'test', path: '/hasOwnProperty', value: null },
    ]) {
      assert.throws(
        () => applyJson6902({ a: 1 }, [op] as never, where),
        (e) => isFluxstrapError(e) && e.code === 'E_CONFIG',
        JSON.stringify(op),
      );
    }
    assert.equal(polluted(), undefined);
  });

  void it('keys named __proto__ and constructor are data, as kubectl kustomize keeps them', async () => {
    const dir = await fluxDir(`resources: [gotk-sync.yaml]
patches:
  - patch: '[{"op": "add", "path": "/spec/constructor", "value": {"prototype": {"polluted": 1}}}, {"op": "add", "path": "/spec/__proto__", "value": {"polluted": 1}}, {"op": "add", "path": "/spec/__proto__/toString", "value": "x"}]'
    target: {kind: GitRepository}
  - patch: |
      apiVersion: kustomize.toolkit.fluxcd.io/v1
      kind: Kustomization
      metadata:
        name: flux-system
        namespace: flux-system
      spec:
        __proto__:
          polluted: 1
        constructor:
          prototype:
            polluted: 1
`);
    const objs = await assertSameAsKubectl(dir);
    const spec = (kind: string) => objs.find((o) => o.kind === kind)?.spec as Record<string, unknown>;
    assert.deepEqual(Object.getOwnPropertyDescriptor(spec('GitRepository'), '__proto__')?.value, { polluted: 1, toString: 'x' });
    assert.deepEqual(Object.getOwnPropertyDescriptor(spec('Kustomization'), '__proto__')?.value, { polluted: 1 });
    assert.equal(Object.getPrototypeOf(spec('Kustomization')), Object.prototype);
    assert.equal(polluted(), undefined);
  });

  void it('a merge patch with a __proto__ key adds that key', () => {
    const patch = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 1}}}') as never;
    const out = mergePatch({ a: 1 }, patch) as Record<string, unknown>;
    assert.deepEqual(Object.keys(out), ['a', '__proto__', 'constructor']);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(polluted(), undefined);
  });

  void it('a patches or labels entry that is not a map is an E_CONFIG error, not a crash', async () => {
    for (const k of ['patches: [null]', 'patches: ["x"]', 'labels: [null]']) {
      const dir = await fluxDir(`resources: [gotk-sync.yaml]\n${k}\n`);
      await assert.rejects(kustomizeBuild(dir), (e) => isFluxstrapError(e) && e.code === 'E_CONFIG' && /must be a map/.test(e.message), k);
    }
  });
});

void describe('JSON patches', () => {
  const where = { file: 'k.yaml', field: 'patches[0]' };
  const table: { name: string; doc: unknown; ops: unknown[]; want: unknown }[] = [
    { name: 'add appends with -', doc: { a: [1] }, ops: [{ op: 'add', path: '/a/-', value: 2 }], want: { a: [1, 2] } },
    { name: 'add inserts at an index', doc: { a: [1, 3] }, ops: [{ op: 'add', path: '/a/1', value: 2 }], want: { a: [1, 2, 3] } },
    { name: 'escaped keys', doc: { m: {} }, ops: [{ op: 'add', path: '/m/a~1b~0c', value: 'x' }], want: { m: { 'a/b~c': 'x' } } },
    { name: 'remove', doc: { a: 1, b: 2 }, ops: [{ op: 'remove', path: '/a' }], want: { b: 2 } },
    { name: 'replace', doc: { a: 1 }, ops: [{ op: 'replace', path: '/a', value: { x: 1 } }], want: { a: { x: 1 } } },
    { name: 'move', doc: { a: 1 }, ops: [{ op: 'move', from: '/a', path: '/b' }], want: { b: 1 } },
    { name: 'copy', doc: { a: [1] }, ops: [{ op: 'copy', from: '/a', path: '/b' }], want: { a: [1], b: [1] } },
    { name: 'test passes', doc: { a: 1 }, ops: [{ op: 'test', path: '/a', value: 1 }], want: { a: 1 } },
  ];
  for (const t of table) {
    void it(t.name, () => assert.deepEqual(applyJson6902(t.doc as never, t.ops as never, where), t.want));
  }
  void it('does not change its input', () => {
    const doc = { a: [1] };
    applyJson6902(doc, [{ op: 'add', path: '/a/-', value: 2 }], where);
    assert.deepEqual(doc, { a: [1] });
  });
  void it('merge patch deletes with null and replaces lists', () => {
    assert.deepEqual(mergePatch({ a: 1, b: [1, 2], c: { d: 1 } }, { a: null, b: [3], c: { e: 2 } }), { b: [3], c: { d: 1, e: 2 } });
  });
});

async function readFixture(name: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return readFile(join(FIXTURES, name), 'utf8');
}

void describe('parse cache', () => {
  void it('a large file parses the same from the cache, and a file with a Secret is never cached', async () => {
    const cacheHome = mkdtempSync(join(tmpdir(), 'fluxstrap-cache-'));
    const saved = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = cacheHome;
    try {
      const big = Array.from(
        { length: 400 },
        (_, i) => `---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  k: "${'v'.repeat(80)}"\n`,
      ).join('');
      const first = await parseObjectsCached(big, 'big.yaml', process.env);
      const cached = readdirSync(join(cacheHome, 'fluxstrap', 'objects'));
      assert.equal(cached.length, 1);
      assert.deepEqual(await parseObjectsCached(big, 'big.yaml', process.env), first);
      assert.equal(first.length, 400);

      const withSecret = `${big}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: hunter2\n`;
      await parseObjectsCached(withSecret, 'secret.yaml', process.env);
      assert.equal(readdirSync(join(cacheHome, 'fluxstrap', 'objects')).length, 1, 'no cache entry for a file holding a Secret');
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
      rmSync(cacheHome, { recursive: true, force: true });
    }
  });
});
