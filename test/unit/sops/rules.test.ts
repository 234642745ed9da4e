import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { isFluxstrapError } from '../../../src/core/errors.ts';
import { parseConfig } from '../../../src/sops/config.ts';
import { newStanza } from '../../../src/sops/datakey.ts';
import { parseEncrypted } from '../../../src/sops/engine.ts';
import type { Metadata } from '../../../src/sops/metadata.ts';
import { RULE_NAMES, shouldEncrypt, type Rules, type SelectionRule } from '../../../src/sops/rules.ts';
import { emitEncrypted, type Format } from '../../../src/sops/stores.ts';
import { Comment, TreeMap } from '../../../src/sops/tree.ts';
import { encryptTree } from '../../../src/sops/walk.ts';

/**
 * Selection rules with sops' RE2 semantics, wherever a pattern comes from: `.sops.yaml`, a SOPS
 * file's own metadata, the walk over values. Go-only syntax selects what sops selects (it used to
 * select nothing, so `encrypted_regex` wrote values in clear) and a refused pattern is an error.
 */

const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';

/** Which top-level keys of `{key: 'v', …}` a walk encrypts under `rules`. */
function encryptedKeys(rules: Rules, keys: string[]): string[] {
  const doc = new TreeMap(keys.map((key) => ({ key, value: 'v' })));
  const { branches } = encryptTree([doc], randomBytes(32), rules);
  return (branches[0]?.items ?? []).flatMap((i) => (typeof i.key === 'string' && typeof i.value === 'string' && i.value.startsWith('ENC[') ? [i.key] : []));
}

void describe('selection rules select with RE2', () => {
  const keys = ['password', 'Password', 'pass1', 'apiToken', 'μυστικό', 'user', 'a.b'];
  const table: [Rules, string[]][] = [
    [{ encryptedRegex: '^[[:lower:]]+$' }, ['password', 'user']],
    [{ encryptedRegex: '^[[:alpha:]]+[[:digit:]]$' }, ['pass1']],
    [{ encryptedRegex: '^\\pL+$' }, ['password', 'Password', 'apiToken', 'μυστικό', 'user']],
    [{ encryptedRegex: '^\\p{Greek}' }, ['μυστικό']],
    [{ encryptedRegex: '^\\Qa.b\\E$' }, ['a.b']],
    [{ encryptedRegex: '(?i)^pass' }, ['password', 'Password', 'pass1']],
    [{ encryptedRegex: '^(?P<k>password|user)$' }, ['password', 'user']],
    [{ unencryptedRegex: '^[[:upper:]]|\\d' }, ['password', 'apiToken', 'μυστικό', 'user', 'a.b']],
  ];
  for (const [rules, want] of table) {
    void it(JSON.stringify(rules), () => assert.deepEqual(encryptedKeys(rules, keys), want));
  }

  void it('comment rules too', () => {
    const comments = [['  ENCRYPT THIS ']];
    assert.equal(shouldEncrypt({ encryptedCommentRegex: '(?i)^\\s*encrypt\\b' }, ['a'], comments, false), true);
    assert.equal(shouldEncrypt({ encryptedCommentRegex: '^[[:space:]]+sops:enc' }, ['a'], comments, false), false);
    assert.equal(shouldEncrypt({ unencryptedCommentRegex: '[[:upper:]]{7}' }, ['a'], comments, false), false);
  });

  void it('a backtracking pattern against a key of 34 a and a ! returns', () => {
    const key = `${'a'.repeat(34)}!`;
    assert.deepEqual(encryptedKeys({ encryptedRegex: '^(a+)+$' }, [key, 'aaaa']), ['aaaa']);
    assert.deepEqual(encryptedKeys({ unencryptedRegex: '^(a|aa)+$' }, [key, 'aaaa']), [key]);
  });

  void it('refuses, as sops does, to write a comment whose ciphertext unencrypted_comment_regex matches (it would not decrypt)', () => {
    const doc = new TreeMap([
      { key: new Comment(' hello'), value: null },
      { key: 'a', value: 'x' },
    ]);
    assert.throws(
      () => encryptTree([doc], randomBytes(32), { unencryptedCommentRegex: '^ENC\\[AES256_GCM' }, { file: 's.yaml' }),
      (e) =>
        isFluxstrapError(e) &&
        e.code === 'E_CONFIG' &&
        e.location?.file === 's.yaml' &&
        /an encrypted comment matches unencrypted_comment_regex/.test(e.message),
    );
    assert.equal(encryptTree([doc], randomBytes(32), { unencryptedCommentRegex: '^\\s*hello$' }).branches[0]?.items[0]?.key instanceof Comment, true);
  });

  void it('a pattern that reaches the walk unchecked is an error, never "matches nothing"', () => {
    assert.throws(
      () => encryptedKeys({ encryptedRegex: '[[:alpha:]' }, ['password']),
      (e) => isFluxstrapError(e) && e.code === 'E_CONFIG',
    );
  });
});

void describe('.sops.yaml patterns', () => {
  for (const name of Object.values(RULE_NAMES).filter((n) => n.endsWith('_regex'))) {
    void it(`a ${name} RE2 refuses is an E_CONFIG error at its line`, () => {
      const text = `creation_rules:\n  - path_regex: \\.yaml$\n    age: ${RECIPIENT}\n    ${name}: '(?=secret)'\n`;
      assert.throws(
        () => parseConfig(text, 'repo/.sops.yaml'),
        (e) =>
          isFluxstrapError(e) &&
          e.code === 'E_CONFIG' &&
          e.location?.file === 'repo/.sops.yaml' &&
          e.location.line === 4 &&
          e.message.startsWith(`${name} "(?=secret)" is not a valid regular expression`),
      );
    });
  }

  void it('a path_regex RE2 refuses, in a later rule, at its line', () => {
    const text = `creation_rules:\n  - path_regex: ^ok/\n    age: ${RECIPIENT}\n  - age: ${RECIPIENT}\n    path_regex: '[[:alpha:]'\n`;
    assert.throws(
      () => parseConfig(text, '.sops.yaml'),
      (e) => isFluxstrapError(e) && e.location?.line === 5 && /^path_regex "\[\[:alpha:\]"/.test(e.message),
    );
  });

  void it('Go syntax that JavaScript refuses is read, not refused', () => {
    const text = `creation_rules:\n  - path_regex: '^\\Qclusters/prod\\E/[[:alnum:]_-]+\\.ya?ml$'\n    encrypted_regex: '(?i)^(data|stringdata)$'\n    age: ${RECIPIENT}\n`;
    const [rule] = parseConfig(text, '.sops.yaml').creationRules;
    assert.equal(rule?.rules.encryptedRegex, '(?i)^(data|stringdata)$');
  });
});

void describe("patterns in a SOPS file's own metadata", () => {
  const md = (rules: Rules): Metadata => ({
    lastModified: '2026-01-01T00:00:00Z',
    mac: 'x',
    version: '3.13.2',
    rules,
    shamirThreshold: 0,
    keyGroups: [[newStanza('age', RECIPIENT)]],
  });
  const doc = new TreeMap([{ key: 'password', value: 'ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]' }]);
  const formats: [Format, string][] = [
    ['yaml', 'y.yaml'],
    ['json', 'j.json'],
    ['dotenv', 'd.env'],
    ['ini', 'i.ini'],
    ['binary', 'b.bin'],
  ];
  const rule = (k: SelectionRule): Rules => ({ [k]: 'PLACEHOLDER' });

  for (const [format, file] of formats) {
    for (const k of ['encryptedRegex', 'unencryptedCommentRegex'] as const) {
      void it(`${format}: a ${RULE_NAMES[k]} RE2 refuses is an E_CONFIG error at the line that sets it`, () => {
        const branches =
          format === 'binary' ? [new TreeMap([{ key: 'data', value: 'x' }])] : format === 'ini' ? [new TreeMap([{ key: 'section', value: doc }])] : [doc];
        const text = emitEncrypted(format, branches, md(rule(k)));
        const line = text.split('\n').findIndex((l) => l.includes('PLACEHOLDER')) + 1;
        assert.ok(line > 0);
        const bytes = Buffer.from(text.replace('PLACEHOLDER', '(?=x)'));
        assert.throws(
          () => parseEncrypted(bytes, format, file),
          (e) =>
            isFluxstrapError(e) &&
            e.code === 'E_CONFIG' &&
            e.location?.file === file &&
            e.location.line === line &&
            /invalid sops metadata: .* is not a valid regular expression: invalid or unsupported Perl syntax/.test(e.message),
        );
      });
    }
  }

  void it('a valid Go pattern in metadata is kept as written', () => {
    const text = emitEncrypted('yaml', [doc], md({ encryptedRegex: '^[[:alpha:]]+\\pL*$' }));
    assert.equal(parseEncrypted(Buffer.from(text), 'yaml', 'y.yaml').metadata.rules.encryptedRegex, '^[[:alpha:]]+\\pL*$');
  });
});
