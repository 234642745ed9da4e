import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gitEnv } from '../../src/adapters/git.ts';
import { startGitServer } from '../cluster/git-server.ts';
import type { GitServer } from '../cluster/git-server.ts';
import { cliPath, runCli } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { tempDir } from '../helpers/tmp.ts';
import { requireTool, runTool } from '../helpers/tools.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';

/**
 * `fluxstrap init` then `bootstrap --check` against the test harness's Git server (HTTP basic
 * auth with an account name, as Gitea or Forgejo want) and a Kubernetes API that refuses
 * connections: preflight reads the pushed commit, so what it says about Git and the repository
 * layout is real, and it stops before anything would change.
 */

const TOKEN_ENV = 'FLUXSTRAP_TEST_GIT_TOKEN';
let server: GitServer;
let home: string;
let keyFile: string;
let kubeconfig: string;

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: undefined,
  ...extra,
});

before(async () => {
  requireTool('git');
  home = await tempDir('preflight-home');
  server = await startGitServer(await tempDir('preflight-git'));
  keyFile = join(home, 'cluster.agekey');
  const key = runCli(['keys', 'new', '--out', keyFile], { env: env() });
  assert.equal(key.code, 0, key.stderr);
  kubeconfig = join(home, 'kubeconfig');
  await writeFile(kubeconfig, DEAD_KUBECONFIG);
});
after(() => server.stop());

/** init with these flags, commit, push to the server as `name`; the URL Flux would pull. */
async function initAndPush(r: FluxRepo, name: string, flags: string[]): Promise<string> {
  const url = server.httpUrl(`${name}.git`);
  const init = runCli(
    ['init', '--cluster', r.cluster, '--repo', r.repo, '--key-file', keyFile, '--git-url', url, '--branch', 'main', '--git-token-env', TOKEN_ENV, ...flags],
    { cwd: home, env: env() },
  );
  assert.equal(init.code, 0, init.stderr);
  await r.git('add', '-A');
  await r.git('commit', '--quiet', '-m', 'fluxstrap init');
  await runTool('git', ['push', '--quiet', url, 'HEAD:main'], {
    cwd: r.repo,
    env: gitEnv({ kind: 'basic', username: server.username, password: server.password }),
  });
  return url;
}

/** The built CLI without blocking this process, which serves the Git requests bootstrap makes. */
function runCliAsync(args: string[], cwd: string, extra: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cliPath, ...args], { cwd, env: { ...process.env, CI: '1', NO_COLOR: '1', ...env(extra) } }, (e, stdout, stderr) => {
      const code = e === null ? 0 : typeof e.code === 'number' ? e.code : undefined;
      if (code === undefined) reject(e ?? new Error('no exit code'));
      else resolve({ code, stdout, stderr });
    });
  });
}

/** The preflight task of `bootstrap --check --json`: it fails (the API is down) with every problem it found. */
async function preflight(r: FluxRepo): Promise<{ message: string; hint: string }> {
  const run = await runCliAsync(['bootstrap', '--check', '--json', '--cluster', r.cluster], r.repo, { KUBECONFIG: kubeconfig, [TOKEN_ENV]: server.password });
  assert.equal(run.code, 1, run.stderr);
  const doc = JSON.parse(run.stdout) as { tasks: { kind: string; outcome: string; error?: { message: string; hint?: string } }[] };
  const task = doc.tasks[0];
  assert.deepEqual([task?.kind, task?.outcome], ['preflight', 'failed'], run.stdout);
  return { message: task?.error?.message ?? '', hint: task?.error?.hint ?? '' };
}

void describe('bootstrap preflight against a Git server that wants the account name', () => {
  void it('init --git-username: bootstrap reads the pushed commit with that user name', async () => {
    const r = await fluxRepo({ cluster: 'named', gotkSync: 'pristine' });
    const url = await initAndPush(r, 'named', ['--git-username', server.username]);
    const { message } = await preflight(r);
    assert.ok(!message.includes(`cannot read ${url}`), `Git accepted the account name and token: ${message}`);
    // Only a preflight that fetched the commit can compare its gotk-sync.yaml with fluxstrap.yaml.
    assert.match(message, /GitRepository flux-system in clusters\/named\/flux-system\/gotk-sync\.yaml pulls from https:\/\/github\.com\//);
    assert.match(message, /the Kubernetes API at https:\/\/127\.0\.0\.1:1 is unreachable/);
  });

  void it('without it, the default user name git is refused by the same server', async () => {
    const r = await fluxRepo({ cluster: 'unnamed', gotkSync: 'pristine' });
    const url = await initAndPush(r, 'unnamed', []);
    const { message } = await preflight(r);
    assert.ok(message.includes(`cannot read ${url}`), message);
  });
});

void describe('gotk-components.yaml and gotk-sync.yaml missing', () => {
  void it('init generates them, with no note about missing files', async () => {
    const r = await fluxRepo({ cluster: 'bare', gotkSync: 'pristine' });
    await rm(join(r.repo, r.clusterPath, 'flux-system'), { recursive: true });
    const init = runCli(['init', '--cluster', r.cluster, '--repo', r.repo, '--key-file', keyFile, '--git-url', 'https://git.example/me/fleet.git'], {
      cwd: home,
      env: env(),
    });
    assert.equal(init.code, 0, init.stderr);
    assert.doesNotMatch(init.stderr, /missing/);
    assert.match(init.stderr, /generate Flux v2\.9\.5/);
    assert.match(init.stderr, /generate the sync objects for https:\/\/git\.example\/me\/fleet\.git/);
  });

  /** Push the repository after taking `file` out of flux-system, as a hand-made commit might. */
  async function pushWithout(r: FluxRepo, name: string, file: string): Promise<string> {
    const url = await initAndPush(r, name, ['--git-username', server.username]);
    await rm(join(r.repo, r.clusterPath, 'flux-system', file));
    await r.git('commit', '--quiet', '-am', `drop ${file}`);
    await runTool('git', ['push', '--quiet', url, 'HEAD:main'], {
      cwd: r.repo,
      env: gitEnv({ kind: 'basic', username: server.username, password: server.password }),
    });
    return url;
  }

  void it('bootstrap preflight names the missing file at the pushed commit and the init that writes it', async () => {
    const r = await fluxRepo({ cluster: 'nocomponents', gotkSync: 'pristine' });
    await pushWithout(r, 'nocomponents', 'gotk-components.yaml');
    const { message, hint } = await preflight(r);
    const fs = `${r.clusterPath}/flux-system`;
    assert.match(message, new RegExp(`${fs}/gotk-components\\.yaml is missing \\(at main@sha1:[0-9a-f]{40}\\)`));
    assert.doesNotMatch(message, /gotk-sync\.yaml is missing/);
    assert.ok(hint.includes(`\`fluxstrap init --cluster ${r.cluster}\``), hint);
  });

  void it('a cluster folder without flux-system/ is refused at preflight, naming fluxstrap init', async () => {
    const r = await fluxRepo({ cluster: 'noflux', gotkSync: 'pristine' });
    const url = await initAndPush(r, 'noflux', ['--git-username', server.username]);
    await rm(join(r.repo, r.clusterPath, 'flux-system'), { recursive: true });
    await r.git('commit', '--quiet', '-am', 'drop flux-system');
    await runTool('git', ['push', '--quiet', url, 'HEAD:main'], {
      cwd: r.repo,
      env: gitEnv({ kind: 'basic', username: server.username, password: server.password }),
    });
    const { message, hint } = await preflight(r);
    assert.match(message, new RegExp(`${r.clusterPath}/flux-system/ is missing: Flux was never set up for this cluster \\(at main@sha1:[0-9a-f]{40}\\)`));
    assert.ok(hint.includes(`run \`fluxstrap init --cluster ${r.cluster} --git-url ${url}\``), hint);
  });

  void it('without gotk-sync.yaml, the init command carries the URL', async () => {
    const r = await fluxRepo({ cluster: 'nosync', gotkSync: 'pristine' });
    const url = await pushWithout(r, 'nosync', 'gotk-sync.yaml');
    const { message, hint } = await preflight(r);
    assert.match(message, /flux-system\/gotk-sync\.yaml is missing/);
    assert.ok(hint.includes(`fluxstrap init --cluster ${r.cluster} --git-url ${url}`), hint);
  });
});
