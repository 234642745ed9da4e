import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCliAsync } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { GitHubStandIn, GitHubWorld } from '../helpers/github-standin.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';
import { kustomizeBuild } from '../../src/adapters/kustomize.ts';

/**
 * GitHub App authentication through the built CLI against the stand-in, which checks the JWT
 * (RS256, signed by the App's key, `iss` the App ID) and every request and response against
 * GitHub's OpenAPI description: the bootstrap playbook's GitHub step mints an installation token
 * and reads the repository with it; init keeps `provider: github` in a patch next to the
 * decryption patch; each bad input is one line with a hint before anything changes, and neither
 * the private key nor a token is ever printed.
 */

let gh: GitHubStandIn;
let world: GitHubWorld;
let home: string;
let ageKey: string;
let keyFile: string;
const APP_ID = 1234;
const pem = () =>
  generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs1', format: 'pem' } });
const APP_KEY = pem();

const env = (): NodeJS.ProcessEnv => ({ HOME: home, XDG_CONFIG_HOME: undefined, FLUXSTRAP_GITHUB_API_URL: gh.url });
const PLAYBOOK = 'name: GitHub step\ntasks:\n  - name: repository\n    github-repository: {}\n';

async function withApp(r: FluxRepo, app: string, url = 'https://github.com/me/fleet.git'): Promise<void> {
  await writeFile(
    join(r.repo, 'fluxstrap.yaml'),
    `clusters:\n  ${r.cluster}:\n    ageKey: { file: ${ageKey} }\n    git:\n      url: ${url}\n      auth:\n        githubApp: ${app}\n`,
  );
}
const run = async (r: FluxRepo): Promise<CliResult> => {
  await writeFile(join(home, 'github.yaml'), PLAYBOOK);
  return runCliAsync(['run', join(home, 'github.yaml'), '--cluster', r.cluster, '--repo', r.repo], { cwd: home, env: env() });
};
const init = (r: FluxRepo): Promise<CliResult> => runCliAsync(['init', '--cluster', r.cluster, '--repo', r.repo], { cwd: home, env: env() });

function noSecrets(r: CliResult): void {
  const out = r.stdout + r.stderr;
  assert.doesNotMatch(out, /PRIVATE KEY|ghs_/, 'neither the App key nor an installation token is printed');
  assert.ok(!out.includes(APP_KEY.privateKey.split('\n')[1] ?? 'x'));
}

function oneLineError(r: CliResult, text: RegExp, field?: string): void {
  assert.notEqual(r.code, 0, r.stderr);
  const lines = r.stderr
    .split('\n')
    .filter((l) => /^(\s*)(error|hint):/.test(l))
    .map((l) => l.trim());
  assert.ok(
    lines.some((l) => /^error: /.test(l) && text.test(l) && (field === undefined || l.includes(field))),
    r.stderr,
  );
  assert.ok(
    lines.some((l) => l.startsWith('hint: ')),
    r.stderr,
  );
  noSecrets(r);
}

const requestsOf = (template: string) => gh.requests.filter((q) => q.template === template);

before(async () => {
  gh = await new GitHubStandIn().start();
  world = new GitHubWorld({}, { acme: [] }).install(gh);
  home = await tempDir('github-app-home');
  // Git is real: each repository is also a bare one, where git goes for github.com.
  world.gitRoot = join(home, 'remotes');
  await writeFile(join(home, '.gitconfig'), `[url "file://${world.gitRoot}/"]\n\tinsteadOf = https://github.com/\n`);
  world.addRepo('me/fleet', { me: 'admin' });
  world.addRepo('acme/infra', {});
  world.addApp(APP_ID, APP_KEY.publicKey, [
    { id: 55, account: 'me', repos: ['me/fleet'], permissions: { contents: 'read', metadata: 'read' } },
    { id: 56, account: 'acme', repos: ['acme/infra'], permissions: { metadata: 'read' } },
  ]);
  ageKey = join(home, 'cluster.agekey');
  keyFile = join(home, 'app.pem');
  await writeFile(keyFile, APP_KEY.privateKey, { mode: 0o600 });
  const k = await runCliAsync(['keys', 'new', '--out', ageKey], { env: { HOME: home } });
  assert.equal(k.code, 0, k.stderr);
});
after(async () => {
  await gh.stop();
});

void describe('GitHub App: installation token, repository read, provider patch', () => {
  void it('installationId: the JWT buys an installation token that reads the repository', async () => {
    const r = await fluxRepo({ cluster: 'lab' });
    await withApp(r, `{ appId: ${APP_ID}, installationId: 55, privateKeyFile: ${keyFile} }`);
    const res = await run(r);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout + res.stderr, /GitHub App 1234 \(installation 55\) reads it \(contents: read\)/);
    assert.ok(requestsOf('POST /app/installations/{installation_id}/access_tokens').some((q) => q.status === 201));
    assert.ok(requestsOf('GET /repos/{owner}/{repo}').some((q) => q.status === 200));
    noSecrets(res);
  });

  void it('installationOwner: the installation is the one GitHub names for the repository', async () => {
    const r = await fluxRepo({ cluster: 'owner' });
    await withApp(r, `{ appId: "${APP_ID}", installationOwner: me, privateKeyFile: ${keyFile} }`);
    const res = await run(r);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout + res.stderr, /installation 55/);
    assert.ok(requestsOf('GET /repos/{owner}/{repo}/installation').some((q) => q.status === 200));
  });

  void it('init patches provider: github into GitRepository flux-system next to the decryption patch, once', async () => {
    const r = await fluxRepo({ cluster: 'lab', gotkSync: 'pristine' });
    await withApp(r, `{ appId: ${APP_ID}, installationId: 55, privateKeyFile: ${keyFile} }`);
    const first = await init(r);
    assert.equal(first.code, 0, first.stderr);
    const file = join(r.repo, 'clusters/lab/flux-system/kustomization.yaml');
    const text = await readFile(file, 'utf8');
    assert.match(text, /path: \/spec\/decryption/);
    assert.match(text, /path: \/spec\/provider\n\s+value: github/);
    const built = await kustomizeBuild(join(r.repo, 'clusters/lab/flux-system'));
    const repo = built.objects.find((o) => o.kind === 'GitRepository' && o.metadata.name === 'flux-system');
    assert.equal((repo?.spec as { provider?: string } | undefined)?.provider, 'github');
    const ks = built.objects.find((o) => o.kind === 'Kustomization' && o.metadata.name === 'flux-system');
    assert.equal((ks?.spec as { decryption?: { provider?: string } } | undefined)?.decryption?.provider, 'sops');
    const again = await init(r);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await readFile(file, 'utf8'), text, 'a second init keeps the file as it is');
    assert.match(again.stdout + again.stderr, /nothing to do/);
    noSecrets(first);
  });
});

void describe("GitHub App: the bootstrap's Git credentials", () => {
  void it('git reads the branch with an installation token; the Secret step refuses a layout without provider: github, and goes on (to the cluster) once init added it', async () => {
    const r = await fluxRepo({ cluster: 'boot', gotkSync: 'pristine' });
    await withApp(r, `{ appId: ${APP_ID}, installationId: 55, privateKeyFile: ${keyFile} }`);
    await r.git('push', '--quiet', `file://${world.gitRoot ?? ''}/me/fleet.git`, 'HEAD:main');
    const kubeconfig = join(home, 'dead.kubeconfig');
    await writeFile(kubeconfig, DEAD_KUBECONFIG);
    await writeFile(join(home, 'creds.yaml'), 'name: Git credentials\ntasks:\n  - name: secret\n    git-credentials: {}\n');
    const secretStep = () =>
      runCliAsync(['run', join(home, 'creds.yaml'), '--cluster', 'boot', '--repo', r.repo, '--kubeconfig', kubeconfig], { cwd: home, env: env() });
    const minted = requestsOf('POST /app/installations/{installation_id}/access_tokens').length;
    oneLineError(await secretStep(), /GitRepository flux-system has no provider: github, which GitHub App auth needs/);
    assert.ok(requestsOf('POST /app/installations/{installation_id}/access_tokens').length > minted, 'the branch was read with a minted installation token');

    const init = await runCliAsync(['init', '--cluster', 'boot', '--repo', r.repo], { cwd: home, env: env() });
    assert.equal(init.code, 0, init.stderr);
    await r.git('add', '-A');
    await r.git('commit', '--quiet', '-m', 'init');
    await r.git('push', '--quiet', `file://${world.gitRoot ?? ''}/me/fleet.git`, 'HEAD:main');
    const next = await secretStep();
    assert.notEqual(next.code, 0);
    assert.doesNotMatch(next.stderr, /provider: github/);
    assert.match(next.stderr, /127\.0\.0\.1:1/, 'stopped at the (dead) cluster, past the provider check');
    noSecrets(next);
  });
});

void describe('GitHub App: bad input is refused before anything changes', () => {
  let r: FluxRepo;
  before(async () => {
    r = await fluxRepo({ cluster: 'bad' });
  });

  void it('a private key that is not PEM: refused before any request', async () => {
    const notPem = join(home, 'not.pem');
    await writeFile(notPem, await readFile(ageKey, 'utf8'), { mode: 0o600 });
    await withApp(r, `{ appId: ${APP_ID}, installationId: 55, privateKeyFile: ${notPem} }`);
    const before = gh.requests.length;
    oneLineError(await run(r), /the GitHub App private key is not a PEM private key/, 'git.auth.githubApp.privateKeyFile');
    const ec = join(home, 'ec.pem');
    await writeFile(
      ec,
      generateKeyPairSync('ec', {
        namedCurve: 'P-256',
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        publicKeyEncoding: { type: 'spki', format: 'pem' },
      }).privateKey,
      { mode: 0o600 },
    );
    await withApp(r, `{ appId: ${APP_ID}, installationId: 55, privateKeyFile: ${ec} }`);
    oneLineError(await run(r), /the GitHub App private key is ec key; GitHub Apps sign with RSA/);
    assert.equal(gh.requests.length, before, 'GitHub was not called');
  });

  void it('a wrong appId, and a key of another App: GitHub answers 401 to the JWT', async () => {
    await withApp(r, `{ appId: 9999, installationId: 55, privateKeyFile: ${keyFile} }`);
    oneLineError(await run(r), /GitHub refused the JWT of GitHub App 9999 .*GitHub answered 401/);
    const other = join(home, 'other.pem');
    await writeFile(other, pem().privateKey, { mode: 0o600 });
    await withApp(r, `{ appId: ${APP_ID}, installationId: 55, privateKeyFile: ${other} }`);
    oneLineError(await run(r), /GitHub refused the JWT of GitHub App 1234/);
  });

  void it('an installation that cannot see the repository, by id and by owner; an unknown installation', async () => {
    await withApp(r, `{ appId: ${APP_ID}, installationId: 56, privateKeyFile: ${keyFile} }`);
    oneLineError(await run(r), /GitHub App 1234 \(installation 56\) cannot see me\/fleet/);
    await withApp(r, `{ appId: ${APP_ID}, installationOwner: acme, privateKeyFile: ${keyFile} }`);
    oneLineError(await run(r), /GitHub App 1234 sees me\/fleet through its installation on me, not on acme/, 'installationOwner');
    await withApp(r, `{ appId: ${APP_ID}, installationOwner: acme, privateKeyFile: ${keyFile} }`, 'https://github.com/me/other.git');
    oneLineError(await run(r), /GitHub App 1234 \(no installation\) cannot see me\/other/);
    await withApp(r, `{ appId: ${APP_ID}, installationId: 77, privateKeyFile: ${keyFile} }`);
    oneLineError(await run(r), /GitHub App 1234 has no installation 77/, 'installationId');
  });

  void it('an installation without Contents permission', async () => {
    await withApp(r, `{ appId: ${APP_ID}, installationId: 56, privateKeyFile: ${keyFile} }`, 'https://github.com/acme/infra.git');
    oneLineError(await run(r), /GitHub App 1234 \(installation 56\) has no Contents permission on acme\/infra/);
  });

  void it('both or neither of installationId and installationOwner: a config error at its line', async () => {
    const before = await snapshot(r.repo);
    await withApp(r, `{ appId: ${APP_ID}, privateKeyFile: ${keyFile} }`);
    const res = await run(r);
    assert.notEqual(res.code, 0);
    // A schema error points at the line; the message is the fix.
    assert.match(res.stderr, /^error: set one of installationId and installationOwner \(.*fluxstrap\.yaml:\d+:\d+ at clusters\.bad\.git\.auth\.githubApp\)$/m);
    delete before['fluxstrap.yaml'];
    const now = await snapshot(r.repo);
    delete now['fluxstrap.yaml'];
    assert.deepEqual(now, before);
  });

  void it("every request and response matched GitHub's OpenAPI description", () => {
    assert.deepEqual(gh.violations, []);
  });
});
