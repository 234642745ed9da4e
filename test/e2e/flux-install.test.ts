import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { binaryPath, component } from '../cluster/components.ts';
import { bundleDir } from '../cluster/gotk.ts';
import { defaultInstallOptions, generateComponents } from '../../src/flux/install.ts';
import type { InstallOptions } from '../../src/flux/install.ts';
import { DEFAULT_FLUX_VERSION, loadManifests } from '../../src/flux/manifests.ts';
import { generateSync } from '../../src/flux/sync.ts';

/**
 * Fidelity: fluxstrap's gotk-components.yaml and gotk-sync.yaml equal, as objects, what the real
 * flux CLI (built from the flux2 module by the test cluster's build) writes for the same version
 * and options.
 */

const flux = binaryPath(component('flux'), 'flux');
function fluxCli(args: string[]): string {
  assert.ok(existsSync(flux), `${flux} is missing: run npm run cluster:build -- --with-flux-cli`);
  return execFileSync(flux, args, { encoding: 'utf8', env: { ...process.env, HOME: '/nonexistent', KUBECONFIG: '/dev/null' }, maxBuffer: 64 * 1024 * 1024 });
}
const objects = (text: string) =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter((o) => o !== null);
const key = (o: unknown) => {
  const { kind, metadata } = o as { kind: string; metadata: { name: string } };
  return `${kind}/${metadata.name}`;
};
/** The flux CLI embeds the bundles the harness generated: the components both have. */
const embedded = () =>
  readdirSync(bundleDir())
    .filter((f) => !['rbac.yaml', 'policies.yaml'].includes(f))
    .map((f) => f.replace(/\.yaml$/, ''));

void describe("generated Flux manifests equal the flux CLI's", async () => {
  const shipped = await loadManifests(DEFAULT_FLUX_VERSION);
  const both = () => shipped.components.filter((c) => embedded().includes(c));

  void it('the shipped manifests equal a fresh generation from the Go modules', () => {
    execFileSync(process.execPath, [fileURLToPath(new URL('../../scripts/flux-manifests.ts', import.meta.url)), '--check'], { stdio: 'pipe' });
  });

  void it('ships the same release bundles the flux CLI embeds', () => {
    assert.ok(both().length >= 2, `components in both: ${both().join(', ')}`);
    for (const f of [...both().map((c) => `${c}.yaml`), 'rbac.yaml', 'policies.yaml']) {
      assert.equal(shipped.bundle.get(f), readFileSync(join(bundleDir(), f), 'utf8'), f);
    }
  });

  const cases: [string, Partial<InstallOptions>, string[]][] = [
    ['defaults', {}, []],
    [
      'every install option',
      {
        registry: 'registry.home:5000/fluxcd',
        imagePullSecret: 'regcred',
        watchAllNamespaces: false,
        networkPolicy: false,
        logLevel: 'debug',
        clusterDomain: 'k8s.home',
        tolerationKeys: ['node.kubernetes.io/not-ready', 'special'],
      },
      [
        '--registry',
        'registry.home:5000/fluxcd',
        '--image-pull-secret',
        'regcred',
        '--watch-all-namespaces=false',
        '--network-policy=false',
        '--log-level',
        'debug',
        '--cluster-domain',
        'k8s.home',
        '--toleration-keys',
        'node.kubernetes.io/not-ready,special',
      ],
    ],
  ];
  for (const [name, opts, args] of cases) {
    void it(`gotk-components.yaml: ${name}`, () => {
      const components = both();
      const ours = generateComponents(shipped.bundle, { ...defaultInstallOptions(DEFAULT_FLUX_VERSION), components, ...opts });
      const theirs = fluxCli(['install', '--export', '--components', components.join(','), ...args]);
      assert.equal(ours.split('\n').slice(0, 4).join('\n'), theirs.split('\n').slice(0, 4).join('\n'), 'the header flux writes');
      const a = objects(ours);
      const b = objects(theirs);
      assert.deepEqual(a.map(key), b.map(key), 'the same objects in the same order');
      for (let i = 0; i < a.length; i++) assert.deepEqual(a[i], b[i], key(a[i]));
    });
  }

  void it('gotk-sync.yaml: what flux bootstrap generates', () => {
    const ours = generateSync({ url: 'ssh://git@git.home/me/fleet.git', branch: 'prod', path: 'clusters/home' });
    const theirs = [
      fluxCli([
        'create',
        'source',
        'git',
        'flux-system',
        '--namespace',
        'flux-system',
        '--url',
        'ssh://git@git.home/me/fleet.git',
        '--branch',
        'prod',
        '--secret-ref',
        'flux-system',
        '--interval',
        '1m',
        '--export',
      ]),
      fluxCli([
        'create',
        'kustomization',
        'flux-system',
        '--namespace',
        'flux-system',
        '--source',
        'GitRepository/flux-system',
        '--path',
        './clusters/home',
        '--prune',
        '--interval',
        '10m',
        '--export',
      ]),
    ].join('');
    assert.deepEqual(objects(ours), objects(theirs));
  });
});
