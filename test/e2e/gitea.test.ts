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

/**
 * Gitea as the second forge for deploy keys, against a real Gitea (v1.27.3, built from its Go
 * module): the playbook's ssh-deploy-key + gitea-deploy-key generate the key and register it
 * read-only under flux's title (Gitea's SSH server then lets it read, not push); a second run
 * changes nothing; another key under the title is
 * refused, then replaced with --rotate-secrets; the same key under another title, a bad token
 * and a missing repository are one error line with a hint. The token is never printed.
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

async function writeConfig(name: string): Promise<void> {
  await writeFile(
    join(repo, 'fluxstrap.yaml'),
    stringify({
      clusters: {
        lab: {
          path: 'clusters/lab',
          git: {
            url: gitea.sshUrl(name),
            branch: 'main',
            auth: { ssh: { keyFile: keyFile(), knownHostsFile: join(home, 'known_hosts') } },
          },
        },
      },
    }),
  );
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
