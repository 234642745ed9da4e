// `fluxstrap bootstrap` end to end against the real harness cluster: kube-apiserver + etcd, the
// real source-controller and kustomize-controller, and the local Git server (HTTP basic auth and
// SSH). Every run is the built CLI's code path (`node src/cli.ts`), as `make provision` runs it.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connectKube } from '../../src/adapters/kube.ts';
import { deploymentAvailable } from '../../src/adapters/kube/readiness.ts';
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import { clusterForFile } from '../cluster/testing.ts';
import type { Cluster } from '../cluster/index.ts';
import {
  CLUSTER_PATH,
  TOKEN_ENV,
  assertDecrypted,
  bootstrap,
  bootstrapJson,
  cli,
  closedPort,
  failedTask,
  makeRepo,
  notOk,
  nothingChanged,
  portableSnapshot,
  snapshot,
  stepEnded,
  tempDir,
  withFreshCluster,
  type JsonDoc,
  type Repo,
} from '../cluster/bootstrap-kit.ts';

let cluster: Cluster;
let kube: KubeAdapter;
let repo: Repo;
let reference: Record<string, unknown>;
// One cluster for this file's first suite; a cluster that cannot start fails each test with why.
const suite = clusterForFile({ flux: 'on-deployment' }, async (c) => {
  cluster = c;
  kube = await connectKube({ kubeconfig: c.kubeconfig });
  repo = await makeRepo(c, { name: 'fleet', transport: 'https' });
});

void describe('fluxstrap bootstrap against the real harness cluster', { timeout: 40 * 60_000 }, () => {
  void it('refuses the seed layout at preflight, naming the fix, and changes nothing', () =>
    suite.run(async () => {
      const seed = await makeRepo(cluster, { name: 'seed', transport: 'https', seedLayout: true });
      const { run, doc } = await bootstrapJson(seed);
      assert.equal(run.code, 1);
      const t = failedTask(doc);
      assert.equal(t?.kind, 'preflight');
      assert.match(t?.error?.message ?? '', /does not list flux-system/);
      assert.match(t?.error?.message ?? '', /gotk-sync\.yaml was edited by hand/);
      assert.match(t?.error?.hint ?? '', /add `- flux-system`/);
      await nothingChanged(kube);
    }));

  void it('refuses an encrypted file inside flux-system/ at preflight', () =>
    suite.run(async () => {
      const bad = await makeRepo(cluster, { name: 'sops-in-flux-system', transport: 'https', sopsInFluxSystem: true });
      const { run, doc } = await bootstrapJson(bad);
      assert.equal(run.code, 1);
      const t = failedTask(doc);
      assert.equal(t?.kind, 'preflight');
      assert.match(t?.error?.message ?? '', /SOPS-encrypted files inside flux-system\/ \(clusters\/test\/flux-system\/db\.sops\.yaml\)/);
      assert.match(t?.error?.hint ?? '', /move them/);
      await nothingChanged(kube);
    }));

  void it('refuses a wrong age key at preflight', () =>
    suite.run(async () => {
      const other = join(tempDir('key'), 'other.key');
      assert.equal((await cli(['keys', 'new', '--out', other])).code, 0);
      const { run, doc } = await bootstrapJson(repo, ['--age-key-file', other]);
      assert.equal(run.code, 1);
      const t = failedTask(doc);
      assert.equal(t?.kind, 'preflight');
      assert.match(t?.error?.message ?? '', /the \.sops\.yaml rule at \.sops\.yaml:\d+ \(for clusters\/test\/apps\/db\.sops\.yaml\) does not list the age key/);
      assert.match(t?.error?.message ?? '', /cannot open 1 of the 1 SOPS file\(s\) the cluster reaches: clusters\/test\/apps\/db\.sops\.yaml/);
      await nothingChanged(kube);
    }));

  void it('refuses expired Git credentials at preflight', () =>
    suite.run(async () => {
      const { run, doc } = await bootstrapJson(repo, [], { [TOKEN_ENV]: 'expired-token' });
      assert.equal(run.code, 1);
      const t = failedTask(doc);
      assert.equal(t?.kind, 'preflight');
      assert.equal(t?.error?.code, 'E_GIT');
      assert.match(t?.error?.hint ?? '', /token can read/);
      assert.doesNotMatch(run.stdout + run.stderr, /expired-token/);
      await nothingChanged(kube);
    }));

  void it('refuses an unreachable API at preflight', () =>
    suite.run(async () => {
      const dead = join(tempDir('kc'), 'kubeconfig');
      writeFileSync(
        dead,
        readFileSync(cluster.kubeconfig, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${await closedPort()}`),
      );
      const { run, doc } = await bootstrapJson(repo, ['--kubeconfig', dead]);
      assert.equal(run.code, 1);
      const t = failedTask(doc);
      assert.equal(t?.kind, 'preflight');
      assert.equal(t?.error?.code, 'E_KUBE');
      assert.match(t?.error?.message ?? '', /unreachable \(ECONNREFUSED\)/);
      await nothingChanged(kube);
    }));

  void it('refuses missing permissions at preflight', () =>
    suite.run(async () => {
      await cluster.kubectl(['create', 'serviceaccount', 'limited', '-n', 'default']);
      const token = (await cluster.kubectl(['create', 'token', 'limited', '-n', 'default'])).trim();
      const limited = join(tempDir('kc'), 'kubeconfig');
      writeFileSync(limited, readFileSync(cluster.kubeconfig, 'utf8').replace(/token: .*/, `token: ${token}`));
      const { run, doc } = await bootstrapJson(repo, ['--kubeconfig', limited]);
      assert.equal(run.code, 1);
      const t = failedTask(doc);
      assert.equal(t?.kind, 'preflight');
      assert.match(t?.error?.message ?? '', /may not create namespaces, patch namespaces/);
      assert.match(t?.error?.hint ?? '', /cluster-admin/);
      await nothingChanged(kube);
    }));

  void it('--check on the empty cluster reports what it would do, exits 3 and changes nothing', () =>
    suite.run(async () => {
      const { run, doc } = await bootstrapJson(repo, ['--check']);
      assert.equal(run.code, 3, run.stderr);
      assert.deepEqual(
        doc.tasks.filter((t) => t.outcome === 'would-change').map((t) => t.kind),
        ['namespace', 'git-credentials', 'sops-age-secret', 'flux-components', 'wait-controllers', 'flux-sync', 'reconcile'],
      );
      await nothingChanged(kube);
    }));

  void it('bootstraps an empty cluster over HTTPS: the SOPS Secret arrives decrypted, applied by kustomize-controller', () =>
    suite.run(async () => {
      const run = await bootstrap(repo);
      assert.equal(run.code, 0, `${run.stderr}\n${cluster.logTails(30)}`);
      await assertDecrypted(kube);
      const ks = await kube.get({ apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', namespace: 'flux-system', name: 'flux-system' });
      assert.deepEqual((ks?.spec as { decryption?: unknown }).decryption, { provider: 'sops', secretRef: { name: 'sops-age' } });
      const age = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' });
      assert.deepEqual(Object.keys(age?.data as object), ['age.agekey']);
      assert.doesNotMatch(run.stderr, /AGE-SECRET-KEY|not-a-real-password/);
      reference = await snapshot(kube);
    }));

  void it('reports zero changes on a second run', (t) =>
    suite.run(async () => {
      const { run, doc } = await bootstrapJson(repo);
      t.diagnostic(`no-op run: ${run.ms} ms wall; ${doc.tasks.map((x) => `${x.kind} ${x.durationMs} ms`).join(', ')}`);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(
        doc.tasks.filter((t) => t.outcome !== 'ok').map((t) => `${t.name}: ${t.outcome} ${JSON.stringify(t.changes)}`),
        [],
      );
      assert.equal(doc.recap.changed, 0);
      const check = await bootstrapJson(repo, ['--check']);
      assert.equal(check.run.code, 0, check.run.stderr);
      assert.equal(check.doc.recap.wouldChange, 0);
    }));

  void it('works the same through an exec credential plugin (the client-library path of the kube adapter)', () =>
    suite.run(async () => {
      const dir = tempDir('exec');
      const kc = readFileSync(cluster.kubeconfig, 'utf8');
      const token = /token: (\S+)/.exec(kc)?.[1] ?? '';
      const plugin = join(dir, 'credential.sh');
      writeFileSync(
        plugin,
        `#!/bin/sh\nprintf '%s' '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${token}"}}'\n`,
        { mode: 0o700 },
      );
      const execKc = join(dir, 'kubeconfig');
      writeFileSync(
        execKc,
        kc.replace(/ {4}token: \S+/, `    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ${plugin}\n      interactiveMode: Never`),
      );
      assert.doesNotMatch(readFileSync(execKc, 'utf8'), /^ {4}token:/m);
      const { run, doc } = await bootstrapJson(repo, ['--kubeconfig', execKc]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(doc.recap.changed, 0, notOk(doc));
    }));

  void it('restores a deleted sops-age Secret', () =>
    suite.run(async () => {
      await kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' });
      const { run, doc } = await bootstrapJson(repo);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(
        doc.tasks.filter((t) => t.outcome === 'changed').map((t) => t.kind),
        ['sops-age-secret'],
      );
      assert.ok(await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' }));
    }));

  void it("takes over a sops-age Secret made the seed's way (kubectl apply), removing the values it left in an annotation", () =>
    suite.run(async () => {
      const ref = { apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' };
      const ours = await kube.get(ref);
      await kube.delete(ref);
      await cluster.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sops-age', namespace: 'flux-system' }, type: 'Opaque', data: ours?.data }),
      );
      const seeded = await kube.get(ref);
      assert.ok(seeded?.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration']);
      const { run, doc } = await bootstrapJson(repo);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(
        doc.tasks.filter((t) => t.outcome === 'changed').map((t) => t.kind),
        ['sops-age-secret'],
      );
      const after = await kube.get(ref);
      assert.equal(after?.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], undefined);
      assert.deepEqual(after?.data, ours?.data);
      assert.doesNotMatch(run.stdout + run.stderr, /AGE-SECRET-KEY/);
      assert.equal((await bootstrapJson(repo)).doc.recap.changed, 0);
    }));

  void it('refuses to overwrite a sops-age Secret that differs, unless --rotate-secrets', () =>
    suite.run(async () => {
      const other = join(tempDir('key'), 'other.key');
      assert.equal((await cli(['keys', 'new', '--out', other])).code, 0);
      const both = join(tempDir('key'), 'both.key');
      writeFileSync(both, readFileSync(repo.keyFile, 'utf8') + readFileSync(other, 'utf8'));
      const refused = await bootstrapJson(repo, ['--age-key-file', both]);
      assert.equal(refused.run.code, 1);
      const t = failedTask(refused.doc);
      assert.equal(t?.kind, 'sops-age-secret');
      assert.equal(t?.error?.code, 'E_PRECONDITION');
      assert.match(t?.error?.message ?? '', /missing age-2\.agekey/);
      const rotated = await bootstrapJson(repo, ['--age-key-file', both, '--rotate-secrets']);
      assert.equal(rotated.run.code, 0, rotated.run.stderr);
      const age = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' });
      assert.deepEqual(Object.keys(age?.data as object).sort(), ['age-2.agekey', 'age.agekey']);
      assert.doesNotMatch(rotated.run.stdout + rotated.run.stderr, /AGE-SECRET-KEY/);
      // Back to the single key, for the comparisons below.
      assert.equal((await bootstrapJson(repo, ['--rotate-secrets'])).run.code, 0);
    }));

  void it('times out waiting for a controller that is down, naming the Deployment and its conditions', () =>
    suite.run(async () => {
      await cluster.controllers.stop('source-controller');
      try {
        const unavailable = async () => {
          for (let i = 0; i < 100; i++) {
            const d = await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'flux-system', name: 'source-controller' });
            if (!deploymentAvailable(d).done) return;
            await new Promise((r) => setTimeout(r, 200));
          }
          assert.fail('the Deployment never turned unavailable');
        };
        await unavailable();
        const run = await cli(['--json', 'bootstrap', ...repo.flags, '--timeout', '3s'], { env: repo.env });
        const doc = JSON.parse(run.stdout) as JsonDoc;
        const t = failedTask(doc);
        assert.equal(t?.kind, 'wait-controllers');
        assert.equal(t?.error?.code, 'E_TIMEOUT');
        assert.match(
          t?.error?.message ?? '',
          /timed out after 3s waiting for Deployment flux-system\/source-controller to be Available: .*conditions: Available=False \(MinimumReplicasUnavailable/,
        );
      } finally {
        await cluster.controllers.start('source-controller');
      }
    }));

  void it('ends in the same state as the first run', () =>
    suite.run(async () => {
      assert.deepEqual(await snapshot(kube), reference);
    }));
});

void describe('bootstrap over SSH', { timeout: 15 * 60_000 }, () => {
  void it('bootstraps an empty cluster with a deploy key and known_hosts, then reports zero changes', async () => {
    await withFreshCluster('fleet-ssh', 'ssh', async (_c, kube, repo) => {
      const first = await bootstrap(repo);
      assert.equal(first.code, 0, first.stderr);
      await assertDecrypted(kube);
      const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'flux-system' });
      assert.deepEqual(Object.keys(secret?.data as object).sort(), ['identity', 'known_hosts']);
      const { doc } = await bootstrapJson(repo);
      assert.equal(doc.recap.changed, 0, notOk(doc));
    });
  });
});

void describe('bootstrap over SSH with a deploy key fluxstrap generates', { timeout: 15 * 60_000 }, () => {
  void it('generates the key, the Git server accepts it (registered), and the real source-controller pulls with it', async () => {
    await withFreshCluster('fleet-ssh-generated', 'ssh', async (c, kube, repo) => {
      const keyFile = join(repo.dir, '..', 'generated', 'deploy-key');
      const config = readFileSync(join(repo.dir, 'fluxstrap.yaml'), 'utf8');
      const knownHosts = /knownHostsFile: (\S+)/.exec(config)?.[1] ?? '';
      writeFileSync(join(repo.dir, 'fluxstrap.yaml'), config.replace(/keyFile: \S+/, `keyFile: ${keyFile}`));
      writeFileSync(join(repo.dir, '..', 'gen.yaml'), 'name: deploy key\ntasks:\n  - name: generate\n    ssh-deploy-key: {}\n');
      const gen = await cli(['run', join(repo.dir, '..', 'gen.yaml'), ...repo.flags]);
      assert.equal(gen.code, 0, gen.stderr);
      const pub = readFileSync(`${keyFile}.pub`, 'utf8').trim();
      assert.ok(gen.stderr.includes(pub.split(' ')[1] ?? 'x') || gen.stdout.includes(pub.split(' ')[1] ?? 'x'), 'the public key is shown');
      assert.ok(knownHosts !== '');
      // The forge's side of registering it: from now on the server accepts this key too.
      c.git.authorize(pub);
      const first = await bootstrap(repo);
      assert.equal(first.code, 0, first.stderr);
      await assertDecrypted(kube);
      const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'flux-system' });
      const identity = Buffer.from((secret?.data as Record<string, string>).identity ?? '', 'base64').toString('utf8');
      assert.equal(identity, readFileSync(keyFile, 'utf8'), 'source-controller holds the generated key, and no other');
    });
  });
});

/** The task names of the built-in playbook, in order (the step boundaries). */
const STEPS = [
  'Preflight',
  'Namespace flux-system',
  'Git credentials Secret',
  'SOPS age Secret',
  'Flux components',
  'Wait for the Flux controllers',
  'Sync objects',
  'Reconcile at the bootstrapped commit',
];

void describe('interrupted and concurrent bootstraps end like an uninterrupted one', { timeout: 60 * 60_000 }, () => {
  let reference: unknown;
  void it('an uninterrupted run, for reference', async () => {
    await withFreshCluster('kill', 'https', async (_c, kube, repo) => {
      const run = await bootstrap(repo);
      assert.equal(run.code, 0, run.stderr);
      reference = await portableSnapshot(kube, repo);
    });
  });
  for (const [i, step] of STEPS.entries()) {
    void it(`killed right after "${step}": the next run converges to the state of an uninterrupted run`, async () => {
      await withFreshCluster(`kill-${i}`, 'https', async (_c, kube, repo) => {
        const killed = await bootstrap(repo, [], { killWhen: (err) => stepEnded(err, step) });
        assert.equal(killed.signal, 'SIGKILL', `the run ended before the kill point: ${killed.stderr}`);
        const next = await bootstrap(repo);
        assert.equal(next.code, 0, next.stderr);
        await assertDecrypted(kube);
        const { doc } = await bootstrapJson(repo);
        assert.equal(doc.recap.changed, 0, notOk(doc));
        assert.deepEqual(await portableSnapshot(kube, repo), reference);
      });
    });
  }
  void it('killed in the middle of the component apply: the next run applies the rest', async () => {
    await withFreshCluster('kill-mid', 'https', async (_c, kube, repo) => {
      // Kill once some CRDs exist and not all: the process is inside the component apply.
      const total =
        readFileSync(join(repo.dir, CLUSTER_PATH, 'flux-system', 'gotk-components.yaml'), 'utf8').split('kind: CustomResourceDefinition').length - 1;
      const midApply = (async () => {
        for (;;) {
          const n = (await kube.list('apiextensions.k8s.io/v1', 'CustomResourceDefinition').catch(() => [])).length;
          if (n >= 1 && n < total) return n;
          if (n >= total) throw new Error('the component apply finished before the kill');
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const dead = await bootstrap(repo, [], { killOn: midApply });
      assert.equal(dead.signal, 'SIGKILL', dead.stderr);
      assert.ok((await midApply) < total);
      const partial = await kube.list('apiextensions.k8s.io/v1', 'CustomResourceDefinition');
      const next = await bootstrap(repo);
      assert.equal(next.code, 0, next.stderr);
      await assertDecrypted(kube);
      assert.ok((await kube.list('apiextensions.k8s.io/v1', 'CustomResourceDefinition')).length >= partial.length);
      const { doc } = await bootstrapJson(repo);
      assert.equal(doc.recap.changed, 0, notOk(doc));
      assert.deepEqual(await portableSnapshot(kube, repo), reference);
    });
  });
  void it('two bootstraps of the same cluster at once: both succeed, without a lock, and the objects are those of one run', async () => {
    await withFreshCluster('concurrent', 'https', async (_c, kube, repo) => {
      const [a, b] = await Promise.all([bootstrap(repo), bootstrap(repo)]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      await assertDecrypted(kube);
      const { doc } = await bootstrapJson(repo);
      assert.equal(doc.recap.changed, 0, notOk(doc));
      assert.deepEqual(await portableSnapshot(kube, repo), reference);
    });
  });
});
