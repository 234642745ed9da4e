import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import type { Change } from '../../../src/core/change.ts';
import { runTasks } from '../../../src/core/engine.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';
import type { Reporter, RunEvent } from '../../../src/core/events.ts';
import type { TaskInstance, TaskKind } from '../../../src/core/task.ts';

/** A world of named values; the kind ensures `want` is stored under `key`. */
type World = Map<string, string>;
interface Params {
  key: string;
  want: string;
}

function valueKind(opts: { sabotage?: boolean; failObserve?: number } = {}): TaskKind<Params, string | undefined, World> {
  let observeFailures = opts.failObserve ?? 0;
  return {
    kind: 'value',
    params: z.object({ key: z.string(), want: z.string() }),
    observe(p, world) {
      if (observeFailures > 0) {
        observeFailures--;
        return Promise.reject(new FluxstrapError('E_KUBE', 'API not ready'));
      }
      return Promise.resolve(world.get(p.key));
    },
    plan(p, current): Change[] {
      if (current === p.want) return [];
      return [{ action: current === undefined ? 'create' : 'update', target: `value ${p.key}`, summary: `set to ${p.want}`, data: p.want }];
    },
    apply(change, p, world) {
      // A sabotaged kind writes the wrong thing: the engine must notice on re-observe.
      world.set(p.key, opts.sabotage ? 'wrong' : String(change.data));
      return Promise.resolve();
    },
  };
}

function recorder(): Reporter & { events: RunEvent[] } {
  const events: RunEvent[] = [];
  return { events, emit: (e) => events.push(e), close: () => Promise.resolve() };
}

function task(kind: TaskKind<Params, string | undefined, World>, params: Params, extra: Partial<TaskInstance<World>> = {}): TaskInstance<World> {
  return { name: `ensure ${params.key}`, kind, params, ...extra };
}

void describe('engine', () => {
  void it('applies, then reports ok on the second run', async () => {
    const world: World = new Map([['b', 'old']]);
    const kind = valueKind();
    const tasks = [task(kind, { key: 'a', want: '1' }), task(kind, { key: 'b', want: '2' }), task(kind, { key: 'c', want: '3' })];
    world.set('c', '3');
    const first = await runTasks({ title: 't', tasks, ctx: world, reporter: recorder(), check: false });
    assert.deepEqual(
      first.results.map((r) => r.outcome),
      ['changed', 'changed', 'ok'],
    );
    assert.deepEqual(
      first.results[1]?.changes.map((c) => c.action),
      ['update'],
    );
    assert.equal(world.get('b'), '2');
    const second = await runTasks({ title: 't', tasks, ctx: world, reporter: recorder(), check: false });
    assert.deepEqual(second.recap, { ok: 3, changed: 0, wouldChange: 0, skipped: 0, failed: 0 });
  });

  void it('never applies in check mode', async () => {
    const world: World = new Map();
    const r = await runTasks({ title: 't', tasks: [task(valueKind(), { key: 'a', want: '1' })], ctx: world, reporter: recorder(), check: true });
    assert.equal(r.results[0]?.outcome, 'would-change');
    assert.equal(world.size, 0);
    assert.ok(r.success);
  });

  void it('under --check, a change marked checkHorizon ends the run there: the rest skipped, not failed, the mark never rendered', async () => {
    const base = valueKind();
    const horizon: TaskKind<Params, string | undefined, World> = {
      ...base,
      plan: (p, current, world) => base.plan(p, current, world).map((c) => ({ ...c, checkHorizon: true as const })),
    };
    const world: World = new Map();
    const tasks = [task(valueKind(), { key: 'a', want: '1' }), task(horizon, { key: 'b', want: '2' }), task(valueKind(), { key: 'c', want: '3' })];
    const reporter = recorder();
    const r = await runTasks({ title: 't', tasks, ctx: world, reporter, check: true });
    assert.deepEqual(
      r.results.map((x) => x.outcome),
      ['would-change', 'would-change', 'skipped'],
    );
    assert.ok(r.success);
    assert.equal(JSON.stringify(reporter.events).includes('checkHorizon'), false);
    // Applied, the same change is only a change: the run goes on.
    const applied = await runTasks({ title: 't', tasks, ctx: world, reporter: recorder(), check: false });
    assert.deepEqual(
      applied.results.map((x) => x.outcome),
      ['changed', 'changed', 'changed'],
    );
  });

  void it('fails a task whose apply does not converge and skips the rest', async () => {
    const world: World = new Map();
    const tasks = [task(valueKind({ sabotage: true }), { key: 'a', want: '1' }), task(valueKind(), { key: 'b', want: '2' })];
    const r = await runTasks({ title: 't', tasks, ctx: world, reporter: recorder(), check: false });
    assert.equal(r.results[0]?.outcome, 'failed');
    assert.equal(r.results[0]?.error?.code, 'E_CONVERGENCE');
    assert.equal(r.results[1]?.outcome, 'skipped');
    assert.equal(world.has('b'), false);
    assert.equal(r.success, false);
  });

  void it('retries retryable failures and reports each retry', async () => {
    const world: World = new Map();
    const rep = recorder();
    const r = await runTasks({
      title: 't',
      tasks: [task(valueKind({ failObserve: 2 }), { key: 'a', want: '1' }, { retries: 2, retryDelayMs: 0 })],
      ctx: world,
      reporter: rep,
      check: false,
      sleep: () => Promise.resolve(),
    });
    assert.equal(r.results[0]?.outcome, 'changed');
    assert.equal(rep.events.filter((e) => e.type === 'task-retry').length, 2);
  });

  void it('gives up after the last retry with the error code', async () => {
    const r = await runTasks({
      title: 't',
      tasks: [task(valueKind({ failObserve: 5 }), { key: 'a', want: '1' }, { retries: 1 })],
      ctx: new Map(),
      reporter: recorder(),
      check: false,
      sleep: () => Promise.resolve(),
    });
    assert.equal(r.results[0]?.error?.code, 'E_KUBE');
  });

  void it('skips a task whose condition is false, and carries on after an ignored failure', async () => {
    const world: World = new Map();
    const tasks = [
      task(valueKind({ sabotage: true }), { key: 'a', want: '1' }, { ignoreErrors: true }),
      task(valueKind(), { key: 'b', want: '2' }, { when: (v) => v.enabled === true }),
      task(valueKind(), { key: 'c', want: '3' }),
    ];
    const r = await runTasks({ title: 't', tasks, ctx: world, reporter: recorder(), check: false, vars: { enabled: false } });
    assert.deepEqual(
      r.results.map((x) => x.outcome),
      ['failed', 'skipped', 'changed'],
    );
    assert.ok(r.success);
  });

  void it('emits events in order and never puts change data into results', async () => {
    const rep = recorder();
    const r = await runTasks({ title: 't', tasks: [task(valueKind(), { key: 'a', want: 'secret-value' })], ctx: new Map(), reporter: rep, check: false });
    assert.deepEqual(
      rep.events.map((e) => e.type),
      ['run-start', 'task-start', 'task-progress', 'task-end', 'run-end'],
    );
    assert.equal(JSON.stringify(r.results).includes('"data"'), false);
  });

  void it('decides check mode per task in one place: check_mode wins over --check, and observe is told', async () => {
    const seen: boolean[] = [];
    const base = valueKind();
    const telling: TaskKind<Params, string | undefined, World> = { ...base, observe: (p, world, run) => (seen.push(run.check), base.observe(p, world, run)) };
    const world: World = new Map();
    const tasks = [task(telling, { key: 'a', want: '1' }, { checkMode: false }), task(telling, { key: 'b', want: '2' })];
    const r = await runTasks({ title: 't', tasks, ctx: world, reporter: recorder(), check: true });
    assert.deepEqual(
      r.results.map((x) => x.outcome),
      ['changed', 'would-change'],
    );
    assert.deepEqual(seen, [false, false, true], 'observe, re-observe after apply, then the check-mode task');
    assert.deepEqual([...world.keys()], ['a']);
    const forced = await runTasks({
      title: 't',
      tasks: [task(valueKind(), { key: 'c', want: '3' }, { checkMode: true })],
      ctx: world,
      reporter: recorder(),
      check: false,
    });
    assert.equal(forced.results[0]?.outcome, 'would-change');
    assert.equal(world.has('c'), false);
  });

  void it("runs a handler only when a task's outcome notified it", async () => {
    const world: World = new Map([['same', 'x']]);
    const kind = valueKind();
    const tasks = [
      task(kind, { key: 'same', want: 'x' }, { notify: [3] }),
      task(kind, { key: 'new', want: 'y' }, { notify: [2] }),
      task(kind, { key: 'notified', want: 'h' }, { handler: true }),
      task(kind, { key: 'not-notified', want: 'h' }, { handler: true }),
    ];
    const r = await runTasks({ title: 't', tasks, ctx: world, reporter: recorder(), check: false });
    assert.deepEqual(
      r.results.map((x) => x.outcome),
      ['ok', 'changed', 'changed', 'skipped'],
    );
    const checked = await runTasks({
      title: 't',
      tasks: [task(kind, { key: 'other', want: 'z' }, { notify: [1] }), task(kind, { key: 'h2', want: 'h' }, { handler: true })],
      ctx: world,
      reporter: recorder(),
      check: true,
    });
    assert.deepEqual(
      checked.results.map((x) => x.outcome),
      ['would-change', 'would-change'],
      'under --check, would-change notifies',
    );
  });

  void it('planFirst: a task that cannot plan stops the run before its first change and before any event', async () => {
    const world: World = new Map();
    const rep = recorder();
    const tasks = [task(valueKind(), { key: 'a', want: '1' }), task(valueKind({ failObserve: 1 }), { key: 'b', want: '2' })];
    await assert.rejects(runTasks({ title: 't', tasks, ctx: world, reporter: rep, check: false, planFirst: true }), /API not ready/);
    assert.equal(world.size, 0);
    assert.deepEqual(rep.events, []);
  });
});
