// `fluxstrap status` against the real harness cluster: bootstrapped once, then broken one thing at
// a time (and mended before the next), so one cluster serves the whole file.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { gitEnv } from '../../src/adapters/git.ts';
import { connectKube } from '../../src/adapters/kube.ts';
import { conditionOf, deploymentAvailable, lastHandledReconcileAt } from '../../src/adapters/kube/readiness.ts';
import type { Condition, KubeAdapter, KubeObject } from '../../src/adapters/kube/port.ts';
import type { Finding } from '../../src/status/diagnose.ts';
import { assertBuilt, startCluster } from '../cluster/index.ts';
import { keepLogsOnFailure } from '../cluster/testing.ts';
import type { Cluster } from '../cluster/index.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const TOKEN_ENV = 'FLUXSTRAP_STATUS_TEST_TOKEN';
const SOPS_AGE = { apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-age' };
const FLUX_SYSTEM = { apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', namespace: 'flux-system', name: 'flux-system' };
const KUSTOMIZE_CONTROLLER = { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'flux-system', name: 'kustomize-controller' };

interface Run {
  code: number | undefined;
  stdout: string;
  stderr: string;
}
interface StatusDoc {
  success: boolean;
  counts: Record<'ok' | 'warn' | 'fail', number>;
  findings: Finding[];
}

/** The CLI from source, asynchronously: the harness mirrors Deployments from this event loop. */
async function fluxstrap(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  const { execa } = await import('execa');
  const r = await execa(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'src/cli.ts'), ...args], {
    cwd,
    env: { CI: '1', NO_COLOR: '1', ...env },
    reject: false,
  });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

async function git(args: string[], cwd: string): Promise<void> {
  const { execa } = await import('execa');
  const r = await execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, env: gitEnv({ kind: 'none' }), reject: false });
  assert.equal(r.exitCode, 0, `git ${args.join(' ')}: ${r.stderr}`);
}

/** A fleet repository made with the CLI (keys new, init, encrypt), pushed over HTTPS. */
async function fleet(cluster: Cluster, home: string): Promise<{ dir: string; keyFile: string; env: Record<string, string> }> {
  const dir = join(home, 'repo');
  const keyFile = join(home, 'age.key');
  const env = { [TOKEN_ENV]: cluster.git.password };
  const url = cluster.git.httpUrl('status.git');
  const files: Record<string, string> = {
    'fluxstrap.yaml': stringify({
      clusters: {
        test: {
          kube: { kubeconfig: cluster.kubeconfig },
          git: { url, auth: { https: { username: cluster.git.username, passwordEnv: TOKEN_ENV } } },
          ageKey: { file: keyFile },
        },
      },
    }),
    'clusters/test/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [apps]\n',
    'clusters/test/apps/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [db.sops.yaml]\n',
    'clusters/test/apps/db.sops.yaml': 'apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: default}\nstringData: {password: status-test-password}\n',
  };
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  // init writes Flux itself (gotk-components, gotk-sync for the URL), the rule and the decryption patch.
  for (const args of [
    ['keys', 'new', '--out', keyFile],
    ['init', '--cluster', 'test', '--age-key-file', keyFile, '--git-url', url, '--branch', 'main'],
    ['encrypt', '--in-place', 'clusters/test/apps/db.sops.yaml'],
  ]) {
    const r = await fluxstrap(args, dir);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  await git(['init', '--quiet', '--initial-branch=main'], dir);
  await git(['add', '.'], dir);
  await git(['commit', '--quiet', '-m', 'fleet'], dir);
  const { execa } = await import('execa');
  const push = await execa('git', ['push', '--quiet', url, 'main'], {
    cwd: dir,
    env: gitEnv({ kind: 'basic', username: cluster.git.username, password: cluster.git.password }),
    reject: false,
  });
  assert.equal(push.exitCode, 0, push.stderr);
  return { dir, keyFile, env };
}

/** An object as it can be applied again: what the server added taken out. */
function reapplicable(o: KubeObject): KubeObject {
  const { name, namespace } = o.metadata;
  return { apiVersion: o.apiVersion, kind: o.kind, metadata: { name, ...(namespace !== undefined ? { namespace } : {}) }, type: o.type, data: o.data };
}

void describe('fluxstrap status against the real harness cluster', { timeout: 10 * 60_000 }, () => {
  let cluster: Cluster;
  let kube: KubeAdapter;
  let repo: Awaited<ReturnType<typeof fleet>>;
  let home: string;
  let ageSecret: KubeObject;

  const status = async (): Promise<{ run: Run; doc: StatusDoc }> => {
    const run = await fluxstrap(['--json', 'status'], repo.dir, repo.env);
    try {
      return { run, doc: JSON.parse(run.stdout) as StatusDoc };
    } catch {
      return assert.fail(`no JSON document (exit ${run.code}): ${run.stderr}\n${run.stdout}`);
    }
  };
  const problems = (doc: StatusDoc) => doc.findings.filter((f) => f.status !== 'ok');
  /** Ask kustomize-controller for a reconcile of flux-system (as `flux reconcile` does) and wait for its verdict. */
  const reconciled = async (until: (ready: Condition | undefined) => boolean) => {
    const requestedAt = new Date().toISOString();
    await kube.patchMerge(FLUX_SYSTEM, { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': requestedAt } } });
    await kube.waitFor(
      FLUX_SYSTEM,
      (o) => {
        const ready = conditionOf(o, 'Ready');
        const handled = lastHandledReconcileAt(o) === requestedAt;
        return { done: handled && until(ready), reason: `${handled ? 'handled' : 'not handled yet'}, Ready=${ready?.status ?? 'none'}` };
      },
      { timeoutMs: 60_000, what: 'reconciled' },
    );
  };

  before(async () => {
    assertBuilt();
    home = mkdtempSync(join(tmpdir(), 'fluxstrap-status-'));
    cluster = await startCluster({ flux: 'on-deployment' });
    kube = await connectKube({ kubeconfig: cluster.kubeconfig });
    repo = await fleet(cluster, home);
    const boot = await fluxstrap(['bootstrap', '--timeout', '3m'], repo.dir, repo.env);
    assert.equal(boot.code, 0, `${boot.stderr}\n${cluster.logTails(20)}`);
    const live = await kube.get(SOPS_AGE);
    assert.ok(live);
    ageSecret = reapplicable(live);
  });
  keepLogsOnFailure(() => cluster);
  after(async () => {
    await cluster?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  void it('reports every check ok after a bootstrap, exits 0, and changes nothing', async (t) => {
    const watched = [SOPS_AGE, FLUX_SYSTEM];
    const versions = async () => [
      ...(await Promise.all(watched.map(async (r) => (await kube.get(r))?.metadata.annotations ?? {}))),
      (await kube.list('coordination.k8s.io/v1', 'Lease', { namespace: 'flux-system' })).map((l) => l.metadata.name).sort(),
    ];
    const before = await versions();
    const { run, doc } = await status();
    assert.equal(run.code, 0, JSON.stringify(problems(doc), null, 2));
    assert.deepEqual(problems(doc), []);
    for (const check of [
      'api',
      'crds',
      'controller',
      'git-repository',
      'git-head',
      'kustomization',
      'decryption',
      'sops-age-secret',
      'sops-reach',
      'sops-config',
      'local-key',
      'sops-files',
      'kustomizations-decrypting',
    ]) {
      assert.ok(
        doc.findings.some((f) => f.check === check),
        `a finding for ${check}`,
      );
    }
    assert.deepEqual(await versions(), before, 'no annotation (reconcile request) and no Lease added');
    const human = await fluxstrap(['status'], repo.dir, repo.env);
    t.diagnostic(`${doc.findings.length} findings; human output:\n${human.stderr}`);
    assert.equal(human.code, 0);
    assert.equal(human.stdout, '');
    assert.match(human.stderr, /^✔ ok {3}api: Kubernetes v1\.36\.\d+ at https:\/\/127\.0\.0\.1:\d+/m);
    assert.match(human.stderr, /^test: \d+ ok, 0 warn, 0 fail$/m);
    assert.doesNotMatch(run.stdout + human.stderr, /AGE-SECRET-KEY|status-test-password/);
  });

  void it('fails naming the sops-age Secret when it is deleted', async () => {
    await kube.delete(SOPS_AGE);
    try {
      const { run, doc } = await status();
      assert.equal(run.code, 1);
      assert.equal(doc.success, false);
      const f = problems(doc).find((x) => x.check === 'sops-age-secret');
      assert.equal(f?.status, 'fail', JSON.stringify(problems(doc)));
      assert.match(f.message, /^Secret flux-system\/sops-age does not exist/);
      assert.match(f.hint ?? '', /fluxstrap bootstrap/);
    } finally {
      await kube.apply(ageSecret);
    }
  });

  void it('fails "cluster key does not match .sops.yaml recipients" when the Secret holds another key', async () => {
    const other = join(home, 'other.key');
    assert.equal((await fluxstrap(['keys', 'new', '--out', other], home)).code, 0);
    const otherRecipient = /age1[0-9a-z]+/.exec(readFileSync(other, 'utf8'))?.[0] ?? '';
    await kube.apply({ ...ageSecret, data: { 'age.agekey': Buffer.from(readFileSync(other)).toString('base64') } });
    try {
      const { run, doc } = await status();
      assert.equal(run.code, 1);
      const byCheck = (check: string) => problems(doc).find((x) => x.check === check);
      assert.equal(byCheck('sops-config')?.status, 'fail', JSON.stringify(problems(doc)));
      assert.match(
        byCheck('sops-config')?.message ?? '',
        new RegExp(
          `^cluster key does not match \\.sops\\.yaml recipients for clusters/test/apps/db\\.sops\\.yaml \\(rule names .*\\) \\(cluster: ${otherRecipient}\\)`,
        ),
      );
      assert.match(byCheck('sops-files')?.message ?? '', /cannot open 1 of 1 SOPS file\(s\) the cluster reaches: clusters\/test\/apps\/db\.sops\.yaml/);
      assert.equal(byCheck('local-key')?.status, 'warn');
      assert.doesNotMatch(run.stdout + run.stderr, /AGE-SECRET-KEY/);

      // Once kustomize-controller tries the wrong key, its own error is reported.
      await reconciled((ready) => ready?.status === 'False');
      const after = problems((await status()).doc);
      assert.match(after.find((x) => x.check === 'kustomization')?.message ?? '', /not Ready: .*decrypt/i, JSON.stringify(after));
      assert.match(after.find((x) => x.check === 'kustomizations-decrypting')?.message ?? '', /^Kustomization flux-system\/flux-system fails to decrypt/);
    } finally {
      await kube.apply(ageSecret);
    }
    await reconciled((ready) => ready?.status === 'True');
  });

  void it('fails at the API, and only there, when --kubeconfig points at nothing', async () => {
    const dead = join(home, 'dead.kubeconfig');
    // Port 1 (tcpmux) is privileged and unused on any machine that runs these tests.
    writeFileSync(dead, readFileSync(cluster.kubeconfig, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, 'server: https://127.0.0.1:1'));
    const run = await fluxstrap(['--json', 'status', '--kubeconfig', dead], repo.dir, repo.env);
    assert.equal(run.code, 1);
    const doc = JSON.parse(run.stdout) as StatusDoc;
    assert.deepEqual(
      problems(doc).map((f) => [f.check, f.status]),
      [['api', 'fail']],
    );
    assert.match(problems(doc)[0]?.message ?? '', /ECONNREFUSED/);
  });

  void it('fails naming the Deployment when kustomize-controller is down', async () => {
    await cluster.controllers.stop('kustomize-controller');
    try {
      for (let i = 0; deploymentAvailable(await kube.get(KUSTOMIZE_CONTROLLER)).done; i++) {
        assert.ok(i < 100, 'the Deployment never turned unavailable');
        await new Promise((r) => setTimeout(r, 200));
      }
      const { run, doc } = await status();
      assert.equal(run.code, 1);
      const f = problems(doc).find((x) => x.check === 'controller');
      assert.equal(f?.status, 'fail', JSON.stringify(problems(doc)));
      assert.match(f.message, /^Deployment flux-system\/kustomize-controller is not available: .*conditions: .*Available=False/);
    } finally {
      await cluster.controllers.start('kustomize-controller');
    }
  });
});
