import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoFs } from '../../../src/adapters/repo-fs.ts';
import { decryptionFindings, reachedSops, reachOf } from '../../../src/flux/reach.ts';
import type { ReachFs } from '../../../src/adapters/repo-fs.ts';
import { repoRoot } from '../../helpers/cli.ts';

const HOMELAB = join(repoRoot, 'test', 'fixtures', 'homelab', 'repo');
const HELM_EXAMPLE = join(repoRoot, 'test', 'fixtures', 'flux2-kustomize-helm-example', 'repo');

/** An in-memory repository: path → text; folders are implied by the paths. */
function memFs(files: Record<string, string>, reads: string[] = []): ReachFs {
  return {
    list(dir) {
      const prefix = dir === '' ? '' : `${dir}/`;
      const names = new Map<string, boolean>();
      for (const f of Object.keys(files)) {
        if (!f.startsWith(prefix)) continue;
        const [head, ...rest] = f.slice(prefix.length).split('/');
        if (head) names.set(head, (names.get(head) ?? false) || rest.length > 0);
      }
      return Promise.resolve(names.size === 0 ? undefined : [...names].map(([name, d]) => ({ name, dir: d })));
    },
    read(file) {
      reads.push(file);
      return Promise.resolve(files[file]);
    },
  };
}

const SOPS_TAIL = (recipient: string) => `sops:\n  age:\n    - recipient: ${recipient}\n      enc: x\n  mac: ENC[AES256_GCM,data:x]\n  version: 3.11.0\n`;
const secret = (name: string, recipient = 'age1one') =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\nstringData:\n  k: ENC[AES256_GCM,data:x]\n${SOPS_TAIL(recipient)}`;
const ks = (name: string, path: string, extra = '') =>
  `apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: ${name}\n  namespace: flux-system\nspec:\n  path: ${path}\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n${extra}`;
const kfile = (...resources: string[]) => `resources:\n${resources.map((r) => `  - ${r}\n`).join('')}`;

void describe('what a cluster reaches', () => {
  void it('the seed homelab: four SOPS files outside the cluster folder, each with the Kustomization that applies it', async () => {
    const reach = await reachOf(repoFs(HOMELAB), { path: 'clusters/production' });
    assert.deepEqual(
      reach.kustomizations.map((k) => [k.name, k.at?.file, k.at?.line, k.path, k.decryption, k.sops.map((s) => s.file)]),
      [
        ['flux-system', undefined, undefined, 'clusters/production', undefined, []],
        [
          'infrastructure',
          'clusters/production/infrastructure.yaml',
          1,
          'infrastructure/production',
          'sops',
          ['infrastructure/base/networking/secret.sops.yaml'],
        ],
        ['monitoring', 'clusters/production/monitoring.yaml', 1, 'monitoring/production', 'sops', ['monitoring/base/grafana/secret.sops.yaml']],
        ['policies', 'clusters/production/policies.yaml', 1, 'policies/production', 'sops', []],
        [
          'services',
          'clusters/production/services.yaml',
          1,
          'services/production',
          'sops',
          ['services/base/karakeep/secret.sops.yaml', 'services/base/silverbullet/secret.sops.yaml'],
        ],
      ],
    );
    assert.deepEqual(reach.notChecked, []);
    assert.deepEqual(reach.issues, []);
    assert.deepEqual([...new Set(reachedSops(reach).flatMap((s) => s.recipients))], ['age1t35sxk7cxkxk0rgfdmnkcnvky7zuf7g9407d3s03qyggu3w62adqnst5ya']);
    // infrastructure/production has no kustomization.yaml: Flux generates one from its subfolders
    const infra = reach.kustomizations[1];
    assert.ok(
      infra?.files.includes('infrastructure/base/kyverno/helmrelease.yaml') && infra.files.includes('infrastructure/production/networking/kustomization.yaml'),
    );
    assert.deepEqual(decryptionFindings(reach), []);
  });

  void it('flux2-kustomize-helm-example (before Flux 2.7): apps/ and infrastructure/ overlays, patches read, no SOPS file', async () => {
    const reach = await reachOf(repoFs(HELM_EXAMPLE), { path: 'clusters/staging' });
    assert.deepEqual(
      reach.kustomizations.map((k) => [k.name, k.path]),
      [
        ['flux-system', 'clusters/staging'],
        ['apps', 'apps/staging'],
        ['infra-controllers', 'infrastructure/controllers'],
        ['infra-configs', 'infrastructure/configs'],
      ],
    );
    assert.ok(reach.kustomizations[1]?.files.includes('apps/staging/podinfo-values.yaml'), 'a patch file is an input');
    assert.ok(reach.kustomizations[1]?.files.includes('apps/base/podinfo/release.yaml'));
    assert.deepEqual(reachedSops(reach), []);
    assert.deepEqual([reach.notChecked, reach.issues], [[], []]);
  });

  void it('follows Kustomizations through the ones they apply; another source is reported, not followed', async () => {
    const reach = await reachOf(
      memFs({
        'clusters/a/kustomization.yaml': kfile('flux-system', 'apps.yaml'),
        'clusters/a/flux-system/kustomization.yaml': kfile('gotk-sync.yaml'),
        'clusters/a/flux-system/gotk-sync.yaml': ks('flux-system', './clusters/a'),
        'clusters/a/apps.yaml': `${ks('apps', './apps')}---\n${ks('oci', './x').replace('kind: GitRepository', 'kind: OCIRepository')}`,
        'apps/kustomization.yaml': kfile('tenant.yaml', 'db'),
        'apps/tenant.yaml': ks('tenant', './tenants/one', '  targetNamespace: one\n'),
        'apps/db/kustomization.yaml': `resources:\n  - secret.yaml\nsecretGenerator:\n  - name: env\n    envs: [db.env]\n`,
        'apps/db/secret.yaml': secret('db'),
        'apps/db/db.env': `PASSWORD=ENC[AES256_GCM,data:x]\nsops_age__list_0__map_recipient=age1env\nsops_mac=ENC[AES256_GCM,data:x]\n`,
        'tenants/one/s.yaml': secret('t', 'age1two'),
      }),
      { path: 'clusters/a', decryption: 'sops' },
    );
    assert.deepEqual(
      reach.kustomizations.map((k) => [k.name, k.via, k.targetNamespace, k.sops.map((s) => `${s.file}:${s.format}:${s.recipients.join()}`)]),
      [
        ['flux-system', undefined, undefined, []],
        ['apps', 'flux-system/flux-system', undefined, ['apps/db/db.env:dotenv:age1env', 'apps/db/secret.yaml:yaml:age1one']],
        ['tenant', 'flux-system/apps', 'one', ['tenants/one/s.yaml:yaml:age1two']],
      ],
    );
    assert.equal(reach.notChecked.length, 1);
    assert.match(
      reach.notChecked[0]?.what ?? '',
      /Kustomization flux-system\/oci applies OCIRepository flux-system\/flux-system, not the cluster's GitRepository/,
    );
    assert.deepEqual(reach.notChecked[0]?.at, { file: 'clusters/a/apps.yaml', line: 12 });
    // the lint: both children apply SOPS files without decryption; the root has it
    assert.deepEqual(
      decryptionFindings(reach).map((d) => [d.kustomization.name, d.files]),
      [
        ['apps', ['apps/db/db.env', 'apps/db/secret.yaml']],
        ['tenant', ['tenants/one/s.yaml']],
      ],
    );
  });

  void it('stops at cycles, missing paths and paths out of the repository, and says where', async () => {
    const reach = await reachOf(
      memFs({
        'c/kustomization.yaml': kfile('loop', 'k.yaml', '../../etc'),
        'c/loop/kustomization.yaml': kfile('../back'),
        'c/back/kustomization.yaml': kfile('../loop'),
        'c/k.yaml': `${ks('gone', './nowhere')}---\n${ks('self', './c')}---\n${ks('up', '../..')}`,
      }),
      { path: 'c' },
    );
    const issues = reach.issues.map((i) => `${i.what} @ ${i.at.file ?? ''}${i.at.line !== undefined ? `:${i.at.line}` : ''}`);
    assert.ok(
      issues.some((i) => /kustomize folders form a cycle: c\/loop → c\/back → c\/loop/.test(i)),
      issues.join('\n'),
    );
    assert.ok(issues.includes('resources entry ../../etc is outside the repository @ c/kustomization.yaml'), issues.join('\n'));
    assert.ok(issues.includes('folder nowhere does not exist @ c/k.yaml:1'), issues.join('\n'));
    assert.ok(issues.includes('spec.path ../.. is outside the repository @ c/k.yaml:23'), issues.join('\n'));
    // a Kustomization on the root's own path is walked once more under its own name, never forever
    assert.deepEqual(
      reach.kustomizations.map((k) => k.name),
      ['flux-system', 'gone', 'self'],
    );
  });

  void it('is bounded: files read, nesting, Kustomizations', async () => {
    const files: Record<string, string> = { 'c/kustomization.yaml': kfile('k0.yaml') };
    for (let i = 0; i < 50; i++) {
      files[`c/k${i}.yaml`] = ks(`k${i}`, `./c${i + 1}`);
      files[`c${i + 1}/kustomization.yaml`] = kfile(`../c/k${i + 1}.yaml`);
    }
    const reads: string[] = [];
    const deep = await reachOf(memFs(files, reads), { path: 'c' }, { maxFiles: 1000, maxDepth: 10, maxKustomizations: 100 });
    assert.match(deep.issues.at(-1)?.what ?? '', /Kustomizations nested deeper than 10: the rest of the cluster is not checked/);
    const few = await reachOf(memFs(files), { path: 'c' }, { maxFiles: 7, maxDepth: 100, maxKustomizations: 100 });
    assert.match(few.issues.at(-1)?.what ?? '', /stopped after reading 7 files/);
  });

  void it('treats broken YAML and alias bombs as issues, not crashes', async () => {
    const bomb = `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\nresources: [x.yaml]\n`;
    const reach = await reachOf(memFs({ 'c/kustomization.yaml': bomb, 'd/kustomization.yaml': 'resources: [\n' }), { path: 'c' });
    assert.match(reach.issues[0]?.what ?? '', /^invalid YAML: .*alias/i);
    const broken = await reachOf(memFs({ 'd/kustomization.yaml': 'resources: [\n' }), { path: 'd' });
    assert.match(broken.issues[0]?.what ?? '', /^invalid YAML/);
  });
});
