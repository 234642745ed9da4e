// Disaster recovery with the Git credentials kept encrypted in the repository (git.auth.sopsFile):
// the example repository is made by `init --git-sops-file` (the token encrypted for the cluster's
// age key into bootstrap/demo/git-credentials.sops.yaml) and pushed. Then, on a fresh machine
// with a checkout and the age key file only (no token variable, a new HOME), one `bootstrap`
// brings a new cluster up: the Secret it applies is the decrypted one, source-controller pulls
// with it over HTTP basic auth, and the token is in no output and no file left behind.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cli, makeExampleRepo, must, sh } from '../../scripts/example-repo.ts';
import { gitEnv } from '../../src/adapters/git.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import { conditionOf } from '../../src/adapters/kube/readiness.ts';
import { findLeaks, leaksIn, registerCanary } from '../helpers/canary.ts';
import { tempDir } from '../helpers/tmp.ts';
import { assertConverged } from '../cluster/layouts.ts';
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
      const laptop = join(work, 'new-laptop');
      const home = join(work, 'new-home');
      const tmp = join(work, 'tmp');
      for (const d of [laptop, home, tmp]) mkdirSync(d);
      const checkout = join(laptop, 'sopsfile');
      await must('git', ['clone', '--quiet', '--branch', 'main', example.gitUrl, checkout], {
        env: gitEnv({ kind: 'basic', username: cluster.git.username, password: cluster.git.password }),
        quiet: true,
      });
      const env: NodeJS.ProcessEnv = {
        HOME: home,
        TMPDIR: tmp,
        XDG_CONFIG_HOME: undefined,
        SOPS_AGE_KEY: undefined,
        SOPS_AGE_KEY_FILE: undefined,
        DEMO_GIT_PASSWORD: undefined,
        CI: '1',
        NO_COLOR: '1',
      };

      const r = await sh(process.execPath, [cli, 'bootstrap', '--cluster', 'demo', '--age-key-file', example.keyFile, '--timeout', '3m'], {
        cwd: checkout,
        env,
        quiet: true,
      });
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
