// GitHub App auth end to end on the real cluster: the fleet's fluxstrap.yaml has git.auth.githubApp
// with baseUrl the GitHub stand-in (every request and response checked against @octokit/openapi),
// and the harness's Git server accepts what GitHub accepts for an App: an installation token the
// stand-in minted, as the password of `x-access-token`, for a repository the installation sees.
// fluxstrap bootstrap mints its own token in preflight; then the real source-controller, given
// only the Secret's githubApp* keys (githubAppBaseURL: the stand-in over plain HTTP, which
// fluxcd/pkg/auth/githubapp accepts), finds the installation of the owner, mints a token with
// its own JWT and fetches the branch with it.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gitEnv } from '../../src/adapters/git.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import { conditionOf } from '../../src/adapters/kube/readiness.ts';
import { bootstrap, git, makeRepo, tempDir } from '../cluster/bootstrap-kit.ts';
import { clusterForFile } from '../cluster/testing.ts';
import { GitHubStandIn, GitHubWorld } from '../helpers/github-standin.ts';

const c = clusterForFile({ flux: 'on-deployment' });
const APP_ID = 31337;

void describe('GitHub App auth on the real cluster', () => {
  void it('source-controller mints an installation token at githubAppBaseURL and pulls with it as x-access-token', () =>
    c.run(async () => {
      const cluster = c.cluster;
      const gh = await new GitHubStandIn().start();
      try {
        const world = new GitHubWorld({}, { acme: [] }).install(gh);
        world.addRepo('acme/fleet', {});
        const app = generateKeyPairSync('rsa', {
          modulusLength: 2048,
          publicKeyEncoding: { type: 'spki', format: 'pem' },
          privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
        });
        world.addApp(APP_ID, app.publicKey, [{ id: 4242, account: 'acme', repos: ['acme/fleet'], permissions: { contents: 'read', metadata: 'read' } }]);
        cluster.git.acceptBasic((user, password, repo) => world.gitAccess(user, password, repo));
        const privateKeyFile = join(tempDir('github-app'), 'app.pem');
        writeFileSync(privateKeyFile, app.privateKey, { mode: 0o600 });

        const repo = await makeRepo(cluster, {
          name: 'acme/fleet',
          transport: 'https',
          gitAuth: { githubApp: { appId: APP_ID, installationOwner: 'acme', privateKeyFile, baseUrl: gh.url } },
        });
        const url = cluster.git.httpUrl('acme/fleet.git');
        const run = await bootstrap(repo);
        assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
        assert.doesNotMatch(run.stdout + run.stderr, /ghs_|PRIVATE KEY/, 'no token or App key in the output');

        const kube = await connectKube({ kubeconfig: cluster.kubeconfig });
        const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'flux-system' });
        const data = Object.fromEntries(
          Object.entries((secret?.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
        );
        assert.deepEqual(Object.keys(data).sort(), ['githubAppBaseURL', 'githubAppID', 'githubAppInstallationOwner', 'githubAppPrivateKey']);
        assert.equal(data.githubAppBaseURL, gh.url);
        assert.equal(data.githubAppID, String(APP_ID));
        assert.equal(data.githubAppInstallationOwner, 'acme');

        const gitRepo = await kube.get({ apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'GitRepository', namespace: 'flux-system', name: 'flux-system' });
        assert.equal((gitRepo?.spec as { provider?: string } | undefined)?.provider, 'github');
        assert.equal(conditionOf(gitRepo, 'Ready')?.status, 'True', conditionOf(gitRepo, 'Ready')?.message);
        const head = await git(['rev-parse', 'HEAD'], repo.dir);
        assert.equal((gitRepo?.status as { artifact?: { revision?: string } } | undefined)?.artifact?.revision, `main@sha1:${head}`);

        // Who minted what, and who fetched with it: go-github (source-controller) found the
        // installation of the organisation and minted a token; go-git fetched the branch with
        // exactly such a token. fluxstrap's own token (its preflight) is a different one.
        const byController = world.minted.filter((m) => m.userAgent.startsWith('go-github'));
        const byFluxstrap = world.minted.filter((m) => m.userAgent.startsWith('fluxstrap/'));
        assert.ok(byController.length > 0, `source-controller minted a token (minted by: ${world.minted.map((m) => m.userAgent).join(', ')})`);
        assert.ok(byFluxstrap.length > 0, 'fluxstrap minted its own in preflight');
        assert.ok(
          gh.requests.some((r) => r.template === 'GET /orgs/{org}/installation' && r.status === 200),
          `the installation found by owner: ${JSON.stringify(gh.requests)}`,
        );
        const controllerTokens = new Set(byController.map((m) => m.token));
        const fetches = cluster.git.verifiedLogins.filter((l) => controllerTokens.has(l.password));
        assert.ok(fetches.length > 0, `a fetch with the controller's token (logins: ${cluster.git.verifiedLogins.map((l) => l.userAgent).join(', ')})`);
        assert.ok(
          fetches.every((l) => l.username === 'x-access-token' && l.repo === 'acme/fleet.git' && l.userAgent.startsWith('go-git/')),
          `as x-access-token, by source-controller's go-git (not the git CLI fluxstrap runs): ${fetches.map((l) => `${l.username} ${l.repo} ${l.userAgent}`).join(', ')}`,
        );
        assert.deepEqual(gh.violations, [], 'every request and response matches GitHub OpenAPI description');

        // The Git server is no open door: a token the stand-in never minted is refused.
        const { execa } = await import('execa');
        const refused = await execa('git', ['ls-remote', url], {
          env: gitEnv({ kind: 'basic', username: 'x-access-token', password: 'ghs_notminted1234' }),
          reject: false,
        });
        assert.notEqual(refused.exitCode, 0, 'an unknown token is refused');
      } finally {
        await gh.stop();
      }
    }));
});
