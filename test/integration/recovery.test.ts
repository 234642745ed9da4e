// Disaster recovery on two real harness clusters: the example repository bootstrapped into
// cluster A by the normal flow, its key backed up with a passphrase; then, from an empty folder
// with no fluxstrap.yaml and no key file, only B's kubeconfig, a Git token in a variable, the
// backup and its passphrase, one `fluxstrap bootstrap` brings the new cluster B to A's state and
// a second run changes nothing. Bad input first: each refused in one line, B left untouched.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cli, makeExampleRepo, must, sh } from '../../scripts/example-repo.ts';
import type { ExampleRepo } from '../../scripts/example-repo.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import type { KubeAdapter } from '../../src/adapters/kube/port.ts';
import { findLeaks, leaksIn, registerCanary } from '../helpers/canary.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { Cluster } from '../cluster/index.ts';
import { clusterForFile } from '../cluster/testing.ts';

const a = clusterForFile({ flux: 'on-deployment' });
const b = clusterForFile({ flux: 'on-deployment' });

const TOKEN_ENV = 'RECOVERY_GIT_TOKEN';

interface Scene {
  example: ExampleRepo;
  /** The backup of A's key and its passphrase: what the operator kept off the lost machine. */
  backup: string;
  passphrase: string;
  /** An empty folder to run from, and the TMPDIR fluxstrap gets (scanned afterwards). */
  bare: string;
  tmp: string;
  /** The bare machine's environment: a fresh HOME, no key variables. */
  env: NodeJS.ProcessEnv;
  kubeA: KubeAdapter;
  kubeB: KubeAdapter;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A backup of the key of cluster A, made with `keys backup` after A was bootstrapped as usual. */
async function makeScene(ca: Cluster, cb: Cluster): Promise<Scene> {
  const work = await tempDir('recovery');
  const example = await makeExampleRepo(ca, work, { name: 'homelab', quiet: true });
  const first = await sh(process.execPath, [cli, 'bootstrap', '--repo', example.repo, '--timeout', '3m'], {
    env: { ...example.env, CI: '1', NO_COLOR: '1' },
    quiet: true,
  });
  assert.equal(first.code, 0, `bootstrap of A: ${first.stderr}`);

  const passphrase = `recovery-passphrase-${Math.random().toString(36).slice(2)}`;
  registerCanary(passphrase);
  registerCanary(ca.git.password);
  const backup = join(work, 'safe', 'homelab-key.age');
  mkdirSync(join(work, 'safe'));
  await must(process.execPath, [cli, 'keys', 'backup', example.keyFile, '--out', backup], { env: { FLUXSTRAP_BACKUP_PASSPHRASE: passphrase }, quiet: true });

  const bare = join(work, 'new-laptop');
  const tmp = join(work, 'tmp');
  const home = join(work, 'new-home');
  for (const d of [bare, tmp, home]) mkdirSync(d);
  const env: NodeJS.ProcessEnv = {
    HOME: home,
    TMPDIR: tmp,
    XDG_CONFIG_HOME: undefined,
    SOPS_AGE_KEY: undefined,
    SOPS_AGE_KEY_FILE: undefined,
    KUBECONFIG: undefined,
    DEMO_GIT_PASSWORD: undefined,
    [TOKEN_ENV]: ca.git.password,
    FLUXSTRAP_BACKUP_PASSPHRASE: passphrase,
    CI: '1',
    NO_COLOR: '1',
  };
  return {
    example,
    backup,
    passphrase,
    bare,
    tmp,
    env,
    kubeA: await connectKube({ kubeconfig: ca.kubeconfig }),
    kubeB: await connectKube({ kubeconfig: cb.kubeconfig }),
  };
}

let scene: Promise<Scene> | undefined;
function withScene(body: (s: Scene) => Promise<void>): Promise<void> {
  return a.run(() =>
    b.run(async () => {
      scene ??= makeScene(a.cluster, b.cluster);
      await body(await scene);
    }),
  );
}

/** The recovery command of the README's runbook, with `over` replacing or adding flags. */
function recoveryArgs(s: Scene, over: Record<string, string | undefined> = {}): string[] {
  const flags: Record<string, string | undefined> = {
    '--cluster': 'demo',
    '--kubeconfig': b.cluster.kubeconfig,
    '--git-url': s.example.gitUrl,
    '--branch': 'main',
    '--git-username': a.cluster.git.username,
    '--git-token-env': TOKEN_ENV,
    '--age-key-backup': s.backup,
    '--timeout': '3m',
    ...over,
  };
  return ['bootstrap', ...Object.entries(flags).flatMap(([k, v]) => (v === undefined ? [] : [k, v]))];
}

async function fluxstrap(s: Scene, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const r = await sh(process.execPath, [cli, ...args], { cwd: s.bare, env: { ...s.env, ...env }, quiet: true });
  assert.deepEqual(leaksIn(`${r.stdout}\n${r.stderr}`), [], 'no token, passphrase or private key in the output');
  assert.deepEqual(
    readdirSync(s.tmp).filter((n) => n.startsWith('fluxstrap-')),
    [],
    'the temporary clone is gone',
  );
  return r;
}

/** A refusal: one error line and its hint, exit 1 or 2, nothing applied to B. */
async function refused(s: Scene, r: Run, error: RegExp, hint: RegExp): Promise<void> {
  assert.ok(r.code === 1 || r.code === 2, `exit ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  const err = lines.find((l) => l.startsWith('error: ')) ?? '';
  assert.match(err, error, r.stderr);
  assert.match(lines[lines.indexOf(err) + 1] ?? '', hint, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(await s.kubeB.get({ apiVersion: 'v1', kind: 'Namespace', name: 'flux-system' }), undefined, 'nothing applied to B');
}

interface JsonDoc {
  success: boolean;
  recap: { changed: number; failed: number };
  tasks: { name: string; outcome: string; error?: { message: string; hint?: string } }[];
}

const secretData = async (kube: KubeAdapter, namespace: string, name: string) =>
  ((await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace, name })) as { data?: Record<string, string> } | undefined)?.data;

void describe('disaster recovery from a bare machine', () => {
  void it('refuses bad input before anything is applied: wrong passphrase, token unset or empty, unknown branch, failed auth', () =>
    withScene(async (s) => {
      const wrong = await fluxstrap(s, recoveryArgs(s), { FLUXSTRAP_BACKUP_PASSPHRASE: 'not-the-passphrase' });
      await refused(s, wrong, /^error: wrong passphrase for the key backup \(.*homelab-key\.age\)$/, /^hint: type it again/);

      const unset = await fluxstrap(s, recoveryArgs(s), { [TOKEN_ENV]: undefined });
      await refused(
        s,
        unset,
        new RegExp(`^error: environment variable ${TOKEN_ENV} \\(the Git token of cluster "demo"\\) is not set$`),
        new RegExp(`^hint: export ${TOKEN_ENV}=`),
      );
      const empty = await fluxstrap(s, recoveryArgs(s), { [TOKEN_ENV]: '' });
      await refused(s, empty, new RegExp(`^error: environment variable ${TOKEN_ENV} .* is empty$`), /^hint: export/);

      const branch = await fluxstrap(s, recoveryArgs(s, { '--branch': 'no-such-branch' }));
      await refused(
        s,
        branch,
        /^error: cannot clone branch no-such-branch of http:.*homelab\.git: Remote branch no-such-branch not found/,
        /^hint: name an existing branch with --branch/,
      );

      const auth = await fluxstrap(s, recoveryArgs(s), { [TOKEN_ENV]: 'expired-token-123456' });
      await refused(s, auth, /^error: cannot clone branch main of http:.*homelab\.git: /, /^hint: check the username and that the token can read/);
    }));

  void it('refuses, at preflight, a backup of another key than the .sops.yaml rule names, naming both recipients', () =>
    withScene(async (s) => {
      const otherKey = join(s.tmp, '..', 'other.agekey');
      const other = (await must(process.execPath, [cli, 'keys', 'new', '--out', otherKey], { quiet: true })).trim();
      const otherBackup = join(s.tmp, '..', 'other-key.age');
      await must(process.execPath, [cli, 'keys', 'backup', otherKey, '--out', otherBackup], {
        env: { FLUXSTRAP_BACKUP_PASSPHRASE: s.passphrase },
        quiet: true,
      });
      const ours = (await must(process.execPath, [cli, 'keys', 'pub', s.example.keyFile], { quiet: true })).trim();
      const r = await fluxstrap(s, ['--json', ...recoveryArgs(s, { '--age-key-backup': otherBackup })]);
      assert.equal(r.code, 1, r.stderr);
      const doc = JSON.parse(r.stdout) as JsonDoc;
      const failed = doc.tasks.find((t) => t.outcome === 'failed');
      assert.equal(failed?.name.startsWith('Preflight'), true, JSON.stringify(doc.tasks));
      assert.ok(failed?.error?.message.includes(other) && failed.error.message.includes(ours), failed?.error?.message);
      assert.ok(
        doc.tasks.slice(1).every((t) => t.outcome !== 'changed'),
        'nothing after preflight ran',
      );
      await refused(
        s,
        { code: 1, stdout: '', stderr: `error: ${failed?.error?.message ?? ''}\nhint: ${failed?.error?.hint ?? ''}\n` },
        /^error: preflight.*\.sops\.yaml rule/,
        /^hint: .*--age-key-file/,
      );
    }));

  void it('removes the temporary clone when interrupted (SIGINT)', () =>
    withScene(async (s) => {
      const { spawn } = await import('node:child_process');
      // Interrupted as soon as the clone exists: the backup is still being opened (scrypt), nothing applied yet.
      // Its own process group, interrupted as a terminal's Ctrl-C does: fluxstrap and the git it runs.
      const child = spawn(process.execPath, [cli, ...recoveryArgs(s)], { cwd: s.bare, env: { ...process.env, ...s.env }, detached: true });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      let sawClone = false;
      let inClone: unknown[] = [];
      for (let i = 0; i < 600 && child.exitCode === null && !sawClone; i++) {
        // Once git is done (the checkout written): git's own processes still writing would race the removal.
        const clone = readdirSync(s.tmp).find((n) => n.startsWith('fluxstrap-clone-') && existsSync(join(s.tmp, n, 'fluxstrap.yaml')));
        sawClone = clone !== undefined;
        if (clone !== undefined) {
          // The clone holds no token (.git/config included): git got it in its environment only.
          assert.equal(statSync(join(s.tmp, clone)).mode & 0o777, 0o700, 'a private folder');
          inClone = findLeaks([join(s.tmp, clone)]);
        } else await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(child.pid !== undefined, 'the CLI started');
      process.kill(-child.pid, 'SIGINT');
      const code = await closed;
      assert.ok(sawClone, `the run was interrupted while its clone existed: ${stderr}`);
      assert.equal(code, 130, stderr);
      assert.match(stderr, /interrupted: every step is idempotent/);
      assert.deepEqual(
        readdirSync(s.tmp).filter((n) => n.startsWith('fluxstrap-')),
        [],
        'the interrupt removed the clone',
      );
      assert.deepEqual(leaksIn(stderr), []);
      assert.deepEqual(inClone, []);
    }));

  void it('one bootstrap from an empty folder brings B to the state of A, and a second run changes nothing', () =>
    withScene(async (s) => {
      assert.deepEqual(readdirSync(s.bare), [], 'the folder is empty: no fluxstrap.yaml, no key file');
      const r = await fluxstrap(s, ['--json', ...recoveryArgs(s)]);
      assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
      const doc = JSON.parse(r.stdout) as JsonDoc;
      assert.equal(doc.success, true);
      assert.ok(doc.recap.changed > 0);

      const fromA = await secretData(s.kubeA, 'demo-app', 'db-credentials');
      const fromB = await secretData(s.kubeB, 'demo-app', 'db-credentials');
      assert.ok(fromA?.password !== undefined, 'A has the decrypted Secret');
      assert.deepEqual(fromB, fromA, 'B has the same decrypted Secret as A');
      assert.deepEqual(await secretData(s.kubeB, 'flux-system', 'sops-age'), await secretData(s.kubeA, 'flux-system', 'sops-age'), 'the same age key');
      assert.deepEqual(readdirSync(s.bare), [], 'nothing written to the folder');

      const again = await fluxstrap(s, ['--json', ...recoveryArgs(s)]);
      assert.equal(again.code, 0, again.stderr);
      const second = JSON.parse(again.stdout) as JsonDoc;
      assert.equal(second.recap.changed, 0, JSON.stringify(second.tasks.filter((t) => t.outcome !== 'ok')));

      const status = await fluxstrap(s, [
        'status',
        '--cluster',
        'demo',
        '--kubeconfig',
        b.cluster.kubeconfig,
        '--git-url',
        s.example.gitUrl,
        '--git-username',
        a.cluster.git.username,
        '--git-token-env',
        TOKEN_ENV,
        '--age-key-backup',
        s.backup,
      ]);
      assert.equal(status.code, 0, status.stderr);

      // Nothing of the token or the passphrase in any file left behind (the backup is ciphertext).
      assert.deepEqual(findLeaks([s.tmp, s.bare, String(s.env.HOME)]), []);
    }));
});
