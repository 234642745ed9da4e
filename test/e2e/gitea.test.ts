import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { runCliAsync } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { startGitea } from '../helpers/gitea.ts';
import type { Gitea } from '../helpers/gitea.ts';
import { tempDir } from '../helpers/tmp.ts';
import { parseConfig, resolveCluster } from '../../src/cluster/config.ts';
import { dataOf } from '../../src/core/change.ts';
import { generateSshKey } from '../../src/keys/ssh.ts';
import { deployKeyRotationKind } from '../../src/tasks/deploy-key-rotation.ts';

/**
 * Gitea as the second forge for deploy keys, against a real Gitea (v1.27.3, built from its Go
 * module): the playbook's ssh-deploy-key + gitea-deploy-key generate the key and register it
 * read-only under flux's title (Gitea's SSH server then lets it read, not push); a second run
 * changes nothing; another key under the title is
 * refused, then replaced with --rotate-secrets; the same key under another title, a bad token
 * and a missing repository are one error line with a hint. The token is never printed.
 * With `git.provider: gitea` the standard bootstrap playbook does it (its deploy_key steps, no
 * cluster needed), and rotate-key's two forge phases (deploy-key-rotation) move the key on Gitea,
 * resumably, with Gitea's SSH server refusing the old key at the end. (The Secret swap and the
 * fetch between the phases need a cluster: test/integration/git-rotate-key.test.ts.)
 */

let gitea: Gitea;
let home: string;
let repo: string;
const TITLE = 'flux-system-main-flux-system-clusters/lab';
const keyFile = () => join(home, 'lab-deploy-key');

const run = async (token: string, ...args: string[]): Promise<CliResult> => {
  const playbook = join(home, 'gitea.yaml');
  await writeFile(
    playbook,
    `name: Gitea steps\ntasks:\n  - name: deploy key\n    ssh-deploy-key: {}\n  - name: registered\n    gitea-deploy-key: { apiUrl: "${gitea.apiUrl}" }\n`,
  );
  return runCliAsync(['run', playbook, '--cluster', 'lab', '--repo', repo, ...args], {
    cwd: home,
    env: { HOME: home, XDG_CONFIG_HOME: undefined, GITEA_TOKEN: token },
  });
};
const keys = async (name = 'fleet') =>
  (await gitea.api('GET', `/repos/${gitea.user}/${name}/keys`)).json as { id: number; key: string; title: string; read_only: boolean }[];

function oneLineError(r: CliResult, text: RegExp): void {
  assert.notEqual(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').map((l) => l.trim());
  assert.ok(
    lines.some((l) => l.startsWith('error: ') && text.test(l)),
    r.stderr,
  );
  assert.ok(
    lines.some((l) => l.startsWith('hint: ')),
    r.stderr,
  );
  assert.ok(!(r.stdout + r.stderr).includes(gitea.token), 'the token never appears');
}

/** fluxstrap.yaml for cluster "lab" pulling repository `name` over SSH with the `ssh` key and known_hosts files — through Gitea's API when `provider` is set. */
const labConfig = (name: string, ssh: { keyFile: string; knownHostsFile: string }, provider?: { apiUrl: string; tokenEnv: string }) =>
  stringify({
    clusters: {
      lab: {
        path: 'clusters/lab',
        git: { url: gitea.sshUrl(name), branch: 'main', auth: { ssh }, ...(provider ? { provider: 'gitea', gitea: provider } : {}) },
      },
    },
  });

async function writeConfig(name: string): Promise<void> {
  await writeFile(join(repo, 'fluxstrap.yaml'), labConfig(name, { keyFile: keyFile(), knownHostsFile: join(home, 'known_hosts') }));
}

before(async () => {
  gitea = await startGitea();
  home = await tempDir('gitea-home');
  repo = join(home, 'repo');
  await mkdir(join(repo, 'clusters/lab'), { recursive: true });
  assert.equal((await gitea.api('POST', '/user/repos', { name: 'fleet', private: true, auto_init: true, default_branch: 'main' })).status, 201);
  await writeConfig('fleet');
});
after(async () => {
  await gitea?.stop();
});

void describe('Gitea: deploy keys through its REST API', () => {
  void it("generates the key and registers it read-only under flux's title; a second run changes nothing", async () => {
    const first = await run(gitea.token);
    assert.equal(first.code, 0, first.stderr);
    const pub = (await readFile(`${keyFile()}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
    const registered = await keys();
    assert.deepEqual(
      registered.map((k) => ({ title: k.title, key: k.key.trim().split(' ').slice(0, 2).join(' '), read_only: k.read_only })),
      [{ title: TITLE, key: pub, read_only: true }],
    );
    // Gitea's own SSH server lets the registered key read the repository, and not write it.
    const ssh = {
      ...process.env,
      GIT_SSH_COMMAND: `ssh -i ${keyFile()} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`,
    };
    const { execa } = await import('execa');
    const refs = await execa('git', ['ls-remote', gitea.sshUrl('fleet')], { env: ssh, reject: false });
    assert.equal(refs.exitCode, 0, refs.stderr);
    assert.match(refs.stdout, /\trefs\/heads\/main$/m);
    const clone = join(home, 'clone');
    await execa('git', ['clone', '--quiet', gitea.sshUrl('fleet'), clone], { env: ssh });
    await writeFile(join(clone, 'x'), 'x');
    await execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '--quiet', '-am', 'x', '--allow-empty'], { cwd: clone });
    const push = await execa('git', ['push', '--quiet', 'origin', 'HEAD:main'], { cwd: clone, env: ssh, reject: false });
    assert.notEqual(push.exitCode, 0, 'a read-only deploy key cannot push');
    assert.match(push.stderr, /Deploy Key: \d+:flux-system-main-flux-system-clusters\/lab is not authorized to write to fleet-admin\/fleet/);

    const again = await runCliAsync(['--json', 'run', join(home, 'gitea.yaml'), '--cluster', 'lab', '--repo', repo], {
      cwd: home,
      env: { HOME: home, XDG_CONFIG_HOME: undefined, GITEA_TOKEN: gitea.token },
    });
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { recap: { changed: number } }).recap.changed, 0);
    assert.deepEqual(
      (await keys()).map((k) => k.id),
      registered.map((k) => k.id),
      'the same key, untouched',
    );
  });

  void it('another key under the title is refused without --rotate-secrets, then replaced with it (delete + create)', async () => {
    const before = await keys();
    await rm(keyFile());
    await rm(`${keyFile()}.pub`);
    const refused = await run(gitea.token);
    oneLineError(refused, /deploy key "flux-system-main-flux-system-clusters\/lab" on fleet-admin\/fleet is registered with another key/);
    assert.deepEqual(await keys(), before, 'nothing changed on Gitea');
    const rotated = await run(gitea.token, '--rotate-secrets');
    assert.equal(rotated.code, 0, rotated.stderr);
    const pub = (await readFile(`${keyFile()}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
    assert.deepEqual(
      (await keys()).map((k) => [k.title, k.key.trim().split(' ').slice(0, 2).join(' ')]),
      [[TITLE, pub]],
    );
  });

  void it('the same key under another title, a bad token, a missing repository: one line with a hint, nothing changed', async () => {
    const pub = (await readFile(`${keyFile()}.pub`, 'utf8')).trim();
    assert.equal((await gitea.api('POST', '/user/repos', { name: 'other', private: true })).status, 201);
    assert.equal((await gitea.api('POST', `/repos/${gitea.user}/other/keys`, { title: 'hand-made', key: pub, read_only: true })).status, 201);
    await writeConfig('other');
    oneLineError(await run(gitea.token), /the deploy key is already registered on fleet-admin\/other under the title "hand-made"/);
    assert.deepEqual(
      (await keys('other')).map((k) => k.title),
      ['hand-made'],
    );

    await writeConfig('fleet');
    oneLineError(await run('not-a-real-gitea-token-1234'), /the Gitea token in GITEA_TOKEN is invalid or expired/);
    await writeConfig('missing');
    oneLineError(await run(gitea.token), /fleet-admin\/missing is not on Gitea at .*, or the token in GITEA_TOKEN cannot see it/);
    await writeConfig('fleet');
  });
});

void describe('Gitea as git.provider', () => {
  const providerConfig = (name: string, keyName: string) =>
    labConfig(name, { keyFile: join(home, keyName), knownHostsFile: join(home, `${keyName}.known_hosts`) }, { apiUrl: gitea.apiUrl, tokenEnv: 'FORGE_TOKEN' });
  const sshEnv = (key: string) => ({
    ...process.env,
    GIT_SSH_COMMAND: `ssh -i ${key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`,
  });
  const lsRemote = async (name: string, key: string) => {
    const { execa } = await import('execa');
    return (await execa('git', ['ls-remote', gitea.sshUrl(name)], { env: sshEnv(key), reject: false })).exitCode;
  };
  const blob = (line: string) => line.trim().split(' ')[1] ?? '';

  void it('the standard bootstrap playbook registers the deploy key on Gitea (--tags deploy_key, no cluster); a second run changes nothing', async () => {
    const dir = join(home, 'provider');
    await mkdir(join(dir, 'clusters/lab'), { recursive: true });
    assert.equal((await gitea.api('POST', '/user/repos', { name: 'prov', private: true, auto_init: true, default_branch: 'main' })).status, 201);
    await writeFile(join(dir, 'fluxstrap.yaml'), providerConfig('prov', 'prov-key'));
    // Gitea's host key, as a user confirms it once (init does with --accept-host-key).
    const { execa } = await import('execa');
    const port = new URL(gitea.sshUrl('prov')).port;
    const scan = await execa('ssh-keyscan', ['-p', port, '-t', 'ed25519', '127.0.0.1'], { reject: false });
    assert.match(scan.stdout, /ssh-ed25519/, scan.stderr);
    await writeFile(join(home, 'prov-key.known_hosts'), `${scan.stdout.trim()}\n`);
    const bootstrap = (...args: string[]) =>
      runCliAsync(['bootstrap', '--cluster', 'lab', '--repo', dir, '--tags', 'deploy_key', '--skip-tags', 'always', ...args], {
        cwd: home,
        env: { HOME: home, XDG_CONFIG_HOME: undefined, FORGE_TOKEN: gitea.token, GITEA_TOKEN: undefined, GITHUB_TOKEN: undefined },
      });
    const first = await bootstrap();
    assert.equal(first.code, 0, first.stderr);
    assert.ok(!(first.stdout + first.stderr).includes(gitea.token), 'the token never appears');
    const pub = await readFile(join(home, 'prov-key.pub'), 'utf8');
    const registered = await keys('prov');
    assert.deepEqual(
      registered.map((k) => [k.title, blob(k.key), k.read_only]),
      [[TITLE, blob(pub), true]],
    );
    assert.equal(await lsRemote('prov', join(home, 'prov-key')), 0, "Gitea's SSH server lets the registered key read");

    const again = await bootstrap('--json');
    assert.equal(again.code, 0, again.stderr);
    const doc = JSON.parse(again.stdout) as { recap: { changed: number }; tasks: { kind: string; status: string }[] };
    assert.equal(doc.recap.changed, 0);
    assert.deepEqual(
      doc.tasks.map((t) => t.kind),
      ['github-repository', 'ssh-deploy-key', 'known-hosts', 'github-deploy-key', 'gitea-deploy-key'],
    );
    assert.deepEqual(
      (await keys('prov')).map((k) => k.id),
      registered.map((k) => k.id),
    );

    // Without the token, the Gitea step says which variable to set.
    const noToken = await runCliAsync(['bootstrap', '--cluster', 'lab', '--repo', dir, '--tags', 'deploy_key', '--skip-tags', 'always'], {
      cwd: home,
      env: { HOME: home, XDG_CONFIG_HOME: undefined, FORGE_TOKEN: undefined, GITEA_TOKEN: gitea.token },
    });
    oneLineError(noToken, /environment variable FORGE_TOKEN \(the Gitea token\) is not set/);
  });

  void it("rotate-key's forge phases on Gitea: the new key beside the old, then alone under the title; resumable; the old key refused", async () => {
    assert.equal((await gitea.api('POST', '/user/repos', { name: 'rot', private: true, auto_init: true, default_branch: 'main' })).status, 201);
    const a = generateSshKey('ed25519', 'a');
    const b = generateSshKey('ed25519', 'b');
    await writeFile(join(home, 'rot-key'), a.privateKey, { mode: 0o600 });
    await writeFile(join(home, 'rot-key.next'), b.privateKey, { mode: 0o600 });
    assert.equal((await gitea.api('POST', `/repos/${gitea.user}/rot/keys`, { title: TITLE, key: a.publicKey, read_only: true })).status, 201);
    const cluster = resolveCluster(parseConfig(providerConfig('rot', 'rot-key'), 'fluxstrap.yaml'), { cluster: 'lab' }, {}, { repoDir: home, cwd: home });
    const ctx = { cluster, env: { FORGE_TOKEN: gitea.token } };
    const params = (phase: 'register' | 'finish') => ({ keyFile: join(home, 'rot-key.next'), phase });
    /** One run of the task: observe, plan, apply what it plans; the plan's summaries. */
    const step = async (phase: 'register' | 'finish') => {
      const p = params(phase);
      const changes = deployKeyRotationKind.plan(p, await deployKeyRotationKind.observe(p, ctx, undefined as never), ctx);
      for (const c of changes) await deployKeyRotationKind.apply(c, p, ctx);
      return changes.map((c) => dataOf(c));
    };
    const now = async () => (await keys('rot')).map((k) => [k.title, blob(k.key)]).sort();

    assert.deepEqual(await step('register'), [[{ create: { title: `${TITLE}-next` } }]]);
    assert.deepEqual(await now(), [
      [TITLE, blob(a.publicKey)],
      [`${TITLE}-next`, blob(b.publicKey)],
    ]);
    assert.deepEqual(await step('register'), [], 'a second register run changes nothing');
    assert.equal(await lsRemote('rot', join(home, 'rot-key')), 0, 'A still reads while Flux switches');
    assert.equal(await lsRemote('rot', join(home, 'rot-key.next')), 0, 'B reads already');

    // Gitea refuses a key twice in one repository, as GitHub does: finish deletes B's -next entry before adding it under the title.
    const twice = await gitea.api('POST', `/repos/${gitea.user}/rot/keys`, { title: 'twice', key: b.publicKey, read_only: true });
    assert.equal(twice.status, 422);
    assert.match(JSON.stringify(twice.json), /already been added/);

    // A run stopped after A was deleted: the next finish completes it.
    const [old] = (await keys('rot')).filter((k) => k.title === TITLE);
    assert.equal((await gitea.api('DELETE', `/repos/${gitea.user}/rot/keys/${old?.id ?? 0}`)).status, 204);
    const resumed = await step('finish');
    assert.equal(resumed.length, 1);
    assert.deepEqual(await now(), [[TITLE, blob(b.publicKey)]]);
    assert.deepEqual(await step('finish'), [], 'a second finish run changes nothing');
    assert.deepEqual(await step('register'), [], 'register after finish: the new key is in place');
    assert.notEqual(await lsRemote('rot', join(home, 'rot-key')), 0, "Gitea's SSH server refuses A");
    assert.equal(await lsRemote('rot', join(home, 'rot-key.next')), 0, 'B reads');

    // The new key under a third title is refused before anything changes.
    const c = generateSshKey('ed25519', 'c');
    await writeFile(join(home, 'rot-key.next'), c.privateKey, { mode: 0o600 });
    assert.equal((await gitea.api('POST', `/repos/${gitea.user}/rot/keys`, { title: 'hand-made', key: c.publicKey, read_only: true })).status, 201);
    await assert.rejects(step('register'), (e: unknown) => {
      const err = e as { message: string; hint?: string };
      assert.match(err.message, /^the deploy key is already registered on fleet-admin\/rot under the title "hand-made"$/);
      assert.match(err.hint ?? '', /^Gitea takes a key once per repository: delete "hand-made" in the repository's settings, then run again$/);
      return true;
    });
    assert.deepEqual((await keys('rot')).map((k) => k.title).sort(), [TITLE, 'hand-made']);
  });
});
