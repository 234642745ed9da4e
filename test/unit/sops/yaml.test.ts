import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Comment, FormatError, Timestamp, TreeMap } from '../../../src/sops/tree.ts';
import { emitYaml, parseYaml, resolvePlain } from '../../../src/sops/yaml.ts';

/** The YAML store's yaml.v3 behaviours, each checked against what sops 3.13 wrote for the same input. */

void describe('plain scalars resolve as yaml.v3 resolves them', () => {
  const cases: [string, unknown][] = [
    ['0777', 511n],
    ['1_000', 1000n],
    ['0x1F', 31n],
    ['0o17', 15n],
    ['+12', 12n],
    ['1e3', 1000],
    ['.5', 0.5],
    ['.inf', Infinity],
    ['-.Inf', -Infinity],
    ['yes', 'yes'],
    ['on', 'on'],
    ['True', true],
    ['FALSE', false],
    ['~', null],
    ['Null', null],
    ['2024-01-02', new Timestamp('2024-01-02T00:00:00Z')],
    ['2001-12-14t21:59:43.10-05:00', new Timestamp('2001-12-14T21:59:43.1-05:00')],
    ['12abc', '12abc'],
    ['1:20', '1:20'],
  ];
  for (const [input, expected] of cases) void it(`${input}`, () => assert.deepStrictEqual(resolvePlain(input), expected));
});

void describe('strings are written as yaml.v3 writes them', () => {
  const cases: [string, string][] = [
    ['n', '"n"'],
    ['yes', '"yes"'],
    ['123', '"123"'],
    ['', '""'],
    ['foo: bar', "'foo: bar'"],
    [' lead', "' lead'"],
    ['tab\there', '"tab\\there"'],
    ['a:b', 'a:b'],
    ['a #b', "'a #b'"],
    ['2024-01-02', '"2024-01-02"'],
    ["it's", "it's"],
    ['line1\nline2 \nline3', '"line1\\nline2 \\nline3"'],
    ['- x', "'- x'"],
    ['ünïcödé ✓', 'ünïcödé ✓'],
  ];
  for (const [value, written] of cases) {
    void it(JSON.stringify(value), () => assert.equal(emitYaml([new TreeMap([{ key: 'k', value }])]), `k: ${written}\n`));
  }

  void it('multi-line strings become literal blocks with the right chomping', () => {
    const m = new TreeMap([
      { key: 'keep', value: 'a\n\n' },
      { key: 'clip', value: 'a\nb\n' },
      { key: 'strip', value: 'a' + '\n' + 'b' },
    ]);
    assert.equal(emitYaml([m]), 'keep: |+\n    a\n\nclip: |\n    a\n    b\nstrip: |-\n    a\n    b\n');
  });

  void it('the merge key stays a key, written as !!merge <<', () => {
    const [doc] = parseYaml('base: &b\n    k: v\nm:\n    <<: *b\n    x: 1\n');
    assert.ok(doc);
    assert.equal(emitYaml([doc]), 'base:\n    k: v\nm:\n    !!merge <<:\n        k: v\n    x: 1\n');
    assert.deepStrictEqual(parseYaml(emitYaml([doc])), [doc]);
  });
});

void describe('names of Object members are plain data', () => {
  const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
  for (const name of names) void it(`${name} resolves to the string`, () => assert.equal(resolvePlain(name), name));

  void it('a document with such keys and values reads, and is written back as it was (plain, as yaml.v3 writes it)', () => {
    const text = '__proto__:\n    constructor: toString\nconstructor:\n    prototype: __proto__\nlist:\n    - valueOf\n';
    const [doc] = parseYaml(text);
    assert.ok(doc);
    assert.deepEqual(
      doc.items.map((i) => i.key),
      ['__proto__', 'constructor', 'list'],
    );
    assert.equal(emitYaml([doc]), text);
    assert.equal(({} as Record<string, unknown>).prototype, undefined);
  });
});

void describe('comments', () => {
  void it('a comment after a nested map belongs to the level of its indentation, blank lines or not', () => {
    const [doc] = parseYaml('a:\n    b: 1\n    # foot of a\n\n# head of c\nc: 2\nd:\n    - x\n  # less indented\n\ne: 3\n');
    assert.ok(doc);
    const a = doc.get('a');
    assert.ok(a instanceof TreeMap);
    assert.deepEqual(
      a.items.map((i) => (i.key instanceof Comment ? `#${i.key.text}` : i.key)),
      ['b', '# foot of a'],
    );
    assert.deepEqual(
      doc.items.map((i) => (i.key instanceof Comment ? `#${i.key.text}` : i.key)),
      ['a', '# head of c', 'c', 'd', '# less indented', 'e'],
    );
  });

  void it('an inline comment stays inline; the next line is not inline', () => {
    const [doc] = parseYaml('a: 1 # inline\n# own line\nb: 2\n');
    assert.ok(doc);
    assert.deepEqual(
      doc.items.map((i) => (i.key instanceof Comment ? [i.key.text, i.key.inline] : i.key)),
      ['a', [' inline', true], [' own line', false], 'b'],
    );
    assert.equal(emitYaml([doc]), 'a: 1 # inline\n# own line\nb: 2\n');
  });

  void it('a bare # is an empty comment, as sops reads it: left in clear and written back as #', () => {
    const [doc] = parseYaml('#\n# text\na: 1 #\n');
    assert.ok(doc);
    assert.deepEqual(
      doc.items.map((i) => (i.key instanceof Comment ? [i.key.text, i.key.inline] : i.key)),
      [['', false], [' text', false], 'a', ['', true]],
    );
    assert.equal(emitYaml([doc]), '#\n# text\na: 1 #\n');
  });

  void it('CRLF input reads like LF input', () => {
    assert.deepStrictEqual(parseYaml('a: |\r\n    x\r\n# c\r\nb: 1\r\n'), parseYaml('a: |\n    x\n# c\nb: 1\n'));
  });
});

void describe('what sops refuses', () => {
  void it('a YAML syntax error names its line', () => {
    assert.throws(
      () => parseYaml('a: 1\nb: "open\nc: 3\n'),
      (e: unknown) => e instanceof FormatError && e.line > 1,
    );
  });

  void it('non-string keys, top-level lists, integers beyond int64', () => {
    assert.throws(() => parseYaml('1: a\n'), /only string keys/);
    assert.throws(() => parseYaml('- a\n'), /must be a map/);
    assert.throws(() => parseYaml('a: 18446744073709551615\n'), /int64/);
    assert.throws(() => parseYaml('a: 1\na: 2\n'), /unique/);
  });
});
