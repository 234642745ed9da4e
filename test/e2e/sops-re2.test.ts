import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { findSops, generatedDir } from '../unit/sops/helpers.ts';

/**
 * sops evaluates its patterns with Go's regexp (RE2). Files encrypted by fluxstrap and by the real
 * sops under rules written in Go-only syntax encrypt the same values; and patterns that make a
 * backtracking engine run for hours (from `.sops.yaml` or from a file's own metadata) take no time.
 */

const keyFile = join(generatedDir, 'key-a.txt');
const recipient = /public key: (age1\S+)/.exec(readFileSync(keyFile, 'utf8'))?.[1] ?? '';
// A backtracking engine takes minutes on 30 characters here (doubling with each one); RE2 takes none.
const HANG_MS = 60_000;

let dir: string;
void before(async () => {
  dir = await tempDir('sops-re2');
});

function ours(args: string[], cwd: string): CliResult {
  return runCli(args, { cwd, timeout: HANG_MS, env: { XDG_CONFIG_HOME: join(dir, 'none'), SOPS_AGE_KEY_FILE: keyFile, SOPS_AGE_KEY: '' } });
}

/** An encrypted file with its ciphertexts masked and its metadata cut: which leaves and comments are encrypted, in sops' layout. */
const layout = (text: string): string => text.replace(/ENC\[[^\]]*\]/g, 'ENC').replace(/^sops:[\s\S]*$/m, 'sops:');

const PLAIN = `# top comment
password: p1
Password: p2
pass1: p3
apiToken: p4
μυστικό: p5
user: p6
a.b: p7
ABCDE: p8
nested:
    # SOPS: enc
    lower: p9
    UPPER: p10
    # plain
    other: p11
list:
    - item: p12
    - p13
`;

void describe('the same values as the real sops encrypts, under Go-only syntax', () => {
  let sops: string;
  before(() => {
    sops = findSops();
  });

  function runSops(args: string[], cwd: string): string {
    const r = spawnSync(sops, args, { cwd, encoding: 'utf8', env: { ...process.env, SOPS_AGE_KEY_FILE: keyFile, XDG_CONFIG_HOME: join(dir, 'none') } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  }

  /** Encrypt `file` (relative to `cwd`) with both tools; both encrypt the same leaves, and each decrypts the other's file. */
  function sameSelection(cwd: string, file: string, flags: string[]): string {
    const theirs = runSops(['encrypt', ...flags, file], cwd);
    const mine = ours(['encrypt', ...flags, file], cwd);
    assert.equal(mine.code, 0, mine.stderr);
    assert.equal(layout(mine.stdout), layout(theirs));
    writeFileSync(join(cwd, 'theirs.enc.yaml'), theirs);
    writeFileSync(join(cwd, 'mine.enc.yaml'), mine.stdout);
    // The MAC covers which values are encrypted: each tool opening the other's file proves the metadata rule reads alike.
    const opened = ours(['decrypt', 'theirs.enc.yaml'], cwd);
    assert.equal(opened.code, 0, opened.stderr);
    assert.equal(opened.stdout, runSops(['decrypt', 'mine.enc.yaml'], cwd));
    return mine.stdout;
  }

  // [rule, pattern]: POSIX classes, Unicode classes, (?i), \Q…\E, \A/\z, anchors and alternations.
  const cases: [string, string][] = [
    ['encrypted_regex', '^[[:lower:]]+$'],
    ['encrypted_regex', '^[[:alpha:]]+[[:digit:]]$|^[[:upper:]]{5}$'],
    ['encrypted_regex', '^\\pL+$'],
    ['encrypted_regex', '^\\p{Greek}|^\\PL'],
    ['encrypted_regex', '(?i)^pass'],
    ['encrypted_regex', '^\\Qa.b\\E$|^api'],
    ['encrypted_regex', '\\Aapi\\w+\\z|^(?P<n>user|item)$'],
    ['unencrypted_regex', '^(user|[[:upper:]].*)$|\\d'],
    ['unencrypted_regex', '(?i)^(NESTED|list)$'],
    ['encrypted_comment_regex', '(?i)^\\s*sops:\\s*enc$'],
    // Ciphertext must not match it (sops and fluxstrap refuse such a file): no `[[:upper:]]{4}` alone.
    ['unencrypted_comment_regex', '^\\s*[[:upper:]]{4}:|^\\s*plain$'],
  ];

  for (const [i, [rule, pattern]] of cases.entries()) {
    void it(`${rule}: ${pattern} in .sops.yaml, under a path_regex in Go syntax`, () => {
      const cwd = join(dir, `case-${i}`);
      mkdirSync(join(cwd, 'sub.d'), { recursive: true });
      writeFileSync(join(cwd, 'sub.d', 'secret-Ω.yaml'), PLAIN);
      writeFileSync(
        join(cwd, '.sops.yaml'),
        `creation_rules:\n` +
          `  - path_regex: '^sub\\.d/[[:digit:]]'\n    encrypted_regex: '^user$'\n    age: ${recipient}\n` +
          `  - path_regex: '^\\Qsub.d\\E/[[:alpha:]]+-\\pL\\.(?i:YAML)$'\n    ${rule}: '${pattern}'\n    age: ${recipient}\n`,
      );
      const out = sameSelection(cwd, join('sub.d', 'secret-Ω.yaml'), []);
      assert.ok(out.includes(`${rule}: `), 'the rule of the second creation rule applied');
    });
  }

  void it('an unencrypted_comment_regex that matches an encrypted comment: both refuse to write the file', () => {
    const cwd = join(dir, 'comment-clash');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, 'plain.yaml'), PLAIN);
    // (sops has no flag for this rule: it comes from .sops.yaml.)
    writeFileSync(join(cwd, '.sops.yaml'), `creation_rules:\n  - unencrypted_comment_regex: '^ENC\\[AES256_GCM'\n    age: ${recipient}\n`);
    const theirs = spawnSync(sops, ['encrypt', 'plain.yaml'], { cwd, encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: join(dir, 'none') } });
    assert.notEqual(theirs.status, 0);
    assert.match(theirs.stderr, /matches UnencryptedCommentRegex/);
    const mine = ours(['encrypt', 'plain.yaml'], cwd);
    assert.equal(mine.code, 1);
    assert.match(
      mine.stderr,
      /^error: an encrypted comment matches unencrypted_comment_regex "\^ENC\\\\\[AES256_GCM", so it could not be decrypted \(plain\.yaml at unencrypted_comment_regex\)$/m,
    );
  });

  for (const [rule, pattern] of cases.filter(([r]) => !r.includes('comment')).slice(0, 4)) {
    void it(`--${rule.replaceAll('_', '-')} ${pattern}`, () => {
      const cwd = join(dir, 'flags');
      mkdirSync(cwd, { recursive: true });
      writeFileSync(join(cwd, 'plain.yaml'), PLAIN);
      sameSelection(cwd, 'plain.yaml', ['--age', recipient, `--${rule.replaceAll('_', '-')}`, pattern]);
    });
  }
});

void describe('patterns that make a backtracking engine hang', () => {
  const longKey = `${'a'.repeat(34)}!`;

  void it("encrypted_regex ^(a+)+$ in a file's metadata and a key of 34 a and a !: encrypt, decrypt and check return", () => {
    const cwd = join(dir, 'hostile-metadata');
    mkdirSync(cwd, { recursive: true });
    const plain = `${longKey}: not selected\naaaa: selected\n`;
    writeFileSync(join(cwd, 'h.yaml'), plain);
    const enc = ours(['encrypt', '--age', recipient, '--encrypted-regex', '^(a+)+$', '-i', 'h.yaml'], cwd);
    assert.equal(enc.code, 0, enc.stderr);
    const text = readFileSync(join(cwd, 'h.yaml'), 'utf8');
    assert.match(text, /^a{34}!: not selected$/m);
    assert.match(text, /^aaaa: ENC\[/m);
    assert.match(text, /encrypted_regex: \^\(a\+\)\+\$/);
    const dec = ours(['decrypt', 'h.yaml'], cwd);
    assert.equal(dec.code, 0, dec.stderr);
    assert.equal(dec.stdout, plain);
    const check = ours(['check', '--key-file', keyFile, 'h.yaml'], cwd);
    assert.deepEqual([check.code, check.stdout], [0, '']);
  });

  void it('path_regex ^(a+)+$ and a long file name: encrypt, updatekeys and check return', () => {
    const cwd = join(dir, 'hostile-path');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(
      join(cwd, '.sops.yaml'),
      `creation_rules:\n  - path_regex: ^(a+)+$\n    encrypted_regex: ^nothing$\n    age: ${recipient}\n  - path_regex: \\.yaml$\n    age: ${recipient}\n`,
    );
    const file = `${'a'.repeat(200)}!.yaml`;
    writeFileSync(join(cwd, file), 'password: p\n');
    const enc = ours(['encrypt', '-i', file], cwd);
    assert.equal(enc.code, 0, enc.stderr);
    assert.match(readFileSync(join(cwd, file), 'utf8'), /^password: ENC\[/m, 'the second rule applied');
    const up = ours(['updatekeys', '--key-file', keyFile, file], cwd);
    assert.equal(up.code, 0, up.stderr);
    const check = ours(['check', '--key-file', keyFile, '.'], cwd);
    assert.deepEqual([check.code, check.stdout], [0, '']);
  });
});

void describe('patterns RE2 refuses', () => {
  void it('from a flag: E_CONFIG naming the flag, nothing written', () => {
    const cwd = join(dir, 'refused-flag');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, 's.yaml'), 'password: p\n');
    const r = ours(['encrypt', '--age', recipient, '--encrypted-regex', '^pass(?=word)', '-i', 's.yaml'], cwd);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr.split('\n')[0],
      'error: --encrypted-regex "^pass(?=word)" is not a valid regular expression: invalid or unsupported Perl syntax: `(?=` (--encrypted-regex)',
    );
    assert.match(r.stderr, /^hint: .*RE2/m);
    assert.equal(readFileSync(join(cwd, 's.yaml'), 'utf8'), 'password: p\n');
  });

  void it('from .sops.yaml: E_CONFIG at its line, no file of the batch written', () => {
    const cwd = join(dir, 'refused-config');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(
      join(cwd, '.sops.yaml'),
      `creation_rules:\n  - path_regex: a\\.yaml$\n    age: ${recipient}\n  - path_regex: b\\.yaml$\n    encrypted_regex: '[[:alpha:]'\n    age: ${recipient}\n`,
    );
    writeFileSync(join(cwd, 'a.yaml'), 'password: p\n');
    writeFileSync(join(cwd, 'b.yaml'), 'password: p\n');
    const r = ours(['encrypt', '-i', 'a.yaml', 'b.yaml'], cwd);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr.split('\n')[0] ?? '',
      /^error: encrypted_regex "\[\[:alpha:\]" is not a valid regular expression: missing closing \]: .* \(.*\.sops\.yaml:5\)$/,
    );
    assert.equal(readFileSync(join(cwd, 'a.yaml'), 'utf8'), 'password: p\n');
    assert.equal(readFileSync(join(cwd, 'b.yaml'), 'utf8'), 'password: p\n');
  });

  void it("from a file's metadata: E_CONFIG at its line for decrypt, a finding for check", () => {
    const cwd = join(dir, 'refused-metadata');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, 's.yaml'), 'password: p\n');
    assert.equal(ours(['encrypt', '--age', recipient, '--encrypted-regex', '^pass', '-i', 's.yaml'], cwd).code, 0);
    const text = readFileSync(join(cwd, 's.yaml'), 'utf8').replace('encrypted_regex: ^pass', 'encrypted_regex: ^pass(?!x)');
    writeFileSync(join(cwd, 's.yaml'), text);
    const line = text.split('\n').findIndex((l) => l.includes('encrypted_regex')) + 1;
    const dec = ours(['decrypt', 's.yaml'], cwd);
    assert.equal(dec.code, 1);
    assert.equal(
      dec.stderr.split('\n')[0],
      `error: invalid sops metadata: encrypted_regex "^pass(?!x)" is not a valid regular expression: invalid or unsupported Perl syntax: \`(?!\` (s.yaml:${line})`,
    );
    assert.equal(dec.stdout, '');
    const check = ours(['check', '--key-file', keyFile, 's.yaml'], cwd);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /^s\.yaml:\d+: invalid sops metadata: encrypted_regex .* is not a valid regular expression/);
  });
});
