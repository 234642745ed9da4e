import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withStacks } from '../../../src/cli/context.ts';
import { runTasks, toTaskError } from '../../../src/core/engine.ts';
import type { Reporter, RunEvent } from '../../../src/core/events.ts';
import type { TaskKind } from '../../../src/core/task.ts';

/** A kind with a bug: observe throws a plain TypeError, not a FluxstrapError. */
const buggy: TaskKind<Record<string, never>, undefined, undefined> = {
  kind: 'buggy',
  params: { parse: () => ({}) } as never,
  observe: () => Promise.reject(new TypeError("Cannot read properties of undefined (reading 'x')")),
  plan: () => [],
  apply: () => Promise.resolve(),
};

function sink(): { reporter: Reporter; events: RunEvent[] } {
  const events: RunEvent[] = [];
  return { events, reporter: { emit: (e) => void events.push(e), close: () => Promise.resolve() } };
}

function text(): { out: NodeJS.WritableStream; written: () => string } {
  let s = '';
  return { out: { write: (c: string) => ((s += c), true) } as unknown as NodeJS.WritableStream, written: () => s };
}

void describe('a bug inside a task (E_INTERNAL)', () => {
  void it('keeps its cause: the message, the hint that it is a bug to report, and the stack', () => {
    const e = toTaskError(new TypeError('boom'));
    assert.equal(e.code, 'E_INTERNAL');
    assert.equal(e.message, 'boom');
    assert.match(e.hint ?? '', /bug in fluxstrap.*FLUXSTRAP_DEBUG=1.*report it/);
    assert.match(e.stack ?? '', /^TypeError: boom\n\s+at /);
    assert.equal(toTaskError(new Error('x')).stack?.includes('context.test.ts'), true);
  });

  for (const debug of [false, true]) {
    void it(`reaches no view with its stack; FLUXSTRAP_DEBUG ${debug ? 'prints it after the view' : 'unset prints nothing'}`, async () => {
      const { reporter, events } = sink();
      const err = text();
      await runTasks({
        title: 't',
        tasks: [{ name: 'b', kind: buggy, params: {} }],
        ctx: undefined,
        reporter: withStacks(reporter, debug, err.out),
        check: false,
        vars: {},
      });
      const shown = JSON.stringify(events);
      assert.match(shown, /E_INTERNAL/);
      assert.match(shown, /bug in fluxstrap/);
      assert.doesNotMatch(shown, /"stack"/);
      if (debug) assert.match(err.written(), /^TypeError: Cannot read properties of undefined \(reading 'x'\)\n\s+at /);
      else assert.equal(err.written(), '');
    });
  }
});
