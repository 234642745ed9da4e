// Disaster recovery with the Git credentials kept encrypted in the repository (git.auth.sopsFile):
// the example repository is made by `init --git-sops-file` (the token encrypted for the cluster's
// age key into bootstrap/demo/git-credentials.sops.yaml) and pushed. Then, on a fresh machine
// with a checkout and the age key file only (no token variable, a new HOME), one `bootstrap`
// brings a new cluster up: the Secret it applies is the decrypted one, source-controller pulls
// with it over HTTP basic auth, and the token is in no output and no file left behind.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { makeExampleRepo, must } from '../../scripts/example-repo.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import { conditionOf } from '../../src/adapters/kube/readiness.ts';
import { findLeaks, leaksIn, registerCanary } from '../helpers/canary.ts';
import { tempDir } from '../helpers/tmp.ts';
import { assertConverged } from '../cluster/layouts.ts';
import { bootstrapOnFreshMachine } from '../cluster/fresh-machine.ts';
import { clusterForFile } from '../cluster/testing.ts';

const c = clusterForFile({ flux: 'on-deployment' });

void describe('disaster recovery with the Git credentials encrypted in the repository', () => {
  void it('a checkout and the age key bootstrap a new cluster: source-controller pulls with the decrypted token', () =>
    c.run(async () => {
      const cluster = c.cluster;
      registerCanary(cluster.git.password);
      const work = await tempDir('sopsfile-recovery');
      const example = await makeExampleRepo(cluster, work, { name: 'sopsfile', quiet: true, initArgs: ['--git-sops-file'] });
      const sopsFile = 'bootstrap/demo/git-credentials.sops.yaml';
      assert.match(readFileSync(join(example.repo, sopsFile), 'utf8'), /password: ENC\[AES256_GCM,/);

      // The fresh machine: a checkout of the pushed branch, the age key file, nothing else.
      const { checkout, tmp, home, laptop, run: r } = await bootstrapOnFreshMachine(cluster, work, example, 'sopsfile');
      assert.deepEqual(leaksIn(`${r.stdout}\n${r.stderr}`), [], 'no token in the output');
      assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);

      const kube = await connectKube({ kubeconfig: cluster.kubeconfig });
      const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'flux-system' });
      const data = (secret?.data ?? {}) as Record<string, string>;
      assert.equal(Buffer.from(data.password ?? '', 'base64').toString(), cluster.git.password, 'the Secret holds the decrypted token');
      assert.equal(Buffer.from(data.username ?? '', 'base64').toString(), cluster.git.username);

      // source-controller fetched the branch with it: Ready, at the pushed commit.
      const head = (await must('git', ['rev-parse', 'HEAD'], { cwd: checkout, quiet: true })).trim();
      const repo = await kube.get({ apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'GitRepository', namespace: 'flux-system', name: 'flux-system' });
      assert.equal(conditionOf(repo, 'Ready')?.status, 'True', conditionOf(repo, 'Ready')?.message);
      assert.equal((repo?.status as { artifact?: { revision?: string } } | undefined)?.artifact?.revision, `main@sha1:${head}`);
      await assertConverged(kube, ['flux-system'], []);
      const app = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'demo-app', name: 'db-credentials' });
      assert.ok((app?.data as Record<string, string> | undefined)?.password !== undefined, 'the app Secret arrived decrypted');

      assert.deepEqual(findLeaks([tmp, laptop, home]), [], 'the token is in no file left behind');
    }));
});
