// Faults during `fluxstrap bootstrap` against the real harness cluster (issue 15): kube-apiserver
// restarted while a wait runs, the Git server down during preflight and during the reconcile,
// a controller crashing while it is waited for, a Secret written by someone else between
// observe and apply. Each run either converges by itself or fails with one error line; the next
// run ends in the state of an uninterrupted one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import { isFluxstrapError } from '../../src/core/errors.ts';
import { applySecret, observeSecret, planSecret } from '../../src/tasks/secret.ts';
import type { SecretSpec } from '../../src/tasks/secret.ts';
import type { Cluster } from '../cluster/index.ts';
import { sleep, waitFor } from '../cluster/proc.ts';
import {
  assertDecrypted,
  bootstrap,
  bootstrapJson,
  failedTask,
  notOk,
  nothingChanged,
  portableSnapshot,
  stepEnded,
  withFreshCluster,
  type Repo,
  type Run,
} from '../cluster/bootstrap-kit.ts';

const WAIT_CONTROLLERS = 'Wait for the Flux controllers';
const RECONCILE = 'Reconcile at the bootstrapped commit';

/**
 * A wait of `step` reported progress (`  … step: Kind namespace/name: state`, unlike the
 * engine's `  … step: run Kind …` before it): the run is inside that wait now.
 */
const waiting = (stderr: string, step: string, kind = '[A-Z]\\w+'): boolean =>
  stderr.split('\n').some((l) => l.startsWith(`  … ${step}: `) && new RegExp(`^${kind} [\\w.-]+/[\\w.-]+: `).test(l.slice(`  … ${step}: `.length)));

/** A failed run says what failed in one `error:` line and never shows a stack. */
function assertOneLineFailure(run: Run, pattern: RegExp): void {
  assert.equal(run.code, 1, run.stderr);
  const errors = run.stderr.split('\n').filter((l) => /^\s*error: /.test(l));
  assert.equal(errors.length, 1, run.stderr);
  assert.match(errors[0] ?? '', pattern);
  assert.doesNotMatch(run.stderr, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace');
}

/** The next run converges and the cluster is what an uninterrupted run leaves. */
async function convergesLikeReference(kube: KubeAdapter, repo: Repo, reference: unknown): Promise<void> {
  await assertDecrypted(kube);
  const { run, doc } = await bootstrapJson(repo);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(doc.recap.changed, 0, notOk(doc));
  assert.deepEqual(await portableSnapshot(kube, repo), reference);
}

/** Kills kube-apiserver (no graceful shutdown: the wait sees its watch cut) and starts it again. */
async function restartApiserver(c: Cluster): Promise<void> {
  await c.apiserver.stop(0);
  await sleep(2000);
  await c.apiserver.start();
}

void describe('faults during a bootstrap end like an uninterrupted one', { timeout: 60 * 60_000 }, () => {
  let reference: unknown;

  void it('an uninterrupted run, for reference; a Secret written by someone else between observe and apply is never overwritten', async () => {
    await withFreshCluster('fault-reference', 'https', async (c, kube, repo) => {
      const run = await bootstrap(repo);
      assert.equal(run.code, 0, run.stderr);
      reference = await portableSnapshot(kube, repo);

      const spec = (value: string): SecretSpec => ({ namespace: 'apps', name: 'race', data: { token: value } });
      const ref = { apiVersion: 'v1', kind: 'Secret', namespace: 'apps', name: 'race' };
      const value = async () => Buffer.from(((await kube.get(ref))?.data as Record<string, string>).token ?? '', 'base64').toString();

      // Observed missing; someone else creates it with another value before the apply.
      const [create] = planSecret(await observeSecret(kube, spec('ours'), false));
      assert.ok(create?.action === 'create');
      await c.kubectl(['create', 'secret', 'generic', 'race', '-n', 'apps', '--from-literal=token=theirs']);
      await assert.rejects(
        applySecret(kube, create, false),
        (e) => isFluxstrapError(e) && e.code === 'E_PRECONDITION' && /Secret apps\/race differs .*changed token/.test(e.message),
      );
      assert.equal(await value(), 'theirs', "the other writer's value stays");

      // The same race with the value we would have written: nothing to do, no error.
      await kube.delete(ref);
      const [again] = planSecret(await observeSecret(kube, spec('theirs'), false));
      assert.ok(again);
      await c.kubectl(['create', 'secret', 'generic', 'race', '-n', 'apps', '--from-literal=token=theirs']);
      await applySecret(kube, again, false);
      assert.equal(await value(), 'theirs');

      // With --rotate-secrets the re-observed drift is a rotation, applied over what is there now.
      await kube.delete(ref);
      const [rotate] = planSecret(await observeSecret(kube, spec('ours'), true));
      assert.ok(rotate);
      await c.kubectl(['create', 'secret', 'generic', 'race', '-n', 'apps', '--from-literal=token=theirs', '--from-literal=extra=x']);
      await applySecret(kube, rotate, true);
      assert.equal(await value(), 'ours');
      assert.deepEqual(Object.keys((await kube.get(ref))?.data as object), ['token']);
      await kube.delete(ref);
    });
  });

  void it('kube-apiserver restarted while the controllers and the reconcile are awaited: the same run re-watches and converges', async () => {
    await withFreshCluster('fault-apiserver', 'https', async (c, kube, repo) => {
      // Each wait is held open by a stopped controller, so the restart falls inside it for sure;
      // the controller comes back once the API server is up again.
      await c.controllers.stop('source-controller');
      let restarts = Promise.resolve();
      const restarted: string[] = [];
      let held = false;
      const restartInside = (step: string, controller: 'source-controller' | 'kustomize-controller') => {
        restarted.push(step);
        restarts = restarts.then(() => restartApiserver(c)).then(() => c.controllers.start(controller));
      };
      const run = await bootstrap(repo, [], {
        onStderr: (err) => {
          if (restarted.length === 0 && waiting(err, WAIT_CONTROLLERS)) restartInside(WAIT_CONTROLLERS, 'source-controller');
          if (!held && stepEnded(err, WAIT_CONTROLLERS)) {
            held = true;
            restarts = restarts.then(() => c.controllers.stop('kustomize-controller'));
          }
          if (restarted.length === 1 && waiting(err, RECONCILE, 'Kustomization')) restartInside(RECONCILE, 'kustomize-controller');
        },
      });
      await restarts;
      assert.deepEqual(restarted, [WAIT_CONTROLLERS, RECONCILE], `both waits saw a restart: ${run.stderr}`);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /unreachable \(ECONN(REFUSED|RESET)\); retrying/);
      await convergesLikeReference(kube, repo, reference);
    });
  });

  void it('a controller crashing while it is awaited is restarted (as by a kubelet) and the same run converges', async () => {
    await withFreshCluster('fault-crash', 'https', async (c, kube, repo) => {
      const crashes: Promise<void>[] = [];
      let inWait = false;
      let inReconcile = false;
      const run = await bootstrap(repo, [], {
        onStderr: (err) => {
          if (!inWait && waiting(err, WAIT_CONTROLLERS)) {
            inWait = true;
            // Crash source-controller once it is up, while the Deployments are still awaited.
            crashes.push(
              waitFor('source-controller healthy', async () => ((await c.controllers.healthy('source-controller')) ? true : undefined)).then(() =>
                c.controllers.crash('source-controller'),
              ),
            );
          }
          if (!inReconcile && waiting(err, RECONCILE)) {
            inReconcile = true;
            c.controllers.crash('kustomize-controller');
          }
        },
      });
      await Promise.all(crashes);
      assert.ok(inWait && inReconcile, `both crashes happened: ${run.stderr}`);
      assert.equal(run.code, 0, run.stderr);
      await convergesLikeReference(kube, repo, reference);
    });
  });

  void it('the Git server down: preflight refuses in one line and changes nothing; down during the reconcile: converges or one line; the next run converges', async () => {
    await withFreshCluster('fault-git', 'https', async (c, kube, repo) => {
      await c.git.down();
      try {
        const { run, doc } = await bootstrapJson(repo);
        assert.equal(run.code, 1, run.stderr);
        const t = failedTask(doc);
        assert.equal(t?.kind, 'preflight');
        assert.equal(t?.error?.code, 'E_GIT');
        assert.doesNotMatch(t?.error?.message ?? '', /\n/);
        assert.doesNotMatch(run.stdout + run.stderr, new RegExp(c.git.password));
        await nothingChanged(kube);
        const plain = await bootstrap(repo);
        assertOneLineFailure(plain, /error: .*(git|Git)/);
      } finally {
        await c.git.up();
      }

      // Down from before the sync objects exist until 20 s into the reconcile wait.
      let downed: Promise<void> | undefined;
      let upped: Promise<void> | undefined;
      const faulted = await bootstrap(repo, [], {
        onStderr: (err) => {
          if (!downed && waiting(err, WAIT_CONTROLLERS)) downed = c.git.down();
          if (downed && !upped && waiting(err, RECONCILE)) upped = sleep(20_000).then(() => c.git.up());
        },
      });
      await downed;
      await (upped ?? c.git.up());
      assert.ok(downed, faulted.stderr);
      if (faulted.code !== 0) assertOneLineFailure(faulted, /error: .*(GitRepository flux-system\/flux-system|Git|git)/);
      const next = await bootstrap(repo);
      assert.equal(next.code, 0, next.stderr);
      await convergesLikeReference(kube, repo, reference);
    });
  });
});
