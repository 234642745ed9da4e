import { FluxstrapError } from '../core/errors.ts';
import { TreeMap, type Value } from './tree.ts';

/**
 * sops' index syntax for one value of a document, `["stringData"]["password"]` or `["list"][0]`,
 * as `decrypt --extract`, `set` and `unset` take it; and the edits on a document tree.
 */

export type PathStep = string | number;

const STEP = /\[\s*("(?:[^"\\]|\\.)*"|\d+)\s*\]/y;

export function parseTreePath(text: string): PathStep[] {
  const steps: PathStep[] = [];
  let at = 0;
  while (at < text.length) {
    STEP.lastIndex = at;
    const m = STEP.exec(text);
    if (!m?.[1]) {
      throw new FluxstrapError('E_USAGE', `invalid path ${text} at column ${at + 1}: expected ["key"] or [index], e.g. '["stringData"]["password"]'`);
    }
    steps.push(m[1].startsWith('"') ? (JSON.parse(m[1]) as string) : Number(m[1]));
    at = STEP.lastIndex;
  }
  if (steps.length === 0) throw new FluxstrapError('E_USAGE', 'an empty path: give one like \'["stringData"]["password"]\'');
  if (steps[0] === 'sops') throw new FluxstrapError('E_USAGE', 'the sops metadata is not a value: fluxstrap keeps it itself');
  return steps;
}

export function formatTreePath(steps: readonly PathStep[]): string {
  return steps.map((s) => `[${typeof s === 'number' ? s : JSON.stringify(s)}]`).join('');
}

function notFound(steps: readonly PathStep[], depth: number): FluxstrapError {
  return new FluxstrapError('E_NOT_FOUND', `the document has no ${formatTreePath(steps.slice(0, depth + 1))}`);
}

function wrongType(steps: readonly PathStep[], depth: number, container: Value | undefined): FluxstrapError {
  const what = container instanceof TreeMap ? 'a map' : Array.isArray(container) ? 'a list' : 'a value';
  const want = typeof steps[depth] === 'number' ? 'a list' : 'a map';
  const at = depth === 0 ? 'the document' : formatTreePath(steps.slice(0, depth));
  return new FluxstrapError('E_PRECONDITION', `${at} is ${what}, not ${want}`);
}

/** The value at `steps`; E_NOT_FOUND when a step is missing. */
export function getAt(root: TreeMap, steps: readonly PathStep[]): Value {
  let cur: Value = root;
  for (const [depth, step] of steps.entries()) {
    if (typeof step === 'string' && cur instanceof TreeMap) {
      if (!cur.has(step)) throw notFound(steps, depth);
      cur = cur.get(step) ?? null;
    } else if (typeof step === 'number' && Array.isArray(cur)) {
      if (step >= cur.length) throw notFound(steps, depth);
      cur = cur[step] ?? null;
    } else {
      throw wrongType(steps, depth, cur);
    }
  }
  return cur;
}

function same(a: Value, b: Value): boolean {
  if (a instanceof TreeMap && b instanceof TreeMap)
    return a.items.length === b.items.length && a.items.every((i, n) => i.key === b.items[n]?.key && same(i.value, b.items[n]?.value ?? null));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, n) => same(v, b[n] ?? null));
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(b);
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && 'text' in a && 'text' in b)
    return a.constructor === b.constructor && a.text === b.text;
  return a === b;
}

/**
 * Put `value` at `steps`, creating missing maps on the way (a list index may be one past the end,
 * to append); returns false when the value is already there, so a repeated set changes nothing.
 */
export function setAt(root: TreeMap, steps: readonly PathStep[], value: Value): boolean {
  let cur: Value = root;
  for (const [depth, step] of steps.entries()) {
    const last = depth === steps.length - 1;
    if (typeof step === 'string' && cur instanceof TreeMap) {
      if (last) {
        if (cur.has(step) && same(cur.get(step) ?? null, value)) return false;
        cur.set(step, value);
        return true;
      }
      if (!cur.has(step)) cur.set(step, new TreeMap());
      cur = cur.get(step) ?? null;
    } else if (typeof step === 'number' && Array.isArray(cur)) {
      if (step > cur.length || (!last && step === cur.length)) throw notFound(steps, depth);
      if (last) {
        if (step < cur.length && same(cur[step] ?? null, value)) return false;
        cur[step] = value;
        return true;
      }
      cur = cur[step] ?? null;
    } else {
      throw wrongType(steps, depth, cur);
    }
  }
  return false;
}

/** Remove the value at `steps`; false when it is not there. */
export function unsetAt(root: TreeMap, steps: readonly PathStep[]): boolean {
  const parentSteps = steps.slice(0, -1);
  const last = steps.at(-1);
  let parent: Value;
  try {
    parent = getAt(root, parentSteps);
  } catch (e) {
    if (e instanceof FluxstrapError && e.code === 'E_NOT_FOUND') return false;
    throw e;
  }
  if (typeof last === 'string' && parent instanceof TreeMap) {
    if (!parent.has(last)) return false;
    parent.delete(last);
    return true;
  }
  if (typeof last === 'number' && Array.isArray(parent)) {
    if (last >= parent.length) return false;
    parent.splice(last, 1);
    return true;
  }
  throw wrongType(steps, steps.length - 1, parent);
}
