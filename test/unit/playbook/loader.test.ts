import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { compilePlaybook, loadPlaybook } from '../../../src/playbook/loader.ts';
import type { LoadOptions } from '../../../src/playbook/loader.ts';
import { testRegistry } from './kinds.ts';

const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name);
const builtins = { cluster: { name: 'prod', path: 'clusters/prod' }, check_mode: false };
const options = (extra: Partial<LoadOptions> = {}): LoadOptions => ({ registry: testRegistry().registry, builtins, ...extra });

/** Assert a load fails with E_CONFIG at file:line:col, with a message matching `message`. */
async function rejectsAt(file: string, line: number, column: number, message: RegExp, opts = options()) {
  await assert.rejects(loadPlaybook(fixture(file), opts), (e: unknown) => {
    assert.ok(e instanceof FluxstrapError, String(e));
    assert.equal(e.code, 'E_CONFIG');
    assert.match(e.message, message);
    assert.deepEqual([e.location?.file, e.location?.line, e.location?.column], [fixture(file), line, column]);
    return true;
  });
}

void describe('playbook loader', () => {
  void it('compiles a good playbook: templates, typed values, aliases, options', async () => {
    const pb = await loadPlaybook(fixture('good.yaml'), options());
    assert.equal(pb.name, 'Test playbook');
    assert.deepEqual(
      pb.tasks.map((t) => t.name),
      ['Namespace flux-system', 'echo', 'Always'],
    );
    assert.deepEqual(pb.tasks[0]?.params, { message: 'hello prod', count: 3, extra: { mode: 'strict' } });
    assert.deepEqual(pb.tasks[0]?.location, { file: fixture('good.yaml'), line: 8, column: 5 });
    const second = pb.tasks[1];
    assert.equal(second?.retries, 2);
    assert.equal(second?.retryDelayMs, 5000);
    assert.equal(second?.when?.(pb.vars), true);
    assert.equal(second?.when?.({ ...pb.vars, check_mode: true }), false);
    assert.equal(pb.tasks[2]?.checkMode, false);
    assert.equal(pb.tasks[2]?.ignoreErrors, true);
  });

  void it('lets -e override vars, and refuses to redefine built-ins', async () => {
    const pb = await loadPlaybook(fixture('good.yaml'), options({ extraVars: { count: 7, greeting: 'hi' } }));
    assert.deepEqual(pb.tasks[0]?.params, { message: 'hi', count: 7, extra: { mode: 'strict' } });
    await assert.rejects(loadPlaybook(fixture('good.yaml'), options({ extraVars: { cluster: 'x' } })), /built-in/);
    await assert.rejects(
      compilePlaybook('name: x\nvars:\n  check_mode: true\ntasks:\n  - echo: {message: a}\n', 'p.yaml', options()),
      (e: unknown) => e instanceof FluxstrapError && e.location?.line === 3 && /built in/.test(e.message),
    );
  });

  void it('selects by tags; `always` survives --tags; unknown tags are a usage error', async () => {
    const only = await loadPlaybook(fixture('good.yaml'), options({ tags: ['slow'] }));
    assert.deepEqual(
      only.tasks.map((t) => t.name),
      ['echo', 'Always'],
    );
    const skip = await loadPlaybook(fixture('good.yaml'), options({ skipTags: ['slow', 'always'] }));
    assert.deepEqual(
      skip.tasks.map((t) => t.name),
      ['Namespace flux-system'],
    );
    await assert.rejects(loadPlaybook(fixture('good.yaml'), options({ tags: ['nope'] })), (e: unknown) => e instanceof FluxstrapError && e.code === 'E_USAGE');
  });

  void it('imports only the kinds a playbook uses', async () => {
    const { registry, loaded } = testRegistry();
    await loadPlaybook(fixture('good.yaml'), options({ registry }));
    assert.deepEqual([...new Set(loaded)], ['echo']);
  });

  void it('names an unknown kind at its key, with a suggestion', async () => {
    await rejectsAt('unknown-kind.yaml', 6, 5, /unknown task kind or option "ecoh"/);
    await assert.rejects(
      loadPlaybook(fixture('unknown-kind.yaml'), options()),
      (e: unknown) => e instanceof FluxstrapError && /did you mean "echo"/.test(e.hint ?? ''),
    );
  });

  void it('validates params against the kind schema, at the offending field', async () => {
    await rejectsAt('bad-params.yaml', 6, 14, /expected number/);
    await rejectsAt('unknown-param.yaml', 5, 7, /unknown key "colour"/);
    await assert.rejects(
      compilePlaybook('name: x\ntasks:\n  - loose: {file: a, fiel: b}\n', 'p.yaml', options()),
      (e: unknown) => e instanceof FluxstrapError && e.location?.field === 'loose.fiel' && /unknown key "fiel"/.test(e.message),
    );
  });

  void it('refuses two kinds in one task, a task without a kind, and bad options', async () => {
    await rejectsAt('two-kinds.yaml', 5, 5, /exactly one kind; this one has echo and other/);
    await assert.rejects(compilePlaybook('name: x\ntasks:\n  - name: nothing\n', 'p.yaml', options()), /names no task kind/);
    await assert.rejects(
      compilePlaybook('name: x\ntasks:\n  - echo: {message: a}\n    retries: -1\n', 'p.yaml', options()),
      (e: unknown) => e instanceof FluxstrapError && e.location?.line === 4 && e.location.field === 'retries',
    );
  });

  void it('reports template and condition errors where they are written', async () => {
    await rejectsAt('undefined-var.yaml', 6, 16, /undefined variable b/);
    await rejectsAt('bad-when.yaml', 4, 11, /bad expression/);
    await assert.rejects(compilePlaybook('name: x\ntasks:\n  - echo: {message: a}\n    when: "{{ nope }}"\n', 'p.yaml', options()), /undefined variable nope/);
  });

  void it('variables named __proto__ or constructor are variables like any other, from vars and from -e', async () => {
    const text =
      'name: x\nvars:\n  __proto__: {message: from-vars}\n  constructor: c\ntasks:\n  - echo: {message: "{{ __proto__.message }} {{ constructor }} {{ prototype }}"}\n';
    const pb = await compilePlaybook(text, 'p.yaml', options({ extraVars: { prototype: 'p' } }));
    assert.deepEqual(pb.tasks[0]?.params, { message: 'from-vars c p' });
    assert.deepEqual(Object.keys(pb.vars), ['cluster', 'check_mode', 'prototype', '__proto__', 'constructor']);
    const overridden = await compilePlaybook(
      text.replace(' {{ prototype }}', ''),
      'p.yaml',
      options({ extraVars: Object.defineProperty({}, '__proto__', { value: { message: 'from-e' }, enumerable: true }) }),
    );
    assert.deepEqual(overridden.tasks[0]?.params, { message: 'from-e c' });
    assert.equal(({} as Record<string, unknown>).message, undefined);
  });

  void it('a param map keyed __proto__ is an unknown key where it is written, never read through as the params', async () => {
    await assert.rejects(
      compilePlaybook('name: x\ntasks:\n  - echo:\n      __proto__: {message: evil}\n', 'p.yaml', options()),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_CONFIG' && /unknown key "__proto__"/.test(e.message) && e.location?.line === 4,
    );
    const pb = await compilePlaybook('name: x\ntasks:\n  - echo: {message: m, extra: {constructor: c, toString: t}}\n', 'p.yaml', options());
    assert.deepEqual(pb.tasks[0]?.params, { message: 'm', extra: { constructor: 'c', toString: 't' } });
  });

  void it('a key holding a line break is named escaped, bounded, on one line', async () => {
    const long = '>'.repeat(200);
    await assert.rejects(compilePlaybook(`? (${long}# ,  tags: \n`, 'p.yaml', options()), (e: unknown) => {
      assert.ok(e instanceof FluxstrapError, String(e));
      assert.match(e.message, /^unknown key "\{\\n {2}\\"\(>+"…/);
      assert.doesNotMatch(e.message, /\n/);
      assert.ok(e.message.length < 200, e.message);
      return true;
    });
    await assert.rejects(
      compilePlaybook('name: x\ntasks:\n  - "ec\\nho": {}\n', 'p.yaml', options()),
      (e: unknown) => e instanceof FluxstrapError && e.message === 'unknown task kind or option "ec\\nho"',
    );
  });

  void it('reports YAML syntax errors and a bad envelope with line and column', async () => {
    await assert.rejects(
      loadPlaybook(fixture('bad-yaml.yaml'), options()),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_CONFIG' && /invalid YAML/.test(e.message) && e.location?.line !== undefined,
    );
    await assert.rejects(
      compilePlaybook('name: x\nhosts: all\ntasks:\n  - echo: {message: a}\n', 'p.yaml', options()),
      (e: unknown) => e instanceof FluxstrapError && e.location?.line === 2 && /unknown key "hosts"/.test(e.message),
    );
    await assert.rejects(compilePlaybook('tasks:\n  - echo: {message: a}\n', 'p.yaml', options()), /missing required key "name"/);
    await assert.rejects(compilePlaybook('- a\n', 'p.yaml', options()), /a playbook is a mapping/);
  });
});
