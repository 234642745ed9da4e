// `fluxstrap upgrade` against the real harness API server: a cluster that lived through an older
// Flux (objects stored at v1beta2), then Flux v2.7.5's CRDs (the vendored flux file), upgraded to
// v2.9.5, whose CRDs no longer serve v1beta2.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { fluxManifestsDir } from '../cluster/components.ts';
import { clusterForFile } from '../cluster/testing.ts';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const CRDS = ['helmrepositories.source.toolkit.fluxcd.io', 'gitrepositories.source.toolkit.fluxcd.io', 'kustomizations.kustomize.toolkit.fluxcd.io'];
const HELM_REPOSITORIES = 120;
const COMPONENTS = 'clusters/test/flux-system/gotk-components.yaml';

type Obj = { kind?: string; metadata?: { name?: string }; spec?: { versions?: { name: string; storage: boolean }[] } };
const docsOf = (text: string) =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
const crdsOf = (text: string) => docsOf(text).filter((o) => o.kind === 'CustomResourceDefinition' && CRDS.includes(o.metadata?.name ?? ''));
const yaml = (objs: unknown[]) => objs.map((o) => stringify(o)).join('---\n');

/** The CLI from source with this file's environment; `onStderr` sees its progress as it comes. */
function fluxstrap(
  args: string[],
  cwd: string,
  onStderr?: (text: string, kill: () => void) => void,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'src/cli.ts'), ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: cwd, CI: '1', NO_COLOR: '1', FLUXSTRAP_GITHUB_API_URL: 'http://127.0.0.1:1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr, () => child.kill('SIGKILL'));
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const f = clusterForFile({ flux: 'off' });

void describe('fluxstrap upgrade against the real API server', { timeout: 10 * 60_000 }, () => {
  void it('refuses on stored versions, --migrate-storage fixes them (finished by the next run when killed), then the v2.9.5 CRDs apply', () =>
    f.run(async () => {
      const { cluster } = f;
      const kubectl = (args: string[], input?: string) => cluster.kubectl(args, input);
      const storedVersions = async (): Promise<Record<string, string[]>> =>
        Object.fromEntries(
          await Promise.all(
            CRDS.map(async (c) => [c, JSON.parse(await kubectl(['get', 'crd', c, '-o', 'jsonpath={.status.storedVersions}'])) as string[]] as const),
          ),
        );
      // A CRD whose versions changed re-initializes its storage for a moment (HTTP 429): wait until each lists again.
      const settled = async () => {
        for (const c of CRDS) {
          for (let i = 0; ; i++) {
            const ok = await kubectl(['get', c, '-A', '-o', 'name']).then(
              () => true,
              (e: unknown) => {
                if (i > 50) throw e;
                return false;
              },
            );
            if (ok) break;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      };
      const fixture = readFileSync(join(ROOT, 'test/fixtures/flux/gotk-components.yaml'), 'utf8');

      // An older Flux stored these kinds at v1beta2 (as Flux ≤ 2.2 did for HelmRepository): the
      // v2.7.5 CRDs with the storage flag moved there, and objects written then.
      const older = crdsOf(fixture).map((crd) => ({
        ...crd,
        spec: { ...crd.spec, versions: crd.spec?.versions?.map((v) => ({ ...v, storage: v.name === 'v1beta2' })) },
      }));
      await kubectl(['apply', '--server-side', '-f', '-'], yaml(older));
      for (const c of CRDS) await kubectl(['wait', '--for=condition=Established', `crd/${c}`, '--timeout=60s']);
      await kubectl(['create', 'namespace', 'apps']);
      const objects = [
        ...Array.from({ length: HELM_REPOSITORIES }, (_, i) => ({
          apiVersion: 'source.toolkit.fluxcd.io/v1beta2',
          kind: 'HelmRepository',
          metadata: { name: `charts-${i}`, namespace: i % 2 ? 'apps' : 'default' },
          spec: { url: `https://charts.example/${i}`, interval: '10m' },
        })),
        {
          apiVersion: 'source.toolkit.fluxcd.io/v1beta2',
          kind: 'GitRepository',
          metadata: { name: 'infra', namespace: 'apps' },
          spec: { url: 'https://git.example/infra.git', interval: '5m', ref: { branch: 'main' } },
        },
        {
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1beta2',
          kind: 'Kustomization',
          metadata: { name: 'infra', namespace: 'apps' },
          spec: { interval: '10m', prune: true, sourceRef: { kind: 'GitRepository', name: 'infra' } },
        },
      ];
      await kubectl(['create', '-f', '-'], yaml(objects));
      // Then Flux v2.7.5, exactly as flux wrote its CRDs (storage v1, v1beta2 still served).
      await kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], yaml(crdsOf(fixture)));
      await settled();
      assert.deepEqual(await storedVersions(), Object.fromEntries(CRDS.map((c) => [c, ['v1beta2', 'v1']])));

      // What goes wrong without fluxstrap: the API server refuses the v2.9.5 CRDs.
      const target = readFileSync(join(fluxManifestsDir(), 'gotk-components.yaml'), 'utf8');
      await assert.rejects(
        kubectl(['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-f', '-'], yaml(crdsOf(target))),
        /storedVersions\[0\]: Invalid value: "v1beta2": missing from spec\.versions|must appear in spec\.versions/,
      );

      const repo = await tempDir('upgrade-repo');
      const files: Record<string, string> = {
        'fluxstrap.yaml': stringify({ clusters: { test: { kube: { kubeconfig: cluster.kubeconfig } } } }),
        [COMPONENTS]: fixture,
        'clusters/test/flux-system/gotk-sync.yaml': readFileSync(join(ROOT, 'test/fixtures/flux/gotk-sync.pristine.yaml'), 'utf8'),
        'clusters/test/flux-system/kustomization.yaml': readFileSync(join(ROOT, 'test/fixtures/flux/kustomization.yaml'), 'utf8'),
        // Variables from substitute and from a live ConfigMap (substituteFrom) have values; one has none.
        'clusters/test/apps.yaml': stringify({
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
          kind: 'Kustomization',
          metadata: { name: 'apps', namespace: 'flux-system' },
          spec: {
            interval: '10m',
            path: './clusters/test/apps',
            prune: true,
            sourceRef: { kind: 'GitRepository', name: 'flux-system' },
            postBuild: { substitute: { DOMAIN: 'example.org' }, substituteFrom: [{ kind: 'ConfigMap', name: 'cluster-vars' }] },
          },
        }),
        'clusters/test/apps/web.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: apps}\ndata:\n  host: ${CLUSTER_NAME}.${DOMAIN}\n  tls: ${TLS_SECRET}\n',
      };
      for (const [rel, text] of Object.entries(files)) {
        mkdirSync(join(repo, rel, '..'), { recursive: true });
        writeFileSync(join(repo, rel), text);
      }
      // The harness's v2.9.5 bundles carry all four default controllers (the shipped ones lack notification-controller).
      const upgrade = ['upgrade', '--cluster', 'test', '--flux-version', 'v2.9.5', '--flux-manifests', join(fluxManifestsDir(), 'bundle')];

      await kubectl(['create', 'namespace', 'flux-system']);
      await kubectl(['create', 'configmap', 'cluster-vars', '-n', 'flux-system', '--from-literal=CLUSTER_NAME=test']);
      const refused = await fluxstrap(upgrade, repo);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /upgrade preflight found 2 problems: \(1\) Flux v2\.9\.5 no longer serves versions these CRDs have stored objects at/);
      assert.match(
        refused.stderr,
        new RegExp(`helmrepositories\\.source\\.toolkit\\.fluxcd\\.io \\(stored v1beta2; ${HELM_REPOSITORIES} object\\(s\\): apps/charts-1, `),
      );
      assert.match(refused.stderr, /kustomizations\.kustomize\.toolkit\.fluxcd\.io \(stored v1beta2; 1 object\(s\): apps\/infra\)/);
      assert.match(refused.stderr, /hint: .*run again with --migrate-storage/);
      assert.match(
        refused.stderr,
        /would fail 1 variable\(s\) with no value and no default: clusters\/test\/apps\/web\.yaml:6 \$\{TLS_SECRET\} \(Kustomization flux-system\/apps\)/,
      );
      writeFileSync(
        join(repo, 'clusters/test/apps/web.yaml'),
        readFileSync(join(repo, 'clusters/test/apps/web.yaml'), 'utf8').replace('${TLS_SECRET}', '${TLS_SECRET:=web-tls}'),
      );
      assert.equal(readFileSync(join(repo, COMPONENTS), 'utf8'), fixture, 'nothing written');

      const check = await fluxstrap([...upgrade, '--migrate-storage', '--check'], repo);
      assert.equal(check.code, 3, check.stderr);
      assert.match(
        check.stderr,
        new RegExp(`re-write ${HELM_REPOSITORIES} HelmRepository object\\(s\\) at v1, then trim status\\.storedVersions to \\[v1\\] \\(drops v1beta2\\)`),
      );
      assert.deepEqual((await storedVersions())[CRDS[1] ?? ''], ['v1beta2', 'v1'], '--check changes nothing');

      // Killed in the middle of re-writing: storedVersions is trimmed only at the end, so it still names v1beta2.
      const killed = await fluxstrap([...upgrade, '--migrate-storage'], repo, (text, kill) => {
        if (/helmrepositories\.source\.toolkit\.fluxcd\.io: 25\/120 re-written at v1/.test(text)) kill();
      });
      assert.equal(killed.signal, 'SIGKILL', `killed mid-migration: ${killed.stderr}`);
      assert.match(killed.stderr, /25\/120 re-written at v1/);
      assert.ok(
        Object.values(await storedVersions()).some((v) => v.includes('v1beta2')),
        'the kill came before the trim',
      );
      assert.equal(readFileSync(join(repo, COMPONENTS), 'utf8'), fixture);

      const done = await fluxstrap([...upgrade, '--migrate-storage'], repo);
      assert.equal(done.code, 0, done.stderr);
      assert.deepEqual(await storedVersions(), Object.fromEntries(CRDS.map((c) => [c, ['v1']])));
      const written = readFileSync(join(repo, COMPONENTS), 'utf8');
      assert.match(written, /^# Flux Version: v2\.9\.5$/m);
      assert.match(written, /^# Components: source-controller,kustomize-controller,helm-controller,notification-controller$/m);
      assert.match(done.stderr, /Kubernetes v1\.36\.3: within what Flux v2\.9\.5 supports \(1\.34–1\.36\)/);
      assert.match(done.stderr, /next: commit and push clusters\/test\/flux-system\/gotk-components\.yaml/);

      // The new CRDs, as the upgraded file holds them, now apply; every object reads back at v1,
      // which the API server could not do for one still stored at a version the CRD no longer lists.
      await kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], yaml(crdsOf(written)));
      for (const c of CRDS) await kubectl(['wait', '--for=condition=Established', `crd/${c}`, '--timeout=60s']);
      await settled();
      assert.equal(await kubectl(['get', 'crd', CRDS[0] ?? '', '-o', 'jsonpath={.spec.versions[*].name}']), 'v1');
      const listed = (await kubectl(['get', 'helmrepositories.v1.source.toolkit.fluxcd.io', '-A', '-o', 'name'])).trim().split('\n');
      assert.equal(listed.length, HELM_REPOSITORIES);
      assert.match(
        await kubectl(['get', 'kustomizations.v1.kustomize.toolkit.fluxcd.io', '-n', 'apps', 'infra', '-o', 'jsonpath={.apiVersion} {.spec.prune}']),
        /^kustomize\.toolkit\.fluxcd\.io\/v1 true$/,
      );

      const again = await fluxstrap(upgrade, repo);
      assert.equal(again.code, 2, again.stderr);
      assert.match(again.stderr, /error: clusters\/test\/flux-system\/gotk-components\.yaml is already Flux v2\.9\.5/);
    }));
});
