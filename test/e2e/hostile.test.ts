import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { cliPath, runCli, type CliResult } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * Hostile and broken input, one row each: what a pull request or a clumsy colleague can put in a
 * repository. Every row runs the built CLI in a fresh folder and asserts the exit code, one
 * `error:` line naming the file (or a `check` finding with its file and line), no stack trace,
 * no "internal error", the folder unchanged and no temp file left. Add rows to TABLE; other
 * suites (secrets, files) keep tables of the same shape.
 */

interface Row {
  name: string;
  /** Files of the folder, by relative path. */
  files: Record<string, string>;
  args: (dir: string) => string[];
  env?: NodeJS.ProcessEnv;
  code: number;
  /** Matched against the one `error:` line (or, for check, stdout). */
  expect: RegExp;
  /** Node flags, e.g. a heap cap. */
  nodeArgs?: string[];
  /** The expectation is a finding in the report (status), not the error line. */
  inReport?: boolean;
  /** Wall-clock bound: the point of most rows is that nothing takes long. */
  maxMs?: number;
}

// A 6-level alias bomb (9^6 ≈ 530k nodes once expanded) in 300 bytes.
const BOMB =
  [
    'a: &a [x, x, x, x, x, x, x, x, x]',
    ...'bcdef'.split('').map((k, i) => {
      const prev = 'abcdef'[i] ?? 'a';
      return `${k}: &${k} [${Array(9).fill(`*${prev}`).join(', ')}]`;
    }),
  ].join('\n') + '\n';
const deepJson = (n: number): string => `{"a":${'['.repeat(n)}1${']'.repeat(n)}}`;
const deepYaml = (n: number): string => Array.from({ length: n }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ' v\n';
const PLAIN_SECRET = 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: hunter2\n';
const AGE = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const SOPS_CONFIG = `creation_rules:\n  - age: ${AGE}\n`;
const CLUSTER = { 'fluxstrap.yaml': 'clusters:\n  x:\n    path: clusters/x\n' };
const PLAYBOOK = (extra: string) => `name: p\n${extra}tasks:\n  - name: t\n    namespace: {}\n`;
const doubling = (n: number) => `vars:\n  v0: "xx"\n${Array.from({ length: n }, (_, i) => `  v${i + 1}: "{{ v${i} }}{{ v${i} }}"\n`).join('')}`;

const TABLE: Row[] = [
  // alias bombs, everywhere YAML is read
  {
    name: 'alias bomb in a file to encrypt',
    files: { 'bomb.yaml': BOMB },
    args: () => ['encrypt', '--age', AGE, 'bomb.yaml'],
    code: 1,
    expect: /aliases expand to more than \d+ nodes \(bomb\.yaml:\d+\)/,
  },
  {
    name: 'alias bomb, heap capped at 48 MB',
    files: { 'bomb.yaml': BOMB },
    args: () => ['encrypt', '--age', AGE, 'bomb.yaml'],
    nodeArgs: ['--max-old-space-size=48'],
    code: 1,
    expect: /aliases expand .* \(bomb\.yaml:\d+\)/,
  },
  {
    name: 'alias bomb in .sops.yaml (encrypt)',
    files: { '.sops.yaml': BOMB, 's.yaml': 'a: b\n' },
    args: () => ['encrypt', 's.yaml'],
    code: 1,
    expect: /aliases expand .* \(.*\.sops\.yaml:\d+\)/,
  },
  {
    name: 'alias bomb in .sops.yaml (updatekeys)',
    files: { '.sops.yaml': BOMB, 's.yaml': 'a: b\n' },
    args: () => ['updatekeys', 's.yaml'],
    code: 1,
    expect: /aliases expand .* \(.*\.sops\.yaml:\d+\)/,
  },
  {
    name: 'alias bomb in .sops.yaml (check)',
    files: { '.sops.yaml': BOMB },
    args: () => ['check', '.'],
    code: 1,
    expect: /aliases expand .* \(.*\.sops\.yaml:\d+\)/,
  },
  {
    name: 'alias bomb under a checked path',
    files: { 'sub/bomb.yaml': BOMB },
    args: () => ['check', '.'],
    code: 1,
    expect: /^sub\/bomb\.yaml:\d+: does not parse as yaml: aliases expand/m,
  },
  {
    name: 'alias bomb in a playbook',
    files: { ...CLUSTER, 'p.yaml': PLAYBOOK(`vars:\n  ${BOMB.trimEnd().replaceAll('\n', '\n  ')}\n`) },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    expect: /aliases expand .* \(p\.yaml:\d+/,
  },
  {
    name: 'alias bomb in fluxstrap.yaml',
    files: { 'fluxstrap.yaml': `x:\n  ${BOMB.trimEnd().replaceAll('\n', '\n  ')}\n` },
    args: () => ['bootstrap', '--cluster', 'x'],
    code: 1,
    expect: /aliases expand .* \(.*fluxstrap\.yaml:\d+/,
  },
  {
    name: 'alias bomb in a kubeconfig',
    files: { kubeconfig: BOMB, 'fluxstrap.yaml': 'clusters:\n  x:\n    path: clusters/x\n' },
    args: (d) => ['status', '--cluster', 'x', '--kubeconfig', join(d, 'kubeconfig')],
    inReport: true,
    code: 1,
    expect: /aliases expand .* \(.*kubeconfig:\d+/,
  },
  {
    name: 'alias to its own anchor',
    files: { 's.yaml': 'a: &a\n  b: *a\n' },
    args: () => ['encrypt', '--age', AGE, 's.yaml'],
    code: 1,
    expect: /alias \*a refers to a node that contains it \(s\.yaml:2\)/,
  },
  // duplicate keys: the same error as before, found in linear time
  {
    name: 'duplicate key in a SOPS file',
    files: { 's.yaml': 'a: 1\nb: 2\na: 3\n' },
    args: () => ['encrypt', '--age', AGE, 's.yaml'],
    code: 1,
    expect: /Map keys must be unique \(s\.yaml:3/,
  },
  {
    name: 'duplicate key in .sops.yaml',
    files: { '.sops.yaml': `${SOPS_CONFIG}creation_rules: []\n`, 's.yaml': 'a: b\n' },
    args: () => ['encrypt', 's.yaml'],
    code: 1,
    expect: /Map keys must be unique \(.*\.sops\.yaml:3/,
  },
  {
    name: 'duplicate key in a playbook',
    files: { ...CLUSTER, 'p.yaml': 'name: p\nname: q\ntasks: []\n' },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    expect: /Map keys must be unique \(p\.yaml:2/,
  },
  // nesting
  {
    name: 'deeply nested JSON',
    files: { 's.json': deepJson(100_000) },
    args: () => ['encrypt', '--age', AGE, 's.json'],
    code: 1,
    expect: /nested deeper than 256 levels \(s\.json:1\)/,
  },
  {
    name: 'deeply nested YAML (block)',
    files: { 's.yaml': deepYaml(2000) },
    args: () => ['encrypt', '--age', AGE, 's.yaml'],
    code: 1,
    expect: /nested deeper than 256 levels \(s\.yaml:\d+\)/,
  },
  {
    name: 'deeply nested YAML (flow)',
    files: { 's.yaml': `a: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n` },
    args: () => ['encrypt', '--age', AGE, 's.yaml'],
    code: 1,
    expect: /nested deeper than 256 levels \(s\.yaml:1/,
  },
  {
    name: 'deeply nested YAML in a playbook',
    files: { ...CLUSTER, 'p.yaml': `name: p\nvars:\n  x: ${'['.repeat(5000)}${']'.repeat(5000)}\ntasks: []\n` },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    expect: /nested deeper than 256 levels \(p\.yaml:3/,
  },
  {
    name: 'deep when: expression',
    files: { ...CLUSTER, 'p.yaml': `name: p\ntasks:\n  - name: t\n    namespace: {}\n    when: "${'('.repeat(2000)}true${')'.repeat(2000)}"\n` },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    expect: /bad expression: nested deeper than 64 levels.* \(p\.yaml:5/,
  },
  {
    name: 'long when: expression',
    files: { ...CLUSTER, 'p.yaml': `name: p\ntasks:\n  - name: t\n    namespace: {}\n    when: "${Array(3000).fill('true').join(' and ')}"\n` },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    expect: /bad expression: expression longer than 4096 characters \(p\.yaml:5/,
  },
  {
    name: 'vars doubling 40 times',
    files: { ...CLUSTER, 'p.yaml': PLAYBOOK(doubling(40)) },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    expect: /bad expression: (renders|expands) to more than \d+ characters \(p\.yaml:\d+/,
  },
  {
    name: 'list vars doubling 40 times',
    files: {
      ...CLUSTER,
      'p.yaml': PLAYBOOK(`vars:\n  v0: [x, x]\n${Array.from({ length: 40 }, (_, i) => `  v${i + 1}: ["{{ v${i} }}", "{{ v${i} }}"]\n`).join('')}`),
    },
    args: () => ['run', 'p.yaml', '--cluster', 'x'],
    code: 1,
    expect: /bad expression: expands to more than \d+ characters \(p\.yaml:\d+/,
  },
  // special files and blocking commands
  {
    name: 'FIFO as the input',
    files: {},
    args: (d) => (mkfifo(join(d, 'in.yaml')), ['encrypt', '--age', AGE, 'in.yaml']),
    code: 1,
    expect: /not a regular file .*\(in\.yaml\)/,
  },
  {
    name: 'FIFO as a key file',
    files: {},
    args: (d) => (mkfifo(join(d, 'key.agekey')), ['keys', 'pub', 'key.agekey']),
    code: 1,
    expect: /not a regular file .*\(key\.agekey\)/,
  },
  {
    name: 'FIFO as --key-file',
    files: { 's.yaml': 'a: b\n' },
    args: (d) => (mkfifo(join(d, 'k')), ['decrypt', '--key-file', 'k', 's.yaml']),
    code: 1,
    expect: /not a regular file .*\(k\)/,
  },
  {
    name: 'FIFO as .sops.yaml',
    files: { 's.yaml': 'a: b\n' },
    args: (d) => (mkfifo(join(d, '.sops.yaml')), ['encrypt', 's.yaml']),
    code: 1,
    expect: /not a regular file .*\.sops\.yaml\)/,
  },
  {
    name: 'FIFO under a checked path',
    files: {},
    args: (d) => (mkfifo(join(d, 'x.yaml')), ['check', 'x.yaml']),
    code: 1,
    expect: /^x\.yaml: cannot read file: not a regular file/m,
  },
  { name: 'device as the input', files: {}, args: () => ['encrypt', '--age', AGE, '/dev/zero'], code: 1, expect: /not a regular file .*\(\/dev\/zero\)/ },
  {
    name: 'SOPS_AGE_KEY_CMD that never ends',
    files: { 's.yaml': 'a: b\n' },
    args: () => ['decrypt', 's.yaml'],
    env: { SOPS_AGE_KEY_CMD: 'sleep 600', FLUXSTRAP_KEY_CMD_TIMEOUT: '1' },
    code: 1,
    expect: /SOPS_AGE_KEY_CMD \(sleep\) did not finish within 1s \(SOPS_AGE_KEY_CMD\)|sops metadata not found/,
    maxMs: 20_000,
  },
  // check must not pass plaintext
  {
    name: 'check: plaintext Secret inside kind: List',
    files: { 'list.yaml': `apiVersion: v1\nkind: List\nitems:\n  - ${PLAIN_SECRET.trimEnd().replaceAll('\n', '\n    ')}\n` },
    args: () => ['check', '.'],
    code: 1,
    expect: /^list\.yaml: Secret s has plaintext stringData/m,
  },
  {
    name: 'check: plaintext Secret with a duplicate key',
    files: { 'dup.yaml': `${PLAIN_SECRET}kind: Secret\n` },
    args: () => ['check', '.'],
    code: 1,
    expect: /^dup\.yaml:7: does not parse as yaml: Map keys must be unique/m,
  },
  {
    name: 'check: plaintext Secret next to a broken document',
    files: { 'multi.yaml': `${PLAIN_SECRET}---\nx: [\n` },
    args: () => ['check', '.'],
    code: 1,
    expect: /^multi\.yaml:\d+: does not parse as yaml/m,
  },
  { name: 'check: an unparsable JSON file', files: { 'a.json': '{"a": ' }, args: () => ['check', '.'], code: 1, expect: /^a\.json:1: does not parse as json/m },
];

function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr.toString()}`);
}

/** Content of every regular file (a FIFO row's FIFO would block a reader): proves nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const st = lstatSync(join(dir, f));
    out[f] = st.isFile() ? `${st.mode.toString(8)} ${readFileSync(join(dir, f), 'base64')}` : st.isFIFO() ? 'fifo' : 'other';
  }
  return out;
}

const tempFiles = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.tmp$/.test(f));

/** What every row asserts beyond its own expectation. */
export function assertCleanFailure(r: CliResult, row: { code: number; expect: RegExp; inReport?: boolean }): void {
  const all = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, row.code, all);
  assert.doesNotMatch(all, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(all, /internal error|this is a bug/, 'a bad input is not a bug');
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
  assert.ok(errors.length <= 1, `one error line at most:\n${r.stderr}`);
  assert.match(row.inReport ? all : errors.length === 1 ? (errors[0] ?? '') : r.stdout, row.expect, all);
}

void describe('hostile input: one-line errors naming the file, nothing changed, nothing left behind', () => {
  let root: string;
  before(async () => {
    root = await tempDir('hostile');
  });
  TABLE.forEach((row, i) => {
    void it(row.name, () => {
      const dir = join(root, String(i));
      mkdirSync(dir);
      for (const [file, content] of Object.entries(row.files)) {
        mkdirSync(join(dir, file, '..'), { recursive: true });
        writeFileSync(join(dir, file), content);
      }
      const args = row.args(dir);
      const before = snapshot(dir);
      const started = Date.now();
      const r = runCli(args, {
        cwd: dir,
        env: { HOME: dir, XDG_CONFIG_HOME: join(dir, '.config'), KUBECONFIG: join(dir, 'none'), ...row.env },
        ...(row.nodeArgs ? { nodeArgs: row.nodeArgs } : {}),
      });
      assert.ok(Date.now() - started < (row.maxMs ?? 15_000), `took ${Date.now() - started} ms`);
      assertCleanFailure(r, row);
      assert.deepEqual(snapshot(dir), before, 'the folder is unchanged');
      assert.deepEqual(tempFiles(dir), [], 'no temp file left');
    });
  });
});

void describe('interrupts end every command at once', () => {
  const interrupt = async (
    signal: 'SIGINT' | 'SIGTERM',
    args: string[],
    dir: string,
    env: NodeJS.ProcessEnv = {},
  ): Promise<{ code: number | null; stderr: string; ms: number }> => {
    const child = spawn(process.execPath, [cliPath, ...args], { cwd: dir, env: { ...process.env, CI: '1', NO_COLOR: '1', HOME: dir, ...env } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    await new Promise((r) => setTimeout(r, 1500));
    const sent = Date.now();
    child.kill(signal);
    const code = await closed;
    return { code, stderr, ms: Date.now() - sent };
  };

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    void it(`${signal} while waiting for SOPS_AGE_KEY_CMD exits ${code}`, async () => {
      const dir = await tempDir('hostile-sig');
      writeFileSync(join(dir, 's.yaml'), 'a: b\n');
      // An encrypted file: sops (and fluxstrap) run the command for each of its age recipients.
      const enc = runCli(['encrypt', '-i', '--age', AGE, 's.yaml'], { cwd: dir, env: { HOME: dir } });
      assert.equal(enc.code, 0, enc.stderr);
      const r = await interrupt(signal, ['decrypt', 's.yaml'], dir, { SOPS_AGE_KEY_CMD: 'sleep 600' });
      assert.ok(r.ms < 3000, 'ends promptly');
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, /interrupted/);
    });
  }

  void it("SIGINT with a FIFO as the key file (the issue's reproduction) ends at once", async () => {
    const dir = await tempDir('hostile-sig');
    mkfifo(join(dir, 'key.agekey'));
    const r = await interrupt('SIGINT', ['keys', 'pub', 'key.agekey'], dir);
    // It no longer blocks at all: the FIFO is refused before the signal comes.
    assert.ok(r.ms < 3000);
    assert.ok(r.code === 1 || r.code === 130, `exit ${r.code}: ${r.stderr}`);
  });
});

void describe('duplicate keys are found in linear time', () => {
  void it('100k keys parse and round-trip; a duplicate among them is reported at its line', async () => {
    const dir = await tempDir('hostile-big');
    const lines = Array.from({ length: 100_000 }, (_, i) => `k${i}: v${i}`);
    writeFileSync(join(dir, 'big.yaml'), `${lines.join('\n')}\n`);
    const enc = runCli(['encrypt', '--age', AGE, '--unencrypted-regex', '.', '--output', 'out.yaml', 'big.yaml'], { cwd: dir });
    assert.equal(enc.code, 0, enc.stderr);
    const out = readFileSync(join(dir, 'out.yaml'), 'utf8');
    assert.ok(out.startsWith('k0: v0\nk1: v1\n'));
    assert.ok(out.includes('\nk99999: v99999\n'));
    lines.splice(70_000, 0, 'k123: again');
    writeFileSync(join(dir, 'dup.yaml'), `${lines.join('\n')}\n`);
    assertCleanFailure(runCli(['encrypt', '--age', AGE, 'dup.yaml'], { cwd: dir }), { code: 1, expect: /Map keys must be unique \(dup\.yaml:70001/ });
  });
});
