import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Command } from 'commander';
import { registerCommands } from '../../src/cli/commands/index.ts';
import { COMMANDS } from '../../src/report/envelope-schema.ts';
import { JsonEnvelope } from '../../src/report/envelope.ts';
import { runCli } from '../helpers/cli.ts';
import type { CliOptions, CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { tempDir } from '../helpers/tmp.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';

/**
 * Every command with --json, succeeding and failing: stdout is one document, valid against
 * schema/output.schema.json, whose command, success and exitCode agree with the process.
 */

const schema = JSON.parse(await readFile(new URL('../../schema/output.schema.json', import.meta.url), 'utf8')) as object;
const validate = new Ajv2020({ allErrors: true, strict: false }).compile(schema);

let home: string;
let key: string;
let r: FluxRepo;
let at: (file: string) => string;

const SECRET = 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: not-a-real-secret\n';

const env = (): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: key,
  KUBECONFIG: join(home, 'kubeconfig'),
  FLUXSTRAP_CLUSTER: undefined,
});

interface Doc {
  command: string;
  success: boolean;
  exitCode: number;
  error?: { code: string; hint?: string };
  [field: string]: unknown;
}

/** Run with --json and check the document against the schema and the process; return it. */
function json(args: string[], want: { command: string; code: number; fields?: string[]; error?: string }, opts: CliOptions = {}): Doc {
  const res: CliResult = runCli(['--json', ...args], { cwd: r.repo, env: env(), ...opts });
  assert.equal(res.code, want.code, `${args.join(' ')}: exit ${res.code}\n${res.stderr}`);
  const doc = JSON.parse(res.stdout) as Doc;
  assert.ok(validate(doc), `${args.join(' ')}: ${JSON.stringify(validate.errors?.slice(0, 3))}\n${res.stdout}`);
  assert.equal(doc.command, want.command);
  assert.equal(doc.exitCode, res.code);
  assert.equal(doc.success, res.code === 0 || res.code === 3);
  for (const f of want.fields ?? []) assert.ok(f in doc, `${args.join(' ')}: has ${f}`);
  if (want.error !== undefined) assert.equal(doc.error?.code, want.error, res.stdout);
  else assert.equal(doc.error, undefined, res.stdout);
  return doc;
}

before(async () => {
  home = await tempDir('json-home');
  key = join(home, 'cluster.agekey');
  r = await fluxRepo();
  at = (file) => join(r.repo, r.clusterPath, file);
  await writeFile(join(home, 'kubeconfig'), DEAD_KUBECONFIG);
  assert.equal(runCli(['keys', 'new', '--out', key], { env: env() }).code, 0);
});

/** Each case is one command; `covered` collects them, for the test that every command has its cases. */
const covered = new Set<string>();
const cases = (command: string, fn: () => void | Promise<void>) => {
  covered.add(command);
  void it(command, fn);
};

void describe('--json: one envelope for every command', () => {
  cases('init', () => {
    json(['init', '--cluster', r.cluster, '--age-key-file', key, '--check'], { command: 'init', code: 3, fields: ['recap', 'tasks'] });
    json(['init', '--cluster', r.cluster, '--age-key-file', key], { command: 'init', code: 0, fields: ['recap', 'tasks'] });
    json(['init', '--cluster', 'nowhere', '--age-key-file', key], { command: 'init', code: 1, error: 'E_NOT_FOUND' });
    json(['init'], { command: 'init', code: 2, error: 'E_USAGE' });
  });

  cases('encrypt', async () => {
    await writeFile(at('db.yaml'), SECRET);
    const out = json(['encrypt', at('db.yaml')], { command: 'encrypt', code: 0, fields: ['files'] }) as Doc & { files: { content: string }[] };
    assert.match(out.files[0]?.content ?? '', /ENC\[AES256_GCM,/);
    json(['encrypt', '--in-place', at('db.yaml')], { command: 'encrypt', code: 0, fields: ['files'] });
    json(['encrypt', at('missing.yaml')], { command: 'encrypt', code: 1, error: 'E_NOT_FOUND' });
  });

  cases('decrypt', () => {
    const doc = json(['decrypt', at('db.yaml')], { command: 'decrypt', code: 0 }, { revealsSecrets: true }) as Doc & { files: { content: string }[] };
    assert.match(doc.files[0]?.content ?? '', /password: not-a-real-secret/);
    json(['decrypt', at('infrastructure.yaml')], { command: 'decrypt', code: 1, error: 'E_CONFIG' });
  });

  cases('set', () => {
    json(['set', at('db.yaml'), '["stringData"]["user"]'], { command: 'set', code: 0, fields: ['file', 'path', 'changed'] }, { input: 'admin\n' });
    json(['set', at('db.yaml'), '["stringData"]["user"]'], { command: 'set', code: 2, error: 'E_USAGE' }, { input: '' });
  });

  cases('unset', () => {
    const doc = json(['unset', at('db.yaml'), '["stringData"]["user"]'], { command: 'unset', code: 0 });
    assert.equal(doc.changed, true);
    json(['unset', at('missing.yaml'), '["x"]'], { command: 'unset', code: 1, error: 'E_NOT_FOUND' });
  });

  cases('updatekeys', () => {
    json(['updatekeys', at('db.yaml')], { command: 'updatekeys', code: 0, fields: ['files'] });
    json(['updatekeys', '--config', join(home, 'none.yaml'), at('db.yaml')], { command: 'updatekeys', code: 1, error: 'E_NOT_FOUND' });
  });

  cases('rotate', () => {
    json(['rotate', '--in-place', at('db.yaml')], { command: 'rotate', code: 0, fields: ['files'] });
    json(['rotate', '--in-place', at('infrastructure.yaml')], { command: 'rotate', code: 1, error: 'E_CONFIG' });
  });

  cases('check', async () => {
    json(['check', at('db.yaml')], { command: 'check', code: 0, fields: ['findings'] });
    await writeFile(at('plain-secret.yaml'), SECRET);
    const doc = json(['check', at('plain-secret.yaml')], { command: 'check', code: 1, fields: ['findings'] }) as Doc & { findings: unknown[] };
    assert.ok(doc.findings.length > 0);
  });

  cases('keys new', () => {
    json(['keys', 'new', '--out', join(home, 'second.agekey')], { command: 'keys new', code: 0, fields: ['recipient', 'file'] });
    json(['keys', 'new', '--out', key], { command: 'keys new', code: 1, error: 'E_PRECONDITION' });
  });

  cases('keys backup', async () => {
    await writeFile(join(home, 'passphrase'), 'correct horse battery staple\n');
    json(['keys', 'backup', key, '--out', join(home, 'key.backup.age'), '--passphrase-file', join(home, 'passphrase')], {
      command: 'keys backup',
      code: 0,
      fields: ['files', 'format', 'recipients'],
    });
    json(['keys', 'backup', key, '--out', join(home, 'key.backup.age'), '--passphrase-file', join(home, 'passphrase')], {
      command: 'keys backup',
      code: 1,
      error: 'E_PRECONDITION',
    });
  });

  cases('keys restore', () => {
    json(['keys', 'restore', join(home, 'key.backup.age'), '--out', join(home, 'restored.agekey'), '--passphrase-file', join(home, 'passphrase')], {
      command: 'keys restore',
      code: 0,
      fields: ['file', 'recipients'],
    });
    json(['keys', 'restore', join(home, 'key.backup.age'), '--out', join(home, 'restored.agekey'), '--passphrase-file', join(home, 'passphrase')], {
      command: 'keys restore',
      code: 1,
      error: 'E_PRECONDITION',
    });
  });

  cases('keys pub', () => {
    json(['keys', 'pub', key], { command: 'keys pub', code: 0, fields: ['recipients'] });
    json(['keys', 'pub', join(home, 'missing.agekey')], { command: 'keys pub', code: 1, error: 'E_NOT_FOUND' });
  });

  cases('keys rotate', () => {
    json(['keys', 'rotate', '--cluster', r.cluster, '--age-key-file', key, '--check'], { command: 'keys rotate', code: 3, fields: ['recap', 'tasks'] });
    json(['keys', 'rotate', '--cluster', r.cluster, '--drop-old-identity'], { command: 'keys rotate', code: 2, error: 'E_USAGE' });
  });

  cases('bootstrap', () => {
    json(['bootstrap', '--cluster', r.cluster, '--git-url', 'https://git.example.invalid/fleet.git', '--list-tasks'], {
      command: 'bootstrap',
      code: 0,
      fields: ['playbook', 'tasks'],
    });
    // Preflight meets a dead API server: the run's tasks are in the document, the first failed.
    const doc = json(['bootstrap', '--cluster', r.cluster, '--git-url', 'https://git.example.invalid/fleet.git', '--check'], {
      command: 'bootstrap',
      code: 1,
      fields: ['recap', 'tasks'],
    }) as Doc & { tasks: { outcome: string }[] };
    assert.equal(doc.tasks[0]?.outcome, 'failed');
  });

  cases('upgrade', () => {
    // The fixture's Flux v2.7.5 runs notification-controller, which the shipped v2.9.5 manifests lack.
    json(['upgrade', '--cluster', r.cluster, '--flux-version', 'v2.9.5', '--check'], { command: 'upgrade', code: 1, error: 'E_NOT_FOUND' });
    json(['upgrade', '--cluster', r.cluster, '--flux-version', 'not-a-version'], { command: 'upgrade', code: 2, error: 'E_USAGE' });
  });

  cases('run', async () => {
    await writeFile(join(r.repo, 'ignore.yaml'), 'name: ignore keys\ntasks:\n  - name: Ignore private keys\n    gitignore: { entries: ["*.agekey"] }\n');
    json(['run', 'ignore.yaml', '--cluster', r.cluster], { command: 'run', code: 0, fields: ['recap', 'tasks'] });
    json(['run', 'ignore.yaml', '--cluster', r.cluster, '--all-clusters', '--list-tasks'], { command: 'run', code: 2, error: 'E_USAGE' });
    json(['run', 'missing.yaml', '--cluster', r.cluster], { command: 'run', code: 1, error: 'E_NOT_FOUND' });
  });

  for (const command of ['status', 'doctor']) {
    cases(command, () => {
      // The API is down: a failing finding, in the document, not an error.
      const doc = json([command, '--cluster', r.cluster], { command, code: 1, fields: ['findings', 'counts'] }) as Doc & { counts: { fail: number } };
      assert.ok(doc.counts.fail > 0);
      json([command, '--cluster', 'nowhere'], { command, code: 2, error: 'E_USAGE' });
    });
  }

  void it("commander's own usage errors, and no command at all", () => {
    json(['keys', 'new', '--no-such-flag'], { command: 'keys new', code: 2, error: 'E_USAGE' });
    json(['no-such-command'], { command: 'fluxstrap', code: 2, error: 'E_USAGE' });
    json([], { command: 'fluxstrap', code: 2, error: 'E_USAGE' });
    json(['keys'], { command: 'keys', code: 2, error: 'E_USAGE' });
  });

  void it('every command has its cases here and its shapes in the schema', () => {
    const program = new Command('fluxstrap');
    registerCommands(program);
    const leaves = (c: Command, prefix: string[]): string[] =>
      c.commands.flatMap((sub) => (sub.commands.length > 0 ? leaves(sub, [...prefix, sub.name()]) : [[...prefix, sub.name()].join(' ')]));
    const commands = leaves(program, []).sort();
    assert.deepEqual([...covered].sort(), commands, 'a case per command');
    assert.deepEqual(Object.keys(COMMANDS).sort(), commands, 'a schema entry per command');
  });
});

void describe('--json of a bug (E_INTERNAL)', () => {
  void it('keeps the cause and says it is a bug to report, within the schema', () => {
    const envelope = new JsonEnvelope('keys pub');
    envelope.fail(new TypeError("Cannot read properties of undefined (reading 'x')"));
    const doc = envelope.document(1);
    assert.ok(validate(doc), JSON.stringify(validate.errors));
    assert.equal(doc.error?.code, 'E_INTERNAL');
    assert.equal(doc.error?.cause, "TypeError: Cannot read properties of undefined (reading 'x')");
    assert.match(doc.error?.hint ?? '', /bug in fluxstrap.*report it/);
  });

  void it('the schema refuses what no command prints (it can fail)', () => {
    assert.equal(validate({ command: 'status', success: true, exitCode: 0, healthy: true }), false);
    assert.equal(validate({ command: 'keys new', success: true, exitCode: 0 }), false);
    assert.equal(validate({ command: 'nope', success: false, exitCode: 2, error: { code: 'E_USAGE', message: 'x' } }), false);
  });
});
