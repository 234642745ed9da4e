import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { runCli } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';

/** `fluxstrap run` and `fluxstrap bootstrap` through the built CLI: validation, exit codes, output. */

let repo: string;
const hook = fileURLToPath(new URL('../helpers/trace-imports.ts', import.meta.url));
const env = (): NodeJS.ProcessEnv => ({
  HOME: repo,
  KUBECONFIG: join(repo, 'kubeconfig'),
  FLUXSTRAP_CLUSTER: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: undefined,
});
const cli = (args: string[], cwd = repo): CliResult => runCli(args, { cwd, env: env() });

/** One `error:` line (with its location), maybe a hint, the expected exit code, never a stack. */
function userError(r: CliResult, code: number, text: RegExp): void {
  assert.equal(r.code, code, `exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, text);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

const PREPARE = `name: "Prepare {{ cluster.name }}"
tasks:
  - name: Ignore private keys
    gitignore: { entries: ["*.agekey", "keys.txt"] }
  - name: Public key for the team
    public-key-file: { file: "{{ cluster.path }}/.sops.pub.age", content: "{{ recipient }}\\n" }
  - name: SOPS creation rule
    sops-config: { clusterPath: "{{ cluster.path }}", age: ["{{ recipient }}"] }
`;

void describe('fluxstrap run / bootstrap (built CLI)', () => {
  before(async () => {
    repo = await tempDir('run');
    await writeFile(join(repo, 'fluxstrap.yaml'), 'clusters:\n  lab:\n    git:\n      url: https://git.example.invalid/lab.git\n');
    await writeFile(join(repo, 'kubeconfig'), DEAD_KUBECONFIG);
    await mkdir(join(repo, 'clusters', 'lab', 'flux-system'), { recursive: true });
    await writeFile(join(repo, 'typo.yaml'), 'name: typo\ntasks:\n  - name: ns\n    namepsace: {}\n');
    await writeFile(join(repo, 'params.yaml'), 'name: params\ntasks:\n  - namespace:\n      name: Not_A_DNS_Label\n');
  });

  void it('refuses an unknown kind at file:line:col with a suggestion, without loading the kube client', () => {
    const trace = join(repo, 'trace.txt');
    const r = runCli(['run', 'typo.yaml'], { cwd: repo, env: { ...env(), FLUXSTRAP_TRACE_IMPORTS: trace }, nodeArgs: ['--import', hook] });
    userError(r, 1, /^error: unknown task kind or option "namepsace" \(typo\.yaml:4:5\)\nhint: did you mean "namespace"\?/);
    const modules = readFileSync(trace, 'utf8');
    assert.ok(modules.includes('/dist/flows/bootstrap.js'), 'the trace recorded the playbook engine');
    for (const heavy of ['@kubernetes/client-node', 'listr2', '@octokit/']) assert.ok(!modules.includes(heavy), `validating a playbook must not load ${heavy}`);
    assert.equal(r.stdout, '');
  });

  void it("validates params against the kind's schema before anything runs", () => {
    userError(cli(['run', 'params.yaml']), 1, /^error: .* \(params\.yaml:4:13 at namespace\.name\)/);
  });

  void it('exits 2 on usage errors, each with a hint', () => {
    userError(cli(['run']), 2, /missing required argument 'playbook'/);
    userError(cli(['bootstrap', '--timeout', 'soon']), 2, /^error: --timeout soon: expected a duration/);
    userError(cli(['bootstrap', '-e', 'novalue']), 2, /expected NAME=VALUE/);
    userError(cli(['bootstrap', '--cluster', 'prod']), 2, /^error: cluster "prod" is not in .*fluxstrap\.yaml\nhint: known clusters: lab/);
  });

  void it('reports a mistake in fluxstrap.yaml at its line, before anything runs', async () => {
    const bad = await tempDir('badconfig');
    await writeFile(
      join(bad, 'fluxstrap.yaml'),
      'clusters:\n  lab:\n    git:\n      url: https://x/y.git\n      auth:\n        https:\n          tokenEnv: GIT_TOKEN\n',
    );
    userError(
      runCli(['bootstrap'], { cwd: bad, env: env() }),
      1,
      /^error: unknown key "tokenEnv" \(expected "passwordEnv"\) \(\/.*\/fluxstrap\.yaml:7:11 at clusters\.lab\.git\.auth\.https\.tokenEnv\)/,
    );
  });

  void it('bootstrap needs a Git URL, and says every way to give one', async () => {
    const bare = await tempDir('nourl');
    const r = runCli(['bootstrap', '--cluster', 'x'], { cwd: bare, env: env() });
    userError(r, 2, /^error: no Git URL for cluster "x"\nhint: set clusters\.x\.git\.url in fluxstrap\.yaml, pass --git-url, or set FLUXSTRAP_GIT_URL/);
    userError(runCli(['bootstrap'], { cwd: bare, env: env() }), 2, /^error: no cluster named\nhint: pass --cluster NAME/);
  });

  void it('bootstrap --check --json against an unreachable API: preflight fails, nothing else runs, one JSON document', async () => {
    const before = await snapshot(repo);
    const r = cli(['bootstrap', '--check', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      title: string;
      check: boolean;
      success: boolean;
      tasks: { kind: string; outcome: string; error?: { code: string } }[];
    };
    assert.equal(doc.title, 'Bootstrap Flux on lab');
    assert.equal(doc.check, true);
    assert.equal(doc.success, false);
    assert.equal(doc.tasks[0]?.kind, 'preflight');
    assert.equal(doc.tasks[0]?.outcome, 'failed');
    assert.deepEqual(new Set(doc.tasks.slice(1).map((t) => t.outcome)), new Set(['skipped']));
    assert.equal(doc.tasks.length, 18);
    assert.deepEqual(await snapshot(repo), before, 'the repository is untouched');
  });

  void it('run twice on a playbook of file kinds: the second run changes nothing; --check changes nothing and exits 3', async () => {
    const recipient = await identityToRecipient(await generateIdentity());
    await writeFile(join(repo, 'prepare.yaml'), PREPARE);
    const run = (...extra: string[]) => cli(['run', 'prepare.yaml', '-e', `recipient=${recipient}`, ...extra]);

    const first = run();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /\nPrepare lab: ok=0 changed=3 would-change=0 skipped=0 failed=0/);
    assert.match(await readFile(join(repo, '.sops.yaml'), 'utf8'), new RegExp(recipient));
    const converged = await snapshot(repo);

    const second = run();
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /\nPrepare lab: ok=3 changed=0 would-change=0 skipped=0 failed=0/);
    assert.deepEqual(await snapshot(repo), converged);

    await writeFile(join(repo, '.gitignore'), 'node_modules/\n');
    const edited = await snapshot(repo);
    const checked = run('--check', '--diff');
    assert.equal(checked.code, 3, checked.stderr);
    assert.match(checked.stderr, /◎ Ignore private keys \[would-change\]/);
    assert.match(checked.stderr, /\n {4}\+\*\.agekey\n/);
    assert.deepEqual(await snapshot(repo), edited, '--check wrote nothing');

    const json = run('--json');
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as { recap: { changed: number; ok: number } };
    assert.deepEqual([doc.recap.changed, doc.recap.ok], [1, 2]);
    assert.equal(json.stderr, '');
    assert.equal(run('--check').code, 0, 'converged: --check exits 0');
  });

  void it('bootstrap --list-tasks: the steps on stdout, selected by tags, nothing run', () => {
    const r = cli(['bootstrap', '--list-tasks', '--skip-tags', 'flux,verify']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.stdout
        .split('\n')
        .map((l) => /\[([a-z-]+)\]/.exec(l)?.[1])
        .filter(Boolean),
      [
        'preflight',
        'github-repository',
        'ssh-deploy-key',
        'known-hosts',
        'github-deploy-key',
        'gitea-deploy-key',
        'preflight',
        'namespace',
        'git-credentials',
        'sops-age-secret',
        'sops-gpg-secret',
        'sops-hcvault-secret',
        'azure-credentials-secret',
      ],
    );
    assert.equal(r.stderr, '');
  });

  void it('plain output under CI: one line per task and the recap', () => {
    const r = cli(['bootstrap', '--check']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^► Bootstrap Flux on lab \(check mode: nothing will be changed\)\n✗ Preflight/);
    assert.match(r.stderr, /\nBootstrap Flux on lab: ok=0 changed=0 would-change=0 skipped=17 failed=1 \(\d+\.\ds\)\n$/);
    assert.equal(r.stdout, '');
  });
});
