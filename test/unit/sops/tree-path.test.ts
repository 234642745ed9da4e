import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { formatTreePath, getAt, parseTreePath, setAt, unsetAt } from '../../../src/sops/tree-path.ts';
import { TreeMap } from '../../../src/sops/tree.ts';
import { emitYaml, parseYaml } from '../../../src/sops/yaml.ts';

const doc = (): TreeMap => parseYaml('a:\n    b: 1\nlist:\n    - x\n    - w\n')[0] ?? new TreeMap();
const fails = (fn: () => unknown, code: string, message: RegExp): void => {
  assert.throws(fn, (e: unknown) => e instanceof FluxstrapError && e.code === code && message.test(e.message));
};

void describe('tree paths in sops syntax', () => {
  void it('parses keys (JSON strings, escapes included) and indexes, and prints them back', () => {
    assert.deepEqual(parseTreePath('["stringData"]["pass\\"word"][0][ "x" ]'), ['stringData', 'pass"word', 0, 'x']);
    assert.equal(formatTreePath(['stringData', 'pass"word', 0]), '["stringData"]["pass\\"word"][0]');
  });

  void it('refuses what is not a path, naming the column; and the sops metadata', () => {
    fails(() => parseTreePath('["a"].b'), 'E_USAGE', /at column 6/);
    fails(() => parseTreePath("['a']"), 'E_USAGE', /at column 1/);
    fails(() => parseTreePath(''), 'E_USAGE', /empty path/);
    fails(() => parseTreePath('["sops"]["mac"]'), 'E_USAGE', /metadata/);
  });

  void it('gets values, and says which step is missing or of the wrong kind', () => {
    assert.equal(getAt(doc(), ['a', 'b']), 1n);
    assert.equal(getAt(doc(), ['list', 1]), 'w');
    fails(() => getAt(doc(), ['a', 'c']), 'E_NOT_FOUND', /no \["a"\]\["c"\]$/);
    fails(() => getAt(doc(), ['list', 'x']), 'E_PRECONDITION', /\["list"\] is a list, not a map/);
  });

  void it('sets in place, creates missing maps, appends one past a list, and reports no change for the same value', () => {
    const d = doc();
    assert.equal(setAt(d, ['a', 'b'], 1n), false);
    assert.equal(setAt(d, ['a', 'b'], 2n), true);
    assert.equal(setAt(d, ['new', 'deep'], 'v'), true);
    assert.equal(setAt(d, ['list', 2], 'z'), true);
    fails(() => setAt(d, ['list', 5], 'w'), 'E_NOT_FOUND', /\["list"\]\[5\]/);
    assert.equal(emitYaml([d]), 'a:\n    b: 2\nlist:\n    - x\n    - w\n    - z\nnew:\n    deep: v\n');
  });

  void it('__proto__ and constructor are keys like any other: set, get and unset them, nothing else changes', () => {
    const d = doc();
    fails(() => getAt(d, parseTreePath('["__proto__"]')), 'E_NOT_FOUND', /no \["__proto__"\]$/);
    fails(() => getAt(d, parseTreePath('["constructor"]["prototype"]')), 'E_NOT_FOUND', /no \["constructor"\]$/);
    assert.equal(unsetAt(d, parseTreePath('["__proto__"]')), false);
    assert.equal(setAt(d, parseTreePath('["__proto__"]["polluted"]'), 'v'), true);
    assert.equal(setAt(d, parseTreePath('["constructor"]["prototype"]'), 'w'), true);
    assert.equal(getAt(d, ['__proto__', 'polluted']), 'v');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(emitYaml([d]), 'a:\n    b: 1\nlist:\n    - x\n    - w\n__proto__:\n    polluted: v\nconstructor:\n    prototype: w\n');
    assert.equal(unsetAt(d, ['__proto__']), true);
    assert.equal(unsetAt(d, ['constructor', 'prototype']), true);
    assert.equal(emitYaml([d]), 'a:\n    b: 1\nlist:\n    - x\n    - w\nconstructor: {}\n');
  });

  void it('unsets map entries and list elements; a missing one is no change', () => {
    const d = doc();
    assert.equal(unsetAt(d, ['list', 0]), true);
    assert.equal(unsetAt(d, ['a', 'b']), true);
    assert.equal(unsetAt(d, ['a', 'b']), false);
    assert.equal(unsetAt(d, ['nope', 'x']), false);
    assert.equal(emitYaml([d]), 'a: {}\nlist:\n    - w\n');
  });
});
