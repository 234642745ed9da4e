import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../helpers/cli.ts';
import { isFluxstrapError } from '../../../src/core/errors.ts';
import { re2, re2Error } from '../../../src/core/re2.ts';

/**
 * Patterns as Go's regexp reads them (sops and kustomize are Go programs): Go-only syntax
 * matches what it matches in Go, what Go refuses is refused with a location, and matching is
 * linear however the pattern is written.
 */

const where = { file: '.sops.yaml', line: 3 };
const matches = (pattern: string, s: string): boolean => re2(pattern, 'encrypted_regex', where).test(s);

void describe('re2: Go regexp syntax', () => {
  // [pattern, inputs it matches, inputs it does not]: each a spelling JavaScript reads otherwise or refuses.
  const table: [string, string[], string[]][] = [
    ['^[[:alpha:]]+$', ['password', 'abc'], ['pass1', 'é']],
    ['^[[:^digit:]]+$', ['abc'], ['a1']],
    ['^[[:upper:]][[:lower:]]+$', ['Password'], ['password']],
    ['^\\pL+$', ['héllo', 'Ωmega', '名前'], ['a1', 'a_b']],
    ['^\\p{Greek}+$', ['αβγ'], ['abc']],
    ['^\\PL+$', ['123'], ['a1']],
    ['^\\Qa.b*c\\E$', ['a.b*c'], ['axbbc', 'a.bc']],
    ['(?i)^pass', ['PASSWORD', 'Passphrase'], ['xpass']],
    ['(?i)k', ['\u212a'], ['x']],
    ['^(?P<key>data|stringData)$', ['data', 'stringData'], ['metadata', 'dataX']],
    ['^(?<key>data)$', ['data'], ['datum']],
    ['\\Apass\\z', ['pass'], ['pass\n', 'xpass']],
    // Go's `$` without (?m) is the end of the text only (Perl's and Python's also match before a final newline).
    ['^pass$', ['pass'], ['pass\n']],
    ['(?m)^b$', ['a\nb\nc'], ['abc']],
    ['(?s)a.b', ['a\nb'], ['ab']],
    ['a.b', ['axb'], ['a\nb']],
    ['^\\x{41}\\x42$', ['AB'], ['ab']],
    ['^(password|token|key)$', ['token'], ['tokens', 'passwordtoken']],
    ['secret', ['my_secret_value'], ['SECRET']],
    ['^.$', ['😀'], ['ab']],
    ['^[\\d-z]+$', ['1-z'], ['a']],
    ['\\bpass\\b', ['a pass b'], ['password']],
  ];
  for (const [pattern, yes, no] of table) {
    void it(`${pattern} matches as in Go`, () => {
      for (const s of yes) assert.equal(matches(pattern, s), true, `${pattern} should match ${JSON.stringify(s)}`);
      for (const s of no) assert.equal(matches(pattern, s), false, `${pattern} should not match ${JSON.stringify(s)}`);
    });
  }

  void it('returns the same compiled pattern for the same source', () => {
    assert.equal(re2('^(data|stringData)$', 'x', where), re2('^(data|stringData)$', 'y', {}));
  });
});

void describe('re2: what Go refuses', () => {
  const refused: [string, RegExp][] = [
    ['(?=pass)', /invalid or unsupported Perl syntax/],
    ['(?<=a)b', /invalid named capture/],
    ['(a)\\1', /invalid escape sequence: `\\1`/],
    ['[[:alpha:]', /missing closing \]/],
    ['(data', /missing closing \)/],
    ['[z-a]', /invalid character class range/],
    ['a**', /invalid nested repetition operator/],
    ['a{1001}', /invalid repeat count/],
    ['\\Z', /invalid escape sequence/],
    ['\\u0041', /invalid escape sequence/],
    ['(?P<n>a)(?P<n>b)', /duplicate capture group name/],
    ['[[:word:]', /missing closing \]/],
    ['\\p{Klingon}', /invalid character class range/],
  ];
  for (const [pattern, why] of refused) {
    void it(`${pattern} is an E_CONFIG error at the place it was read from`, () => {
      assert.match(re2Error(pattern) ?? '', why);
      assert.throws(
        () => re2(pattern, 'encrypted_regex', where),
        (e) =>
          isFluxstrapError(e) &&
          e.code === 'E_CONFIG' &&
          e.location?.file === '.sops.yaml' &&
          e.location.line === 3 &&
          e.message.startsWith(`encrypted_regex ${JSON.stringify(pattern)} is not a valid regular expression: `) &&
          why.test(e.message) &&
          /RE2/.test(e.hint ?? ''),
      );
    });
  }

  void it('names a flag when the pattern came from one, and cuts a long pattern short', () => {
    const long = `(${'x'.repeat(500)}`;
    assert.throws(
      () => re2(long, '--encrypted-regex', { field: '--encrypted-regex' }),
      (e) => isFluxstrapError(e) && e.location?.field === '--encrypted-regex' && e.message.startsWith('--encrypted-regex "(xxx') && e.message.length < 200,
    );
  });

  void it('refuses a pattern of more than 64 Ki characters, which would take seconds to compile', () => {
    assert.equal(re2Error(`^(${'a|'.repeat(40_000)}b)$`), 'longer than 65536 characters');
    assert.equal(re2Error(`^(${'a|'.repeat(30_000)}b)$`), undefined);
  });

  void it('accepts what Go accepts', () => {
    for (const p of ['', 'a{1000}', '\\_\\-\\ \\/\\#', '[[:word:]]', '\\p{^Greek}', '(?i)(?s)(?m)(?U)a', '(?P<1a>x)', '\\012\\0'])
      assert.equal(re2Error(p), undefined, p);
  });
});

void describe('re2: linear time', () => {
  void it('^(a+)+$ against 10,000 a and a ! returns (a backtracking engine would not)', () => {
    const input = `${'a'.repeat(10_000)}!`;
    assert.equal(matches('^(a+)+$', input), false);
    assert.equal(matches('^(a+)+$', 'a'.repeat(10_000)), true);
  });

  void it('other exponential shapes return too', () => {
    assert.equal(matches('^(a|a)*$', `${'a'.repeat(5_000)}b`), false);
    assert.equal(matches('^(a|aa)+$', `${'a'.repeat(5_000)}b`), false);
    assert.equal(matches('^(.*a){20}$', 'a'.repeat(5_000) + 'b'), false);
  });
});

void describe('no pattern is built at run time with JavaScript RegExp', () => {
  void it('src/ never calls the RegExp constructor: patterns from files and flags go through re2', () => {
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
      );
    const all = files(join(repoRoot, 'src'));
    assert.ok(all.length > 50);
    const offenders = all.filter((f) => /\bRegExp\s*\(/.test(readFileSync(f, 'utf8').replace(/^\s*(\/\/|\*).*$/gm, ''))).map((f) => relative(repoRoot, f));
    assert.deepEqual(offenders, []);
  });
});
