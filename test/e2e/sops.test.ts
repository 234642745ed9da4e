import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cliPath, runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { generatedDir } from '../unit/sops/helpers.ts';

/** The built CLI on real files: outputs, safety (no plaintext left behind, modes kept), errors, check. */

const keyFile = (k: string): string => join(generatedDir, `key-${k}.txt`);
const recipient = (k: string): string => /public key: (age1\S+)/.exec(readFileSync(keyFile(k), 'utf8'))?.[1] ?? '';
const SECRET_VALUE = 's3cr3t: with colon';
let dir: string;
const env = (): NodeJS.ProcessEnv => ({ XDG_CONFIG_HOME: join(dir, 'no-config'), SOPS_AGE_KEY_FILE: '', SOPS_AGE_KEY: '', GNUPGHOME: join(dir, 'no-gnupg') });
const cli = (args: string[], cwd = dir): ReturnType<typeof runCli> => runCli(args, { cwd, env: env() });

void before(async () => {
  dir = await tempDir('sops-e2e');
});

void describe('encrypt and decrypt in place', () => {
  void it('round-trips, atomically, keeping the file mode and leaving no temp file', () => {
    const file = join(dir, 'secret.yaml');
    copyFileSync(join(generatedDir, 'plain', 'secret.yaml'), file);
    chmodSync(file, 0o640);
    const enc = cli(['encrypt', '-i', '--age', recipient('a'), file]);
    assert.equal(enc.code, 0, enc.stderr);
    assert.equal(enc.stdout, '');
    const encrypted = readFileSync(file, 'utf8');
    assert.ok(!encrypted.includes('s3cr3t'));
    assert.equal(statSync(file).mode & 0o777, 0o640);
    const again = cli(['encrypt', '-i', '--age', recipient('a'), file]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already encrypted/);
    const dec = cli(['decrypt', '-i', '--key-file', keyFile('a'), file]);
    assert.equal(dec.code, 0, dec.stderr);
    // yaml.v3 style, as sops prints it (the reference is sops' own output for this plaintext)
    assert.equal(readFileSync(file, 'utf8'), readFileSync(join(generatedDir, 'secret.unencrypted-regex.enc.yaml.decrypted'), 'utf8'));
    assert.equal(statSync(file).mode & 0o777, 0o640);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  void it('--output writes a new plaintext file readable by its owner only', () => {
    const enc = cli(['encrypt', '--age', recipient('a'), join(generatedDir, 'plain', 'app.env')]);
    writeFileSync(join(dir, 'app.enc.env'), enc.stdout);
    const out = join(dir, 'app.plain.env');
    const dec = cli(['decrypt', '--key-file', keyFile('a'), '--output', out, join(dir, 'app.enc.env')]);
    assert.equal(dec.code, 0, dec.stderr);
    assert.equal(dec.stdout, '');
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.equal(readFileSync(out, 'utf8'), readFileSync(join(generatedDir, 'plain', 'app.env'), 'utf8'));
  });

  void it('--output-type converts on encrypt', () => {
    const enc = cli(['encrypt', '--age', recipient('a'), '--output-type', 'json', join(generatedDir, 'plain', 'suffix.yaml')]);
    assert.equal(enc.code, 0, enc.stderr);
    writeFileSync(join(dir, 'suffix.enc.json'), enc.stdout);
    const dec = cli(['decrypt', '--key-file', keyFile('a'), join(dir, 'suffix.enc.json')]);
    assert.equal(dec.code, 0, dec.stderr);
    assert.equal((JSON.parse(dec.stdout) as { db_password_secret: string }).db_password_secret, 'hunter2');
  });

  void it('--output-type converts on decrypt', () => {
    const dec = cli(['decrypt', '--key-file', keyFile('a'), '--output-type', 'json', join(generatedDir, 'secret.unencrypted-regex.enc.yaml')]);
    assert.equal(dec.code, 0, dec.stderr);
    assert.equal((JSON.parse(dec.stdout) as { stringData: { password: string } }).stringData.password, SECRET_VALUE);
  });
});

/**
 * The CLI on a pseudo-terminal (Python's pty, as a person at a keyboard): waits for `prompt`,
 * types `keys`, and returns everything the terminal showed, and the exit code.
 */
function onTerminal(args: string[], prompt: string, keys: string): { code: number; screen: string } {
  const script = [
    'import os, pty, sys, select',
    'pid, fd = pty.fork()',
    'if pid == 0:',
    '    os.execvpe(sys.argv[1], sys.argv[1:], os.environ)',
    'screen, typed = b"", False',
    'while True:',
    '    r, _, _ = select.select([fd], [], [], 20)',
    '    if not r: break',
    '    try: chunk = os.read(fd, 4096)',
    '    except OSError: break',
    '    if not chunk: break',
    '    screen += chunk',
    '    if not typed and os.environ["PROMPT"].encode() in screen:',
    '        os.write(fd, os.environ["KEYS"].encode()); typed = True',
    '_, status = os.waitpid(pid, 0)',
    'sys.stdout.write(screen.decode("utf-8", "replace"))',
    'sys.exit(os.waitstatus_to_exitcode(status))',
  ].join('\n');
  const r = spawnSync('python3', ['-c', script, process.execPath, cliPath, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, ...env(), PROMPT: prompt, KEYS: keys, NO_COLOR: '1' },
  });
  if (r.error) throw new Error(`python3 is needed for the terminal tests (apt-get install python3): ${r.error.message}`);
  return { code: r.status ?? -1, screen: r.stdout };
}

void describe('set, unset and --extract', () => {
  void it('set asks for the value at a terminal without echoing it, and changes only that value', () => {
    const file = join(dir, 'prompted.yaml');
    copyFileSync(join(generatedDir, 'secret.unencrypted-regex.enc.yaml'), file);
    const r = onTerminal(['set', '--key-file', keyFile('a'), file, '["stringData"]["password"]'], '(not shown): ', 'typed-s3cret\u007fT\r');
    assert.equal(r.code, 0, r.screen);
    assert.doesNotMatch(r.screen, /typed-s3/, 'the value is never echoed');
    assert.match(r.screen, /set \["stringData"\]\["password"\] in /);
    const value = cli(['decrypt', '--key-file', keyFile('a'), '--extract', '["stringData"]["password"]', file]);
    assert.equal(value.stdout, 'typed-s3creT');
  });

  void it('Ctrl-C at the prompt exits 130 and changes nothing', () => {
    const file = join(dir, 'interrupted.yaml');
    copyFileSync(join(generatedDir, 'secret.unencrypted-regex.enc.yaml'), file);
    const r = onTerminal(['set', '--key-file', keyFile('a'), file, '["stringData"]["password"]'], '(not shown): ', 'abc\u0003');
    assert.equal(r.code, 130, r.screen);
    assert.match(r.screen, /interrupted/);
    assert.equal(readFileSync(file, 'utf8'), readFileSync(join(generatedDir, 'secret.unencrypted-regex.enc.yaml'), 'utf8'));
  });

  void it('a path that is not there: --extract fails naming it, unset changes nothing', () => {
    const file = join(generatedDir, 'secret.unencrypted-regex.enc.yaml');
    const missing = cli(['decrypt', '--key-file', keyFile('a'), '--extract', '["stringData"]["nope"]', file]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: the document has no \["stringData"\]\["nope"\] \(.*secret\.unencrypted-regex\.enc\.yaml\)$/m);
    const copy = join(dir, 'unset-missing.yaml');
    copyFileSync(file, copy);
    const unset = cli(['unset', '--key-file', keyFile('a'), copy, '["stringData"]["nope"]']);
    assert.equal(unset.code, 0, unset.stderr);
    assert.equal(readFileSync(copy, 'utf8'), readFileSync(file, 'utf8'));
  });
});

void describe('errors', () => {
  void it('a file no key opens names its recipients and the keys tried, never a secret', () => {
    const r = cli(['decrypt', '--key-file', keyFile('c'), join(generatedDir, 'multidoc.enc.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: no key at hand opens this file \(.*multidoc\.enc\.yaml\)/m);
    assert.ok(r.stderr.includes(recipient('a')) && r.stderr.includes(recipient('b')), 'lists the recipients');
    assert.ok(r.stderr.includes(recipient('c')), 'lists the key tried');
    assert.ok(!/AGE-SECRET-KEY/.test(r.stderr) && !r.stderr.includes('two'), r.stderr);
    assert.equal(r.stdout, '');
  });

  void it('a changed value is refused with E_DECRYPT and nothing on stdout', () => {
    const text = readFileSync(join(generatedDir, 'secret.mac-only.enc.yaml'), 'utf8').replace('key: ENC[AES256_GCM,data:', 'key: ENC[AES256_GCM,data:AA');
    writeFileSync(join(dir, 'tampered.yaml'), text);
    const r = cli(['decrypt', '--key-file', keyFile('a'), join(dir, 'tampered.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not decrypt/);
    assert.equal(r.stdout, '');
  });

  void it('a .sops.yaml error names the file and line', () => {
    const sub = join(dir, 'badconfig');
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, '.sops.yaml'), 'creation_rules:\n  - path_regex: x\n    encrypted_regex: a\n    unencrypted_regex: b\n');
    writeFileSync(join(sub, 'x.yaml'), 'a: 1\n');
    const r = cli(['encrypt', 'x.yaml'], sub);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: a creation rule can set only one of .* \(.*\.sops\.yaml:2\)/);
  });

  void it('a mistyped age recipient is refused before any file of the batch is written, naming where it came from', () => {
    const sub = join(dir, 'badrecipient');
    mkdirSync(sub, { recursive: true });
    const good = recipient('a');
    const typo = `${good.slice(0, -1)}${good.endsWith('q') ? 'p' : 'q'}`;
    writeFileSync(join(sub, 'a.yaml'), 'a: 1\n');
    writeFileSync(join(sub, 'b.yaml'), 'b: 2\n');
    const flag = cli(['encrypt', '--in-place', '--age', `${good},${typo}`, 'a.yaml', 'b.yaml'], sub);
    assert.equal(flag.code, 2, flag.stderr);
    assert.equal(flag.stderr.split('\n')[0], `error: invalid age recipient ${typo} (--age)`);
    assert.equal(readFileSync(join(sub, 'a.yaml'), 'utf8'), 'a: 1\n');
    writeFileSync(
      join(sub, '.sops.yaml'),
      `creation_rules:\n  - path_regex: b\\.yaml$\n    age: ${good}\n  - path_regex: a\\.yaml$\n    age: >-\n      ${typo}\n`,
    );
    // b.yaml's rule is sound, and b.yaml comes first: the batch still stops before writing it.
    const rule = cli(['encrypt', '--in-place', 'b.yaml', 'a.yaml'], sub);
    assert.equal(rule.code, 1, rule.stderr);
    assert.match(rule.stderr, new RegExp(`^error: invalid age recipient ${typo} \\(.*\\.sops\\.yaml:6\\)`));
    assert.equal(readFileSync(join(sub, 'b.yaml'), 'utf8'), 'b: 2\n');
    const other = cli(['encrypt', '--in-place', 'b.yaml'], sub);
    assert.equal(other.code, 0, `a typo in another rule does not block this one: ${other.stderr}`);
  });

  void it('no recipients at all is a usage error', () => {
    const sub = join(dir, 'norule');
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, 'x.yaml'), 'a: 1\n');
    const r = cli(['encrypt', 'x.yaml'], sub);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no recipients/);
  });
});

void describe('check', () => {
  void it('finds plaintext Secrets, files a creation rule wants encrypted, and bad MACs; exit 1, one line each', () => {
    const sub = join(dir, 'repo');
    mkdirSync(join(sub, 'secrets'), { recursive: true });
    writeFileSync(join(sub, '.sops.yaml'), `creation_rules:\n  - path_regex: secrets/.*\\.yaml$\n    age: ${recipient('a')}\n`);
    copyFileSync(join(generatedDir, 'plain', 'secret.yaml'), join(sub, 'plain-secret.yaml'));
    writeFileSync(join(sub, 'secrets', 'todo.yaml'), 'password: x\n');
    copyFileSync(join(generatedDir, 'secret.mac-only.enc.yaml'), join(sub, 'secrets', 'ok.yaml'));
    writeFileSync(
      join(sub, 'secrets', 'edited.yaml'),
      readFileSync(join(generatedDir, 'secret.unencrypted-regex.enc.yaml'), 'utf8').replace('namespace: default', 'namespace: other'),
    );
    writeFileSync(join(sub, 'configmap.yaml'), 'kind: ConfigMap\ndata:\n    a: b\n');
    const r = cli(['check', '--key-file', keyFile('a')], sub);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stdout.trim().split('\n').sort();
    assert.deepEqual(lines, [
      'plain-secret.yaml: Secret app has plaintext data and stringData',
      'secrets/edited.yaml: MAC mismatch: a value was changed after encryption',
      'secrets/todo.yaml: matches creation rule "secrets/.*\\\\.yaml$" but has no sops metadata',
    ]);
  });

  void it('with --key-file, reports files that key cannot open; exit 0 when all is well', () => {
    const sub = join(dir, 'clean');
    mkdirSync(sub, { recursive: true });
    copyFileSync(join(generatedDir, 'multidoc.enc.yaml'), join(sub, 'multi.yaml'));
    assert.equal(cli(['check', '--key-file', keyFile('b')], sub).code, 0);
    assert.equal(cli(['check'], sub).code, 0, 'without a key nothing can be said of the MAC');
    const r = cli(['check', '--key-file', keyFile('c')], sub);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^multi\.yaml: the given keys cannot open it/);
  });
});

void describe('start-up cost', () => {
  const hook = fileURLToPath(new URL('../helpers/trace-imports.ts', import.meta.url));
  void it('encrypt and decrypt of an X25519 file load neither the heavy clients nor openpgp, age-encryption or child_process', () => {
    for (const args of [
      ['encrypt', '--age', recipient('a'), join(generatedDir, 'plain', 'secret.yaml')],
      ['decrypt', '--key-file', keyFile('a'), join(generatedDir, 'secret.mac-only.enc.yaml')],
    ]) {
      const trace = join(dir, `trace-${args[0] ?? ''}.txt`);
      const r = runCli(args, { cwd: dir, env: { ...env(), FLUXSTRAP_TRACE_IMPORTS: trace }, nodeArgs: ['--import', hook] });
      assert.equal(r.code, 0, r.stderr);
      const modules = readFileSync(trace, 'utf8');
      assert.ok(modules.includes('node:fs'), 'the trace records built-in modules too');
      for (const heavy of ['@kubernetes/client-node', '@octokit/', 'openpgp', 'age-encryption', 'listr2', 'zod', 'node:child_process']) {
        assert.ok(!modules.includes(heavy), `${args[0] ?? ''} loaded ${heavy}`);
      }
    }
  });
});
