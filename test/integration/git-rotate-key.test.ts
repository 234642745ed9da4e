// `fluxstrap git rotate-key` against the real cluster, the harness' SSH Git server and the GitHub
// stand-in (every request checked against GitHub's OpenAPI description). The Git server accepts
// exactly the keys registered on the stand-in, as GitHub does: one bootstrap registers key A (made
// by init, registered nowhere) and reads the repository with it; a rotation to
// B killed right after the flux-system Secret changed, finished by the next run; then A is gone
// from GitHub (and so refused by the server), B is under the standard title alone, and the real
// source-controller fetches a new commit with B.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { cli, EXAMPLE_CLUSTER, makeExampleRepo, must, sh } from '../../scripts/example-repo.ts';
import { gitEnv } from '../../src/adapters/git.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import { decryptGitSecret } from '../../src/flux/git-secret.ts';
import { parseAgeKeyFile, recipientOf } from '../../src/keys/age.ts';
import { publicKeyOfPrivate } from '../../src/keys/ssh.ts';
import { leaksIn } from '../helpers/canary.ts';
import { GitHubStandIn, GitHubWorld } from '../helpers/github-standin.ts';
import { assertFetchesWithNewKeyOnly } from '../helpers/rotation.ts';
import { tempDir } from '../helpers/tmp.ts';
import { clusterForFile } from '../cluster/testing.ts';

const c = clusterForFile({ flux: 'on-deployment' });
const TOKEN = 'ghp_rotate_key_token';
const TITLE = `flux-system-main-flux-system-clusters/${EXAMPLE_CLUSTER}`;
const blob = (line: string) => line.trim().split(' ')[1] ?? '';

void describe('git rotate-key on a real cluster', { timeout: 20 * 60_000 }, () => {
  void it('A → B: killed after the Secret swap, finished by the next run; GitHub holds only B, source-controller fetches with B', () =>
    c.run(async () => {
      const cluster = c.cluster;
      const gh = await new GitHubStandIn().start();
      // GET /meta names the host key of the SSH server that stands in for github.com's.
      const world = new GitHubWorld({ [TOKEN]: { login: 'me' } }, {}, [cluster.git.knownHosts.split(' ').slice(1).join(' ')]).install(gh);
      const fleet = world.addRepo('me/fleet', { me: 'admin' });
      cluster.git.acceptRegistered(() => fleet.keys.map((k) => k.key));
      try {
        const work = await tempDir('rotate-key');
        mkdirSync(join(work, 'me', 'fleet', 'clusters', EXAMPLE_CLUSTER), { recursive: true });
        const knownHosts = join(work, 'known_hosts');
        writeFileSync(knownHosts, `${cluster.git.knownHosts}\n`);
        const keyFile = join(work, 'keys', 'deploy-key');
        const sshUrl = cluster.git.sshUrl('me/fleet.git');
        const example = await makeExampleRepo(cluster, work, {
          name: 'me/fleet',
          quiet: true,
          gitArgs: () => ['--git-url', sshUrl, '--branch', 'main', '--git-ssh-key', keyFile, '--git-known-hosts', knownHosts],
          // The deploy key is also kept encrypted in the repository: the rotation must put B there too.
          initArgs: ['--git-sops-file'],
        });
        const sopsFile = `bootstrap/${EXAMPLE_CLUSTER}/git-credentials.sops.yaml`;
        const stored = async () =>
          decryptGitSecret(
            readFileSync(join(example.repo, sopsFile)),
            sopsFile,
            await parseAgeKeyFile(readFileSync(example.keyFile, 'utf8'), 'k', recipientOf),
          );
        // The repository is the stand-in's me/fleet (the URL's path), reached over the harness' SSH server.
        const configFile = join(example.repo, 'fluxstrap.yaml');
        const config = parse(readFileSync(configFile, 'utf8')) as { clusters: Record<string, { git: Record<string, unknown> }> };
        const entry = config.clusters[EXAMPLE_CLUSTER];
        assert.ok(entry);
        entry.git.provider = 'github';
        writeFileSync(configFile, stringify(config));
        const env = { ...example.env, GITHUB_TOKEN: TOKEN, FLUXSTRAP_GITHUB_API_URL: gh.url };
        const fluxstrap = (...args: string[]) =>
          sh(process.execPath, [cli, ...args, '--cluster', EXAMPLE_CLUSTER, '--repo', example.repo], { env, quiet: true });

        // An existing repository: init made key A but registered nothing, so the server refuses A.
        const keyA = publicKeyOfPrivate(readFileSync(keyFile, 'utf8'), keyFile);
        const dry = await fluxstrap('bootstrap', '--check');
        assert.equal(dry.code, 3, `${dry.stderr}\n${dry.stdout}`);
        assert.match(dry.stderr + dry.stdout, /register the read-only deploy key/);
        assert.match(dry.stderr + dry.stdout, /read it with the deploy key once registered/);
        assert.doesNotMatch(dry.stderr + dry.stdout, /✗|failed=[1-9]/, 'pending, not failed');
        assert.equal(fleet.keys.length, 0, '--check registers nothing');
        assert.equal(publicKeyOfPrivate(readFileSync(keyFile, 'utf8'), keyFile), keyA, '--check leaves the key file alone');
        // One bootstrap registers A, then reads the repository with it.
        const boot = await fluxstrap('bootstrap');
        assert.equal(boot.code, 0, `${boot.stderr}\n${boot.stdout}`);
        assert.deepEqual(
          fleet.keys.map((k) => [k.title, blob(k.key)]),
          [[TITLE, blob(keyA)]],
          'bootstrap registered A',
        );

        const check = await fluxstrap('git', 'rotate-key', '--check', '--diff');
        assert.equal(check.code, 3, `${check.stderr}\n${check.stdout}`);
        assert.deepEqual(leaksIn(`${check.stdout}\n${check.stderr}`), [], 'the plan and its diff show no key');
        assert.equal(existsSync(`${keyFile}.next`), false, '--check generates no key');

        // Killed once the Secret holds B: Flux has the new key, GitHub still both, the files not moved.
        const kube = await connectKube({ kubeconfig: cluster.kubeconfig });
        const secretRef = { apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'flux-system' };
        const identity = async () =>
          Buffer.from(((await kube.get(secretRef))?.data as Record<string, string> | undefined)?.identity ?? '', 'base64').toString();
        const identityA = await identity();
        const child = spawn(process.execPath, [cli, 'git', 'rotate-key', '--cluster', EXAMPLE_CLUSTER, '--repo', example.repo], {
          env: { ...process.env, ...env },
          stdio: 'ignore',
        });
        const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
        let killed = false;
        for (let i = 0; i < 600 && child.exitCode === null; i++) {
          if ((await identity()) !== identityA) {
            child.kill('SIGKILL');
            killed = true;
            break;
          }
          await sleep(50);
        }
        await exited;
        assert.ok(killed, 'the first run was killed after the Secret swap');
        const keyB = publicKeyOfPrivate(readFileSync(`${keyFile}.next`, 'utf8'), `${keyFile}.next`);
        assert.equal(await identity(), readFileSync(`${keyFile}.next`, 'utf8'), 'the Secret holds B');
        assert.deepEqual(fleet.keys.map((k) => k.title).sort(), [TITLE, `${TITLE}-next`], 'both keys registered while Flux switches');

        const again = await fluxstrap('git', 'rotate-key');
        assert.equal(again.code, 0, `${again.stderr}\n${again.stdout}`);
        assert.deepEqual(leaksIn(`${again.stdout}\n${again.stderr}`), [], 'no private key in the output');
        assert.deepEqual(
          fleet.keys.map((k) => [k.title, blob(k.key), k.read_only]),
          [[TITLE, blob(keyB), true]],
          'GitHub: only B, under the standard title',
        );
        assert.equal(publicKeyOfPrivate(readFileSync(keyFile, 'utf8'), keyFile), keyB, 'the key file is B');
        assert.equal(publicKeyOfPrivate(readFileSync(`${keyFile}.old`, 'utf8'), `${keyFile}.old`), keyA, 'A kept as .old');
        assert.equal(existsSync(`${keyFile}.next`), false);
        assert.equal(blob(readFileSync(`${keyFile}.pub`, 'utf8')), blob(keyB));
        const creds = await stored();
        assert.ok(creds.type === 'ssh' && creds.identity === readFileSync(keyFile, 'utf8'), `${sopsFile} holds B`);
        assert.match(again.stderr + again.stdout, new RegExp(`commit and push ${sopsFile}`));

        await assertFetchesWithNewKeyOnly({
          kube,
          sshUrl,
          oldKeyFile: `${keyFile}.old`,
          knownHostsFile: knownHosts,
          repo: example.repo,
          path: example.path,
          push: () =>
            must('git', ['push', '--quiet', sshUrl, 'main'], {
              cwd: example.repo,
              env: gitEnv({ kind: 'ssh', identityFile: keyFile, knownHostsFile: knownHosts }),
            }),
        });

        // The next rotation would retire B to .old, which still holds A: refused until A is moved away.
        const next = await fluxstrap('git', 'rotate-key', '--check');
        assert.equal(next.code, 1, next.stderr);
        assert.match(next.stderr, /^error: .*deploy-key\.old holds another key/m);
        assert.equal(existsSync(`${keyFile}.next`), false);
        assert.deepEqual(gh.violations, [], 'every request and response matched the OpenAPI description');
      } finally {
        cluster.git.acceptRegistered(() => []);
        await gh.stop();
      }
    }));
});
