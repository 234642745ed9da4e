import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { before, describe, it } from 'node:test';
import { z } from 'zod';
import { FluxstrapError } from '../../../src/core/errors.ts';
import type { TaskKind } from '../../../src/core/task.ts';
import { runFleet } from '../../../src/flows/fleet.ts';
import type { FleetRunOptions } from '../../../src/flows/fleet.ts';
import { singleCluster } from '../../../src/cluster/resolve.ts';
import { JsonEnvelope, jsonText } from '../../../src/report/envelope.ts';
import { JsonFleetView, PrefixedView } from '../../../src/report/fleet.ts';
import type { TaskContext } from '../../../src/tasks/context.ts';
import type { KindRegistry } from '../../../src/tasks/registry.ts';
import { tempDir } from '../../helpers/tmp.ts';

/**
 * A per-cluster state kept in memory, so the runner, not a kind, is under test: it records how
 * many clusters are inside apply at once, and refuses for the cluster named by `refuse`.
 */
const state = new Map<string, string>();
let inFlight = 0;
let maxInFlight = 0;
const MarkParams = z.strictObject({ value: z.string(), refuse: z.string().optional() });
const markKind: TaskKind<z.infer<typeof MarkParams>, string | undefined, TaskContext> = {
  kind: 'mark',
  params: MarkParams,
  observe: (p, ctx) => {
    if (p.refuse === ctx.cluster.name) return Promise.reject(new FluxstrapError('E_KUBE', `API of ${ctx.cluster.name} unreachable`));
    return Promise.resolve(state.get(ctx.cluster.name));
  },
  plan: (p, have, ctx) => (have === p.value ? [] : [{ action: 'update', target: `mark ${ctx.cluster.name}`, summary: '' }]),
  apply: async (_c, p, ctx) => {
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    await new Promise((r) => setTimeout(r, 20));
    inFlight--;
    state.set(ctx.cluster.name, p.value);
  },
};
const registry: KindRegistry = { mark: () => Promise.resolve(markKind as never) };

let repo: string;

async function fleet(
  opts: Partial<FleetRunOptions>,
  view: 'plain' | 'json' = 'plain',
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (add: (s: string) => void) => new Writable({ write: (chunk: Buffer, _enc, done) => (add(chunk.toString()), done()) });
  const stdout = sink((s) => (out += s));
  const stderr = sink((s) => (err += s));
  // As the CLI does: the view adds to the command's envelope, printed once the command is over.
  const envelope = new JsonEnvelope('run');
  const code = await runFleet(
    { playbook: join(repo, 'site.yaml'), ...opts },
    {
      cwd: repo,
      env,
      registry,
      view: () => (view === 'json' ? new JsonFleetView((fields) => envelope.add(fields)) : new PrefixedView(stderr, { color: false, quiet: false })),
      out: stdout,
    },
  );
  if (view === 'json') out += jsonText(envelope.document(code));
  return { code, out, err };
}

void describe('running a playbook on several clusters (in process)', () => {
  before(async () => {
    repo = await tempDir('fleet');
    await writeFile(join(repo, 'fluxstrap.yaml'), 'clusters:\n  alpha: {}\n  beta: {}\n  gamma: {}\n');
    await writeFile(join(repo, 'site.yaml'), 'name: "Mark {{ cluster.name }}"\ntasks:\n  - name: Mark\n    mark: { value: "{{ v | default(\'one\') }}" }\n');
    await writeFile(join(repo, 'refusing.yaml'), 'name: "Mark {{ cluster.name }}"\ntasks:\n  - name: Mark\n    mark: { value: two, refuse: beta }\n');
  });

  void it('--all-clusters converges every cluster with prefixed lines and a recap per cluster, then changes nothing', async () => {
    const first = await fleet({ allClusters: true, parallel: '2' });
    assert.equal(first.code, 0, first.err);
    assert.deepEqual(Object.fromEntries(state), { alpha: 'one', beta: 'one', gamma: 'one' });
    assert.equal(maxInFlight, 2, '--parallel 2 bounds the clusters running at once');
    for (const name of ['alpha', 'beta', 'gamma']) {
      assert.match(first.err, new RegExp(`^\\[${name}\\] ● Mark \\[changed\\]`, 'm'));
      assert.match(first.err, new RegExp(`^  ${name}: ok=0 changed=1 would-change=0 skipped=0 failed=0`, 'm'));
    }
    assert.ok(
      first.err
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('recap of') && !l.startsWith('  '))
        .every((l) => /^\[(alpha|beta|gamma)\] /.test(l)),
      first.err,
    );
    const second = await fleet({ cluster: ['alpha,beta', 'gamma'] });
    assert.equal(second.code, 0);
    for (const name of ['alpha', 'beta', 'gamma']) assert.match(second.err, new RegExp(`^  ${name}: ok=1 changed=0 `, 'm'));
  });

  void it('one failing cluster does not stop the others: exit 1, the rest converge', async () => {
    const run = await fleet({ allClusters: true, playbook: join(repo, 'refusing.yaml') });
    assert.equal(run.code, 1);
    assert.deepEqual(Object.fromEntries(state), { alpha: 'two', beta: 'one', gamma: 'two' });
    assert.match(run.err, /^\[beta\] {3}error: API of beta unreachable/m);
    assert.match(run.err, /^ {2}beta: ok=0 changed=0 would-change=0 skipped=0 failed=1/m);
  });

  void it('--check exits 3 when any cluster would change, and changes nothing', async () => {
    const run = await fleet({ cluster: ['alpha', 'beta'], check: true, extraVars: ['v=three'] });
    assert.equal(run.code, 3);
    assert.equal(state.get('alpha'), 'two');
  });

  void it("--json prints one document holding each cluster's single-cluster document", async () => {
    const run = await fleet({ allClusters: true, playbook: join(repo, 'refusing.yaml') }, 'json');
    assert.equal(run.code, 1);
    const doc = JSON.parse(run.out) as {
      success: boolean;
      clusters: Record<string, { title: string; success: boolean; recap: { ok: number; failed: number }; tasks: { outcome: string }[] }>;
    };
    assert.equal(doc.success, false);
    assert.deepEqual(Object.keys(doc.clusters), ['alpha', 'beta', 'gamma']);
    assert.equal(doc.clusters.alpha?.title, 'Mark alpha');
    assert.equal(doc.clusters.alpha?.success, true);
    assert.deepEqual(
      doc.clusters.beta?.tasks.map((t) => t.outcome),
      ['failed'],
    );
    assert.equal(run.err, '');
  });

  void it('validates every cluster before any runs: a bad entry is an error naming it, nothing touched', async () => {
    state.clear();
    const config = join(repo, 'fluxstrap.yaml');
    await writeFile(config, 'clusters:\n  alpha: {}\n  broken: { path: ../elsewhere }\n');
    await assert.rejects(fleet({ allClusters: true }), { code: 'E_USAGE', message: /^cluster "broken": cluster path "\.\.\/elsewhere"/ });
    await assert.rejects(fleet({ cluster: ['alpha', 'nope'] }), { code: 'E_USAGE', message: /cluster "nope" is not in/ });
    assert.equal(state.size, 0, 'no cluster ran');
    await writeFile(config, 'clusters:\n  alpha: {}\n  beta: {}\n  gamma: {}\n');
  });

  void it('refuses settings that would point every cluster at the same place, and bad fleet flags', async () => {
    await assert.rejects(fleet({ allClusters: true, kubeconfig: '/tmp/k' }), { code: 'E_USAGE', message: /--kubeconfig would apply to every cluster/ });
    await assert.rejects(fleet({ allClusters: true }, 'plain', { FLUXSTRAP_GIT_URL: 'https://x/y' }), { message: /FLUXSTRAP_GIT_URL would apply/ });
    await assert.rejects(fleet({ allClusters: true, cluster: ['alpha'] }), { message: /--all-clusters and --cluster/ });
    await assert.rejects(fleet({ allClusters: true, parallel: '0' }), { message: /--parallel 0/ });
  });

  void it("--list-tasks lists each cluster's tasks, prefixed, and runs nothing", async () => {
    state.clear();
    const run = await fleet({ cluster: ['alpha', 'gamma'], listTasks: true });
    assert.equal(run.code, 0);
    assert.equal(
      run.out,
      '[alpha] Mark alpha\n[alpha]   Mark  [mark]  ' +
        `${join(repo, 'site.yaml')}:3\n` +
        '[gamma] Mark gamma\n[gamma]   Mark  [mark]  ' +
        `${join(repo, 'site.yaml')}:3\n`,
    );
    assert.equal(state.size, 0);
  });

  void it('one named cluster (or none) keeps the single-cluster path, with --cluster as one name', () => {
    assert.deepEqual(singleCluster({ cluster: ['alpha'], check: true }), { cluster: 'alpha', check: true });
    assert.deepEqual(singleCluster({}), {});
    assert.equal(singleCluster({ cluster: ['alpha, beta'] }), undefined);
    assert.equal(singleCluster({ cluster: ['alpha', 'beta'] }), undefined);
    assert.equal(singleCluster({ allClusters: true }), undefined);
  });
});
