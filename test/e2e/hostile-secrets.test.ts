import assert from 'node:assert/strict';
import { chmodSync, chownSync, cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { describePrivateKey } from '../../src/core/redact.ts';
import { allowSecretsIn, canary, leaksIn, registerPrivateKey } from '../helpers/canary.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import { leftoverTempFiles, snapshot, tempDir } from '../helpers/tmp.ts';
import { requireTool, runTool } from '../helpers/tools.ts';

/**
 * Hostile and clumsy input to the secret-handling commands, one table row each: private keys
 * where public keys belong (every kind fluxstrap meets, in every place a recipient is read), bad
 * recipients, symlinks, unwritable targets in batches, empty values, bad flags. Each row runs the
 * built CLI in a fresh copy of one folder and asserts the exit code, a one-line `error:` naming
 * the file or flag, no stack trace, inputs unchanged (or changed as the row says), no temp file
 * left, and no private key or canary in any output.
 */

interface World {
  /** The row's own folder: a copy of the base, the current folder of the run. */
  dir: string;
  /** A copy of a Flux repository after `fluxstrap init` (rows that need one). */
  repo: string;
}

interface Row {
  name: string;
  args: (w: World) => string[];
  setup?: (w: World) => void;
  input?: string;
  env?: (w: World) => NodeJS.ProcessEnv;
  /** Run as an unprivileged user (root ignores the modes of a read-only folder). */
  unprivileged?: boolean;
  /** Run in the Flux repository instead of the row folder. */
  inRepo?: boolean;
  code: number;
  /** The message after `error: `; rows without one succeed or report findings on stdout. */
  error?: RegExp;
  /** What the parentheses at the end of the error line say (the flag, or file[:line]). */
  where?: string | RegExp;
  /** The row changes files on purpose: check them here instead of "nothing changed". */
  verify?: (w: World, r: CliResult) => void;
  revealsSecrets?: boolean;
}

const root = process.getuid?.() === 0;
const NOBODY = 65534;

let base: string;
let baseRepo: string;
/** Private keys by kind, and how the error names each. */
const keys: Record<string, string> = {};
const KINDS: Record<string, string> = {
  age: 'an age private key',
  pq: 'a post-quantum age private key',
  plugin: 'a private age plugin identity',
  pgp: 'an armored OpenPGP private key',
  ssh: 'an SSH private key',
  pem: 'a PEM private key',
};
let recipient: string;
let pqRecipient: string;
let fingerprint: string;
let pgpPublic: string;
const SECRETS = { plain: canary('plain'), a: canary('a'), b: canary('b'), real: canary('real') };
const PLAINTEXT_FILES = ['plain.yaml', 'a.yaml', 'locked/b.yaml', 'real.yaml'];

const sopsYaml = (age: string, pgp?: string) => stringify({ creation_rules: [{ path_regex: '\\.yaml$', ...(pgp === undefined ? { age } : { pgp }) }] });

before(async () => {
  requireTool('ssh-keygen');
  base = await tempDir('hostile-base');
  const cli = (args: string[]) => {
    const r = runCli(args, { cwd: base, env: { SOPS_AGE_KEY_FILE: join(base, 'k.agekey'), HOME: '/nonexistent' } });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  recipient = cli(['keys', 'new', '--out', join(base, 'k.agekey')]);
  pqRecipient = cli(['keys', 'new', '--pq', '--out', join(base, 'pq.agekey')]);
  fingerprint = cli(['keys', 'new', '--pgp', '--type', 'ed25519', '--out', join(base, 'p.asc')]);
  pgpPublic = cli(['keys', 'pub', '--armor', join(base, 'p.asc')]);
  await runTool('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(base, 'id_ed25519')]);
  await runTool('ssh-keygen', ['-q', '-t', 'ecdsa', '-m', 'PEM', '-N', '', '-f', join(base, 'id_ecdsa')]);
  const read = (f: string) => readFileSync(join(base, f), 'utf8');
  keys.age = /^AGE-SECRET-KEY-1\S+$/m.exec(read('k.agekey'))?.[0] ?? '';
  keys.pq = /^AGE-SECRET-KEY-PQ-1\S+$/m.exec(read('pq.agekey'))?.[0] ?? '';
  // Plugin identities are opaque to fluxstrap: the shape is what matters.
  keys.plugin = `AGE-PLUGIN-YUBIKEY-1${'QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L'.repeat(2)}`;
  keys.pgp = read('p.asc').trim();
  keys.ssh = read('id_ed25519').trim();
  keys.pem = read('id_ecdsa').trim();
  for (const [kind, key] of Object.entries(keys)) assert.equal(describePrivateKey(key), KINDS[kind], `fixture key ${kind}`);
  registerPrivateKey(keys.age);
  registerPrivateKey(keys.pq);

  writeFileSync(join(base, '.sops.yaml'), sopsYaml(recipient));
  writeFileSync(join(base, 'plain.yaml'), `password: ${SECRETS.plain}\n`);
  writeFileSync(join(base, 'a.yaml'), `password: ${SECRETS.a}\n`);
  mkdirSync(join(base, 'locked'));
  writeFileSync(join(base, 'locked', 'b.yaml'), `password: ${SECRETS.b}\n`);
  writeFileSync(join(base, 'real.yaml'), `password: ${SECRETS.real}\n`);
  symlinkSync('real.yaml', join(base, 'link.yaml'));
  writeFileSync(join(base, 'enc.yaml'), cli(['encrypt', 'plain.yaml']));
  writeFileSync(join(base, 'locked', 'enc-b.yaml'), cli(['encrypt', 'locked/b.yaml']));
  writeFileSync(join(base, 'enc-real.yaml'), cli(['encrypt', 'real.yaml']));
  symlinkSync('enc-real.yaml', join(base, 'enc-link.yaml'));
  symlinkSync('k.agekey', join(base, 'k-link.agekey'));
  for (const f of PLAINTEXT_FILES) allowSecretsIn(join(base, f));

  const r = await fluxRepo();
  const init = runCli(['init', '--cluster', r.cluster, '--repo', r.repo, '--age', recipient], { cwd: r.repo, env: { HOME: '/nonexistent' } });
  assert.equal(init.code, 0, init.stderr);
  baseRepo = r.repo;
});

let rows = 0;
async function world(unprivileged: boolean): Promise<World> {
  const parent = await tempDir(`hostile-row${++rows}`);
  const w = { dir: join(parent, 'w'), repo: join(parent, 'repo') };
  cpSync(base, w.dir, { recursive: true, verbatimSymlinks: true });
  cpSync(baseRepo, w.repo, { recursive: true, verbatimSymlinks: true });
  for (const f of PLAINTEXT_FILES) allowSecretsIn(join(w.dir, f));
  chmodSync(join(w.dir, 'locked'), 0o555);
  if (unprivileged && root) {
    chmodSync(parent, 0o755);
    for (const p of [w.dir, ...walk(w.dir)]) chownSync(p, NOBODY, NOBODY);
  }
  return w;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? [p, ...walk(p)] : e.isSymbolicLink() ? [] : [p];
  });
}

const env = (w: World): NodeJS.ProcessEnv => ({
  HOME: '/nonexistent',
  XDG_CONFIG_HOME: '/nonexistent',
  SOPS_AGE_KEY_FILE: join(w.dir, 'k.agekey'),
  SOPS_AGE_KEY: '',
  SOPS_AGE_RECIPIENTS: '',
  SOPS_PGP_FP: '',
  GNUPGHOME: '/nonexistent/gnupg',
  FLUXSTRAP_DEBUG: '',
});

async function check(row: Row): Promise<void> {
  const w = await world(row.unprivileged === true);
  row.setup?.(w);
  const cwd = row.inRepo ? w.repo : w.dir;
  const before = { dir: await snapshot(w.dir), repo: await snapshot(w.repo) };
  const r = runCli(row.args(w), {
    cwd,
    env: { ...env(w), ...row.env?.(w) },
    ...(row.input !== undefined ? { input: row.input } : {}),
    ...(row.unprivileged && root ? { uid: NOBODY, gid: NOBODY } : {}),
    ...(row.revealsSecrets ? { revealsSecrets: true } : {}),
  });
  const shown = `exit ${r.code}\nstdout: ${r.stdout.slice(0, 400)}\nstderr: ${r.stderr.slice(0, 600)}`;
  assert.deepEqual(leaksIn(r.stderr), [], `no secret on stderr\n${shown}`);
  if (!row.revealsSecrets) assert.deepEqual(leaksIn(r.stdout), [], `no secret on stdout\n${shown}`);
  assert.equal(r.code, row.code, shown);
  assert.doesNotMatch(r.stderr, /^\s+at |node:internal|internal error/m, `no stack trace, no internal error\n${shown}`);
  if (row.error) {
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(lines.filter((l) => l.startsWith('error:')).length, 1, `one error line\n${shown}`);
    assert.ok(
      lines.every((l) => /^(error|hint): |^\(run with --help for usage\)$/.test(l)),
      `only error and hint lines\n${shown}`,
    );
    const first = lines[0] ?? '';
    const m = /^error: (.*?)(?: \(([^()]*)\))?$/.exec(first);
    assert.ok(m, shown);
    assert.match(m[1] ?? '', row.error, shown);
    if (row.where !== undefined) {
      if (typeof row.where === 'string') assert.equal(m[2], row.where, shown);
      else assert.match(m[2] ?? '', row.where, shown);
    }
  }
  if (row.verify) row.verify(w, r);
  else assert.deepEqual({ dir: await snapshot(w.dir), repo: await snapshot(w.repo) }, before, `inputs unchanged\n${shown}`);
  assert.deepEqual([...(await leftoverTempFiles(w.dir)), ...(await leftoverTempFiles(w.repo))], [], 'no temp file left');
}

// ---- private keys where public keys belong -------------------------------------------------

const notShown = (kind: string, expected: string) =>
  new RegExp(`^${escape(KINDS[kind] ?? '')} was given where an ${expected} \\(a public key\\) belongs; it is not shown$`);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const SOPS_YAML_LINE = /(^|\/)\.sops\.yaml:\d+$/;

function privateKeyRows(kind: string): Row[] {
  const k = () => keys[kind] ?? '';
  const withRule = (pgp: boolean) => (w: World) => {
    writeFileSync(join(w.dir, '.sops.yaml'), pgp ? sopsYaml('', k()) : sopsYaml(k()));
    allowSecretsIn(join(w.dir, '.sops.yaml'));
  };
  const age = notShown(kind, 'age recipient');
  const fp = notShown(kind, 'OpenPGP fingerprint');
  const armoredKind = kind === 'pgp' || kind === 'ssh' || kind === 'pem';
  const redacted = `<${KINDS[kind] ?? ''}, not shown>`;
  return [
    { name: `encrypt --age <${kind}>`, args: () => ['encrypt', '--age', k(), 'plain.yaml'], code: 2, error: age, where: '--age' },
    { name: `encrypt --age <recipient>,<${kind}>`, args: () => ['encrypt', '--age', `${recipient},${k()}`, 'plain.yaml'], code: 2, error: age, where: '--age' },
    { name: `encrypt -i --age <${kind}>`, args: () => ['encrypt', '-i', '--age', k(), 'plain.yaml'], code: 2, error: age, where: '--age' },
    {
      name: `SOPS_AGE_RECIPIENTS=<${kind}> encrypt`,
      args: () => ['encrypt', 'plain.yaml'],
      env: () => ({ SOPS_AGE_RECIPIENTS: k() }),
      code: 2,
      error: age,
      where: 'SOPS_AGE_RECIPIENTS',
    },
    { name: `encrypt --pgp <${kind}>`, args: () => ['encrypt', '--pgp', k(), 'plain.yaml'], code: 2, error: fp, where: '--pgp' },
    {
      name: `SOPS_PGP_FP=<${kind}> encrypt`,
      args: () => ['encrypt', 'plain.yaml'],
      env: () => ({ SOPS_PGP_FP: k() }),
      code: 2,
      error: fp,
      where: 'SOPS_PGP_FP',
    },
    { name: `.sops.yaml age: <${kind}>, encrypt`, setup: withRule(false), args: () => ['encrypt', 'plain.yaml'], code: 1, error: age, where: SOPS_YAML_LINE },
    {
      name: `.sops.yaml age: <${kind}>, encrypt -i`,
      setup: withRule(false),
      args: () => ['encrypt', '-i', 'plain.yaml', 'a.yaml'],
      code: 1,
      error: age,
      where: SOPS_YAML_LINE,
    },
    { name: `.sops.yaml pgp: <${kind}>, encrypt`, setup: withRule(true), args: () => ['encrypt', 'plain.yaml'], code: 1, error: fp, where: SOPS_YAML_LINE },
    {
      name: `.sops.yaml age: <${kind}>, updatekeys`,
      setup: withRule(false),
      args: () => ['updatekeys', 'enc.yaml'],
      code: 1,
      error: age,
      where: SOPS_YAML_LINE,
    },
    {
      name: `--json encrypt --age <${kind}>`,
      args: () => ['--json', 'encrypt', '--age', k(), 'plain.yaml'],
      code: 2,
      error: age,
      where: '--age',
      verify: jsonError('--age'),
    },
    {
      name: `FLUXSTRAP_DEBUG=1 encrypt --age <${kind}>`,
      args: () => ['encrypt', '--age', k(), 'plain.yaml'],
      env: () => ({ FLUXSTRAP_DEBUG: '1' }),
      code: 2,
      error: age,
      where: '--age',
    },
    { name: `rotate -i --add-age <${kind}>`, args: () => ['rotate', '-i', '--add-age', k(), 'enc.yaml'], code: 2, error: age, where: '--add-age' },
    { name: `rotate -i --rm-age <${kind}>`, args: () => ['rotate', '-i', '--rm-age', k(), 'enc.yaml'], code: 2, error: age, where: '--rm-age' },
    { name: `rotate -i --add-pgp <${kind}>`, args: () => ['rotate', '-i', '--add-pgp', k(), 'enc.yaml'], code: 2, error: fp, where: '--add-pgp' },
    {
      name: `init --age <${kind}>`,
      inRepo: true,
      args: (w) => ['init', '--cluster', 'production', '--repo', w.repo, '--age', k()],
      code: 2,
      error: age,
      where: '--age',
    },
    // An armored key starts with dashes: commander takes it for an option.
    armoredKind
      ? { name: `keys pub <${kind}> (as a file name)`, args: () => ['keys', 'pub', k()], code: 2, error: new RegExp(`^unknown option '${escape(redacted)}'$`) }
      : {
          name: `keys pub <${kind}> (as a file name)`,
          args: () => ['keys', 'pub', k()],
          code: 1,
          error: /^cannot read file: no such file or directory$/,
          where: redacted,
        },
    {
      name: `decrypt --key-file <${kind}> (as a file name)`,
      args: () => ['decrypt', '--key-file', k(), 'enc.yaml'],
      code: 1,
      error: /^cannot read key file: /,
      where: redacted,
    },
    { name: `<${kind}> as a command`, args: () => [k()], code: 2, error: new RegExp(`^unknown ${armoredKind ? 'option' : 'command'} '${escape(redacted)}'$`) },
    { name: `check with .sops.yaml age: <${kind}>`, setup: withRule(false), args: () => ['check', '.'], code: 1, verify: findingsOnly },
    {
      name: `keys rotate with the rule's recipient replaced by <${kind}>`,
      inRepo: true,
      setup: (w) => {
        const file = join(w.repo, '.sops.yaml');
        writeFileSync(file, readFileSync(file, 'utf8').replace(recipient, kind === 'age' || kind === 'pq' || kind === 'plugin' ? k() : JSON.stringify(k())));
        allowSecretsIn(file);
      },
      args: (w) => ['keys', 'rotate', '--cluster', 'production', '--key-file', join(w.dir, 'k.agekey')],
      code: 1,
      error: age,
      where: SOPS_YAML_LINE,
    },
  ];
}

/** `--json`: stdout is one document with the error, its flag and hint, and no key. */
const jsonError = (where: string) => (_w: World, r: CliResult) => {
  const doc = JSON.parse(r.stdout) as { success: boolean; error: { where: string; message: string; hint: string } };
  assert.equal(doc.success, false);
  assert.equal(doc.error.where, where);
  assert.match(doc.error.hint, /fluxstrap keys pub/);
};

/** check reports plaintext files as findings on stdout, one `FILE: reason` line each. */
const findingsOnly = (_w: World, r: CliResult) => {
  assert.ok(
    r.stdout
      .split('\n')
      .filter(Boolean)
      .every((l) => /^[^:]+: /.test(l)),
    r.stdout,
  );
};

// ---- bad public keys: quoted, shortened, never a forged line --------------------------------

const badRecipientRows: Row[] = [
  {
    name: 'encrypt --age with a typo',
    args: () => ['encrypt', '--age', recipient.replace(/.$/, (c) => (c === 'q' ? 'p' : 'q')), 'plain.yaml'],
    code: 2,
    error: /^invalid age recipient age1\S+$/,
    where: '--age',
  },
  {
    name: 'encrypt --age in upper case',
    args: () => ['encrypt', '--age', recipient.toUpperCase(), 'plain.yaml'],
    code: 2,
    error: /^invalid age recipient AGE1\S+$/,
    where: '--age',
  },
  {
    name: 'encrypt --age with an escape sequence',
    args: () => ['encrypt', '--age', `age1\u001b[31mred`, 'plain.yaml'],
    code: 2,
    error: /^invalid age recipient "age1\\u001b\[31mred"$/,
    where: '--age',
  },
  {
    name: 'encrypt --age with a newline forging a line',
    args: () => ['encrypt', '--age', 'age1x\nerror: forged', 'plain.yaml'],
    code: 2,
    error: /^invalid age recipient "age1x\\nerror: forged"$/,
    where: '--age',
  },
  {
    name: 'encrypt --age of 10,000 characters',
    args: () => ['encrypt', '--age', `age1${'q'.repeat(10_000)}`, 'plain.yaml'],
    code: 2,
    error: /^invalid age recipient age1q{76}…$/,
    where: '--age',
  },
  {
    name: 'encrypt --age with the PQ public key typo',
    args: () => ['encrypt', '--age', pqRecipient.replace(/.$/, (c) => (c === 'q' ? 'p' : 'q')), 'plain.yaml'],
    code: 2,
    error: /^invalid age recipient age1pq1\S+…$/,
    where: '--age',
  },
  {
    name: 'encrypt --pgp with 39 hex digits',
    args: () => ['encrypt', '--pgp', fingerprint.slice(1), 'plain.yaml'],
    code: 2,
    error: /^invalid OpenPGP fingerprint [0-9A-F]{39}$/,
    where: '--pgp',
  },
  {
    name: 'encrypt --pgp with the armored public key',
    args: () => ['encrypt', '--pgp', pgpPublic, 'plain.yaml'],
    code: 2,
    error: /^invalid OpenPGP fingerprint "-----BEGIN PGP PUBLIC KEY BLOCK-----\\n.*"…$/,
    where: '--pgp',
  },
  {
    name: 'encrypt --pgp with an e-mail address',
    args: () => ['encrypt', '--pgp', 'ops@example.com', 'plain.yaml'],
    code: 2,
    error: /^invalid OpenPGP fingerprint ops@example\.com$/,
    where: '--pgp',
  },
  {
    name: '.sops.yaml with a typo in age:',
    setup: (w) => writeFileSync(join(w.dir, '.sops.yaml'), sopsYaml(`${recipient}x`)),
    args: () => ['encrypt', 'plain.yaml'],
    code: 1,
    error: /^invalid age recipient age1\S+$/,
    where: SOPS_YAML_LINE,
  },
  {
    name: '.sops.yaml with the public key file pasted in pgp:',
    setup: (w) => writeFileSync(join(w.dir, '.sops.yaml'), sopsYaml('', pgpPublic)),
    args: () => ['encrypt', 'plain.yaml'],
    code: 1,
    error: /^invalid OpenPGP fingerprint -----BEGINPGPPUBLICKEYBLOCK-----\S+…$/,
    where: SOPS_YAML_LINE,
  },
  {
    name: 'rotate --add-age with a typo',
    args: () => ['rotate', '-i', '--add-age', 'age1typo', 'enc.yaml'],
    code: 2,
    error: /^invalid age recipient age1typo$/,
    where: '--add-age',
  },
  {
    name: 'rotate --rm-pgp that is no fingerprint',
    args: () => ['rotate', '-i', '--rm-pgp', 'nope', 'enc.yaml'],
    code: 2,
    error: /^invalid OpenPGP fingerprint nope$/,
    where: '--rm-pgp',
  },
  {
    name: 'init --age with a typo',
    inRepo: true,
    args: (w) => ['init', '--cluster', 'production', '--repo', w.repo, '--age', 'age1typo'],
    code: 2,
    error: /^invalid age recipient age1typo$/,
    where: '--age',
  },
  {
    name: 'encrypt --pgp with a valid fingerprint with spaces (as gpg prints it) is accepted',
    args: () => ['encrypt', '--pgp', fingerprint.replace(/(.{4})/g, '$1 ').trim(), '--key-file', 'p.asc', 'plain.yaml'],
    code: 0,
    verify: (_w, r) => assert.match(r.stdout, /ENC\[AES256_GCM/),
  },
];

// ---- in-place writes through symlinks --------------------------------------------------------

/** The link is still a link to the same target, and the target now holds `check`. */
const throughLink = (link: string, target: string, check: (text: string) => void) => (w: World) => {
  assert.ok(lstatSync(join(w.dir, link)).isSymbolicLink(), `${link} is still a symlink`);
  assert.equal(readlinkSync(join(w.dir, link)), target);
  check(readFileSync(join(w.dir, dirname(link), target), 'utf8'));
};
const encrypted = (secret: string) => (text: string) => {
  assert.match(text, /ENC\[AES256_GCM/);
  assert.ok(!text.includes(secret), 'the secret is encrypted');
};

const symlinkRows: Row[] = [
  {
    name: 'encrypt -i through a symlink',
    args: () => ['encrypt', '-i', 'link.yaml'],
    code: 0,
    verify: throughLink('link.yaml', 'real.yaml', encrypted(SECRETS.real)),
  },
  {
    name: 'encrypt -i through a symlink to a file in another folder',
    setup: (w) => {
      mkdirSync(join(w.dir, 'sub'));
      symlinkSync('../real.yaml', join(w.dir, 'sub', 'link.yaml'));
    },
    args: () => ['encrypt', '-i', 'sub/link.yaml'],
    code: 0,
    verify: throughLink('sub/link.yaml', '../real.yaml', encrypted(SECRETS.real)),
  },
  {
    name: 'decrypt -i through a symlink',
    setup: (w) => allowSecretsIn(join(w.dir, 'enc-real.yaml')),
    args: () => ['decrypt', '-i', 'enc-link.yaml'],
    code: 0,
    verify: throughLink('enc-link.yaml', 'enc-real.yaml', (t) => assert.equal(t, `password: ${SECRETS.real}\n`)),
  },
  {
    name: 'set through a symlink',
    input: 'canary-set-value-0001\n',
    args: () => ['set', 'enc-link.yaml', '["password"]'],
    code: 0,
    verify: throughLink('enc-link.yaml', 'enc-real.yaml', encrypted('canary-set-value-0001')),
  },
  {
    name: 'unset through a symlink',
    args: () => ['unset', 'enc-link.yaml', '["password"]'],
    code: 0,
    verify: throughLink('enc-link.yaml', 'enc-real.yaml', (t) => assert.doesNotMatch(t, /^password:/m)),
  },
  {
    name: 'rotate -i through a symlink',
    args: () => ['rotate', '-i', 'enc-link.yaml'],
    code: 0,
    verify: throughLink('enc-link.yaml', 'enc-real.yaml', encrypted(SECRETS.real)),
  },
  {
    name: 'updatekeys through a symlink',
    setup: (w) => writeFileSync(join(w.dir, '.sops.yaml'), sopsYaml(`${recipient},${pqRecipient}`)),
    args: () => ['updatekeys', 'enc-link.yaml'],
    code: 0,
    verify: throughLink('enc-link.yaml', 'enc-real.yaml', (t) => assert.ok(t.includes(pqRecipient), 'the new recipient is in the target')),
  },
  {
    name: 'keys new --append through a symlink',
    args: (w) => ['keys', 'new', '--append', '--out', join(w.dir, 'k-link.agekey')],
    code: 0,
    verify: throughLink('k-link.agekey', 'k.agekey', (t) => assert.equal(t.match(/^AGE-SECRET-KEY-1/gm)?.length, 2)),
  },
  {
    name: 'init does not write through a repository symlink that leads out of it',
    inRepo: true,
    setup: (w) => {
      writeFileSync(join(w.repo, '..', 'outside.txt'), 'mine\n');
      rmSync(join(w.repo, '.gitignore'));
      symlinkSync(join('..', 'outside.txt'), join(w.repo, '.gitignore'));
    },
    args: (w) => ['init', '--cluster', 'production', '--repo', w.repo, '--age', recipient],
    code: 1,
    verify: (w, r) => {
      assert.match(r.stderr, /^ {2}error: refusing to write through a symlink that leads out of the repository \(\S+\/\.gitignore\)$/m);
      assert.equal(readFileSync(join(w.repo, '..', 'outside.txt'), 'utf8'), 'mine\n');
      assert.ok(lstatSync(join(w.repo, '.gitignore')).isSymbolicLink());
    },
  },
  {
    name: 'keys new (no --append) through a symlink to a key refuses',
    args: (w) => ['keys', 'new', '--out', join(w.dir, 'k-link.agekey')],
    code: 1,
    error: /^refusing to overwrite an existing key file/,
  },
];

// ---- batches where one target cannot be written ----------------------------------------------

const denied = /^cannot write file: permission denied$/;
const unwritableRows: Row[] = [
  {
    name: 'encrypt -i a.yaml locked/b.yaml',
    unprivileged: true,
    args: () => ['encrypt', '-i', 'a.yaml', 'locked/b.yaml'],
    code: 1,
    error: denied,
    where: 'locked/b.yaml',
  },
  {
    name: 'encrypt -i locked/b.yaml a.yaml (the bad one first)',
    unprivileged: true,
    args: () => ['encrypt', '-i', 'locked/b.yaml', 'a.yaml'],
    code: 1,
    error: denied,
    where: 'locked/b.yaml',
  },
  {
    name: 'encrypt -i through a symlink into a locked folder',
    unprivileged: true,
    setup: (w) => symlinkSync('locked/b.yaml', join(w.dir, 'b-link.yaml')),
    args: () => ['encrypt', '-i', 'a.yaml', 'b-link.yaml'],
    code: 1,
    error: denied,
    where: 'b-link.yaml',
  },
  {
    name: 'decrypt -i enc.yaml locked/enc-b.yaml',
    unprivileged: true,
    args: () => ['decrypt', '-i', 'enc.yaml', 'locked/enc-b.yaml'],
    code: 1,
    error: denied,
    where: 'locked/enc-b.yaml',
  },
  {
    name: 'rotate -i enc.yaml locked/enc-b.yaml',
    unprivileged: true,
    args: () => ['rotate', '-i', 'enc.yaml', 'locked/enc-b.yaml'],
    code: 1,
    error: denied,
    where: 'locked/enc-b.yaml',
  },
  {
    name: 'updatekeys enc.yaml locked/enc-b.yaml',
    unprivileged: true,
    setup: (w) => writeFileSync(join(w.dir, '.sops.yaml'), sopsYaml(`${recipient},${pqRecipient}`)),
    args: () => ['updatekeys', 'enc.yaml', 'locked/enc-b.yaml'],
    code: 1,
    error: denied,
    where: 'locked/enc-b.yaml',
  },
  {
    name: 'set in a locked folder',
    unprivileged: true,
    input: 'canary-locked-set-0002\n',
    args: () => ['set', 'locked/enc-b.yaml', '["password"]'],
    code: 1,
    error: denied,
    where: 'locked/enc-b.yaml',
  },
  {
    name: 'unset in a locked folder',
    unprivileged: true,
    args: () => ['unset', 'locked/enc-b.yaml', '["password"]'],
    code: 1,
    error: denied,
    where: 'locked/enc-b.yaml',
  },
  {
    name: 'encrypt --output into a locked folder',
    unprivileged: true,
    args: () => ['encrypt', '--output', 'locked/out.yaml', 'a.yaml'],
    code: 1,
    error: denied,
    where: 'locked/out.yaml',
  },
  {
    name: 'decrypt --output into a locked folder',
    unprivileged: true,
    args: () => ['decrypt', '--output', 'locked/out.yaml', 'enc.yaml'],
    code: 1,
    error: denied,
    where: 'locked/out.yaml',
  },
  {
    name: 'keys new --append to a key in a locked folder',
    unprivileged: true,
    setup: (w) => cpSync(join(w.dir, 'k.agekey'), join(w.dir, 'locked', 'k.agekey')),
    args: (w) => ['keys', 'new', '--append', '--out', join(w.dir, 'locked', 'k.agekey')],
    code: 1,
    // The key file's lock is the first thing it cannot create.
    error: /^cannot create lock file: permission denied$/,
    where: /\/locked\/k\.agekey\.lock$/,
  },
  {
    name: 'encrypt -i a.yaml missing.yaml (the batch stops before any write)',
    args: () => ['encrypt', '-i', 'a.yaml', 'missing.yaml'],
    code: 1,
    error: /^cannot read file: no such file or directory$/,
    where: 'missing.yaml',
  },
  {
    name: 'encrypt -i a.yaml enc.yaml (already encrypted: nothing written)',
    args: () => ['encrypt', '-i', 'a.yaml', 'enc.yaml'],
    code: 1,
    error: /already encrypted/,
  },
];

// ---- empty values and bad flags --------------------------------------------------------------

const emptyStdin = /^empty value for \["password"\]: standard input was empty$/;
const setPassword = () => ['set', 'enc.yaml', '["password"]'];
const valueRows: Row[] = [
  { name: 'set with empty stdin', input: '', args: setPassword, code: 2, error: emptyStdin, where: 'stdin' },
  { name: 'set with a lone newline', input: '\n', args: setPassword, code: 2, error: emptyStdin, where: 'stdin' },
  { name: 'set with a lone CRLF', input: '\r\n', args: setPassword, code: 2, error: emptyStdin, where: 'stdin' },
  {
    name: 'set --json-value with empty stdin',
    input: '',
    args: () => ['set', '--json-value', 'enc.yaml', '["password"]'],
    code: 2,
    error: emptyStdin,
    where: 'stdin',
  },
  {
    name: 'set --allow-empty with empty stdin sets ""',
    input: '',
    args: () => ['set', '--allow-empty', 'enc.yaml', '["password"]'],
    code: 0,
    verify: (w) => {
      const r = runCli(['decrypt', '--extract', '["password"]', 'enc.yaml'], { cwd: w.dir, env: env(w), revealsSecrets: true });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
    },
  },
  {
    name: 'set --json-value with bad JSON',
    input: 'canary-not-json-0003',
    args: () => ['set', '--json-value', 'enc.yaml', '["password"]'],
    code: 2,
    error: /^--json-value: the value on stdin is not JSON$/,
  },
  { name: 'set with a malformed path', input: 'x-value-0004', args: () => ['set', 'enc.yaml', 'password'], code: 2, error: /^invalid path password/ },
  { name: 'set on a plaintext file', input: 'x-value-0005', args: () => ['set', 'plain.yaml', '["password"]'], code: 1 },
  { name: 'unset on a plaintext file', args: () => ['unset', 'plain.yaml', '["password"]'], code: 1 },
  {
    name: 'encrypt -i and --output together',
    args: () => ['encrypt', '-i', '--output', 'x.yaml', 'plain.yaml'],
    code: 2,
    error: /^use either --in-place or --output, not both$/,
  },
  {
    name: 'encrypt --output with two files',
    args: () => ['encrypt', '--output', 'x.yaml', 'plain.yaml', 'a.yaml'],
    code: 2,
    error: /^--output takes a single input file$/,
  },
  {
    name: 'encrypt --input-type <age private key>',
    args: () => ['encrypt', '--input-type', keys.age ?? '', 'plain.yaml'],
    code: 2,
    error: /^--input-type must be one of /,
  },
  { name: 'encrypt --age without a value', args: () => ['encrypt', 'plain.yaml', '--age'], code: 2, error: /^option '--age <recipients>' argument missing$/ },
  {
    name: 'encrypt with an unknown flag holding a key',
    args: () => ['encrypt', `--recipient=${keys.age ?? ''}`, 'plain.yaml'],
    code: 2,
    error: /^unknown option '--recipient=<an age private key, not shown>'$/,
  },
  {
    name: 'encrypt without recipients or .sops.yaml',
    setup: (w) => writeFileSync(join(w.dir, '.sops.yaml'), 'creation_rules: []\n'),
    args: () => ['encrypt', 'plain.yaml'],
    code: 1,
    error: /^no creation rule matches plain\.yaml$/,
  },
  {
    name: 'decrypt --extract with -i',
    args: () => ['decrypt', '-i', '--extract', '["password"]', 'enc.yaml'],
    code: 2,
    error: /^--extract prints one value: it does not go with --in-place$/,
  },
  {
    name: 'decrypt with only a PQ key that does not open the file',
    args: () => ['decrypt', '--key-file', 'pq.agekey', 'enc.yaml'],
    env: () => ({ SOPS_AGE_KEY_FILE: '' }),
    code: 1,
  },
  {
    name: 'decrypt --key-file with a private key file of the wrong kind (ssh)',
    args: () => ['decrypt', '--key-file', 'id_ed25519', 'enc.yaml'],
    code: 1,
    error: /^an SSH private key is not an age identity: kustomize-controller imports only age X25519 identities into sops-age$/,
    where: /id_ed25519:1$/,
  },
  {
    name: 'keys pub of an ssh private key',
    args: () => ['keys', 'pub', 'id_ed25519'],
    code: 1,
    error: /^an SSH private key is not an age identity/,
    where: 'id_ed25519:1',
  },
  { name: 'keys pub of a .sops.yaml', args: () => ['keys', 'pub', '.sops.yaml'], code: 1, where: /^\.sops\.yaml:\d+$/, error: /^not an age identity line$/ },
  { name: 'keys new --out an existing key', args: () => ['keys', 'new', '--out', 'k.agekey'], code: 1, error: /^refusing to overwrite an existing key file/ },
  { name: 'updatekeys on a plaintext file', args: () => ['updatekeys', 'plain.yaml'], code: 1 },
  { name: 'rotate -i on a plaintext file', args: () => ['rotate', '-i', 'plain.yaml'], code: 1 },
];

// ---- SOPS files whose own metadata holds a private key ----------------------------------------

const STANZA = / {8}- enc: \|\n(?: {12}.*\n)+ {10}recipient: (age1\S+)\n/;
/** enc.yaml with its age stanza copied, or moved (`only`), under a private key posing as the recipient. */
const keyInMetadata = (only: boolean) => (w: World) => {
  const file = join(w.dir, 'enc.yaml');
  const text = readFileSync(file, 'utf8');
  const m = STANZA.exec(text);
  assert.ok(m, 'enc.yaml has an age stanza');
  const forged = m[0].replace(m[1] ?? '', keys.age ?? '');
  writeFileSync(file, text.replace(m[0], only ? forged : `${m[0]}${forged}`));
  allowSecretsIn(file);
};
const noKeys = () => ({ SOPS_AGE_KEY_FILE: '' });

const hostileFileRows: Row[] = [
  {
    name: 'updatekeys drops a private key posing as a recipient, without printing it',
    setup: keyInMetadata(false),
    args: () => ['updatekeys', 'enc.yaml'],
    code: 0,
    verify: (w, r) => {
      assert.match(r.stderr, /^enc\.yaml: keys updated; removed age:<an age private key, not shown>$/m);
      assert.ok(!readFileSync(join(w.dir, 'enc.yaml'), 'utf8').includes('AGE-SECRET-KEY'));
    },
  },
  {
    name: 'decrypt of a file "encrypted to" a private key names it, not shows it',
    setup: keyInMetadata(true),
    env: noKeys,
    args: () => ['decrypt', 'enc.yaml'],
    code: 1,
    error: /^no key at hand opens this file$/,
    where: 'enc.yaml',
  },
  {
    name: 'check --key-file of such a file reports it without the key',
    setup: keyInMetadata(true),
    env: noKeys,
    args: () => ['check', '--key-file', 'pq.agekey', 'enc.yaml'],
    code: 1,
    verify: findingsOnly,
  },
  {
    name: '--json check --key-file of such a file',
    setup: keyInMetadata(true),
    env: noKeys,
    args: () => ['--json', 'check', '--key-file', 'pq.agekey', 'enc.yaml'],
    code: 1,
    verify: (_w, r) => assert.equal((JSON.parse(r.stdout) as { success: boolean }).success, false),
  },
  {
    name: 'rotate -i of such a file cannot encrypt the new data key to it',
    setup: keyInMetadata(false),
    args: () => ['rotate', '-i', 'enc.yaml'],
    code: 1,
    error: /^cannot encrypt to the age recipient <an age private key, not shown>: /,
  },
];

// ---- every command, bad input: one line naming the file or flag ------------------------------

/** A file of the row's input; it may hold a canary on purpose. */
const put = (file: string, text: string) => (w: World) => {
  mkdirSync(dirname(join(w.dir, file)), { recursive: true });
  writeFileSync(join(w.dir, file), text);
  allowSecretsIn(join(w.dir, file));
};
/** enc.yaml with its MAC ciphertext changed: every command that opens it must refuse. */
const tamperMac = (w: World) => {
  const file = join(w.dir, 'enc.yaml');
  writeFileSync(
    file,
    readFileSync(file, 'utf8').replace(/mac: ENC\[AES256_GCM,data:(.)/, (_m, c: string) => `mac: ENC[AES256_GCM,data:${c === 'Z' ? 'Y' : 'Z'}`),
  );
};
/** enc.yaml cut in the middle of its metadata. */
const truncate = (w: World) => {
  const file = join(w.dir, 'enc.yaml');
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.slice(0, text.indexOf('lastmodified')));
};
const CLUSTER_X = 'clusters:\n  x:\n    path: clusters/x\n';
const PLAY = (body: string) => `name: p\ntasks:\n${body}`;
const macChanged = /^the MAC does not decrypt: the metadata was changed$/;
const noSuchFile = /^cannot read file: no such file or directory$/;
const isDir = /^cannot read file: is a directory$/;
const inRepoInit =
  (...extra: string[]) =>
  (w: World) => ['init', '--cluster', 'production', '--repo', w.repo, '--age', recipient, ...extra];

const commandRows: Row[] = [
  // keys
  { name: 'keys new --pgp without --out', args: () => ['keys', 'new', '--pgp'], code: 2, error: /^--pgp needs --out FILE: where to keep the private key$/ },
  { name: 'keys new --pgp --type dsa', args: () => ['keys', 'new', '--pgp', '--type', 'dsa', '--out', 'x.asc'], code: 2, error: /^unknown --type dsa$/ },
  {
    name: 'keys new --out under a file',
    args: () => ['keys', 'new', '--out', 'plain.yaml/k.agekey'],
    code: 1,
    error: /^cannot create folder: a parent is not a directory$/,
    where: 'plain.yaml',
  },
  { name: 'keys pub of a missing file', args: () => ['keys', 'pub', 'missing.agekey'], code: 1, error: noSuchFile, where: 'missing.agekey' },
  {
    name: 'keys pub of an empty file',
    setup: put('empty.agekey', ''),
    args: () => ['keys', 'pub', 'empty.agekey'],
    code: 1,
    error: /^no age identity found$/,
    where: 'empty.agekey',
  },
  { name: 'keys pub of a folder', args: () => ['keys', 'pub', 'locked'], code: 1, error: isDir, where: 'locked' },
  {
    name: 'keys pub of a plaintext secret file',
    args: () => ['keys', 'pub', 'plain.yaml'],
    code: 1,
    error: /^not an age identity line$/,
    where: 'plain.yaml:1',
  },
  {
    name: 'keys pub of a truncated age key',
    setup: (w) => {
      writeFileSync(join(w.dir, 'cut.agekey'), `${(keys.age ?? '').slice(0, 40)}\n`);
      allowSecretsIn(join(w.dir, 'cut.agekey'));
    },
    args: () => ['keys', 'pub', 'cut.agekey'],
    code: 1,
    where: 'cut.agekey:1',
  },
  { name: 'keys with an unknown subcommand', args: () => ['keys', 'bogus'], code: 2, error: /^unknown command 'bogus'$/ },
  { name: 'keys rotate without --cluster', args: () => ['keys', 'rotate'], code: 2, error: /^required option '--cluster <name>' not specified$/ },
  {
    name: 'keys rotate of an unknown cluster',
    inRepo: true,
    args: () => ['keys', 'rotate', '--cluster', 'nope', '--key-file', 'none.agekey'],
    code: 2,
    error: /^cluster "nope" is not in /,
  },
  // init
  { name: 'init without --cluster', args: () => ['init'], code: 2, error: /^required option '--cluster <name>' not specified$/ },
  { name: 'init --cluster a/b', args: () => ['init', '--cluster', 'a/b'], code: 2, error: /^invalid cluster name "a\/b"$/ },
  {
    name: 'init --cluster with a newline',
    args: () => ['init', '--cluster', 'a\nerror: forged'],
    code: 2,
    error: /^invalid cluster name "a\\nerror: forged"$/,
  },
  {
    name: 'init --path out of the repository',
    inRepo: true,
    args: inRepoInit('--path', '../outside'),
    code: 2,
    error: /^--path must be a folder inside the repository: \.\.\/outside$/,
  },
  {
    name: 'init --path absolute elsewhere',
    inRepo: true,
    args: inRepoInit('--path', '/etc'),
    code: 2,
    error: /^--path must be a folder inside the repository/,
  },
  {
    name: 'init --repo that does not exist',
    args: () => ['init', '--cluster', 'x', '--repo', 'no/such/repo', '--age', recipient],
    code: 1,
    error: /^repository folder not found$/,
  },
  {
    name: 'init --watch-all-namespaces maybe',
    inRepo: true,
    args: inRepoInit('--watch-all-namespaces', 'maybe'),
    code: 2,
    error: /^option '--watch-all-namespaces <bool>' argument 'maybe' is invalid\. true or false$/,
  },
  { name: 'init --network-policy 1', inRepo: true, args: inRepoInit('--network-policy', '1'), code: 2, error: /argument '1' is invalid\. true or false$/ },
  { name: 'init --components bogus', inRepo: true, args: inRepoInit('--components', 'bogus', '--force'), code: 2, error: /bogus/ },
  { name: 'init --components-extra bogus', inRepo: true, args: inRepoInit('--components-extra', 'bogus', '--force'), code: 2, error: /bogus/ },
  { name: 'init --log-level loud', inRepo: true, args: inRepoInit('--log-level', 'loud', '--force'), code: 2, error: /loud/ },
  { name: 'init --flux-version vX', inRepo: true, args: inRepoInit('--flux-version', 'vX', '--force'), code: 2, error: /vX/ },
  { name: 'init --git-url ftp://', inRepo: true, args: inRepoInit('--git-url', 'ftp://example.com/r.git'), code: 2, error: /ftp:\/\/example\.com\/r\.git/ },
  {
    name: 'init --age-key-file missing',
    inRepo: true,
    args: (w) => ['init', '--cluster', 'production', '--repo', w.repo, '--age-key-file', 'missing.agekey'],
    code: 1,
    error: noSuchFile,
  },
  // encrypt
  { name: 'encrypt a missing file', args: () => ['encrypt', 'missing.yaml'], code: 1, error: noSuchFile, where: 'missing.yaml' },
  { name: 'encrypt a folder', args: () => ['encrypt', 'locked'], code: 1, error: isDir, where: 'locked' },
  {
    name: 'encrypt binary bytes as YAML',
    setup: put('bin.yaml', '\u0000\u00ff\u00fe'),
    args: () => ['encrypt', 'bin.yaml'],
    code: 1,
    where: /^bin\.yaml(:\d+)?$/,
  },
  {
    name: 'encrypt a YAML scalar',
    setup: put('scalar.yaml', 'just a string\n'),
    args: () => ['encrypt', 'scalar.yaml'],
    code: 1,
    error: /^the top level of a YAML document must be a map$/,
    where: 'scalar.yaml:1',
  },
  {
    name: 'encrypt a YAML list',
    setup: put('list.yaml', '- a\n- b\n'),
    args: () => ['encrypt', 'list.yaml'],
    code: 1,
    error: /must be a map/,
    where: /^list\.yaml:1$/,
  },
  {
    name: 'encrypt a file with a top-level sops key',
    setup: put('reserved.yaml', `sops: x\npassword: ${SECRETS.plain}\n`),
    args: () => ['encrypt', 'reserved.yaml'],
    code: 1,
    error: /^the file is already encrypted$/,
    where: 'reserved.yaml',
  },
  {
    name: 'encrypt invalid JSON',
    setup: put('bad.json', `{"password": "${SECRETS.plain}"`),
    args: () => ['encrypt', '--age', recipient, 'bad.json'],
    code: 1,
    error: /^expected "," or "}"$/,
    where: /^bad\.json:1$/,
  },
  { name: 'encrypt a JSON array', setup: put('arr.json', '[1, 2]'), args: () => ['encrypt', '--age', recipient, 'arr.json'], code: 1, where: /^arr\.json/ },
  {
    name: 'encrypt a dotenv line without =',
    setup: put('bad.env', `PASSWORD ${SECRETS.plain}\n`),
    args: () => ['encrypt', '--age', recipient, 'bad.env'],
    code: 1,
    error: /^invalid dotenv line: no "="$/,
    where: 'bad.env:1',
  },
  {
    name: 'encrypt an INI with an unclosed section',
    setup: put('bad.ini', `[sec\npassword = ${SECRETS.plain}\n`),
    args: () => ['encrypt', '--age', recipient, 'bad.ini'],
    code: 1,
    error: /^unclosed section header$/,
    where: 'bad.ini:1',
  },
  { name: 'encrypt --input-type json of YAML', args: () => ['encrypt', '--input-type', 'json', 'plain.yaml'], code: 1, where: /^plain\.yaml/ },
  {
    name: 'encrypt --encrypted-regex (',
    args: () => ['encrypt', '--encrypted-regex', '(', 'plain.yaml'],
    code: 1,
    error: /is not a valid regular expression/,
    where: '--encrypted-regex',
  },
  {
    name: 'encrypt --unencrypted-regex with a backreference',
    args: () => ['encrypt', '--unencrypted-regex', '(a)\\1', 'plain.yaml'],
    code: 1,
    error: /is not a valid regular expression/,
    where: '--unencrypted-regex',
  },
  {
    name: 'encrypt --encrypted-regex with a lookahead',
    args: () => ['encrypt', '--encrypted-regex', '(?=a)', 'plain.yaml'],
    code: 1,
    error: /is not a valid regular expression/,
    where: '--encrypted-regex',
  },
  {
    name: 'encrypt with two selection flags',
    args: () => ['encrypt', '--encrypted-regex', 'a', '--unencrypted-regex', 'b', 'plain.yaml'],
    code: 2,
    error: /^use only one of --encrypted-regex, --unencrypted-regex/,
  },
  {
    name: 'encrypt --shamir-secret-sharing-threshold abc',
    args: () => ['encrypt', '--shamir-secret-sharing-threshold', 'abc', 'plain.yaml'],
    code: 2,
    error: /argument 'abc' is invalid\. must be a positive integer$/,
  },
  { name: '.sops.yaml that is a list', setup: put('.sops.yaml', '- a\n'), args: () => ['encrypt', 'plain.yaml'], code: 1, where: /\.sops\.yaml(:\d+)?/ },
  {
    name: '.sops.yaml with creation_rules a string',
    setup: put('.sops.yaml', 'creation_rules: nope\n'),
    args: () => ['encrypt', 'plain.yaml'],
    code: 1,
    where: /\.sops\.yaml(:\d+)?/,
  },
  {
    name: '.sops.yaml with an invalid path_regex',
    setup: (w) => put('.sops.yaml', `creation_rules:\n  - path_regex: "("\n    age: ${recipient}\n`)(w),
    args: () => ['encrypt', 'plain.yaml'],
    code: 1,
    error: /is not a valid regular expression/,
    where: /\.sops\.yaml:\d+/,
  },
  {
    name: '.sops.yaml with a number as age:',
    setup: put('.sops.yaml', 'creation_rules:\n  - age: 42\n'),
    args: () => ['encrypt', 'plain.yaml'],
    code: 1,
    error: /^invalid age recipient 42$/,
    where: SOPS_YAML_LINE,
  },
  {
    name: '.sops.yaml with invalid YAML',
    setup: put('.sops.yaml', 'creation_rules: [\n'),
    args: () => ['encrypt', 'plain.yaml'],
    code: 1,
    where: /\.sops\.yaml:\d+/,
  },
  {
    name: '.sops.yaml with a tab indent',
    setup: put('.sops.yaml', 'creation_rules:\n\t- age: x\n'),
    args: () => ['encrypt', 'plain.yaml'],
    code: 1,
    where: /\.sops\.yaml:\d+/,
  },
  // decrypt
  {
    name: 'decrypt a plaintext file',
    args: () => ['decrypt', 'plain.yaml'],
    code: 1,
    error: /^sops metadata not found: the file is not encrypted$/,
    where: 'plain.yaml',
  },
  { name: 'decrypt a missing file', args: () => ['decrypt', 'missing.yaml'], code: 1, error: noSuchFile, where: 'missing.yaml' },
  { name: 'decrypt with a tampered MAC', setup: tamperMac, args: () => ['decrypt', 'enc.yaml'], code: 1, error: macChanged, where: 'enc.yaml at sops.mac' },
  {
    name: 'decrypt -i with a tampered MAC',
    setup: tamperMac,
    args: () => ['decrypt', '-i', 'enc.yaml'],
    code: 1,
    error: macChanged,
    where: 'enc.yaml at sops.mac',
  },
  { name: 'decrypt truncated metadata', setup: truncate, args: () => ['decrypt', 'enc.yaml'], code: 1, error: /^invalid sops metadata/, where: /^enc\.yaml/ },
  {
    name: 'decrypt a value whose ciphertext was swapped',
    setup: (w) => {
      const f = join(w.dir, 'enc.yaml');
      writeFileSync(f, readFileSync(f, 'utf8').replace(/password: ENC\[AES256_GCM,data:[^,]+,/, 'password: ENC[AES256_GCM,data:AAAA,'));
    },
    args: () => ['decrypt', 'enc.yaml'],
    code: 1,
    where: /^enc\.yaml/,
  },
  {
    name: 'decrypt --extract of a missing key',
    args: () => ['decrypt', '--extract', '["nope"]', 'enc.yaml'],
    code: 1,
    error: /^the document has no \["nope"\]$/,
    where: 'enc.yaml',
  },
  { name: 'decrypt --extract with a bare word', args: () => ['decrypt', '--extract', 'nope', 'enc.yaml'], code: 2, error: /^invalid path nope at column 1/ },
  { name: 'decrypt --extract with an unclosed bracket', args: () => ['decrypt', '--extract', '["password"', 'enc.yaml'], code: 2, error: /^invalid path/ },
  {
    name: 'decrypt --key-file missing',
    args: () => ['decrypt', '--key-file', 'missing.agekey', 'enc.yaml'],
    code: 1,
    error: /^cannot read key file: no such file or directory$/,
    where: 'missing.agekey',
  },
  {
    name: 'decrypt with SOPS_AGE_KEY_FILE missing',
    env: () => ({ SOPS_AGE_KEY_FILE: 'missing.agekey' }),
    args: () => ['decrypt', 'enc.yaml'],
    code: 1,
    where: /missing\.agekey|SOPS_AGE_KEY_FILE|enc\.yaml/,
  },
  {
    name: 'decrypt with SOPS_AGE_KEY garbage',
    env: () => ({ SOPS_AGE_KEY_FILE: '', SOPS_AGE_KEY: 'not a key' }),
    args: () => ['decrypt', 'enc.yaml'],
    code: 1,
    where: /SOPS_AGE_KEY/,
  },
  // set / unset
  {
    name: 'set on a missing file',
    input: 'canary-set-missing-0006\n',
    args: () => ['set', 'missing.yaml', '["a"]'],
    code: 1,
    error: noSuchFile,
    where: 'missing.yaml',
  },
  {
    name: 'set with a tampered MAC',
    input: 'canary-set-mac-0007\n',
    setup: tamperMac,
    args: () => ['set', 'enc.yaml', '["password"]'],
    code: 1,
    error: macChanged,
    where: 'enc.yaml at sops.mac',
  },
  {
    name: 'set under a value',
    input: 'canary-set-under-0008\n',
    args: () => ['set', 'enc.yaml', '["password"]["x"]'],
    code: 1,
    error: /^\["password"\] is a value, not a map$/,
  },
  { name: 'unset with a bare word path', args: () => ['unset', 'enc.yaml', 'bad'], code: 2, error: /^invalid path bad at column 1/ },
  {
    name: 'unset with a tampered MAC',
    setup: tamperMac,
    args: () => ['unset', 'enc.yaml', '["password"]'],
    code: 1,
    error: macChanged,
    where: 'enc.yaml at sops.mac',
  },
  { name: 'unset on a missing file', args: () => ['unset', 'missing.yaml', '["a"]'], code: 1, error: noSuchFile, where: 'missing.yaml' },
  // updatekeys / rotate
  { name: 'updatekeys a missing file', args: () => ['updatekeys', 'missing.yaml'], code: 1, error: noSuchFile, where: 'missing.yaml' },
  {
    name: 'updatekeys without a key that opens the file',
    env: () => ({ SOPS_AGE_KEY_FILE: '' }),
    setup: (w) => writeFileSync(join(w.dir, '.sops.yaml'), sopsYaml(`${recipient},${pqRecipient}`)),
    args: () => ['updatekeys', 'enc.yaml'],
    code: 1,
    error: /^no key at hand opens this file$/,
    where: 'enc.yaml',
  },
  {
    name: 'updatekeys --shamir-secret-sharing-threshold 0',
    args: () => ['updatekeys', '--shamir-secret-sharing-threshold', '0', 'enc.yaml'],
    code: 2,
    error: /argument '0' is invalid/,
  },
  {
    name: 'updatekeys truncated metadata',
    setup: truncate,
    args: () => ['updatekeys', 'enc.yaml'],
    code: 1,
    error: /^invalid sops metadata/,
    where: /^enc\.yaml/,
  },
  {
    name: 'updatekeys with no matching rule',
    setup: put('.sops.yaml', 'creation_rules:\n  - path_regex: \\.json$\n    age: x\n'),
    args: () => ['updatekeys', 'enc.yaml'],
    code: 1,
    where: /enc\.yaml|\.sops\.yaml/,
  },
  { name: 'rotate -i a missing file', args: () => ['rotate', '-i', 'missing.yaml'], code: 1, error: noSuchFile, where: 'missing.yaml' },
  {
    name: 'rotate -i with a tampered MAC',
    setup: tamperMac,
    args: () => ['rotate', '-i', 'enc.yaml'],
    code: 1,
    error: macChanged,
    where: 'enc.yaml at sops.mac',
  },
  {
    name: 'rotate -i truncated metadata',
    setup: truncate,
    args: () => ['rotate', '-i', 'enc.yaml'],
    code: 1,
    error: /^invalid sops metadata/,
    where: /^enc\.yaml/,
  },
  // check
  {
    name: 'check --key-file missing',
    args: () => ['check', '--key-file', 'missing.agekey', '.'],
    code: 1,
    error: /^cannot read key file: no such file or directory$/,
    where: 'missing.agekey',
  },
  {
    name: 'check --config missing',
    args: () => ['check', '--config', 'missing.yaml', '.'],
    code: 1,
    error: /^cannot read \.sops\.yaml: no such file or directory$/,
    where: /missing\.yaml$/,
  },
  { name: 'check a tampered MAC with the key', setup: tamperMac, args: () => ['check', '--key-file', 'k.agekey', 'enc.yaml'], code: 1, verify: findingsOnly },
  { name: 'check truncated metadata', setup: truncate, args: () => ['check', 'enc.yaml'], code: 1, verify: findingsOnly },
  {
    name: 'check a plaintext Secret in a .json',
    setup: put('s.json', JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, stringData: { password: SECRETS.plain } })),
    args: () => ['check', 's.json'],
    code: 1,
    verify: findingsOnly,
  },
  // bootstrap / run / status / doctor: refused before any cluster is touched
  { name: 'bootstrap without a cluster', args: () => ['bootstrap'], code: 2, error: /^no cluster named$/ },
  {
    name: 'bootstrap --timeout bogus',
    setup: put('fluxstrap.yaml', CLUSTER_X),
    args: () => ['bootstrap', '--cluster', 'x', '--timeout', 'bogus'],
    code: 2,
    error: /^--timeout bogus: expected a duration/,
  },
  {
    name: 'bootstrap with invalid fluxstrap.yaml',
    setup: put('fluxstrap.yaml', 'clusters: [\n'),
    args: () => ['bootstrap', '--cluster', 'x'],
    code: 1,
    error: /^invalid YAML/,
    where: /fluxstrap\.yaml:\d+:\d+$/,
  },
  {
    name: 'bootstrap with an unknown key in fluxstrap.yaml',
    setup: put('fluxstrap.yaml', `${CLUSTER_X}    bogus: 1\n`),
    args: () => ['bootstrap', '--cluster', 'x'],
    code: 1,
    error: /^unknown key "bogus"$/,
    where: /fluxstrap\.yaml:4:5 at clusters\.x\.bogus$/,
  },
  {
    name: 'bootstrap with a token value in fluxstrap.yaml',
    setup: put('fluxstrap.yaml', `${CLUSTER_X}    git:\n      url: https://example.com/r.git\n      auth:\n        https:\n          password: ${SECRETS.a}\n`),
    args: () => ['bootstrap', '--cluster', 'x'],
    code: 1,
    where: /fluxstrap\.yaml/,
  },
  {
    name: 'run a missing playbook',
    setup: put('fluxstrap.yaml', CLUSTER_X),
    args: () => ['run', 'missing.yaml', '--cluster', 'x'],
    code: 1,
    error: noSuchFile,
    where: 'missing.yaml',
  },
  {
    name: 'run a playbook with an unknown task kind',
    setup: (w) => {
      put('fluxstrap.yaml', CLUSTER_X)(w);
      put('p.yaml', PLAY('  - name: t\n    nosuchkind: {}\n'))(w);
    },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    error: /^unknown task kind or option "nosuchkind"$/,
    where: 'p.yaml:4:5',
  },
  {
    name: 'run a playbook whose tasks are a number',
    setup: (w) => {
      put('fluxstrap.yaml', CLUSTER_X)(w);
      put('p.yaml', 'name: p\ntasks: 3\n')(w);
    },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    error: /^expected array, received number$/,
    where: 'p.yaml:2:8 at tasks',
  },
  {
    name: 'run a playbook with a broken when:',
    setup: (w) => {
      put('fluxstrap.yaml', CLUSTER_X)(w);
      put('p.yaml', PLAY('  - name: t\n    namespace: {}\n    when: "1 +"\n'))(w);
    },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    error: /^bad expression: /,
    where: 'p.yaml:5:11',
  },
  {
    name: 'run -e without =',
    setup: (w) => {
      put('fluxstrap.yaml', CLUSTER_X)(w);
      put('p.yaml', PLAY('  - name: t\n    namespace: {}\n'))(w);
    },
    args: () => ['run', 'p.yaml', '--cluster', 'x', '-e', 'noequals'],
    code: 2,
    error: /^-e noequals: expected NAME=VALUE$/,
  },
  {
    name: 'run a playbook with bad task params',
    setup: (w) => {
      put('fluxstrap.yaml', CLUSTER_X)(w);
      put('p.yaml', PLAY('  - name: t\n    namespace: {bogus: 1}\n'))(w);
    },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    where: /^p\.yaml:\d+/,
  },
  {
    name: 'run a playbook that is a list',
    setup: (w) => {
      put('fluxstrap.yaml', CLUSTER_X)(w);
      put('p.yaml', '- a\n')(w);
    },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    where: /^p\.yaml/,
  },
  {
    name: 'status of an unknown cluster',
    setup: put('fluxstrap.yaml', CLUSTER_X),
    args: () => ['status', '--cluster', 'nope'],
    code: 2,
    error: /^cluster "nope" is not in .*fluxstrap\.yaml$/,
  },
  {
    name: 'doctor of an unknown cluster',
    setup: put('fluxstrap.yaml', CLUSTER_X),
    args: () => ['doctor', '--cluster', 'nope'],
    code: 2,
    error: /^cluster "nope" is not in .*fluxstrap\.yaml$/,
  },
  // the CLI itself
  { name: 'an unknown command', args: () => ['bogus'], code: 2, error: /^unknown command 'bogus'$/ },
  { name: 'an unknown global option', args: () => ['--bogus', 'encrypt', 'plain.yaml'], code: 2, error: /^unknown option '--bogus'$/ },
  { name: 'encrypt without a file', args: () => ['encrypt'], code: 2, error: /^missing required argument 'file'$/ },
  { name: 'set without a path', input: 'x', args: () => ['set', 'enc.yaml'], code: 2, error: /^missing required argument 'path'$/ },
];

const ALL: [string, () => Row[]][] = [
  ...Object.keys(KINDS).map((kind): [string, () => Row[]] => [`${KINDS[kind] ?? kind} where a public key belongs`, () => privateKeyRows(kind)]),
  ['bad public keys', () => badRecipientRows],
  ['in-place writes through symlinks', () => symlinkRows],
  ['batches with a target that cannot be written', () => unwritableRows],
  ['empty values and bad flags', () => valueRows],
  ['SOPS files whose metadata holds a private key', () => hostileFileRows],
  ['every command, bad input', () => commandRows],
];

for (const [title, make] of ALL) {
  void describe(title, () => {
    for (const row of make()) void it(row.name, () => check(row));
  });
}
