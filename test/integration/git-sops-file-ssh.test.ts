// Disaster recovery over SSH with the deploy key kept only in the repository (git.auth.sopsFile):
// init generates the deploy key for the harness Git server's ssh:// URL and encrypts it with
// known_hosts into bootstrap/demo/git-credentials.sops.yaml; the key is registered (authorized)
// and its file deleted, as on a lost laptop. From a fresh clone, with the age key file only,
// bootstrap reads the repository through a private ssh-agent and applies the decrypted key:
// source-controller pulls over SSH with it, and no new key is generated in its place.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { makeExampleRepo, must } from '../../scripts/example-repo.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import { conditionOf } from '../../src/adapters/kube/readiness.ts';
import { findLeaks, leaksIn } from '../helpers/canary.ts';
import { tempDir } from '../helpers/tmp.ts';
import { assertConverged } from '../cluster/layouts.ts';
import { bootstrapOnFreshMachine } from '../cluster/fresh-machine.ts';
import { clusterForFile } from '../cluster/testing.ts';

const c = clusterForFile({ flux: 'on-deployment' });

void describe('disaster recovery over SSH with the deploy key encrypted in the repository', () => {
  void it('a checkout and the age key bootstrap a new cluster: source-controller pulls over SSH with the decrypted key', () =>
    c.run(async () => {
      const cluster = c.cluster;
      const work = await tempDir('sopsfile-ssh');
      const name = 'sshdr';
      // known_hosts is public and committed beside the cluster's manifests.
      mkdirSync(join(work, name, 'clusters', 'demo'), { recursive: true });
      const knownHosts = join(work, name, 'clusters', 'demo', 'known_hosts');
      writeFileSync(knownHosts, `${cluster.git.knownHosts}\n`);
      const deployKey = join(work, 'keys', 'deploy-key');
      const sshUrl = cluster.git.sshUrl(`${name}.git`);
      const example = await makeExampleRepo(cluster, work, {
        name,
        quiet: true,
        gitArgs: () => ['--git-url', sshUrl, '--branch', 'main', '--git-ssh-key', deployKey, '--git-known-hosts', knownHosts],
        initArgs: ['--git-sops-file'],
      });
      const identity = readFileSync(deployKey, 'utf8');
      cluster.git.authorize(readFileSync(`${deployKey}.pub`, 'utf8').trim());
      rmSync(deployKey);
      rmSync(`${deployKey}.pub`);

      const { checkout, tmp, home, laptop, run: r } = await bootstrapOnFreshMachine(cluster, work, example, name);
      assert.deepEqual(leaksIn(`${r.stdout}\n${r.stderr}`), [], 'no private key in the output');
      assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
      assert.equal(existsSync(deployKey), false, 'no new deploy key generated in place of the one in the repository');
      assert.deepEqual(
        readdirSync(tmp).filter((n) => n.startsWith('fluxstrap-')),
        [],
        "the agent's folder is gone",
      );

      const kube = await connectKube({ kubeconfig: cluster.kubeconfig });
      const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'flux-system' });
      const data = (secret?.data ?? {}) as Record<string, string>;
      assert.equal(Buffer.from(data.identity ?? '', 'base64').toString(), identity, 'the Secret holds the decrypted deploy key');

      const head = (await must('git', ['rev-parse', 'HEAD'], { cwd: checkout, quiet: true })).trim();
      const repo = await kube.get({ apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'GitRepository', namespace: 'flux-system', name: 'flux-system' });
      assert.equal((repo?.spec as { url?: string } | undefined)?.url, sshUrl);
      assert.equal(conditionOf(repo, 'Ready')?.status, 'True', conditionOf(repo, 'Ready')?.message);
      assert.equal((repo?.status as { artifact?: { revision?: string } } | undefined)?.artifact?.revision, `main@sha1:${head}`);
      await assertConverged(kube, ['flux-system'], []);

      assert.deepEqual(findLeaks([tmp, laptop, home]), [], 'no private key in any file left behind');
    }));
});
