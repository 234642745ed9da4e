import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../helpers/cli.ts';
import { generatedDir } from '../unit/sops/helpers.ts';

/**
 * The leak guard (test/helpers/canary.ts) can fail: a test file that plants a leak, run as its own
 * `node --test` process, fails naming the leak; the same file without the leak passes.
 */

const keyText = readFileSync(join(generatedDir, 'key-a.txt'), 'utf8');
const KEY = /^AGE-SECRET-KEY-1\S+$/m.exec(keyText)?.[0] ?? '';
const RECIPIENT = /public key: (age1\S+)/.exec(keyText)?.[1] ?? '';

function runPlanted(leak: string): { code: number | null; out: string } {
  // Without the parent's test-runner context, or node:test treats the child as a nested run and skips it.
  const { NODE_TEST_CONTEXT: _, ...parentEnv } = process.env;
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', join(repoRoot, 'test/fixtures/leak-guard/plants-a-leak.ts')], {
    encoding: 'utf8',
    env: { ...parentEnv, LEAK: leak, LEAK_KEY: KEY, LEAK_RECIPIENT: RECIPIENT, XDG_CONFIG_HOME: '/nonexistent', SOPS_AGE_KEY_FILE: '', SOPS_AGE_KEY: '' },
    timeout: 60_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

void describe('the leak guard', () => {
  assert.ok(KEY !== '' && RECIPIENT !== '', 'test vectors hold an age key');

  void it('passes a file whose secrets stay where the test put them', () => {
    const r = runPlanted('none');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^# pass 1$/m, 'the planted file ran');
    assert.match(r.out, /^# fail 0$/m);
  });

  for (const [leak, what] of [
    ['stdout', /canary canary-password-… in stdout of fluxstrap decrypt/],
    ['stderr', /canary canary-password-… in stderr of fluxstrap encrypt/],
    ['file-canary', /canary canary-password-… in file .*notes\.txt/],
    ['file-key', /an age private key in file .*values\.yaml/],
    ['file-piece', /a piece of a registered age private key in file .*notes\.txt/],
    ['file-pgp', /an armored OpenPGP private key in file .*values\.yaml/],
  ] as const) {
    void it(`fails a file that leaks: ${leak}`, () => {
      const r = runPlanted(leak);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /^# pass 1$/m, 'the planted test itself passed: the guard failed the file');
      assert.match(r.out, /secrets leaked/);
      assert.match(r.out, what);
      // The report names the leak, never the secret itself.
      assert.ok(!r.out.includes(KEY), 'the report does not print the key');
      assert.doesNotMatch(r.out, /canary-password-[0-9a-f]{18}/);
    });
  }
});
