// `git.provider: gitea` end to end against the real cluster and a real Gitea (v1.27.3) serving the
// repository over its own SSH server, which accepts exactly the deploy keys registered through its
// API: init writes the provider; one bootstrap, the key file missing, generates key A, registers
// it on Gitea and only then reads the repository with it, and syncs;
// `git rotate-key` registers B beside A on Gitea, swaps the Secret, waits for source-controller's
// fetch, deletes A on Gitea; then Gitea's SSH server refuses A and source-controller fetches a new
// commit with B.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { cli, EXAMPLE_CLUSTER, makeExampleRepo, must, sh } from '../../scripts/example-repo.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import { publicKeyOfPrivate } from '../../src/keys/ssh.ts';
import { leaksIn } from '../helpers/canary.ts';
import { startGitea } from '../helpers/gitea.ts';
import { assertFetchesWithNewKeyOnly } from '../helpers/rotation.ts';
import { tempDir } from '../helpers/tmp.ts';
import { clusterForFile } from '../cluster/testing.ts';

const c = clusterForFile({ flux: 'on-deployment' });
const TITLE = `flux-system-main-flux-system-clusters/${EXAMPLE_CLUSTER}`;
const blob = (line: string) => line.trim().split(' ')[1] ?? '';

void describe('git.provider gitea on a real cluster', { timeout: 20 * 60_000 }, () => {
  void it('bootstrap registers A on Gitea; rotate-key moves Flux to B and retires A there; source-controller fetches with B', () =>
    c.run(async () => {
      const cluster = c.cluster;
      const gitea = await startGitea();
      try {
        assert.equal((await gitea.api('POST', '/user/repos', { name: 'fleet', private: true, default_branch: 'main' })).status, 201);
        const keys = async () => (await gitea.api('GET', `/repos/${gitea.user}/fleet/keys`)).json as { title: string; key: string; read_only: boolean }[];
        const work = await tempDir('rotate-key-gitea');
        const sshUrl = gitea.sshUrl('fleet');
        const knownHosts = join(work, 'known_hosts');
        // Gitea's host key, as a user confirms it once.
        const scan = await sh('ssh-keyscan', ['-p', new URL(sshUrl).port, '-t', 'ed25519', '127.0.0.1'], { quiet: true });
        assert.match(scan.stdout, /ssh-ed25519/, scan.stderr);
        writeFileSync(knownHosts, `${scan.stdout.trim()}\n`);
        const keyFile = join(work, 'keys', 'deploy-key');
        const example = await makeExampleRepo(cluster, work, {
          name: 'fleet',
          quiet: true,
          gitArgs: () => [
            ...['--git-url', sshUrl, '--branch', 'main', '--git-ssh-key', keyFile, '--git-known-hosts', knownHosts],
            ...['--git-provider', 'gitea', '--gitea-api-url', gitea.apiUrl],
          ],
        });
        const config = parse(readFileSync(join(example.repo, 'fluxstrap.yaml'), 'utf8')) as { clusters: Record<string, { git: unknown }> };
        assert.deepEqual((config.clusters[EXAMPLE_CLUSTER]?.git as { provider?: string; gitea?: unknown }).provider, 'gitea');
        assert.deepEqual((config.clusters[EXAMPLE_CLUSTER]?.git as { gitea?: unknown }).gitea, { apiUrl: gitea.apiUrl });
        // The repository lives on Gitea: pushed over HTTP with the admin's token (in the environment, never argv).
        const giteaHttp = `${gitea.apiUrl.replace(/\/api\/v1$/, '')}/${gitea.user}/fleet.git`;
        const adminPush = { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: `Authorization: token ${gitea.token}` };
        await must('git', ['push', '--quiet', giteaHttp, 'main'], { cwd: example.repo, env: adminPush });

        const env = { ...example.env, GITEA_TOKEN: gitea.token };
        const fluxstrap = (...args: string[]) =>
          sh(process.execPath, [cli, ...args, '--cluster', EXAMPLE_CLUSTER, '--repo', example.repo], { env, quiet: true });
        // The key init made is gone (another machine): bootstrap generates A, registers it, then reads with it.
        rmSync(keyFile);
        rmSync(`${keyFile}.pub`);
        const dry = await fluxstrap('bootstrap', '--check');
        assert.equal(dry.code, 3, `${dry.stderr}\n${dry.stdout}`);
        assert.match(dry.stderr + dry.stdout, /would be generated, then register the read-only deploy key/);
        assert.doesNotMatch(dry.stderr + dry.stdout, /✗|failed=[1-9]/, 'pending, not failed');
        assert.equal(existsSync(keyFile), false, '--check writes no key');
        assert.deepEqual(await keys(), [], '--check registers nothing');
        const boot = await fluxstrap('bootstrap');
        assert.equal(boot.code, 0, `${boot.stderr}\n${boot.stdout}`);
        assert.deepEqual(leaksIn(`${boot.stdout}\n${boot.stderr}`), [], 'no token or key in the output');
        const keyA = publicKeyOfPrivate(readFileSync(keyFile, 'utf8'), keyFile);
        assert.deepEqual(
          (await keys()).map((k) => [k.title, blob(k.key), k.read_only]),
          [[TITLE, blob(keyA), true]],
          'the one bootstrap registered A on Gitea',
        );

        const rotated = await fluxstrap('git', 'rotate-key');
        assert.equal(rotated.code, 0, `${rotated.stderr}\n${rotated.stdout}`);
        assert.deepEqual(leaksIn(`${rotated.stdout}\n${rotated.stderr}`), [], 'no token or key in the output');
        assert.match(rotated.stderr + rotated.stdout, /new key registered on Gitea beside the old/);
        assert.match(rotated.stderr + rotated.stdout, /old key retired on Gitea/);
        assert.doesNotMatch(rotated.stderr + rotated.stdout, /remove the old deploy key/, 'nothing left for the user to do on Gitea');
        const keyB = publicKeyOfPrivate(readFileSync(keyFile, 'utf8'), keyFile);
        assert.notEqual(blob(keyB), blob(keyA));
        assert.deepEqual(
          (await keys()).map((k) => [k.title, blob(k.key), k.read_only]),
          [[TITLE, blob(keyB), true]],
          'Gitea: only B, under the standard title',
        );
        assert.equal(publicKeyOfPrivate(readFileSync(`${keyFile}.old`, 'utf8'), `${keyFile}.old`), keyA, 'A kept as .old');
        assert.equal(existsSync(`${keyFile}.next`), false);

        await assertFetchesWithNewKeyOnly({
          kube: await connectKube({ kubeconfig: cluster.kubeconfig }),
          sshUrl,
          oldKeyFile: `${keyFile}.old`,
          knownHostsFile: knownHosts,
          repo: example.repo,
          path: example.path,
          push: () => must('git', ['push', '--quiet', giteaHttp, 'main'], { cwd: example.repo, env: adminPush }),
        });
      } finally {
        await gitea.stop();
      }
    }));
});
