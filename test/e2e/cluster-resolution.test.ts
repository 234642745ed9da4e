import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { ownedTempDir } from '../helpers/tmp.ts';
import { requireTool, runTool } from '../helpers/tools.ts';

// One fluxstrap.yaml, four commands, one answer: init, bootstrap, status and keys rotate resolve
// the same cluster (its folder) and the same key (fluxstrap.yaml's ageKey.file, not the
// SOPS_AGE_KEY_FILE of the environment), from a subfolder (--repo walks up the same way).
// The Git source is served over dumb HTTP so that bootstrap's preflight gets as far as the key.

const dir = ownedTempDir('resolution');
const repo = join(dir, 'repo');
const sub = join(repo, 'docs', 'notes');
const other = join(dir, 'other.agekey');
const gitEnv = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.invalid' };
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: join(dir, 'home'),
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: other,
  FLUXSTRAP_AGE_KEY_FILE: undefined,
  FLUXSTRAP_REPO: undefined,
  ...gitEnv,
  ...extra,
});
const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(args, { cwd: sub, env: env(extra) });

let server: ChildProcess | undefined;
let prodRecipient = '';
let otherRecipient = '';

function recipientOf(keyFile: string): string {
  const m = /^# public key: (age1\S+)$/m.exec(readFileSync(keyFile, 'utf8'));
  assert.ok(m?.[1], `${keyFile} names its public key`);
  return m[1];
}

/** `python3 -m http.server` on a free port; resolves with the port once it listens. */
function serve(root: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server = spawn(requireTool('python3'), ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', root], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    server.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m?.[1]) resolve(Number(m[1]));
    });
    server.on('error', reject);
    server.on('exit', (code) => reject(new Error(`http.server exited (${code ?? 'signal'}): ${out}`)));
  });
}

before(async () => {
  requireTool('age-keygen');
  mkdirSync(join(repo, 'k8s', 'prod', 'flux-system'), { recursive: true });
  mkdirSync(join(repo, 'keys'), { recursive: true });
  mkdirSync(sub, { recursive: true });
  mkdirSync(join(dir, 'home'), { recursive: true });
  await runTool('age-keygen', ['-o', join(repo, 'keys', 'prod.agekey')]);
  await runTool('age-keygen', ['-o', other]);
  prodRecipient = recipientOf(join(repo, 'keys', 'prod.agekey'));
  otherRecipient = recipientOf(other);

  const port = await serve(dir);
  // An API nobody listens on: the commands get past resolution and stop at the cluster.
  writeFileSync(
    join(dir, 'kubeconfig'),
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: c',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]',
      'contexts: [{name: c, context: {cluster: c, user: u}}]',
      'users: [{name: u, user: {token: x}}]',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(repo, 'fluxstrap.yaml'),
    [
      'clusters:',
      '  prod:',
      '    path: k8s/prod',
      `    kube: {kubeconfig: ${join(dir, 'kubeconfig')}}`,
      `    git: {url: "http://127.0.0.1:${port}/fleet.git", branch: main}`,
      '    ageKey: {file: keys/prod.agekey}',
      '',
    ].join('\n'),
  );
  writeFileSync(join(repo, '.gitignore'), 'keys/\n');

  await runTool('git', ['init', '--quiet', '--initial-branch', 'main'], { cwd: repo });
  const init = cli(['init', '--cluster', 'prod']);
  assert.equal(init.code, 0, init.stderr);
  await runTool('git', ['add', '-A'], { cwd: repo, env: gitEnv });
  await runTool('git', ['commit', '--quiet', '-m', 'init'], { cwd: repo, env: gitEnv });
  await runTool('git', ['clone', '--quiet', '--bare', repo, join(dir, 'fleet.git')]);
  await runTool('git', ['update-server-info'], { cwd: join(dir, 'fleet.git') });
  await runTool('git', ['remote', 'add', 'origin', `http://127.0.0.1:${port}/fleet.git`], { cwd: repo });
  await runTool('git', ['fetch', '--quiet', 'origin'], { cwd: repo });
});

after(() => {
  server?.removeAllListeners('exit');
  server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

void describe('one cluster resolution for init, bootstrap, status and keys rotate', () => {
  void it('init (from a subfolder, no flags) wrote the rule for the configured folder and key', () => {
    const sops = readFileSync(join(repo, '.sops.yaml'), 'utf8');
    assert.match(sops, /path_regex: \^k8s\/prod\//);
    assert.ok(sops.includes(prodRecipient), "the recipient of fluxstrap.yaml's key file");
    assert.ok(!sops.includes(otherRecipient), 'not the key of SOPS_AGE_KEY_FILE');
  });

  void it('bootstrap --check reads the same key: its preflight finds no key problem, and does with another key', () => {
    const ok = cli(['--json', 'bootstrap', '--cluster', 'prod', '--check']);
    const doc = JSON.parse(ok.stdout) as { title: string; tasks: { kind: string; error?: { message: string } }[] };
    assert.equal(doc.title, 'Bootstrap Flux on prod');
    const preflight = doc.tasks.find((t) => t.kind === 'preflight')?.error?.message ?? '';
    assert.match(preflight, /Kubernetes API at https:\/\/127\.0\.0\.1:1/, 'stopped at the unreachable API');
    assert.doesNotMatch(preflight, /cannot read http/, 'the Git source was read');
    assert.doesNotMatch(preflight, /age key/);

    const wrong = cli(['--json', 'bootstrap', '--cluster', 'prod', '--check'], { FLUXSTRAP_AGE_KEY_FILE: other });
    const wrongDoc = JSON.parse(wrong.stdout) as typeof doc;
    assert.match(
      wrongDoc.tasks.find((t) => t.kind === 'preflight')?.error?.message ?? '',
      /the age key \(age1\S+\) is not a recipient of the \.sops\.yaml rule for k8s\/prod/,
    );
  });

  void it('status observes the same cluster folder', () => {
    const r = cli(['--json', 'status', '--cluster', 'prod']);
    const doc = JSON.parse(r.stdout) as { cluster: string; path: string };
    assert.deepEqual({ cluster: doc.cluster, path: doc.path }, { cluster: 'prod', path: 'k8s/prod' });
  });

  void it('keys rotate --check plans on the same folder with the same key file', () => {
    const r = cli(['--json', 'keys', 'rotate', '--cluster', 'prod', '--check']);
    assert.equal(r.code, 3, r.stderr);
    const doc = JSON.parse(r.stdout) as { title: string; tasks: { kind: string; changes: { summary: string; before?: string }[] }[] };
    assert.equal(doc.title, 'keys rotate k8s/prod');
    // The plan's first step is the key file's new identity; the rule's comes next.
    const change = doc.tasks.find((t) => t.kind === 'sops-recipients')?.changes[0];
    assert.match(change?.summary ?? '', /add recipient .* in the creation rule for k8s\/prod/);
    assert.ok(change?.before?.includes(prodRecipient));
    // The key file of SOPS_AGE_KEY_FILE holds no identity of the rule: rotating it is refused.
    assert.notEqual(cli(['keys', 'rotate', '--cluster', 'prod', '--check', '--age-key-file', other]).code, 3);
  });
});
