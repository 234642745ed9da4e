import fc from 'fast-check';
import { Comment, TreeMap, type Item, type Value } from '../../../src/sops/tree.ts';

/** Random documents for the property and differential tests: what sops' tree can hold. */

export const text = fc.string({ unit: 'grapheme', maxLength: 24 });
export const key = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).filter((k) => !k.endsWith('_unencrypted') && k !== 'sops' && k !== '<<');
// The yaml package reads `#` and `# ` alike, as sops reads a bare `#`; a comment of one space is
// the one text that does not survive (it comes back empty).
export const comment = fc
  .string({ unit: 'grapheme', maxLength: 20 })
  .filter((c) => !/[\r\n]/.test(c) && c !== ' ')
  .map((c) => new Comment(c));
export const scalar: fc.Arbitrary<Value> = fc.oneof(
  text,
  fc.constantFrom(
    '',
    ' lead',
    'trail ',
    'a: b',
    '#x',
    '- x',
    'yes',
    'null',
    '0777',
    '1_000',
    '2024-01-02',
    '"q"',
    "it's",
    'tab\there',
    'line\nbreak\n',
    '\n\nkeep\n\n',
    'ünïcödé ✓ 🔑',
  ),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.double(),
  fc.constantFrom(0, -0, 0.1, 1e21, 1e-7, 5e-324, Number.MAX_VALUE, Infinity, -Infinity, NaN),
  fc.boolean(),
  fc.constant(null),
);

export function documents(leaf: fc.Arbitrary<Value>): fc.Arbitrary<TreeMap> {
  return fc.letrec<{ value: Value; map: TreeMap; list: Value[] }>((tie) => ({
    value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('map'), tie('list')),
    map: fc.uniqueArray(fc.tuple(key, tie('value'), fc.option(comment, { freq: 4 })), { selector: ([k]) => k, minLength: 1, maxLength: 5 }).map(
      (entries) =>
        new TreeMap(
          entries.flatMap(([k, v, c]): Item[] =>
            c
              ? [
                  { key: c, value: null },
                  { key: k, value: v },
                ]
              : [{ key: k, value: v }],
          ),
        ),
    ),
    list: fc.array(tie('value'), { minLength: 1, maxLength: 4 }),
  })).map;
}
