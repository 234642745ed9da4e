// `fluxstrap bootstrap --all-clusters` against two real harness clusters: one repository whose
// fluxstrap.yaml names both, each with its own kubeconfig and cluster folder, both pulling from
// the first harness's Git server. Runs the built CLI, as `make provision` does.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { addFleetCluster, makeExampleRepo, sh, cli } from '../../scripts/example-repo.ts';
import type { ExampleRepo } from '../../scripts/example-repo.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { Cluster } from '../cluster/index.ts';
import { clusterForFile } from '../cluster/testing.ts';

const alpha = clusterForFile({ flux: 'on-deployment' });
const beta = clusterForFile({ flux: 'on-deployment' });

interface Fleet {
  example: ExampleRepo;
  /** The second cluster's kubeconfig, as fluxstrap.yaml names it: a test may point it elsewhere. */
  betaKubeconfig: string;
}

/**
 * The example repository (cluster `demo`, on alpha), plus a second cluster folder `edge` for
 * beta: a copy of clusters/demo whose Kustomization reconciles clusters/edge, set up by init.
 */
async function makeFleet(a: Cluster, b: Cluster): Promise<Fleet> {
  const work = await tempDir('fleet');
  const example = await makeExampleRepo(a, work, { name: 'fleet', quiet: true });
  const betaKubeconfig = join(work, 'beta.kubeconfig');
  cpSync(b.kubeconfig, betaKubeconfig);
  await addFleetCluster(example, a, 'edge', betaKubeconfig);
  return { example, betaKubeconfig };
}

let fleet: Promise<Fleet> | undefined;
/** Both clusters up (else every test fails with why, and their log tails), and the repository made once. */
function withFleet(body: (f: Fleet) => Promise<void>): Promise<void> {
  return alpha.run(() =>
    beta.run(async () => {
      fleet ??= makeFleet(alpha.cluster, beta.cluster);
      await body(await fleet);
    }),
  );
}

const fluxstrap = (f: Fleet, args: string[]) =>
  sh(process.execPath, [cli, ...args, '--repo', f.example.repo], { env: { ...f.example.env, CI: '1', NO_COLOR: '1' }, quiet: true });

/** `globals` go before the command, e.g. `--json`. */
const bootstrap = (f: Fleet, globals: string[]) => fluxstrap(f, [...globals, 'bootstrap', '--all-clusters', '--timeout', '3m']);

interface FleetDoc {
  success: boolean;
  clusters: Record<
    string,
    { success: boolean; recap: { changed: number; failed: number }; tasks: { name: string; outcome: string; error?: { code: string } }[] }
  >;
}

async function bootstrapJson(f: Fleet): Promise<{ code: number; doc: FleetDoc; stderr: string }> {
  const run = await bootstrap(f, ['--json']);
  try {
    return { code: run.code, doc: JSON.parse(run.stdout) as FleetDoc, stderr: run.stderr };
  } catch {
    return assert.fail(`no JSON document (exit ${run.code}): ${run.stderr}\n${run.stdout}`);
  }
}

/** The SOPS-encrypted Secret of the repository, as kustomize-controller applied it: decrypted. */
async function appliedPassword(kubeconfig: string): Promise<string> {
  const kube = await connectKube({ kubeconfig });
  const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'demo-app', name: 'db-credentials' });
  assert.ok(secret, `Secret demo-app/db-credentials exists (${kubeconfig})`);
  const managers = ((secret.metadata.managedFields as { manager?: string }[] | undefined) ?? []).map((m) => m.manager);
  assert.ok(managers.includes('kustomize-controller'), `applied by kustomize-controller (managers: ${managers.join(', ')})`);
  return Buffer.from((secret.data as Record<string, string>).password ?? '', 'base64').toString();
}

void describe('bootstrap --all-clusters on two clusters', () => {
  void it('converges both concurrently, each line prefixed with its cluster, and a recap per cluster', () =>
    withFleet(async (f) => {
      const run = await bootstrap(f, []);
      assert.equal(run.code, 0, run.stderr);
      for (const name of ['demo', 'edge']) {
        assert.match(run.stderr, new RegExp(`^\\[${name}\\] ► Bootstrap Flux on ${name}$`, 'm'));
        assert.match(run.stderr, new RegExp(`^\\[${name}\\] ● Reconcile at the bootstrapped commit \\[changed\\]`, 'm'));
        assert.match(run.stderr, new RegExp(`^  ${name}: ok=\\d+ changed=\\d+ would-change=0 skipped=0 failed=0`, 'm'));
      }
      const password = await appliedPassword(alpha.cluster.kubeconfig);
      assert.match(password, /^[0-9a-z]+$/, 'the plaintext password, not SOPS ciphertext');
      assert.equal(await appliedPassword(f.betaKubeconfig), password);
    }));

  void it('a second run changes nothing on either cluster (--json: one document, a single-cluster document per cluster)', () =>
    withFleet(async (f) => {
      const { code, doc, stderr } = await bootstrapJson(f);
      assert.equal(code, 0, stderr);
      assert.equal(doc.success, true);
      assert.deepEqual(Object.keys(doc.clusters).sort(), ['demo', 'edge']);
      for (const [name, d] of Object.entries(doc.clusters)) {
        assert.equal(d.recap.changed, 0, `${name}: ${JSON.stringify(d.tasks.filter((t) => t.outcome !== 'ok'))}`);
        assert.equal(d.success, true);
      }
    }));

  void it('status --cluster demo,edge: both healthy, one [cluster]-prefixed report each, or one JSON document', () =>
    withFleet(async (f) => {
      const plain = await fluxstrap(f, ['status', '--cluster', 'demo,edge']);
      assert.equal(plain.code, 0, plain.stderr);
      for (const name of ['demo', 'edge']) assert.match(plain.stderr, new RegExp(`^\\[${name}\\] ${name}: \\d+ ok, \\d+ warn, 0 fail$`, 'm'));
      assert.ok(
        plain.stderr
          .trimEnd()
          .split('\n')
          .every((l) => /^\[(demo|edge)\] /.test(l)),
        plain.stderr,
      );
      const json = await fluxstrap(f, ['--json', 'status', '--cluster', 'demo', '--cluster', 'edge']);
      assert.equal(json.code, 0, json.stderr);
      const doc = JSON.parse(json.stdout) as { success: boolean; clusters: Record<string, { cluster: string; success: boolean }> };
      assert.equal(doc.success, true);
      assert.deepEqual(
        Object.values(doc.clusters).map((c) => [c.cluster, c.success]),
        [
          ['demo', true],
          ['edge', true],
        ],
      );
    }));

  void it('an unreachable API fails only its cluster: exit 1, the other converges', () =>
    withFleet(async (f) => {
      const original = readFileSync(f.betaKubeconfig, 'utf8');
      // Port 1 on loopback: nothing listens, so the connection is refused at once.
      writeFileSync(f.betaKubeconfig, original.replace(beta.cluster.server, 'https://127.0.0.1:1'));
      try {
        const { code, doc } = await bootstrapJson(f);
        assert.equal(code, 1);
        assert.equal(doc.success, false);
        assert.equal(doc.clusters.demo?.success, true);
        assert.equal(doc.clusters.demo?.recap.failed, 0);
        const failed = doc.clusters.edge?.tasks.find((t) => t.outcome === 'failed');
        assert.equal(failed?.name.startsWith('Preflight'), true, JSON.stringify(doc.clusters.edge));
        assert.deepEqual(
          doc.clusters.edge?.tasks.slice(1).map((t) => t.outcome),
          // The same playbook as the cluster that converged: every task after the preflight skipped.
          Array((doc.clusters.demo?.tasks.length ?? 0) - 1).fill('skipped'),
          'nothing after the failed preflight ran',
        );
      } finally {
        writeFileSync(f.betaKubeconfig, original);
      }
    }));
});
