// Not JS RegExp: sops and kustomize patterns are Go regexp (RE2): JS backtracks (`^(a+)+$` hangs) and lacks Go syntax (`[[:alpha:]]`, `\pL`, `\Q…\E`).
import { createRequire } from 'node:module';
import type * as Re2js from 're2js';
import { configError, type Location } from './errors.ts';

/**
 * Patterns that users and repositories write for Go programs (sops' `path_regex`,
 * `encrypted_regex`…, kustomize patch targets), compiled as Go's `regexp.Compile` compiles them,
 * by re2js (a port of Go's regexp): matching takes linear time, whatever the pattern. re2js is
 * loaded on the first pattern, so runs without one (a plain `encrypt`/`decrypt`) do not pay for it.
 */

export interface Re2 {
  /** Whether the pattern matches anywhere in `s` (Go's `MatchString`). */
  test(s: string): boolean;
}

let engine: typeof Re2js | undefined;
const re2js = (): typeof Re2js => (engine ??= createRequire(import.meta.url)('re2js') as typeof Re2js);

/** Patterns come from files: messages show them cut short. */
const cut = (s: string): string => (s.length > 60 ? `${s.slice(0, 57)}...` : s);

/**
 * A compiled pattern that remembers its answers for short inputs: sops tests every key of every
 * file against the same few patterns, and keys repeat (`data`, `metadata`, `name`…), so most
 * tests become a map lookup instead of a run of the automaton.
 */
class Compiled implements Re2 {
  readonly #re: Re2js.RE2JS;
  readonly #seen = new Map<string, boolean>();

  constructor(re: Re2js.RE2JS) {
    this.#re = re;
  }

  test(s: string): boolean {
    let hit = this.#seen.get(s);
    if (hit === undefined) {
      hit = this.#re.test(s);
      if (s.length <= 128) {
        if (this.#seen.size >= 1000) this.#seen.clear();
        this.#seen.set(s, hit);
      }
    }
    return hit;
  }
}

// Compiled patterns or RE2's reason for refusing them. Sources come from files, so the cache is
// capped: a repository of many files with distinct patterns must not grow it without bound.
const MAX_CACHED = 200;
const MAX_LENGTH = 65_536;
const cache = new Map<string, Compiled | string>();

function compiled(source: string): Compiled | string {
  let entry = cache.get(source);
  if (entry !== undefined) return entry;
  // Compiling is linear too, but a file could hold a pattern of megabytes: seconds of work.
  if (source.length > MAX_LENGTH) return `longer than ${MAX_LENGTH} characters`;
  const { RE2JS, RE2JSException, RE2JSSyntaxException } = re2js();
  try {
    entry = new Compiled(RE2JS.compile(source));
  } catch (e) {
    if (e instanceof RE2JSSyntaxException) entry = e.input ? `${e.getDescription()}: \`${cut(e.input)}\`` : e.getDescription();
    else if (e instanceof RE2JSException) entry = e.message;
    else throw e;
  }
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(source, entry);
  return entry;
}

/** Why RE2 refuses `source`, or undefined when it compiles. */
export function re2Error(source: string): string | undefined {
  const entry = compiled(source);
  return typeof entry === 'string' ? entry : undefined;
}

const RE2_HINT = 'patterns use Go regexp (RE2) syntax: no lookarounds or backreferences; see https://github.com/google/re2/wiki/Syntax';

/**
 * `source` compiled with RE2 semantics. A pattern RE2 refuses is an E_CONFIG error at `where`,
 * `what` naming the setting (`encrypted_regex`, `--encrypted-regex`…): never "matches nothing".
 */
export function re2(source: string, what: string, where: Location): Re2 {
  const entry = compiled(source);
  if (typeof entry === 'string') throw configError(`${what} ${JSON.stringify(cut(source))} is not a valid regular expression: ${entry}`, where, RE2_HINT);
  return entry;
}
