import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startGitServer } from '../cluster/git-server.ts';
import { runCliAsync } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';
import { tempDir } from '../helpers/tmp.ts';
import { gitEnv } from '../../src/adapters/git.ts';
import { generateSshKey, publicKeyOfPrivate, sshPublicKeyOf } from '../../src/keys/ssh.ts';

/**
 * `fluxstrap git rotate-key` refusing bad input before anything changes: one error line and a
 * hint, no key staged. (The rotation itself: test/integration/git-rotate-key.test.ts.)
 */

const execFileAsync = promisify(execFile);
let home: string;
let r: FluxRepo;
let keys: string;
const SSH_URL = 'ssh://git@git.example.invalid/fleet.git';

const rotate = (...args: string[]): Promise<CliResult> =>
  runCliAsync(['git', 'rotate-key', '--repo', r.repo, ...args], {
    cwd: home,
    env: { HOME: home, XDG_CONFIG_HOME: undefined, KUBECONFIG: join(home, 'kubeconfig'), FLUXSTRAP_CLUSTER: undefined, GIT_TOKEN: 'not-a-real-token' },
  });

function oneLineError(res: CliResult, text: RegExp, code = 1): void {
  assert.equal(res.code, code, res.stderr);
  const lines = res.stderr
    .trimEnd()
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(error|hint):/.test(l));
  assert.equal(lines.length, 2, res.stderr);
  assert.match(lines[0] ?? '', text, res.stderr);
  assert.match(lines[1] ?? '', /^hint: /, res.stderr);
  assert.doesNotMatch(res.stderr, /^\s+at /m, 'no stack trace');
}

const ssh = (keyFile: string) => ['--git-url', SSH_URL, '--git-ssh-key', keyFile, '--git-known-hosts', join(keys, 'known_hosts')];

before(async () => {
  home = await tempDir('rotate-key-home');
  keys = await tempDir('rotate-key-keys');
  r = await fluxRepo();
  await writeFile(join(r.repo, 'fluxstrap.yaml'), `clusters:\n  ${r.cluster}:\n    path: ${r.clusterPath}\n`);
  await writeFile(join(home, 'kubeconfig'), DEAD_KUBECONFIG);
  await writeFile(join(keys, 'known_hosts'), '');
});

void describe('git rotate-key: bad input is one error line, nothing staged', () => {
  void it('an unknown cluster', async () => {
    oneLineError(await rotate('--cluster', 'nope', ...ssh(join(keys, 'k'))), /cluster "nope" is not in/, 2);
  });

  void it('an HTTPS token cluster: nothing to rotate', async () => {
    oneLineError(
      await rotate('--cluster', r.cluster, '--git-url', 'https://git.example.invalid/fleet.git', '--git-token-env', 'GIT_TOKEN'),
      /pulls with https credentials: there is no SSH deploy key to rotate/,
    );
  });

  void it('a missing key file', async () => {
    oneLineError(await rotate('--cluster', r.cluster, ...ssh(join(keys, 'missing'))), /the deploy key file .*missing does not exist/);
    assert.deepEqual((await readdir(keys)).sort(), ['known_hosts']);
  });

  void it("an earlier rotation's <keyFile>.old is never overwritten: refused before a key is staged", async () => {
    const keyFile = join(keys, 'deploy');
    await writeFile(keyFile, generateSshKey('ed25519', 'a').privateKey, { mode: 0o600 });
    await writeFile(`${keyFile}.old`, generateSshKey('ed25519', 'o').privateKey, { mode: 0o600 });
    oneLineError(await rotate('--cluster', r.cluster, ...ssh(keyFile)), /deploy\.old holds another key/);
    assert.deepEqual((await readdir(keys)).sort(), ['deploy', 'deploy.old', 'known_hosts']);
  });

  void it('a bad --timeout is a usage error', async () => {
    oneLineError(await rotate('--cluster', r.cluster, ...ssh(join(keys, 'deploy')), '--timeout', 'soon'), /--timeout soon/, 2);
  });
});

void describe('git rotate-key on a host fluxstrap cannot register keys with', () => {
  let server: Awaited<ReturnType<typeof startGitServer>>;
  before(async () => {
    server = await startGitServer(await tempDir('rotate-key-git'));
  });
  after(async () => server.stop());

  void it('--no-wait: the new key is staged and shown, the run stops until the server accepts it; the next run reuses it', async () => {
    const dir = await tempDir('rotate-key-other');
    const keyFile = join(dir, 'deploy');
    await writeFile(keyFile, await readFile(server.sshPrivateKeyPath, 'utf8'), { mode: 0o600 });
    await writeFile(join(dir, 'known_hosts'), `${server.knownHosts}\n`);
    // The branch the new key must be able to read, pushed with the key the server knows.
    const work = join(dir, 'work');
    await execFileAsync('git', ['init', '--quiet', '--initial-branch=main', work]);
    await execFileAsync('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '--quiet', '--allow-empty', '-m', 'first']);
    await execFileAsync('git', ['-C', work, 'push', '--quiet', server.sshUrl('fleet.git'), 'main'], {
      env: { ...process.env, ...gitEnv({ kind: 'ssh', identityFile: keyFile, knownHostsFile: join(dir, 'known_hosts') }) },
    });
    const args = [
      '--cluster',
      r.cluster,
      '--git-url',
      server.sshUrl('fleet.git'),
      '--git-ssh-key',
      keyFile,
      '--git-known-hosts',
      join(dir, 'known_hosts'),
      '--no-wait',
    ];
    const first = await rotate(...args);
    oneLineError(first, /the Git server does not accept the new deploy key yet/);
    const staged = publicKeyOfPrivate(await readFile(`${keyFile}.next`, 'utf8'), `${keyFile}.next`);
    assert.ok(first.stderr.includes(staged.split(' ')[1] ?? 'x'), 'the hint shows the public key to add');
    assert.ok(first.stderr.includes(sshPublicKeyOf(staged)?.fingerprint ?? 'x'));
    assert.deepEqual((await readdir(dir)).sort(), ['deploy', 'deploy.next', 'deploy.next.pub', 'known_hosts', 'work'], 'nothing else moved');

    server.authorize(staged);
    const second = await rotate(...args);
    // Accepted now; the next step needs the cluster, which is not there (a dead kubeconfig).
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, /the Git server accepts/);
    assert.doesNotMatch(second.stderr, /does not accept/);
    assert.equal(publicKeyOfPrivate(await readFile(`${keyFile}.next`, 'utf8'), `${keyFile}.next`), staged, 'the staged key is kept, not replaced');
  });
  // Reads the branch the test above pushed.
  void it('without --no-wait: the run waits, showing the key to add, and goes on once the server accepts it', async () => {
    const dir = await tempDir('rotate-key-wait');
    const keyFile = join(dir, 'deploy');
    await writeFile(keyFile, await readFile(server.sshPrivateKeyPath, 'utf8'), { mode: 0o600 });
    await writeFile(join(dir, 'known_hosts'), `${server.knownHosts}\n`);
    const args = ['--cluster', r.cluster, '--git-url', server.sshUrl('fleet.git'), '--git-ssh-key', keyFile, '--git-known-hosts', join(dir, 'known_hosts')];
    const running = rotate(...args, '--timeout', '60s');
    for (let i = 0; i < 200 && !existsSync(`${keyFile}.next.pub`); i++) await sleep(50);
    await sleep(2500);
    const staged = (await readFile(`${keyFile}.next.pub`, 'utf8')).trim();
    server.authorize(staged);
    const res = await running;
    // Accepted while it waited; the next step needs the cluster, which is not there (a dead kubeconfig).
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /the Git server accepts/);
    assert.doesNotMatch(res.stderr, /E_TIMEOUT|did not accept/);
  });
  void it('a repository the current key cannot read either: that error, not a wait for the new key', async () => {
    const dir = await tempDir('rotate-key-missing');
    const keyFile = join(dir, 'deploy');
    await writeFile(keyFile, await readFile(server.sshPrivateKeyPath, 'utf8'), { mode: 0o600 });
    await writeFile(join(dir, 'known_hosts'), `${server.knownHosts}\n`);
    const res = await rotate(
      ...['--cluster', r.cluster, '--git-url', server.sshUrl('missing.git'), '--git-ssh-key', keyFile, '--git-known-hosts', join(dir, 'known_hosts')],
    );
    oneLineError(res, /cannot read ssh:.*missing\.git/);
    assert.doesNotMatch(res.stderr, /does not accept the new deploy key/);
  });
});
