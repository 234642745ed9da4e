import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { compilePlaybook } from '../../../src/playbook/loader.ts';
import { parseEncrypted, parsePlain } from '../../../src/sops/engine.ts';
import type { Format } from '../../../src/sops/stores.ts';
import { testRegistry } from '../playbook/kinds.ts';

/**
 * Whatever bytes a repository holds, reading them ends in a value or a FluxstrapError (a one-line
 * error naming the file), never in another exception (an "internal error … this is a bug"), and
 * quickly: each run is bounded in time.
 */

const RUNS = { numRuns: 200, interruptAfterTimeLimit: 30_000 };
// Generous: the bound is there to catch hangs and blow-ups, on a machine shared with other jobs.
const MAX_MS_PER_INPUT = 10_000;

/** Text made of the characters that steer the parsers, so runs reach deep and odd structures. */
const syntax = (chars: string[]): fc.Arbitrary<string> =>
  fc.array(fc.oneof(fc.constantFrom(...chars), fc.string({ maxLength: 6 }), deep(chars)), { maxLength: 200 }).map((a) => a.join(''));

/** One of the characters repeated up to 10k times: nesting far past the limits. */
const deep = (chars: string[]): fc.Arbitrary<string> => fc.tuple(fc.constantFrom(...chars), fc.integer({ min: 1, max: 10_000 })).map(([c, n]) => c.repeat(n));

const YAML_CHARS = [
  '\n',
  '  ',
  '- ',
  ': ',
  'a',
  'b',
  '&a ',
  '*a',
  '&b ',
  '*b',
  '[',
  ']',
  '{',
  '}',
  ',',
  '"',
  "'",
  '#',
  '---\n',
  '? ',
  '!!str ',
  '|',
  '>',
  'sops:',
  '<<: ',
  'kind: Secret\n',
  'kind: List\n',
  'items:\n',
];
const JSON_CHARS = ['{', '}', '[', ']', ',', ':', '"a"', '"sops"', '1', '-1.5e3', 'true', 'null', ' ', '\n', '"\\u0000"', '"\\'];
const DOTENV_CHARS = ['\n', '=', 'A', 'sops_', '#', ' ', '"', "'", '\\n', 'export '];
const INI_CHARS = ['\n', '[', ']', 'sops', '=', 'a', ';', '#', ' ', '"'];

function onlyFluxstrapErrors(run: () => unknown): void {
  const started = Date.now();
  try {
    run();
  } catch (e) {
    if (!(e instanceof FluxstrapError)) throw e;
    assert.ok(e.location?.file === 'f', 'the error names the file');
    assert.doesNotMatch(e.message, /\n/, 'one line');
  }
  assert.ok(Date.now() - started < MAX_MS_PER_INPUT, `took ${Date.now() - started} ms`);
}

void describe('stores: arbitrary input ends in a value or a FluxstrapError', () => {
  const cases: [Format, string[]][] = [
    ['yaml', YAML_CHARS],
    ['json', JSON_CHARS],
    ['dotenv', DOTENV_CHARS],
    ['ini', INI_CHARS],
  ];
  for (const [format, chars] of cases) {
    void it(`${format}, plain and encrypted`, () => {
      fc.assert(
        fc.property(fc.oneof(syntax(chars), fc.string({ maxLength: 300 })), (text) => {
          const bytes = Buffer.from(text);
          onlyFluxstrapErrors(() => parsePlain(bytes, format, 'f'));
          onlyFluxstrapErrors(() => parseEncrypted(bytes, format, 'f'));
        }),
        RUNS,
      );
    });
  }
});

void describe('playbook loader: arbitrary input ends in a playbook or a FluxstrapError', () => {
  const PLAYBOOK_CHARS = [
    ...YAML_CHARS,
    'name: ',
    'tasks:\n',
    'vars:\n',
    'when: ',
    '{{ ',
    ' }}',
    'v',
    'not ',
    ' and ',
    '(',
    ')',
    '| default(',
    'namespace: {}\n',
    'tags: ',
  ];
  void it('compilePlaybook', async () => {
    const registry = testRegistry().registry;
    await fc.assert(
      fc.asyncProperty(fc.oneof(syntax(PLAYBOOK_CHARS), fc.string({ maxLength: 300 })), async (text) => {
        const started = Date.now();
        try {
          await compilePlaybook(text, 'f', { registry, builtins: { cluster: { name: 'c', path: 'p' }, check_mode: false } });
        } catch (e) {
          if (!(e instanceof FluxstrapError)) throw e;
          assert.doesNotMatch(e.message, /\n/, 'one line');
        }
        assert.ok(Date.now() - started < MAX_MS_PER_INPUT, `took ${Date.now() - started} ms`);
      }),
      RUNS,
    );
  });
});
