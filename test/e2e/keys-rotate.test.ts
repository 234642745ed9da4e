import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { runCli } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { requireTool } from '../helpers/tools.ts';
import { findSops } from '../unit/sops/helpers.ts';

/** `fluxstrap keys rotate` on the real Flux files after `init`, the files checked with the real sops and age keys. */

let home: string;
let keyFile: string;
/** Copies of the key file holding only the old, then only the new identity, to decrypt with one key at a time. */
let oldKey: string;
let newKey: string;
let oldRecipient: string;
let sops: string;
let r: FluxRepo;

const execFileAsync = promisify(execFile);

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: undefined,
  ...extra,
});
const cli = (args: string[]): CliResult => runCli(args, { cwd: r.repo, env: env() });
const rotate = (...args: string[]) => cli(['keys', 'rotate', '--cluster', r.cluster, '--key-file', keyFile, ...args]);
const recap = (res: CliResult) => JSON.parse(res.stdout) as { recap: { changed: number; wouldChange: number; ok: number } };

const SECRETS = ['db.yaml', 'apps/api.yaml'];
const plain = (name: string) => `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\n  namespace: default\nstringData:\n  password: s3cret-${name}\n`;

/** The real sops, with only the given key file: the decrypted password, or the failure. */
async function sopsDecrypt(file: string, key: string): Promise<{ ok: boolean; password?: string }> {
  try {
    const { stdout: out } = await execFileAsync(sops, ['decrypt', join(r.repo, r.clusterPath, file)], {
      env: { ...process.env, ...env({ SOPS_AGE_KEY_FILE: key }) },
    });
    return { ok: true, password: (parse(out) as { stringData: { password: string } }).stringData.password };
  } catch {
    return { ok: false };
  }
}

async function recipientsOf(file: string): Promise<string[]> {
  const doc = parse(await readFile(join(r.repo, r.clusterPath, file), 'utf8')) as { sops: { age: { recipient: string }[] } };
  return doc.sops.age.map((a) => a.recipient).sort();
}

async function ruleAge(): Promise<string> {
  return (parse(await readFile(join(r.repo, '.sops.yaml'), 'utf8')) as { creation_rules: { age: string }[] }).creation_rules[0]?.age ?? '';
}

/** A file with only the key file's identity at `index` (0: old, 1: new). */
async function singleKey(index: number, out: string): Promise<string> {
  const blocks = (await readFile(keyFile, 'utf8')).split(/(?=^# created:)/m);
  await writeFile(out, blocks[index] ?? '', { mode: 0o600 });
  return out;
}

before(async () => {
  requireTool('age');
  sops = findSops();
  home = await tempDir('rotate-home');
  r = await fluxRepo();
  keyFile = join(home, 'keys', 'cluster.agekey');
  const k = cli(['keys', 'new', '--out', keyFile]);
  assert.equal(k.code, 0, k.stderr);
  oldRecipient = k.stdout.trim();
  assert.equal(cli(['init', '--cluster', r.cluster, '--repo', r.repo, '--key-file', keyFile]).code, 0);
  for (const name of SECRETS) {
    const file = join(r.repo, r.clusterPath, name);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, plain(name));
    const enc = runCli(['encrypt', '--in-place', file], { cwd: r.repo, env: env({ SOPS_AGE_KEY_FILE: keyFile }) });
    assert.equal(enc.code, 0, enc.stderr);
  }
  oldKey = join(home, 'old.agekey');
  await copyFile(keyFile, oldKey);
});

void describe('keys rotate', () => {
  let newRecipient: string;

  void it('--check before phase 1 changes nothing, not even the key file, and exits 3', async () => {
    const repo = await snapshot(r.repo);
    const key = await readFile(keyFile, 'utf8');
    const res = rotate('--check');
    assert.equal(res.code, 3, res.stderr);
    assert.match(res.stderr, /would add a new age identity/);
    assert.match(res.stderr, /<new age recipient>/);
    assert.deepEqual(await snapshot(r.repo), repo);
    assert.equal(await readFile(keyFile, 'utf8'), key);
  });

  void it('--check shows the whole rotation as one plan: the key file, the rule, the files', async () => {
    const repo = await snapshot(r.repo);
    const key = await readFile(keyFile, 'utf8');
    const res = rotate('--check', '--json');
    assert.equal(res.code, 3, res.stderr);
    const doc = JSON.parse(res.stdout) as { tasks: { kind: string; outcome: string; changes: { target: string; summary: string }[] }[] };
    assert.deepEqual(
      doc.tasks.map((t) => [t.kind, t.outcome]),
      [
        ['age-key-appended', 'would-change'],
        ['sops-recipients', 'would-change'],
        ['sops-files-rekeyed', 'would-change'],
      ],
    );
    assert.deepEqual(
      doc.tasks[0]?.changes.map((c) => c.summary),
      ['append a new age identity: <new age recipient>'],
    );
    assert.equal(doc.tasks[2]?.changes.length, SECRETS.length, 'every file is in the plan');
    assert.doesNotMatch(res.stdout, /AGE-SECRET-KEY/);
    assert.deepEqual(await snapshot(r.repo), repo);
    assert.equal(await readFile(keyFile, 'utf8'), key);
  });

  void it('phase 1 appends an identity and both keys open every file, with the real sops too', async () => {
    const macs = await Promise.all(
      SECRETS.map(async (f) => (parse(await readFile(join(r.repo, r.clusterPath, f), 'utf8')) as { sops: { mac: string } }).sops.mac),
    );
    const res = rotate();
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /next: fluxstrap bootstrap --cluster production --rotate-secrets/);
    assert.doesNotMatch(res.stderr + res.stdout, /AGE-SECRET-KEY/);
    newRecipient = (await readFile(keyFile, 'utf8')).match(/^# public key: (age1\S+)$/gm)?.[1]?.slice('# public key: '.length) ?? '';
    assert.notEqual(newRecipient, '');
    assert.equal(await ruleAge(), `${oldRecipient},${newRecipient}`);
    newKey = await singleKey(1, join(home, 'new.agekey'));
    for (const [i, f] of SECRETS.entries()) {
      assert.deepEqual(await recipientsOf(f), [oldRecipient, newRecipient].sort());
      assert.equal((parse(await readFile(join(r.repo, r.clusterPath, f), 'utf8')) as { sops: { mac: string } }).sops.mac, macs[i], 'updatekeys keeps the MAC');
      for (const key of [oldKey, newKey]) assert.deepEqual(await sopsDecrypt(f, key), { ok: true, password: `s3cret-${f}` });
    }
  });

  void it('a second phase 1 has nothing to do and adds no identity', async () => {
    const key = await readFile(keyFile, 'utf8');
    const res = cli(['--json', 'keys', 'rotate', '--cluster', r.cluster, '--key-file', keyFile]);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(recap(res).recap.changed, 0);
    assert.equal(await readFile(keyFile, 'utf8'), key);
  });

  void it('--drop-old-identity refuses while a file is still encrypted to the old key', async () => {
    const repo = await snapshot(r.repo);
    const key = await readFile(keyFile, 'utf8');
    const res = rotate('--finish', '--drop-old-identity', '--check');
    assert.equal(res.code, 1, res.stderr);
    // The refusal is the plan's last step failing (the task list shows it), no longer a line before the plan.
    assert.match(
      res.stderr,
      new RegExp(`^\\s*error: refusing to remove the old identity ${oldRecipient}: this file is still encrypted to it \\(clusters/production/`, 'm'),
    );
    assert.deepEqual(await snapshot(r.repo), repo);
    assert.equal(await readFile(keyFile, 'utf8'), key);
  });

  void it('phase 2 leaves only the new key able to open the files; --drop-old-identity then removes the old identity', async () => {
    const check = rotate('--finish', '--check');
    assert.equal(check.code, 3, check.stderr);
    const key = await readFile(keyFile, 'utf8');
    const plan = rotate('--finish', '--check', '--json');
    assert.deepEqual(
      (JSON.parse(plan.stdout) as { tasks: { kind: string }[] }).tasks.map((t) => t.kind),
      ['sops-recipients', 'sops-files-rekeyed'],
    );
    assert.equal(await readFile(keyFile, 'utf8'), key, '--check leaves the key file as it is');
    const res = rotate('--finish', '--drop-old-identity');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /next: fluxstrap bootstrap --cluster production --rotate-secrets/);
    assert.equal(await ruleAge(), newRecipient);
    for (const f of SECRETS) {
      assert.deepEqual(await recipientsOf(f), [newRecipient]);
      assert.deepEqual(await sopsDecrypt(f, newKey), { ok: true, password: `s3cret-${f}` });
      assert.deepEqual(await sopsDecrypt(f, oldKey), { ok: false });
    }
    const left = await readFile(keyFile, 'utf8');
    assert.equal(left.match(/AGE-SECRET-KEY-/g)?.length, 1);
    assert.match(left, new RegExp(`^# public key: ${newRecipient}$`, 'm'));
    const again = cli(['--json', 'keys', 'rotate', '--cluster', r.cluster, '--key-file', keyFile, '--finish']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(recap(again).recap.changed, 0);
  });
});

void describe('keys rotate with a key file shared between clusters', () => {
  void it("never takes another cluster's identity as the new one, and never drops it", async () => {
    const repo = await fluxRepo();
    const shared = join(home, 'shared', 'keys.txt');
    const run = (...args: string[]) => runCli(args, { cwd: repo.repo, env: env() });
    const prod = run('keys', 'new', '--out', shared).stdout.trim();
    assert.equal(run('init', '--cluster', repo.cluster, '--repo', repo.repo, '--age', prod).code, 0);
    const staging = run('keys', 'new', '--out', shared, '--append').stdout.trim();
    const sopsYaml = join(repo.repo, '.sops.yaml');
    await writeFile(sopsYaml, `${await readFile(sopsYaml, 'utf8')}  - path_regex: ^clusters/staging/\n    age: ${staging}\n`);

    const res = run('keys', 'rotate', '--cluster', repo.cluster, '--key-file', shared);
    assert.equal(res.code, 0, res.stderr);
    const recipients = [...(await readFile(shared, 'utf8')).matchAll(/^# public key: (age1\S+)$/gm)].map((m) => m[1]);
    assert.equal(recipients.length, 3, 'a third identity was appended');
    const rules = (parse(await readFile(sopsYaml, 'utf8')) as { creation_rules: { age: string }[] }).creation_rules.map((c) => c.age);
    assert.deepEqual(rules, [`${prod},${recipients[2] ?? ''}`, staging]);

    const finish = run('keys', 'rotate', '--cluster', repo.cluster, '--key-file', shared, '--finish', '--drop-old-identity');
    assert.equal(finish.code, 0, finish.stderr);
    const left = [...(await readFile(shared, 'utf8')).matchAll(/^# public key: (age1\S+)$/gm)].map((m) => m[1]);
    assert.deepEqual(left, [staging, recipients[2]]);
  });
});

void describe('keys rotate with key groups (Shamir)', () => {
  let repo: FluxRepo;
  let clusterKey: string;
  let teamKey: string;
  let oldR: string;
  let team: string;
  let newR = '';
  const run = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    runCli(['keys', 'rotate', '--cluster', repo.cluster, '--key-file', clusterKey, ...args], { cwd: repo.repo, env: env(extra) });
  const secret = () => join(repo.repo, repo.clusterPath, 'db.yaml');
  /** A key file holding the given identities only (the real sops is given nothing else). */
  const keysOf = async (name: string, ...blocks: string[]) => {
    const file = join(home, 'shamir', name);
    await writeFile(file, blocks.join(''), { mode: 0o600 });
    return file;
  };
  let oldBlock: string;
  let teamBlock: string;
  const newBlock = async () => (await readFile(clusterKey, 'utf8')).split(/(?=^# created:)/m)[1] ?? '';
  /** The real sops, with exactly these identities. */
  const opens = async (...blocks: string[]) => {
    try {
      const key = await keysOf('both.agekey', ...blocks);
      const { stdout } = await execFileAsync(sops, ['decrypt', secret()], { env: { ...process.env, ...env({ SOPS_AGE_KEY_FILE: key }) } });
      return (parse(stdout) as { stringData: { password: string } }).stringData.password === 's3cret-db';
    } catch {
      return false;
    }
  };
  const metadata = async () =>
    (parse(await readFile(secret(), 'utf8')) as { sops: { shamir_threshold: number; key_groups: { age: { recipient: string }[] }[] } }).sops;
  const groups = async () => (await metadata()).key_groups.map((g) => g.age.map((a) => a.recipient));
  const ruleGroups = async () =>
    (
      parse(await readFile(join(repo.repo, '.sops.yaml'), 'utf8')) as { creation_rules: { key_groups: { age: string[] }[] }[] }
    ).creation_rules[0]?.key_groups.map((g) => g.age);

  before(async () => {
    repo = await fluxRepo();
    clusterKey = join(home, 'shamir', 'cluster.agekey');
    teamKey = join(home, 'shamir', 'team.agekey');
    oldR = runCli(['keys', 'new', '--out', clusterKey], { env: env() }).stdout.trim();
    team = runCli(['keys', 'new', '--out', teamKey], { env: env() }).stdout.trim();
    [oldBlock, teamBlock] = [await readFile(clusterKey, 'utf8'), await readFile(teamKey, 'utf8')];
    assert.equal(runCli(['init', '--cluster', repo.cluster, '--repo', repo.repo, '--key-file', clusterKey], { cwd: repo.repo, env: env() }).code, 0);
    const sopsYaml = join(repo.repo, '.sops.yaml');
    const groupsYaml = `    shamir_threshold: 2\n    key_groups:\n      # the cluster's own key\n      - age:\n          - ${oldR} # rotated by fluxstrap\n      # the team's key, for disaster recovery\n      - age:\n          - ${team}\n`;
    await writeFile(sopsYaml, (await readFile(sopsYaml, 'utf8')).replace(`    age: ${oldR}\n`, groupsYaml));
    await writeFile(secret(), plain('db'));
    await execFileAsync(sops, ['encrypt', '--in-place', join(repo.clusterPath, 'db.yaml')], { cwd: repo.repo, env: { ...process.env, ...env() } });
    assert.deepEqual(await groups(), [[oldR], [team]], 'the real sops split the data key over both groups');
    assert.ok((await opens(oldBlock, teamBlock)) && !(await opens(oldBlock)));
  });

  void it("phase 1 puts the new recipient in the cluster key's group, with the cluster key alone at hand", async () => {
    const res = run([]);
    assert.equal(res.code, 0, res.stderr);
    const added = await newBlock();
    newR = added.match(/^# public key: (age1\S+)$/m)?.[1] ?? '';
    assert.notEqual(newR, '');
    assert.deepEqual(await groups(), [[oldR, newR], [team]]);
    assert.equal((await metadata()).shamir_threshold, 2);
    assert.ok(await opens(added, teamBlock), 'new key + team key');
    assert.ok(await opens(oldBlock, teamBlock), 'old key + team key');
    assert.equal(await opens(oldBlock, added), false, 'both cluster keys are one group: one share');
    assert.deepEqual(await ruleGroups(), [[oldR, newR], [team]]);
  });

  void it('phase 2 needs a key of the other group, then only the new key (with the team key) opens the file', async () => {
    const without = run(['--finish']);
    assert.equal(without.code, 1);
    assert.match(without.stderr, /^ {2}error: only 1 of the 2 key groups needed could be opened \(clusters\/production\/db\.yaml\)$/m);
    // The rule was edited before the file failed: the run that follows still rotates the file.
    const res = run(['--finish'], { SOPS_AGE_KEY_FILE: teamKey });
    assert.equal(res.code, 0, res.stderr);
    const added = await newBlock();
    assert.deepEqual(await groups(), [[newR], [team]]);
    assert.equal((await metadata()).shamir_threshold, 2);
    assert.ok(await opens(added, teamBlock), 'new key + team key');
    assert.equal(await opens(oldBlock, teamBlock), false, 'old key + team key');
    const rule = await readFile(join(repo.repo, '.sops.yaml'), 'utf8');
    assert.deepEqual(await ruleGroups(), [[newR], [team]]);
    assert.match(rule, /# the cluster's own key\n/);
    assert.match(rule, /# the team's key, for disaster recovery\n/);
    assert.match(rule, /shamir_threshold: 2\n/);
    const again = run(['--finish', '--drop-old-identity'], { SOPS_AGE_KEY_FILE: teamKey });
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(await readFile(clusterKey, 'utf8'), new RegExp(oldR));
    assert.equal(await readFile(teamKey, 'utf8'), teamBlock, 'the team key is not the cluster key file: never touched');
  });
});
