import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { startGitServer } from '../cluster/git-server.ts';
import type { GitServer } from '../cluster/git-server.ts';
import { runCliAsync } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { requireTool, runTool } from '../helpers/tools.ts';
import { sshPublicKeyOf } from '../../src/keys/ssh.ts';

/**
 * `fluxstrap init` with an ssh:// URL and no key: the deploy key is generated (never replaced),
 * the public key printed, and the host key of a real SSH server (the test Git server, scanned
 * with the real ssh-keyscan) trusted only once its fingerprint is confirmed.
 */

let home: string;
let server: GitServer;
let hostFingerprint: string;
let ageKey: string;

const init = (r: FluxRepo, ...args: string[]): Promise<CliResult> =>
  runCliAsync(['init', '--cluster', r.cluster, '--repo', r.repo, '--age-key-file', ageKey, ...args], {
    cwd: home,
    env: { HOME: home, XDG_CONFIG_HOME: undefined },
  });

function oneLineError(r: CliResult, text: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr
    .trimEnd()
    .split('\n')
    .filter((l) => l.startsWith('error:') || l.startsWith('hint:'));
  assert.match(lines[0] ?? '', text, r.stderr);
  assert.match(lines[1] ?? '', /^hint: /, r.stderr);
}

before(async () => {
  requireTool('ssh-keyscan');
  requireTool('ssh-keygen');
  home = await tempDir('deploy-key-home');
  server = await startGitServer(await tempDir('deploy-key-git'));
  hostFingerprint = sshPublicKeyOf(server.knownHosts)?.fingerprint ?? '';
  ageKey = join(home, 'cluster.agekey');
  const r = await runCliAsync(['keys', 'new', '--out', ageKey], { env: { HOME: home } });
  assert.equal(r.code, 0, r.stderr);
});
after(async () => server.stop());

void describe('init generates an SSH deploy key and confirms the host key', () => {
  void it('refuses an unconfirmed scanned host key, showing its fingerprint, and writes nothing', async () => {
    const r = await fluxRepo({ cluster: 'lab' });
    const url = server.sshUrl('fleet.git');
    const before = await snapshot(r.repo);
    const res = await init(r, '--git-url', url);
    oneLineError(res, new RegExp(`SSH host key of \\[127\\.0\\.0\\.1\\]:\\d+ is not confirmed: it offers ${hostFingerprint.replace(/[+/]/g, '\\$&')}`));
    assert.deepEqual(await snapshot(r.repo), before);
    await assert.rejects(stat(join(home, '.config/fluxstrap/lab-deploy-key')));
    const wrong = await init(r, '--git-url', url, '--accept-host-key', 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    oneLineError(wrong, /is not confirmed/);
    assert.match(wrong.stderr, /is none of them/);
    assert.deepEqual(await snapshot(r.repo), before);
  });

  void it('with the fingerprint: key generated (0600, ssh-keygen reads it), public key printed, known_hosts written, fluxstrap.yaml names both; a rerun changes nothing', async () => {
    const r = await fluxRepo({ cluster: 'lab' });
    const url = server.sshUrl('fleet.git');
    const res = await init(r, '--git-url', url, '--accept-host-key', hostFingerprint, '--ssh-key-algorithm', 'ecdsa-p384');
    assert.equal(res.code, 0, res.stderr);
    const keyFile = join(home, '.config/fluxstrap/lab-deploy-key');
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const pub = (await readFile(`${keyFile}.pub`, 'utf8')).trim();
    assert.match(pub, /^ecdsa-sha2-nistp384 /);
    const derived = (await runTool('ssh-keygen', ['-y', '-f', keyFile])).stdout.trim();
    assert.equal(derived.split(' ')[1], pub.split(' ')[1]);
    assert.ok(res.stdout.includes(pub.split(' ')[1] ?? 'x') || res.stderr.includes(pub.split(' ')[1] ?? 'x'), 'the public key is shown');
    assert.equal(await readFile(join(r.repo, 'clusters/lab/known_hosts'), 'utf8'), `${server.knownHosts}\n`);
    const config = parse(await readFile(join(r.repo, 'fluxstrap.yaml'), 'utf8')) as { clusters: { lab: { git: unknown } } };
    assert.deepEqual(config.clusters.lab.git, {
      url,
      auth: { ssh: { keyFile: '~/.config/fluxstrap/lab-deploy-key', knownHostsFile: 'clusters/lab/known_hosts', keyAlgorithm: 'ecdsa-p384' } },
    });

    const private1 = await readFile(keyFile, 'utf8');
    const again = await init(r);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr + again.stdout, /nothing to do/);
    assert.equal(await readFile(keyFile, 'utf8'), private1, 'an existing key is never replaced');
  });

  void it('a changed host key is refused before anything changes', async () => {
    const r = await fluxRepo({ cluster: 'moved' });
    const [host = ''] = server.knownHosts.split(' ');
    await writeFile(join(r.repo, 'known_hosts'), `${host} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\n`);
    const before = await snapshot(r.repo);
    const res = await init(
      r,
      '--git-url',
      server.sshUrl('fleet.git'),
      '--git-ssh-key',
      join(home, 'moved-key'),
      '--git-known-hosts',
      join(r.repo, 'known_hosts'),
    );
    oneLineError(res, /the SSH host key of \[127\.0\.0\.1\]:\d+ changed: it offers SHA256:.*none of them in known_hosts/);
    assert.deepEqual(await snapshot(r.repo), before);
    await assert.rejects(stat(join(home, 'moved-key')));
  });
});
