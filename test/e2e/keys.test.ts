import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { loadedPackages, tracedRun } from '../helpers/imports.ts';
import { leftoverTempFiles, tempDir } from '../helpers/tmp.ts';
import { requireTool, runTool } from '../helpers/tools.ts';

/** `fluxstrap keys` through the built CLI, checked against the real `age` and `gpg`. */

const HEAVY = ['openpgp', '@kubernetes/client-node', '@octokit/', 'listr2'];

let home: string;
/** A clean environment: no key variables of the person running the tests, HOME in a temp folder. */
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: undefined,
  ...extra,
});
const cli = (args: string[], extra: NodeJS.ProcessEnv = {}): CliResult => runCli(args, { cwd: home, env: env(extra) });

function ok(r: CliResult): string {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A user error is one `error:` line naming the file, maybe a hint, exit 1 or 2, no stack. */
function userError(r: CliResult, text: RegExp, where: string): void {
  assert.notEqual(r.code, 0);
  const [first, ...rest] = r.stderr.trimEnd().split('\n');
  assert.match(first ?? '', text);
  assert.ok(first?.includes(`(${where}`), `names ${where}: ${first}`);
  assert.ok(
    rest.every((l) => l.startsWith('hint: ')),
    r.stderr,
  );
  assert.equal(r.stdout, '');
}

void before(async () => {
  requireTool('age');
  home = await tempDir('keys-e2e');
});

void describe('keys new (age)', () => {
  void it('writes the default sops key file, 0600 in 0700 folders, and prints only the recipient', async () => {
    const out = ok(cli(['keys', 'new']));
    const file = join(home, '.config', 'sops', 'age', 'keys.txt');
    assert.match(out, /^age1[a-z0-9]{58}\n$/);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(home, '.config', 'sops'))).mode & 0o777, 0o700);
    assert.ok((await readFile(file, 'utf8')).includes(`# public key: ${out.trim()}\n`));
    assert.equal(ok(cli(['keys', 'pub'])), out, 'keys pub reads the same default file sops reads');
  });

  void it('with no default key file where sops would have none, says so and writes nothing', async () => {
    const cwd = await tempDir('keys-relative-xdg');
    const r = runCli(['keys', 'new'], { cwd, env: env({ XDG_CONFIG_HOME: 'relative/config' }) });
    assert.equal(r.code, 2, r.stderr);
    userError(r, /^error: no default age key file: XDG_CONFIG_HOME is not an absolute path/, 'XDG_CONFIG_HOME');
    assert.deepEqual(await readdir(cwd), []);
  });

  void it('honours SOPS_AGE_KEY_FILE, and --out over it; --json gives {recipient, file}', () => {
    const viaEnv = join(home, 'env', 'keys.txt');
    const r1 = JSON.parse(ok(cli(['keys', 'new', '--json'], { SOPS_AGE_KEY_FILE: viaEnv }))) as { recipient: string; file: string };
    assert.deepEqual(Object.keys(r1).sort(), ['command', 'exitCode', 'file', 'recipient', 'success']);
    assert.equal(r1.file, viaEnv);
    const explicit = join(home, 'explicit.agekey');
    const r2 = JSON.parse(ok(cli(['--json', 'keys', 'new', '--out', explicit], { SOPS_AGE_KEY_FILE: viaEnv }))) as { recipient: string; file: string };
    assert.equal(r2.file, explicit);
    assert.equal(ok(cli(['keys', 'pub', explicit])), `${r2.recipient}\n`);
  });

  void it('interoperates with the real age both ways', async () => {
    const dir = await tempDir('age-interop');
    const keyFile = join(dir, 'ours.txt');
    const recipient = ok(cli(['keys', 'new', '--out', keyFile])).trim();
    // age encrypts to our recipient; our key file decrypts through age -d -i
    const sealed = await runTool('age', ['-r', recipient, '-a'], { input: 'to fluxstrap\n' });
    await writeFile(join(dir, 'sealed.age'), sealed.stdout);
    assert.equal((await runTool('age', ['-d', '-i', keyFile, join(dir, 'sealed.age')])).stdout, 'to fluxstrap\n');
    // a key file from age-keygen is read by keys pub, and the recipient it prints works with age -r
    await runTool('age-keygen', ['-o', join(dir, 'theirs.txt')]);
    const theirs = ok(cli(['keys', 'pub', join(dir, 'theirs.txt')])).trim();
    assert.equal(theirs, (await runTool('age-keygen', ['-y', join(dir, 'theirs.txt')])).stdout.trim());
    const back = await runTool('age', ['-r', theirs, '-a'], { input: 'from fluxstrap\n' });
    await writeFile(join(dir, 'back.age'), back.stdout);
    assert.equal((await runTool('age', ['-d', '-i', join(dir, 'theirs.txt'), join(dir, 'back.age')])).stdout, 'from fluxstrap\n');
    // with two identities (after --append) age still finds the right one
    const second = ok(cli(['keys', 'new', '--out', keyFile, '--append'])).trim();
    const again = await runTool('age', ['-r', second, '-a'], { input: 'rotated\n' });
    await writeFile(join(dir, 'rotated.age'), again.stdout);
    assert.equal((await runTool('age', ['-d', '-i', keyFile, join(dir, 'rotated.age')])).stdout, 'rotated\n');
    assert.equal(ok(cli(['keys', 'pub', keyFile])), `${recipient}\n${second}\n`);
  });

  void it('--pq writes a hybrid identity (age1pq1…) and says what it needs in --help', async () => {
    const file = join(home, 'pq.txt');
    assert.match(ok(cli(['keys', 'new', '--pq', '--out', file])), /^age1pq1[a-z0-9]+\n$/);
    assert.match(await readFile(file, 'utf8'), /^AGE-SECRET-KEY-PQ-1/m);
    const help = ok(cli(['keys', 'new', '--help'])).replace(/\s+/g, ' ');
    assert.match(help, /--pq .{0,80}needs Flux >= 2\.9 and sops >= 3\.12/);
  });

  void it('never loads openpgp, the Kubernetes or GitHub clients for age keys', async () => {
    const file = join(home, 'traced.txt');
    for (const args of [
      ['keys', 'new', '--out', file],
      ['keys', 'pub', file],
    ]) {
      const r = await tracedRun(args, { cwd: home, env: env() });
      ok(r);
      assert.ok(
        r.modules.some((m) => m.endsWith('/dist/flows/keys.js')),
        'the trace recorded the imports',
      );
      assert.deepEqual(loadedPackages(r.modules, HEAVY), [], args.join(' '));
    }
    const pgp = await tracedRun(['keys', 'new', '--pgp', '--type', 'ed25519', '--out', join(home, 'traced.asc')], { cwd: home, env: env() });
    assert.deepEqual(loadedPackages(pgp.modules, ['openpgp']), ['openpgp'], 'the trace sees openpgp when it is used');
  });
});

void describe('keys new --pgp', () => {
  for (const type of ['rsa4096', 'ed25519']) {
    void it(`${type}: gpg --import accepts the key and encrypts/decrypts with it`, async () => {
      requireTool('gpg');
      const dir = await tempDir('gpg');
      const gnupg = join(dir, 'gnupg');
      await mkdir(gnupg, { mode: 0o700 });
      const keyFile = join(dir, 'sops.asc');
      const fpr = ok(cli(['keys', 'new', '--pgp', '--type', type, '--out', keyFile])).trim();
      assert.match(fpr, /^[0-9A-F]{40}$/);
      assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
      const gpg = (args: string[], input?: string) =>
        runTool('gpg', ['--batch', ...args], { env: { GNUPGHOME: gnupg }, ...(input !== undefined ? { input } : {}) });
      await gpg(['--import', keyFile]);
      const listed = (await gpg(['--with-colons', '--list-secret-keys'])).stdout;
      assert.match(listed, new RegExp(`^fpr:+${fpr}:`, 'm'));
      assert.match(listed, type === 'rsa4096' ? /^sec:[^:]*:4096:1:/m : /^sec:[^:]*:255:22:/m);
      const sealed = (await gpg(['--trust-model', 'always', '--armor', '--encrypt', '-r', fpr], 'flux secret\n')).stdout;
      assert.equal((await gpg(['--decrypt'], sealed)).stdout, 'flux secret\n');
      assert.equal(ok(cli(['keys', 'pub', keyFile])), `${fpr}\n`);
      // the exported public key imports alone, with the same fingerprint
      const pub = ok(cli(['keys', 'pub', '--armor', keyFile]));
      assert.doesNotMatch(pub, /PRIVATE/);
      const other = join(dir, 'other');
      await mkdir(other, { mode: 0o700 });
      await runTool('gpg', ['--batch', '--import'], { env: { GNUPGHOME: other }, input: pub });
      assert.match((await runTool('gpg', ['--batch', '--with-colons', '--list-keys'], { env: { GNUPGHOME: other } })).stdout, new RegExp(`^fpr:+${fpr}:`, 'm'));
    });
  }

  void it('--json gives the fingerprint, the file and the public key', () => {
    const file = join(home, 'json.asc');
    const doc = JSON.parse(ok(cli(['--json', 'keys', 'new', '--pgp', '--type', 'ed25519', '--out', file]))) as Record<string, string>;
    assert.deepEqual(Object.keys(doc).sort(), ['command', 'exitCode', 'file', 'fingerprint', 'publicKey', 'success']);
    assert.match(doc.publicKey ?? '', /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
  });

  void it('refuses flags that make no sense for it', () => {
    assert.equal(cli(['keys', 'new', '--pgp']).code, 2, 'needs --out');
    assert.equal(cli(['keys', 'new', '--pgp', '--out', join(home, 'x.asc'), '--type', 'dsa']).code, 2);
    assert.equal(cli(['keys', 'new', '--pgp', '--out', join(home, 'x.asc'), '--append']).code, 2);
    assert.equal(cli(['keys', 'new', '--type', 'ed25519', '--out', join(home, 'y.txt')]).code, 2);
  });
});

void describe('keys pub', () => {
  void it('reads SOPS_AGE_KEY and SOPS_AGE_KEY_FILE like sops', async () => {
    const dir = await tempDir('pub');
    const a = ok(cli(['keys', 'new', '--out', join(dir, 'a.txt')])).trim();
    const b = ok(cli(['keys', 'new', '--out', join(dir, 'b.txt')])).trim();
    const inline = await readFile(join(dir, 'b.txt'), 'utf8');
    const emptyHome = await tempDir('pub-home');
    const pub = (extra: NodeJS.ProcessEnv) => runCli(['keys', 'pub'], { cwd: dir, env: env({ HOME: emptyHome, ...extra }) });
    assert.equal(ok(pub({ SOPS_AGE_KEY_FILE: join(dir, 'a.txt') })), `${a}\n`);
    assert.equal(ok(pub({ SOPS_AGE_KEY: inline })), `${b}\n`);
    assert.equal(ok(pub({ SOPS_AGE_KEY: inline, SOPS_AGE_KEY_FILE: join(dir, 'a.txt') })), `${b}\n${a}\n`);
    const none = pub({});
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^error: no age key found \(.*keys\.txt\)\nhint: .*SOPS_AGE_KEY_FILE/);
  });
});

void describe('keys: bad input', () => {
  void it('an existing key file is never overwritten', async () => {
    const file = join(home, 'keep.txt');
    ok(cli(['keys', 'new', '--out', file]));
    const before = await readFile(file, 'utf8');
    userError(cli(['keys', 'new', '--out', file]), /^error: refusing to overwrite an existing key file/, file);
    userError(cli(['keys', 'new', '--pgp', '--type', 'ed25519', '--out', file]), /^error: refusing to overwrite an existing key file/, file);
    assert.equal(await readFile(file, 'utf8'), before);
  });

  void it('a key file that is a directory', async () => {
    const dir = join(home, 'adir');
    await mkdir(dir);
    userError(cli(['keys', 'new', '--out', dir]), /^error: cannot write key file: is a directory/, dir);
    userError(cli(['keys', 'pub', dir]), /^error: cannot read file: is a directory/, dir);
  });

  void it('an unwritable path', async () => {
    const file = join(home, 'afile');
    await writeFile(file, 'x');
    userError(cli(['keys', 'new', '--out', join(file, 'keys.txt')]), /^error: cannot create folder: a parent is not a directory/, file);
  });

  void it('malformed key files name the file and line, and --append leaves them alone', async () => {
    const file = join(home, 'bad.txt');
    await writeFile(file, '# created: yesterday\n\nAGE-SECRET-KEY-1QQQQQQQQQQ\n');
    userError(cli(['keys', 'pub', file]), /^error: malformed age identity/, `${file}:3`);
    userError(cli(['keys', 'new', '--append', '--out', file]), /^error: malformed age identity/, `${file}:3`);
    assert.equal(await readFile(file, 'utf8'), '# created: yesterday\n\nAGE-SECRET-KEY-1QQQQQQQQQQ\n');
    const pubOnly = join(home, 'pub-only.txt');
    await writeFile(pubOnly, 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n');
    userError(cli(['keys', 'pub', pubOnly]), /^error: this is a public key/, `${pubOnly}:1`);
    const badPgp = join(home, 'bad.asc');
    await writeFile(badPgp, '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\ngarbage\n-----END PGP PRIVATE KEY BLOCK-----\n');
    userError(cli(['keys', 'pub', badPgp]), /^error: malformed OpenPGP key/, badPgp);
    userError(cli(['keys', 'pub', join(home, 'missing.txt')]), /^error: cannot read file: no such file/, join(home, 'missing.txt'));
  });

  void it('leaves no temp file behind after all of the above', async () => {
    assert.deepEqual(await leftoverTempFiles(home), []);
    assert.ok((await readdir(home)).length > 0);
  });
});
