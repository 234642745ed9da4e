import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { cliPath, runCliAsync } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { GitHubStandIn, GitHubWorld } from '../helpers/github-standin.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { generateSshKey } from '../../src/keys/ssh.ts';

/**
 * GitHub through the built CLI against the stand-in, which checks every request and response
 * against GitHub's OpenAPI description and keeps state: create the repository → generate and
 * register the deploy key → re-run (nothing to do) → a replaced key is refused, then rotated with
 * --rotate-secrets; the layout pushed to the new repository (a bare repository git reaches for
 * github.com); and each bad input is one error line with a hint, with nothing changed.
 */

const execFileAsync = promisify(execFile);
let gh: GitHubStandIn;
let world: GitHubWorld;
let home: string;
let ageKey: string;
const HOST_KEY = generateSshKey('ed25519', '').publicKey;
const TOKENS = { GOOD: 'ghp_good_token_for_me', OLD: 'ghp_expired_token', BOB: 'ghp_token_of_bob', FINE: 'github_pat_fine_grained_metadata_only' };

const env = (token: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  GITHUB_TOKEN: token,
  FLUXSTRAP_GITHUB_API_URL: gh.url,
  ...extra,
});
const init = (r: FluxRepo, token: string, ...args: string[]): Promise<CliResult> =>
  runCliAsync(['init', '--cluster', r.cluster, '--repo', r.repo, '--age-key-file', ageKey, ...args], { cwd: home, env: env(token) });
/** The GitHub steps of the bootstrap playbook, on their own: no cluster needed. */
const PLAYBOOK =
  'name: GitHub steps\ntasks:\n  - name: repository\n    github-repository: {}\n  - name: deploy key\n    ssh-deploy-key: {}\n  - name: registered\n    github-deploy-key: {}\n';
const run = async (r: FluxRepo, token: string, ...args: string[]): Promise<CliResult> => {
  await writeFile(join(home, 'github.yaml'), PLAYBOOK);
  return runCliAsync(['run', join(home, 'github.yaml'), '--cluster', r.cluster, '--repo', r.repo, ...args], { cwd: home, env: env(token) });
};

function oneLineError(r: CliResult, text: RegExp): void {
  assert.notEqual(r.code, 0, r.stderr);
  const lines = r.stderr
    .split('\n')
    .filter((l) => /^(\s*)(error|hint):/.test(l))
    .map((l) => l.trim());
  assert.ok(
    lines.some((l) => /^error: /.test(l) && text.test(l)),
    r.stderr,
  );
  assert.ok(
    lines.some((l) => l.startsWith('hint: ')),
    r.stderr,
  );
  assert.doesNotMatch(r.stderr + r.stdout, /ghp_/, 'the token never appears');
}

before(async () => {
  gh = await new GitHubStandIn().start();
  world = new GitHubWorld(
    {
      [TOKENS.GOOD]: { login: 'me' },
      [TOKENS.OLD]: { login: 'me', expired: true },
      [TOKENS.BOB]: { login: 'bob' },
      [TOKENS.FINE]: { login: 'me', permissions: { metadata: 'read' } },
    },
    { acme: ['me'] },
    [HOST_KEY],
  ).install(gh);
  home = await tempDir('github-home');
  // Git itself is real: every repository of the stand-in is a bare repository under remotes/, where git goes for github.com.
  world.gitRoot = join(home, 'remotes');
  await writeFile(join(home, '.gitconfig'), `[url "file://${world.gitRoot}/"]\n\tinsteadOf = https://github.com/\n`);
  ageKey = join(home, 'cluster.agekey');
  const k = await runCliAsync(['keys', 'new', '--out', ageKey], { env: { HOME: home } });
  assert.equal(k.code, 0, k.stderr);
});
after(async () => {
  await gh.stop();
});

void describe('GitHub: create repository, deploy key, rotation', () => {
  let r: FluxRepo;
  const keyFile = () => join(home, '.config/fluxstrap/lab-deploy-key');

  void it("init --create-repo --yes: private repository created, deploy key generated and registered read-only under flux's title, known_hosts from /meta", async () => {
    r = await fluxRepo({ cluster: 'lab' });
    const no = await init(r, TOKENS.GOOD, '--git-url', 'git@github.com:me/fleet.git', '--create-repo');
    oneLineError(no, /confirm with --yes/);
    const res = await init(r, TOKENS.GOOD, '--git-url', 'git@github.com:me/fleet.git', '--create-repo', '--yes');
    assert.equal(res.code, 0, res.stderr);
    const repo = world.repos.get('me/fleet');
    assert.equal(repo?.private, true);
    const pub = (await readFile(`${keyFile()}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
    assert.deepEqual(
      repo.keys.map((k) => [k.title, k.key, k.read_only]),
      [['flux-system-main-flux-system-clusters/lab', pub, true]],
    );
    assert.equal(await readFile(join(r.repo, 'clusters/lab/known_hosts'), 'utf8'), `github.com ${HOST_KEY}\n`);
    assert.match(await readFile(join(r.repo, 'fluxstrap.yaml'), 'utf8'), /url: ssh:\/\/git@github\.com\/me\/fleet\.git/);

    // The layout init wrote, committed (its files only) and pushed to the new repository's main.
    assert.match(res.stderr, /pushed [0-9a-f]{12} to https:\/\/github\.com\/me\/fleet\.git \(branch main\)/);
    const pushed = await bareFiles('me/fleet', 'main');
    for (const f of [
      'fluxstrap.yaml',
      '.sops.yaml',
      '.gitignore',
      'clusters/lab/flux-system/kustomization.yaml',
      'clusters/lab/flux-system/gotk-sync.yaml',
      'clusters/lab/known_hosts',
    ])
      assert.ok(pushed.includes(f), `${f} pushed: ${pushed.join(', ')}`);
    assert.equal((await r.git('rev-parse', 'HEAD')).trim(), await bareGit('me/fleet', 'rev-parse', 'main'));

    const again = await init(r, TOKENS.GOOD, '--create-repo', '--yes');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr + again.stdout, /nothing to do/);
    assert.doesNotMatch(again.stderr, /pushed/, 'a branch already there is left alone');
    assert.equal(repo.keys.length, 1);
  });

  void it('init --create-repo on an empty repository without --yes and without a terminal: nothing pushed, the way to do it said; with --yes pushed', async () => {
    const later = await fluxRepo({ cluster: 'later' });
    world.addRepo('me/later', { me: 'admin' });
    const no = await init(later, TOKENS.GOOD, '--git-url', 'https://github.com/me/later.git', '--create-repo');
    assert.equal(no.code, 0, no.stderr);
    assert.match(
      no.stderr,
      /not pushed: https:\/\/github\.com\/me\/later\.git has no branch main yet; .*git push https:\/\/github\.com\/me\/later\.git HEAD:main.*--yes/,
    );
    assert.deepEqual(await bareFiles('me/later', 'main').catch(() => []), []);
    const yes = await init(later, TOKENS.GOOD, '--create-repo', '--yes');
    assert.equal(yes.code, 0, yes.stderr);
    assert.ok((await bareFiles('me/later', 'main')).includes('clusters/later/flux-system/kustomization.yaml'));
    assert.doesNotMatch(no.stderr + yes.stderr, /ghp_/);
  });

  void it("the bootstrap playbook's GitHub steps: --check and a converged run change nothing", async () => {
    const check = await run(r, TOKENS.GOOD, '--check');
    assert.equal(check.code, 0, check.stderr);
    const res = await run(r, TOKENS.GOOD);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(world.repos.get('me/fleet')?.keys.length, 1);
  });

  void it('a different key under the title is refused without --rotate-secrets, then replaced with it (delete + create)', async () => {
    await rm(keyFile());
    await rm(`${keyFile()}.pub`);
    const old = world.repos.get('me/fleet')?.keys[0]?.key;
    const refused = await run(r, TOKENS.GOOD);
    oneLineError(refused, /deploy key "flux-system-main-flux-system-clusters\/lab" on me\/fleet is registered with another key/);
    assert.equal(world.repos.get('me/fleet')?.keys[0]?.key, old, 'nothing changed on GitHub');
    const rotated = await run(r, TOKENS.GOOD, '--rotate-secrets');
    assert.equal(rotated.code, 0, rotated.stderr);
    const pub = (await readFile(`${keyFile()}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
    assert.deepEqual(
      world.repos.get('me/fleet')?.keys.map((k) => k.key),
      [pub],
    );
  });

  void it("finds its key on a later page of the repository's keys", async () => {
    const repo = world.repos.get('me/fleet');
    assert.ok(repo);
    const mine = repo.keys.splice(0);
    for (let i = 0; i < 130; i++)
      repo.keys.push({
        id: 50_000 + i,
        key: generateSshKey('ed25519', '').publicKey,
        title: `other-${i}`,
        read_only: true,
        created_at: '2026-12-01T10:00:00Z',
      });
    repo.keys.push(...mine);
    const res = await run(r, TOKENS.GOOD);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(repo.keys.length, 131, 'found on page 2: nothing added');
    assert.ok(gh.requests.filter((q) => q.template === 'GET /repos/{owner}/{repo}/keys').length >= 2);
  });

  void it('at a terminal without --yes, one question first: no creates nothing, yes creates and pushes', async () => {
    const t = await fluxRepo({ cluster: 'tty' });
    const before = await snapshot(t.repo);
    const no = await initAtTerminal(t, 'n', '--git-url', 'https://github.com/me/tty.git', '--create-repo');
    assert.match(no.out, /create https:\/\/github\.com\/me\/tty\.git on GitHub if it is missing, and push the initial layout to it\? \[y\/N\]/);
    assert.notEqual(no.code, 0, no.out);
    assert.match(no.out, /error: --create-repo creates the repository me\/tty on GitHub: confirm with --yes/);
    assert.equal(world.repos.has('me/tty'), false);
    assert.deepEqual(await snapshot(t.repo), before);
    const yes = await initAtTerminal(t, 'y', '--git-url', 'https://github.com/me/tty.git', '--create-repo');
    assert.equal(yes.code, 0, yes.out);
    assert.equal(world.repos.get('me/tty')?.private, true);
    assert.match(yes.out, /pushed [0-9a-f]{12} to https:\/\/github\.com\/me\/tty\.git \(branch main\)/);
    assert.ok((await bareFiles('me/tty', 'main')).includes('clusters/tty/flux-system/kustomization.yaml'));
    assert.doesNotMatch(no.out + yes.out, /ghp_/);
  });

  void it("an organisation's repository is created in the organisation", async () => {
    const org = await fluxRepo({ cluster: 'infra' });
    const res = await init(org, TOKENS.GOOD, '--git-url', 'https://github.com/acme/infra.git', '--create-repo', '--yes');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(world.repos.get('acme/infra')?.roles.me, 'admin');
    assert.ok(gh.requests.some((q) => q.template === 'POST /orgs/{org}/repos' && q.status === 201));
  });
});

/**
 * init at a real terminal (a pty from util-linux `script`), answering its question once it shows:
 * the prompt is only asked when stdin is a TTY.
 */
function initAtTerminal(r: FluxRepo, answer: string, ...args: string[]): Promise<{ code: number; out: string }> {
  const q = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
  const cmd = [process.execPath, cliPath, 'init', '--cluster', r.cluster, '--repo', r.repo, '--age-key-file', ageKey, ...args].map(q).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: home, env: { ...process.env, NO_COLOR: '1', CI: '1', ...env(TOKENS.GOOD) } });
    let out = '';
    let asked = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!asked && out.includes('[y/N]')) {
        asked = true;
        child.stdin.write(`${answer}\n`);
      }
    });
    // A question that never shows must fail the test, not hang it.
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
  });
}

const bareGit = async (full: string, ...args: string[]): Promise<string> =>
  (await execFileAsync('git', ['--git-dir', join(world.gitRoot ?? '', `${full}.git`), ...args])).stdout.trim();
const bareFiles = async (full: string, branch: string): Promise<string[]> => (await bareGit(full, 'ls-tree', '-r', '--name-only', branch)).split('\n');

void describe('GitHub: bad input is refused before anything changes', () => {
  const unchanged = async (r: FluxRepo, res: CliResult, text: RegExp, repos = world.repos.size) => {
    oneLineError(res, text);
    assert.equal(world.repos.size, repos);
    return snapshot(r.repo);
  };

  void it('an expired token, a missing token', async () => {
    const r = await fluxRepo({ cluster: 'exp' });
    const before = await snapshot(r.repo);
    assert.deepEqual(
      await unchanged(
        r,
        await init(r, TOKENS.OLD, '--git-url', 'https://github.com/me/exp.git', '--create-repo', '--yes'),
        /the GitHub token in GITHUB_TOKEN is invalid or expired .*GitHub answered 401/,
      ),
      before,
    );
    assert.deepEqual(
      await unchanged(
        r,
        await init(r, '', '--git-url', 'https://github.com/me/exp.git', '--create-repo', '--yes'),
        /environment variable GITHUB_TOKEN \(the GitHub token\) is not set/,
      ),
      before,
    );
  });

  void it("a fine-grained token without Administration: GitHub's 403 with its X-Accepted-GitHub-Permissions, nothing written", async () => {
    const r = await fluxRepo({ cluster: 'fine' });
    const before = await snapshot(r.repo);
    const res = await init(r, TOKENS.FINE, '--git-url', 'https://github.com/me/fine.git', '--create-repo', '--yes');
    assert.deepEqual(
      await unchanged(
        r,
        res,
        /the GitHub token in GITHUB_TOKEN may not create the repository me\/fine: GitHub answered 403 \(Resource not accessible by personal access token[^)]*\); GitHub's X-Accepted-GitHub-Permissions: administration=write/,
      ),
      before,
    );
    assert.doesNotMatch(res.stderr, /github_pat_/);
  });

  void it("an organisation or user that is not the token's", async () => {
    const r = await fluxRepo({ cluster: 'mix' });
    const before = await snapshot(r.repo);
    assert.deepEqual(
      await unchanged(
        r,
        await init(r, TOKENS.GOOD, '--git-url', 'git@github.com:someone/fleet.git', '--create-repo', '--yes'),
        /cannot create someone\/fleet: someone is not an organisation, and the token in GITHUB_TOKEN belongs to me/,
      ),
      before,
    );
  });

  void it('a repository that does not exist, and a token with read access only (SSH needs admin for the deploy key)', async () => {
    const r = await fluxRepo({ cluster: 'lab' });
    await writeFile(
      join(r.repo, 'fluxstrap.yaml'),
      `clusters:\n  lab:\n    git:\n      url: ssh://git@github.com/me/missing.git\n      auth: { ssh: { keyFile: ${join(home, 'k2')}, knownHostsFile: kh } }\n`,
    );
    const res = await run(r, TOKENS.GOOD);
    oneLineError(res, /GitHub repository me\/missing not found, or the token in GITHUB_TOKEN cannot see it/);
    world.addRepo('me/shared', { me: 'admin', bob: 'read' });
    await writeFile(
      join(r.repo, 'fluxstrap.yaml'),
      `clusters:\n  lab:\n    git:\n      url: ssh://git@github.com/me/shared.git\n      auth: { ssh: { keyFile: ${join(home, 'k2')}, knownHostsFile: kh } }\n`,
    );
    const bob = await run(r, TOKENS.BOB);
    oneLineError(bob, /the GitHub token in GITHUB_TOKEN \(bob\) has read access to me\/shared; managing deploy keys needs admin/);
    await assert.rejects(readFile(join(home, 'k2')), 'no key generated');
    assert.equal(world.repos.get('me/shared')?.keys.length, 0);
  });

  void it('a key already registered under another title', async () => {
    const r = await fluxRepo({ cluster: 'dup' });
    const key = generateSshKey('ed25519', '');
    await writeFile(join(home, 'dup'), key.privateKey, { mode: 0o600 });
    world
      .addRepo('me/dup', { me: 'admin' })
      .keys.push({ id: 99, key: key.publicKey.split(' ').slice(0, 2).join(' '), title: 'hand-made', read_only: true, created_at: '2026-12-01T10:00:00Z' });
    await writeFile(
      join(r.repo, 'fluxstrap.yaml'),
      `clusters:\n  dup:\n    git:\n      url: ssh://git@github.com/me/dup.git\n      auth: { ssh: { keyFile: ${join(home, 'dup')}, knownHostsFile: kh } }\n`,
    );
    oneLineError(await run(r, TOKENS.GOOD), /already registered on me\/dup under the title "hand-made"/);
    assert.equal(world.repos.get('me/dup')?.keys.length, 1);
  });

  void it('a rate limit is waited out with a progress line, then the run goes on', async () => {
    const r = await fluxRepo({ cluster: 'limited' });
    const answer = world.userHandler();
    let limited = 1;
    // The world's own answer, after one 403 carrying GitHub's rate limit headers.
    gh.on('GET /user', (req) => {
      if (limited-- > 0) {
        return {
          status: 403,
          body: { message: 'API rate limit exceeded', documentation_url: 'https://docs.github.com/rest' },
          headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-limit': '5000', 'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 1) },
        };
      }
      return answer(req);
    });
    const res = await init(r, TOKENS.GOOD, '--git-url', 'https://github.com/me/limited.git', '--create-repo', '--yes');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr + res.stdout, /GitHub rate limit on GET \/user: retrying in \d+s/);
    assert.ok(world.repos.has('me/limited'));
    assert.ok(gh.requests.some((q) => q.template === 'GET /user' && q.status === 403));
  });

  void it("every request and response matched GitHub's OpenAPI description", () => {
    assert.deepEqual(gh.violations, []);
  });
});
