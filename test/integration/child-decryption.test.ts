// Child Kustomizations that hold SOPS Secrets, under controller-level decryption, proved with the
// real kustomize-controller: the lint fails before the fix (--sops-age-secret supplies a key,
// never decryption), `init --child-decryption` writes `provider: sops` into each, bootstrap
// converges and both Secrets are in the cluster with their plain values.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { connectKube } from '../../src/adapters/kube.ts';
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import { assertBuilt } from '../cluster/index.ts';
import { assertConverged, cli, git, kustomization, pushAll, secret } from '../cluster/layouts.ts';
import type { Run } from '../cluster/layouts.ts';
import { clusterForFile } from '../cluster/testing.ts';

const TOKEN_ENV = 'FLUXSTRAP_CHILD_DECRYPTION_TEST_TOKEN';

/** Two children in one file, as a cluster folder often lists them; neither decrypts yet. */
const CHILDREN = `# Applied in this order by Flux.
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infra
  namespace: flux-system
spec:
  interval: 1m
  path: ./infrastructure
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 1m
  path: ./apps   # the workloads
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
`;

assertBuilt();
const file = clusterForFile({ flux: 'on-deployment' });

void describe('init --child-decryption under controller-level decryption, with the real kustomize-controller', { timeout: 15 * 60_000 }, () => {
  void it('the lint fails before the fix, init fixes both children, bootstrap converges and both Secrets are decrypted', () =>
    file.run(async () => {
      const { cluster } = file;
      const kube: KubeAdapter = await connectKube({ kubeconfig: cluster.kubeconfig });
      const home = mkdtempSync(join(tmpdir(), 'fluxstrap-child-decryption-'));
      try {
        const dir = join(home, 'repo');
        const keyFile = join(home, 'age.key');
        const url = cluster.git.httpUrl('children.git');
        const auth = { kind: 'basic' as const, username: cluster.git.username, password: cluster.git.password };
        const env = { [TOKEN_ENV]: cluster.git.password };
        const run = (args: string[]): Promise<Run> => cli(args, { cwd: dir, env });
        const ok = async (args: string[]) => {
          const r = await run(args);
          assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}\n${cluster.logTails(20)}`);
          return r;
        };
        const files: Record<string, string> = {
          'fluxstrap.yaml': stringify({
            clusters: {
              test: {
                kube: { kubeconfig: cluster.kubeconfig },
                git: { url, auth: { https: { username: cluster.git.username, passwordEnv: TOKEN_ENV } } },
                ageKey: { file: keyFile },
              },
            },
          }),
          'clusters/test/kustomization.yaml': kustomization(['children.yaml']),
          'clusters/test/children.yaml': CHILDREN,
          'infrastructure/kustomization.yaml': kustomization(['db.sops.yaml']),
          'infrastructure/db.sops.yaml': secret('default', 'db', { password: 'infra-plain' }),
          'apps/kustomization.yaml': kustomization(['api.sops.yaml']),
          'apps/api.sops.yaml': secret('default', 'api', { token: 'apps-plain' }),
        };
        for (const [rel, text] of Object.entries(files)) {
          mkdirSync(join(dir, rel, '..'), { recursive: true });
          writeFileSync(join(dir, rel), text);
        }
        await ok(['keys', 'new', '--out', keyFile]);
        await ok(['init', '--cluster', 'test', '--age-key-file', keyFile, '--git-url', url, '--branch', 'main', '--decryption', 'controller']);
        await ok(['encrypt', '--in-place', 'infrastructure/db.sops.yaml']);
        await ok(['encrypt', '--in-place', 'apps/api.sops.yaml']);
        await pushAll(dir, url, auth, 'two children without decryption');

        // Before the fix: check --cluster and bootstrap's preflight both name each child; nothing reaches the cluster.
        const lint = await run(['check', '--cluster', 'test']);
        assert.equal(lint.code, 1, lint.stderr);
        assert.match(
          lint.stdout,
          /^clusters\/test\/children\.yaml:2: Kustomization flux-system\/infra applies SOPS-encrypted infrastructure\/db\.sops\.yaml without decryption\.provider sops/m,
        );
        assert.match(
          lint.stdout,
          /^clusters\/test\/children\.yaml:15: Kustomization flux-system\/apps applies SOPS-encrypted apps\/api\.sops\.yaml without decryption\.provider sops/m,
        );
        const refused = await run(['bootstrap', '--timeout', '3m']);
        assert.equal(refused.code, 1, refused.stderr);
        assert.match(
          refused.stderr,
          /Kustomization flux-system\/infra \(clusters\/test\/children\.yaml:2\) applies SOPS-encrypted infrastructure\/db\.sops\.yaml but has no spec\.decryption/,
        );
        assert.match(refused.stderr, /fluxstrap init --cluster test --child-decryption/);
        assert.equal(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: 'flux-system' }), undefined, 'preflight stopped bootstrap before any change');

        await ok(['init', '--cluster', 'test', '--child-decryption']);
        const fixed = readFileSync(join(dir, 'clusters/test/children.yaml'), 'utf8');
        assert.match(fixed, /^# Applied in this order by Flux\.\n/);
        assert.match(fixed, /path: \.\/apps # the workloads/);
        assert.doesNotMatch(fixed, /secretRef/, 'controller mode: the flag names the Secret');
        await ok(['check', '--cluster', 'test']);
        await git(['add', '-A'], dir);
        await git(['commit', '--quiet', '-m', 'init --child-decryption'], dir);
        await git(['push', '--quiet', url, 'main'], dir, auth);

        await ok(['bootstrap', '--timeout', '3m']);
        assert.deepEqual(cluster.controllers.deploymentArgs('kustomize-controller'), ['--sops-age-secret=sops-age'], 'the controller runs with the flag');
        for (const name of ['infra', 'apps']) {
          const ks = await kube.get({ apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', namespace: 'flux-system', name });
          assert.deepEqual((ks?.spec as { decryption?: unknown } | undefined)?.decryption, { provider: 'sops' }, name);
        }
        await assertConverged(
          kube,
          ['flux-system', 'infra', 'apps'],
          [
            { ns: 'default', name: 'db', key: 'password', value: 'infra-plain' },
            { ns: 'default', name: 'api', key: 'token', value: 'apps-plain' },
          ],
        );
        const status = await run(['--json', 'status']);
        const doc = JSON.parse(status.stdout) as { findings: { status: string }[] };
        assert.deepEqual(
          doc.findings.filter((f) => f.status !== 'ok'),
          [],
          status.stdout,
        );
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    }));
});
