import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { gitEnv } from '../../src/adapters/git.ts';
import { startGitServer } from '../cluster/git-server.ts';
import type { GitServer } from '../cluster/git-server.ts';
import { canary } from '../helpers/canary.ts';
import { runCli, runCliAsync } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';
import { tempDir } from '../helpers/tmp.ts';
import { requireTool, runTool } from '../helpers/tools.ts';
import { findSops } from '../unit/sops/helpers.ts';

/**
 * `git.auth.sopsFile`: init encrypts the Git credential Secret into the repository for the
 * cluster's age key; the real sops opens it with that key; bootstrap, given no token, reads the
 * pushed commit with the credentials decrypted in memory; a file it cannot open is one error line
 * naming it. The leak guard (test/helpers/canary.ts) scans every run's output and every temp file
 * for the token afterwards.
 */

const TOKEN_ENV = 'SOPSFILE_TEST_GIT_TOKEN';
const SOPS_FILE = (cluster: string) => `bootstrap/${cluster}/git-credentials.sops.yaml`;
let server: GitServer;
let home: string;
let keyFile: string;
let kubeconfig: string;
let sops: string;

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: undefined,
  [TOKEN_ENV]: undefined,
  ...extra,
});

before(async () => {
  requireTool('git');
  sops = findSops();
  home = await tempDir('sopsfile-home');
  server = await startGitServer(await tempDir('sopsfile-git'));
  keyFile = join(home, 'cluster.agekey');
  const key = runCli(['keys', 'new', '--out', keyFile], { env: env() });
  assert.equal(key.code, 0, key.stderr);
  kubeconfig = join(home, 'kubeconfig');
  writeFileSync(kubeconfig, DEAD_KUBECONFIG);
});
after(() => server.stop());

/** real sops, with only the cluster's key: the plaintext stays in this process's memory. */
function sopsDecrypt(file: string, key = keyFile): { code: number; doc: { stringData?: Record<string, string> } | undefined; stderr: string } {
  const r = spawnSync(sops, ['decrypt', file], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home, SOPS_AGE_KEY_FILE: key } });
  return { code: r.status ?? -1, doc: r.status === 0 ? (parse(r.stdout) as { stringData?: Record<string, string> }) : undefined, stderr: r.stderr };
}

async function push(r: FluxRepo, name: string): Promise<string> {
  const url = server.httpUrl(`${name}.git`);
  await r.git('add', '-A');
  await r.git('commit', '--quiet', '-m', 'fluxstrap init');
  await runTool('git', ['push', '--quiet', url, 'HEAD:main'], {
    cwd: r.repo,
    env: gitEnv({ kind: 'basic', username: server.username, password: server.password }),
  });
  return url;
}

/** init for HTTPS with the server's account and the token in a variable, the credentials kept encrypted. */
async function initHttps(cluster: string, token: string, extra: string[] = []): Promise<{ r: FluxRepo; init: CliResult }> {
  const r = await fluxRepo({ cluster, gotkSync: 'pristine' });
  const init = runCli(
    [
      'init',
      '--cluster',
      cluster,
      '--repo',
      r.repo,
      '--age-key-file',
      keyFile,
      '--git-url',
      server.httpUrl(`${cluster}.git`),
      '--branch',
      'main',
      '--git-username',
      server.username,
      '--git-token-env',
      TOKEN_ENV,
      '--git-sops-file',
      ...extra,
    ],
    { cwd: home, env: env({ [TOKEN_ENV]: token }) },
  );
  return { r, init };
}

/** The preflight of `bootstrap --check --json` with no token: it fails at the dead API, after reading Git. */
async function preflight(r: FluxRepo, extra: NodeJS.ProcessEnv = {}): Promise<{ run: CliResult; message: string }> {
  const run = await runCliAsync(['bootstrap', '--check', '--json', '--cluster', r.cluster, '--age-key-file', keyFile], {
    cwd: r.repo,
    env: env({ KUBECONFIG: kubeconfig, ...extra }),
  });
  const doc = JSON.parse(run.stdout) as { error?: { message: string }; tasks: { kind: string; outcome: string; error?: { message: string } }[] };
  return { run, message: doc.tasks[0]?.error?.message ?? doc.error?.message ?? '' };
}

void describe('git.auth.sopsFile: the Git credentials encrypted in the repository', () => {
  void it('init writes them encrypted for the cluster key, the real sops opens them, and nothing holds the token in clear', async () => {
    const token = canary('git-token');
    const { r, init } = await initHttps('enc', token);
    assert.equal(init.code, 0, init.stderr);
    const file = join(r.repo, SOPS_FILE('enc'));
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(token), 'the token is not in the file in clear');
    assert.match(text, /password: ENC\[AES256_GCM,/);
    assert.match(readFileSync(join(r.repo, 'fluxstrap.yaml'), 'utf8'), /sopsFile: bootstrap\/enc\/git-credentials\.sops\.yaml/);

    const opened = sopsDecrypt(file);
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(opened.doc?.stringData, { username: server.username, password: token });

    const other = join(home, 'other.agekey');
    assert.equal(runCli(['keys', 'new', '--out', other], { env: env() }).code, 0);
    assert.notEqual(sopsDecrypt(file, other).code, 0, 'another key does not open it');

    // .sops.yaml governs the folder (bootstrap/<cluster>/*.sops.yaml) with the cluster key: the
    // real sops and fluxstrap encrypt create siblings there, which the cluster key opens.
    for (const [name, encrypt] of [
      ['sops', (f: string) => spawnSync(sops, ['encrypt', '--in-place', f], { cwd: r.repo, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home } })],
      ['fluxstrap', (f: string) => runCli(['encrypt', '--in-place', f], { cwd: r.repo, env: env() })],
    ] as const) {
      const sibling = `bootstrap/enc/registry-${name}.sops.yaml`;
      writeFileSync(
        join(r.repo, sibling),
        'apiVersion: v1\nkind: Secret\nmetadata: {name: registry, namespace: flux-system}\nstringData: {token: not-secret}\n',
      );
      const done = encrypt(sibling);
      assert.equal('status' in done ? done.status : done.code, 0, `${name} encrypt: ${done.stderr}`);
      assert.deepEqual(sopsDecrypt(join(r.repo, sibling)).doc?.stringData, { token: 'not-secret' }, `${name}: the cluster key opens it`);
    }

    // A second run keeps the file: it may hold a token this machine no longer has.
    const again = runCli(['init', '--cluster', 'enc', '--repo', r.repo, '--age-key-file', keyFile, '--git-sops-file'], { cwd: home, env: env() });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(readFileSync(file, 'utf8'), text);
  });

  void it('init refuses before writing anything when the token variable is unset, or the file is under flux-system/', async () => {
    const unset = runCli(
      [
        'init',
        '--cluster',
        'unset',
        '--repo',
        (await fluxRepo({ cluster: 'unset' })).repo,
        '--age-key-file',
        keyFile,
        '--git-url',
        'https://git.example/me/r.git',
        '--git-token-env',
        TOKEN_ENV,
        '--git-sops-file',
      ],
      { cwd: home, env: env() },
    );
    assert.equal(unset.code, 1, unset.stderr);
    assert.match(unset.stderr, new RegExp(`^error: environment variable ${TOKEN_ENV} .*is not set$`, 'm'));

    const r = await fluxRepo({ cluster: 'infs' });
    const inFluxSystem = runCli(
      [
        'init',
        '--cluster',
        'infs',
        '--repo',
        r.repo,
        '--age-key-file',
        keyFile,
        '--git-url',
        'https://git.example/me/r.git',
        '--git-token-env',
        TOKEN_ENV,
        '--git-sops-file',
        'clusters/infs/flux-system/git.sops.yaml',
      ],
      { cwd: r.repo, env: env({ [TOKEN_ENV]: canary('token') }) },
    );
    assert.equal(inFluxSystem.code, 2, inFluxSystem.stderr);
    assert.match(inFluxSystem.stderr, /^error: --git-sops-file clusters\/infs\/flux-system\/git\.sops\.yaml must be outside flux-system\//m);
    assert.equal(await r.git('status', '--porcelain'), '', 'nothing written');
  });

  void it('an ssh:// URL: the generated deploy key goes into the file with known_hosts', async () => {
    const r = await fluxRepo({ cluster: 'ssh' });
    const knownHosts = join(home, 'ssh_known_hosts');
    writeFileSync(knownHosts, `${server.knownHosts}\n`);
    const deployKey = join(home, 'ssh-deploy-key');
    const init = await runCliAsync(
      [
        'init',
        '--cluster',
        'ssh',
        '--repo',
        r.repo,
        '--age-key-file',
        keyFile,
        '--git-url',
        server.sshUrl('ssh.git'),
        '--git-ssh-key',
        deployKey,
        '--git-known-hosts',
        knownHosts,
        '--git-sops-file',
      ],
      { cwd: home, env: env() },
    );
    assert.equal(init.code, 0, init.stderr);
    const opened = sopsDecrypt(join(r.repo, SOPS_FILE('ssh')));
    assert.equal(opened.code, 0, opened.stderr);
    assert.equal(opened.doc?.stringData?.identity, readFileSync(deployKey, 'utf8'));
    assert.equal(opened.doc?.stringData?.known_hosts, readFileSync(knownHosts, 'utf8'));
    assert.equal(opened.doc?.stringData?.['identity.pub'], readFileSync(`${deployKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' '));

    // A fresh machine: the deploy key file is gone, the Secret in the repository has it. Bootstrap
    // reads the pushed commit over SSH through a private agent given the key on stdin.
    server.authorize(readFileSync(`${deployKey}.pub`, 'utf8').trim());
    const url = await push(r, 'ssh');
    assert.equal(url, server.httpUrl('ssh.git'));
    rmSync(deployKey);
    const { message } = await preflight(r);
    assert.ok(!message.includes(`cannot read ${server.sshUrl('ssh.git')}`), `Git accepted the deploy key from the file: ${message}`);
    // Only a preflight that fetched the commit can compare its gotk-sync.yaml with fluxstrap.yaml.
    assert.match(message, /GitRepository flux-system in clusters\/ssh\/flux-system\/gotk-sync\.yaml pulls from/);
  });

  void it('bootstrap without the token reads the pushed commit with the credentials from the file', async () => {
    const token = server.password;
    const { r, init } = await initHttps('boot', token);
    assert.equal(init.code, 0, init.stderr);
    const url = await push(r, 'boot');
    const { message } = await preflight(r);
    assert.ok(!message.includes(`cannot read ${url}`), `Git accepted the decrypted token: ${message}`);
    assert.match(message, /the Kubernetes API at https:\/\/127\.0\.0\.1:1 is unreachable/);

    // flag > env > sopsFile: a wrong token in the variable wins over the file.
    const wrong = await preflight(r, { [TOKEN_ENV]: 'wrong-token-123456' });
    assert.ok(wrong.message.includes(`cannot read ${url}`), wrong.message);
  });

  void it('a file that does not decrypt is one error line naming it, with no stack and no value', async () => {
    const token = canary('git-token');
    const { r, init } = await initHttps('bad', token);
    assert.equal(init.code, 0, init.stderr);
    const rel = SOPS_FILE('bad');
    const file = join(r.repo, rel);
    const original = readFileSync(file, 'utf8');
    await push(r, 'bad');

    const cases: [string, string, RegExp][] = [
      [
        'tampered',
        original.replace(/(password: ENC\[AES256_GCM,data:)./, (_m, head: string) => `${head}${original.includes(`${head}A`) ? 'B' : 'A'}`),
        /does not decrypt|MAC mismatch/,
      ],
      ['not sops', 'apiVersion: v1\nkind: Secret\n', /sops metadata|not encrypted|no sops/i],
    ];
    for (const [label, content, why] of cases) {
      writeFileSync(file, content);
      const run = await runCliAsync(['bootstrap', '--check', '--cluster', 'bad', '--age-key-file', keyFile], {
        cwd: r.repo,
        env: env({ KUBECONFIG: kubeconfig }),
      });
      assert.equal(run.code, 1, `${label}: ${run.stderr}`);
      const errors = run.stderr.split('\n').filter((l) => /^\s*error: /.test(l));
      assert.equal(errors.length, 1, `${label}: ${run.stderr}`);
      assert.ok(errors[0]?.includes(rel), `${label}: the line names the file: ${errors[0] ?? ''}`);
      assert.match(errors[0] ?? '', why, label);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    }

    const other = join(home, 'stranger.agekey');
    assert.equal(runCli(['keys', 'new', '--out', other], { env: env() }).code, 0);
    writeFileSync(file, original);
    const run = await runCliAsync(['bootstrap', '--check', '--cluster', 'bad', '--age-key-file', other], { cwd: r.repo, env: env({ KUBECONFIG: kubeconfig }) });
    assert.equal(run.code, 1, run.stderr);
    const errors = run.stderr.split('\n').filter((l) => /^\s*error: /.test(l));
    assert.equal(errors.length, 1, run.stderr);
    assert.ok(errors[0]?.includes(rel), errors[0]);
  });
});
