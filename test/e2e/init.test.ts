import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { runCli } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { FLUX_FIXTURES, fluxRepo, SEED_ROOT_RESOURCES } from '../helpers/flux-repo.ts';
import { loadedPackages, tracedRun } from '../helpers/imports.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { leftoverTempFiles, snapshot, tempDir } from '../helpers/tmp.ts';
import { requireTool, runTool } from '../helpers/tools.ts';
import { findSops } from '../unit/sops/helpers.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';

/** `fluxstrap init` through the built CLI on the real Flux files, checked with kubectl kustomize, age and gpg. */

let home: string;
let keyFile: string;
let recipient: string;

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: undefined,
  ...extra,
});
const cli = (args: string[], extra: NodeJS.ProcessEnv = {}): CliResult => runCli(args, { cwd: home, env: env(extra) });
const init = (r: FluxRepo, ...args: string[]) => cli(['init', '--cluster', r.cluster, '--repo', r.repo, ...args]);
const initWithKey = (r: FluxRepo, ...args: string[]) => init(r, '--key-file', keyFile, ...args);

interface InitJson {
  check: boolean;
  success: boolean;
  recap: { ok: number; changed: number; wouldChange: number; failed: number };
  tasks: { name: string; kind: string; outcome: string; changes: { action: string; target: string }[] }[];
}
function json(r: CliResult): InitJson {
  assert.equal(r.stderr.includes('error:'), false, r.stderr);
  return JSON.parse(r.stdout) as InitJson;
}

/** Durations are the only part of the output allowed to differ between two identical runs. */
const stable = (text: string) => text.replace(/\(\d+(\.\d+)?m?s\)/g, '(T)').replace(/"durationMs": \d+/g, '"durationMs": 0');

async function kustomize(dir: string): Promise<Record<string, unknown>[]> {
  const out = (await runTool('kubectl', ['kustomize', dir])).stdout;
  return parseAllDocuments(out).map((d) => d.toJSON() as Record<string, unknown>);
}
const fluxKustomization = (objs: Record<string, unknown>[]) =>
  objs.find((o) => o.kind === 'Kustomization' && (o.metadata as { name?: string }).name === 'flux-system') as { spec: Record<string, unknown> } | undefined;

/** A user error is one `error:` line naming the file, maybe a hint, non-zero exit, nothing on stdout. */
function userError(r: CliResult, text: RegExp, where: string, code = 1): void {
  assert.equal(r.code, code, r.stderr);
  const [first, ...rest] = r.stderr.trimEnd().split('\n');
  assert.match(first ?? '', text);
  assert.ok(first?.includes(`(${where}`), `names ${where}: ${first}`);
  assert.ok(
    rest.every((l) => l.startsWith('hint: ')),
    r.stderr,
  );
  assert.equal(r.stdout, '');
}

before(async () => {
  requireTool('kubectl');
  requireTool('age');
  home = await tempDir('init-home');
  keyFile = join(home, 'keys', 'cluster.agekey');
  const r = cli(['keys', 'new', '--out', keyFile]);
  assert.equal(r.code, 0, r.stderr);
  recipient = r.stdout.trim();
});

void describe('init on the seed repository', () => {
  let r: FluxRepo;
  let first: CliResult;
  let afterFirst: Record<string, string>;

  before(async () => {
    r = await fluxRepo();
  });

  void it('--check shows the diff, changes nothing and exits 3', async () => {
    const seed = await snapshot(r.repo);
    const check = initWithKey(r, '--check');
    assert.equal(check.code, 3, check.stderr);
    assert.match(check.stderr, /check mode: nothing will be changed/);
    assert.match(check.stderr, /^ {4}-\s+decryption:$/m, 'shows the block leaving gotk-sync.yaml');
    assert.match(check.stderr, /^ {4}\+\s+path: \/spec\/decryption$/m, 'shows the patch arriving');
    assert.match(check.stderr, /^ {4}\+ {2}- flux-system$/m);
    assert.deepEqual(await snapshot(r.repo), seed);
    assert.equal(await r.git('status', '--porcelain'), '');
  });

  void it('makes every change from the plan', async () => {
    first = initWithKey(r);
    assert.equal(first.code, 0, first.stderr);
    afterFirst = await snapshot(r.repo);
    const file = (p: string) => readFile(join(r.repo, p), 'utf8');

    const rules = (parse(await file('.sops.yaml')) as { creation_rules: Record<string, string>[] }).creation_rules;
    assert.deepEqual(rules, [
      { path_regex: `^clusters/production/.*\\.ya?ml$`, encrypted_regex: '^(data|stringData)$', mac_only_encrypted: true, age: recipient },
    ]);
    assert.match(await file('clusters/production/.sops.pub.age'), new RegExp(`^${recipient}$`, 'm'));
    assert.equal(await file('clusters/production/flux-system/gotk-sync.yaml'), await readFile(join(FLUX_FIXTURES, 'gotk-sync.pristine.yaml'), 'utf8'));
    assert.ok((await file('clusters/production/flux-system/kustomization.yaml')).startsWith(await readFile(join(FLUX_FIXTURES, 'kustomization.yaml'), 'utf8')));
    assert.deepEqual((parse(await file('clusters/production/kustomization.yaml')) as { resources: string[] }).resources, [
      'flux-system',
      ...SEED_ROOT_RESOURCES,
    ]);
    assert.match(await file('Makefile'), /^provision:\n\tnpx fluxstrap bootstrap --cluster \$\(CLUSTER\)$/m);
    assert.match(await file('Makefile'), /^CLUSTER \?= production$/m);
    assert.match(await file('.gitignore'), /^\*\.agekey$/m);
    assert.deepEqual(await leftoverTempFiles(r.repo), []);
    const changed = (await r.git('status', '--porcelain', '--untracked-files=all')).split('\n').filter(Boolean).sort();
    assert.deepEqual(changed, [
      ' M clusters/production/flux-system/gotk-sync.yaml',
      ' M clusters/production/flux-system/kustomization.yaml',
      ' M clusters/production/kustomization.yaml',
      '?? .gitignore',
      '?? .sops.yaml',
      '?? Makefile',
      '?? clusters/production/.sops.pub.age',
      '?? fluxstrap.yaml',
    ]);
  });

  void it('kubectl kustomize applies the patch to the flux-system Kustomization, through the cluster root too', async () => {
    const decryption = { provider: 'sops', secretRef: { name: 'sops-age' } };
    assert.deepEqual(fluxKustomization(await kustomize(join(r.repo, r.clusterPath, 'flux-system')))?.spec.decryption, decryption);
    const root = await kustomize(join(r.repo, r.clusterPath));
    assert.deepEqual(fluxKustomization(root)?.spec.decryption, decryption);
    assert.ok(
      root.some((o) => o.kind === 'ConfigMap'),
      'the seed resources are still there',
    );
    // what flux bootstrap regenerates (gotk-sync.yaml) no longer carries it: the patch is the only source
    const sync = parseAllDocuments(await readFile(join(r.repo, r.clusterPath, 'flux-system', 'gotk-sync.yaml'), 'utf8')).map(
      (d) => d.toJSON() as Record<string, unknown>,
    );
    assert.equal(fluxKustomization(sync)?.spec.decryption, undefined);
  });

  void it('a second run reports nothing to do, changes nothing, and prints the same as a third', async () => {
    const second = initWithKey(r);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /ok=8 changed=0 would-change=0/);
    assert.match(second.stderr, /nothing to do/);
    assert.deepEqual(await snapshot(r.repo), afterFirst);
    const third = initWithKey(r);
    assert.equal(stable(third.stderr), stable(second.stderr));
    assert.equal(third.stdout, second.stdout);
    const again = json(initWithKey(r, '--json'));
    assert.deepEqual(again.recap, { ok: 8, changed: 0, wouldChange: 0, skipped: 0, failed: 0 });
    const check = initWithKey(r, '--check');
    assert.equal(check.code, 0, 'nothing pending');
    assert.deepEqual(await snapshot(r.repo), afterFirst);
  });

  void it('survives flux bootstrap regenerating gotk-sync.yaml: nothing to do, decryption still applied', async () => {
    const sync = join(r.repo, r.clusterPath, 'flux-system', 'gotk-sync.yaml');
    await writeFile(sync, await readFile(join(FLUX_FIXTURES, 'gotk-sync.pristine.yaml'), 'utf8'));
    assert.deepEqual(json(initWithKey(r, '--json')).recap.changed, 0);
    assert.deepEqual(fluxKustomization(await kustomize(join(r.repo, r.clusterPath, 'flux-system')))?.spec.decryption, {
      provider: 'sops',
      secretRef: { name: 'sops-age' },
    });
  });

  void it("fluxstrap encrypt follows the rule: only data/stringData, to the cluster's key", async () => {
    const secret = join(r.repo, r.clusterPath, 'db.yaml');
    await writeFile(secret, 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n');
    const enc = runCli(['encrypt', '--in-place', `${r.clusterPath}/db.yaml`], { cwd: r.repo, env: env({ SOPS_AGE_KEY_FILE: keyFile }) });
    assert.equal(enc.code, 0, enc.stderr);
    const doc = parse(await readFile(secret, 'utf8')) as {
      metadata: { name: string };
      stringData: { password: string };
      sops: { age: { recipient: string }[]; encrypted_regex: string };
    };
    assert.equal(doc.metadata.name, 'db');
    assert.match(doc.stringData.password, /^ENC\[AES256_GCM,/);
    assert.deepEqual(
      doc.sops.age.map((a) => a.recipient),
      [recipient],
    );
    assert.equal(doc.sops.encrypted_regex, '^(data|stringData)$');
    await rm(secret);
  });

  void it('the exported public key works with the real age', async () => {
    const sealed = await runTool('age', ['-a', '-R', join(r.repo, r.clusterPath, '.sops.pub.age')], { input: 'for the team\n' });
    const file = join(home, 'team.age');
    await writeFile(file, sealed.stdout);
    assert.equal((await runTool('age', ['-d', '-i', keyFile, file])).stdout, 'for the team\n');
  });
});

void describe('init start-up', () => {
  void it('loads neither openpgp (for age keys) nor the Kubernetes or GitHub clients', async () => {
    const r = await fluxRepo();
    const run = await tracedRun(['init', '--cluster', r.cluster, '--repo', r.repo, '--age', recipient, '--check'], { cwd: home, env: env() });
    assert.equal(run.code, 3, run.stderr);
    assert.ok(
      run.modules.some((m) => m.endsWith('/dist/flows/init.js')),
      'the trace recorded the imports',
    );
    assert.deepEqual(loadedPackages(run.modules, ['openpgp', '@kubernetes/client-node', '@octokit/', 'age-encryption']), []);
  });
});

void describe('init --json', () => {
  void it('gives one document with every task, outcome and change', async () => {
    const r = await fluxRepo();
    const doc = json(initWithKey(r, '--json', '--check'));
    assert.equal(doc.check, true);
    assert.deepEqual(
      doc.tasks.map((t) => t.kind),
      ['sops-config', 'public-key-file', 'decryption-patch', 'gotk-sync-restore', 'cluster-root', 'makefile', 'gitignore', 'fluxstrap-config'],
    );
    assert.ok(doc.tasks.every((t) => t.outcome === 'would-change' && t.changes.length === 1));
    assert.deepEqual(doc.tasks.find((t) => t.kind === 'gotk-sync-restore')?.changes[0]?.target, 'file clusters/production/flux-system/gotk-sync.yaml');
  });
});

void describe('init in other repositories', () => {
  void it('keeps an existing .sops.yaml, Makefile and .gitignore, printing the Makefile snippet', async () => {
    const sops =
      '# team rules\ncreation_rules:\n  # everything else\n  - path_regex: .*\\.sops\\.yaml$\n    age: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n';
    const r = await fluxRepo({ files: { '.sops.yaml': sops, Makefile: 'build:\n\tgo build\n', '.gitignore': 'node_modules/\n' } });
    const res = initWithKey(r);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(await readFile(join(r.repo, 'Makefile'), 'utf8'), 'build:\n\tgo build\n');
    assert.match(
      res.stderr,
      /provision target to add to your Makefile:\n\n# Bootstrap Flux[\s\S]*\nprovision:\n\tnpx fluxstrap bootstrap --cluster \$\(CLUSTER\)/,
    );
    const after = await readFile(join(r.repo, '.sops.yaml'), 'utf8');
    assert.ok(after.startsWith('# team rules\ncreation_rules:\n  - path_regex: ^clusters/production/'), after);
    assert.ok(after.endsWith(sops.split('\n').slice(2).join('\n')), 'the old rule follows with its comment');
    assert.ok((await readFile(join(r.repo, '.gitignore'), 'utf8')).startsWith('node_modules/\n'));
  });

  void it('creates flux-system/kustomization.yaml before flux bootstrap, and leaves a root without kustomization.yaml alone', async () => {
    const r = await fluxRepo({ seedRoot: false, cluster: 'edge' });
    await r.git('rm', '--quiet', `${r.clusterPath}/flux-system/kustomization.yaml`);
    const res = initWithKey(r);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /Flux includes every manifest in the folder/);
    assert.deepEqual(fluxKustomization(await kustomize(join(r.repo, r.clusterPath, 'flux-system')))?.spec.decryption, {
      provider: 'sops',
      secretRef: { name: 'sops-age' },
    });
  });

  void it('takes the key from SOPS_AGE_KEY_FILE, --age, or a --path outside clusters/', async () => {
    const viaEnv = await fluxRepo();
    assert.equal(cli(['init', '--cluster', 'production', '--repo', viaEnv.repo], { SOPS_AGE_KEY_FILE: keyFile }).code, 0);
    assert.match(await readFile(join(viaEnv.repo, '.sops.yaml'), 'utf8'), new RegExp(`age: ${recipient}`));
    const custom = await fluxRepo({ cluster: 'prod' });
    const res = cli(['init', '--cluster', 'prod', '--path', 'clusters/prod/', '--age', recipient, '--repo', custom.repo]);
    assert.equal(res.code, 0, res.stderr);
    assert.ok((await readFile(join(custom.repo, '.sops.yaml'), 'utf8')).includes('path_regex: ^clusters/prod/.*\\.ya?ml$'));
  });

  void it('ignores a key file kept inside the repository', async () => {
    const r = await fluxRepo();
    const inRepo = join(r.repo, 'secrets', 'dev-key.txt');
    assert.equal(cli(['keys', 'new', '--out', inRepo]).code, 0);
    assert.equal(init(r, '--key-file', inRepo).code, 0);
    assert.match(await readFile(join(r.repo, '.gitignore'), 'utf8'), /^\/secrets\/dev-key\.txt$/m);
    assert.equal((await r.git('check-ignore', 'secrets/dev-key.txt')).trim(), 'secrets/dev-key.txt');
    assert.doesNotMatch(await r.git('status', '--porcelain', '--untracked-files=all'), /dev-key/);
  });

  void it('exports an OpenPGP public key that gpg imports, and writes its fingerprint into .sops.yaml', async () => {
    requireTool('gpg');
    const r = await fluxRepo();
    const pgpKey = join(home, 'pgp', 'cluster.asc');
    const made = cli(['keys', 'new', '--pgp', '--type', 'ed25519', '--out', pgpKey]);
    assert.equal(made.code, 0, made.stderr);
    const fpr = made.stdout.trim();
    const res = init(r, '--key-file', pgpKey);
    assert.equal(res.code, 0, res.stderr);
    assert.match(await readFile(join(r.repo, '.sops.yaml'), 'utf8'), new RegExp(`pgp: ${fpr}\\n`));
    const exported = await readFile(join(r.repo, r.clusterPath, '.sops.pub.asc'), 'utf8');
    assert.doesNotMatch(exported, /PRIVATE/);
    const gnupg = await tempDir('init-gpg');
    await runTool('gpg', ['--batch', '--import'], { env: { GNUPGHOME: gnupg }, input: exported });
    assert.match((await runTool('gpg', ['--batch', '--with-colons', '--list-keys'], { env: { GNUPGHOME: gnupg } })).stdout, new RegExp(`^fpr:+${fpr}:`, 'm'));
  });
});

void describe('init writes fluxstrap.yaml, which bootstrap reads', () => {
  const URL = 'https://git.example.invalid/me/fleet.git';
  let r: FluxRepo;
  let written: Record<string, string>;

  before(async () => {
    r = await fluxRepo();
    await r.git('remote', 'add', 'origin', 'git@git.example.invalid:me/fleet.git');
  });

  void it('records the cluster: flags, the age key file under ~, and the origin remote only where no flag says', async () => {
    const res = initWithKey(r, '--git-url', URL, '--branch', 'main', '--git-token-env', 'GITHUB_TOKEN');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(
      await readFile(join(r.repo, 'fluxstrap.yaml'), 'utf8'),
      `# yaml-language-server: $schema=https://unpkg.com/fluxstrap@0.1.0/schema/fluxstrap.schema.json
clusters:
  production:
    git:
      url: ${URL}
      branch: main
      auth:
        https:
          passwordEnv: GITHUB_TOKEN
    ageKey:
      file: ~/keys/cluster.agekey
`,
    );
    written = await snapshot(r.repo);
    const fromOrigin = await fluxRepo({ cluster: 'lab' });
    await fromOrigin.git('remote', 'add', 'origin', 'git@git.example.invalid:me/lab.git');
    assert.equal(init(fromOrigin, '--age', recipient).code, 0);
    assert.equal(
      await readFile(join(fromOrigin.repo, 'fluxstrap.yaml'), 'utf8'),
      `# yaml-language-server: $schema=https://unpkg.com/fluxstrap@0.1.0/schema/fluxstrap.schema.json\nclusters:\n  lab:\n    git:\n      url: ssh://git@git.example.invalid/me/lab.git\n`,
    );
  });

  void it('a second init reports nothing to do and changes nothing', async () => {
    const again = initWithKey(r);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /ok=8 changed=0 would-change=0/);
    assert.deepEqual(await snapshot(r.repo), written);
  });

  void it('fluxstrap run and bootstrap resolve the cluster from it, without flags', async () => {
    const playbook = join(home, 'show.yaml');
    await writeFile(
      playbook,
      'name: "{{ cluster.name }} at {{ cluster.path }} from {{ cluster.git.url }} ({{ cluster.git.branch }}, {{ cluster.git.auth.type }})"\ntasks:\n  - name: keys stay out of Git\n    gitignore: { entries: ["*.agekey"] }\n',
    );
    const run = runCli(['run', playbook, '--check'], { cwd: join(r.repo, r.clusterPath), env: env() });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`^► production at clusters/production from ${URL} \\(main, https\\)`));
    // Past the configuration, bootstrap stops at preflight: there is no cluster to reach.
    await writeFile(join(home, 'kubeconfig'), DEAD_KUBECONFIG);
    const boot = runCli(['bootstrap', '--check', '--json', '--cluster', 'production'], {
      cwd: r.repo,
      env: env({ KUBECONFIG: join(home, 'kubeconfig'), GITHUB_TOKEN: 'not-a-token' }),
    });
    assert.equal(boot.code, 1, boot.stderr);
    const doc = JSON.parse(boot.stdout) as { title: string; tasks: { kind: string; outcome: string; error?: { code: string; message: string } }[] };
    assert.equal(doc.title, 'Bootstrap Flux on production');
    assert.deepEqual([doc.tasks[0]?.kind, doc.tasks[0]?.outcome], ['preflight', 'failed']);
    const error = doc.tasks[0]?.error;
    assert.equal(error?.code, 'E_PRECONDITION', JSON.stringify(error));
    assert.match(error?.message ?? '', new RegExp(`cannot read ${URL}: .*Could not resolve host`), 'the Git check used the URL and token the file names');
    assert.match(error?.message ?? '', /the Kubernetes API at https:\/\/127\.0\.0\.1:1 is unreachable/);
    assert.deepEqual(await snapshot(r.repo), written);
  });

  void it('a flag that conflicts with the entry updates that field, shown in the diff', async () => {
    const check = initWithKey(r, '--branch', 'release', '--check');
    assert.equal(check.code, 3, check.stderr);
    assert.match(check.stderr, /set clusters\.production\.git\.branch to release \(was main\)/);
    assert.match(check.stderr, /^ {4}- {6}branch: main\n {4}\+ {6}branch: release$/m);
    assert.equal(initWithKey(r, '--branch', 'release').code, 0);
    assert.equal(
      (parse(await readFile(join(r.repo, 'fluxstrap.yaml'), 'utf8')) as { clusters: { production: { git: { branch: string; url: string } } } }).clusters
        .production.git.url,
      URL,
      'the rest is kept',
    );
  });

  void it('--git-username writes the HTTPS account name next to the token variable', async () => {
    const gitea = await fluxRepo({ cluster: 'home' });
    const res = init(
      gitea,
      '--age',
      recipient,
      '--git-url',
      'https://gitea.example.invalid/me/fleet.git',
      '--git-username',
      'flux-bot',
      '--git-token-env',
      'GITEA_TOKEN',
    );
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      await readFile(join(gitea.repo, 'fluxstrap.yaml'), 'utf8'),
      /^ {6}auth:\n {8}https:\n {10}username: flux-bot\n {10}passwordEnv: GITEA_TOKEN\n/m,
    );
    const bad = init(gitea, '--age', recipient, '--git-username', 'a b', '--git-token-env', 'GITEA_TOKEN');
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /^error: --git-username "a b": a user name has no colon or whitespace\nhint: .+\n$/);
  });

  void it('a later init without --path works on the folder fluxstrap.yaml names', async () => {
    const moved = await fluxRepo({ cluster: 'eu' });
    await moved.git('mv', 'clusters/eu', 'clusters/prod-eu');
    assert.equal(init(moved, '--path', 'clusters/prod-eu', '--age', recipient).code, 0);
    assert.match(await readFile(join(moved.repo, 'fluxstrap.yaml'), 'utf8'), /^ {2}eu:\n {4}path: clusters\/prod-eu\n/m);
    const again = init(moved, '--age', recipient);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /nothing to do/);
  });
});

void describe('init --decryption', () => {
  const argsOf = (objs: Record<string, unknown>[], name: string) =>
    (
      objs.find((o) => o.kind === 'Deployment' && (o.metadata as { name?: string }).name === name) as
        { spec: { template: { spec: { containers: { args: string[] }[] } } } } | undefined
    )?.spec.template.spec.containers[0]?.args ?? [];

  void it('controller mode, then back: each switch is a plan --check shows, applied once, and kubectl kustomize builds it', async () => {
    const r = await fluxRepo({ gotkSync: 'pristine' });
    const fluxSystem = join(r.repo, r.clusterPath, 'flux-system');
    const check = initWithKey(r, '--decryption', 'controller', '--check');
    assert.equal(check.code, 3, check.stderr);
    assert.match(check.stderr, /^ {4}\+\s+value: --sops-age-secret=sops-age$/m);
    assert.equal(initWithKey(r, '--decryption', 'controller').code, 0);
    let objs = await kustomize(fluxSystem);
    assert.deepEqual(fluxKustomization(objs)?.spec.decryption, { provider: 'sops' });
    assert.ok(argsOf(objs, 'kustomize-controller').includes('--sops-age-secret=sops-age'));
    assert.ok(!argsOf(objs, 'helm-controller').some((a) => a.startsWith('--sops-age-secret')), 'only kustomize-controller knows the flag');
    for (const again of [initWithKey(r, '--decryption', 'controller', '--check'), initWithKey(r, '--check')]) {
      assert.equal(again.code, 0, `nothing to do, with the flag or without it: ${again.stderr}`);
    }
    const back = initWithKey(r, '--decryption', 'kustomization', '--check');
    assert.equal(back.code, 3);
    assert.match(back.stderr, /^ {4}-\s+value: --sops-age-secret=sops-age$/m);
    assert.equal(initWithKey(r, '--decryption', 'kustomization').code, 0);
    objs = await kustomize(fluxSystem);
    assert.deepEqual(fluxKustomization(objs)?.spec.decryption, { provider: 'sops', secretRef: { name: 'sops-age' } });
    assert.ok(!argsOf(objs, 'kustomize-controller').some((a) => a.startsWith('--sops-age-secret')));
    assert.equal(initWithKey(r, '--check').code, 0);
  });
});

void describe('init: mac_only_encrypted in the new rule, as the real sops reads it', () => {
  void it('files encrypted under the rule carry it, and each side decrypts what the other encrypted', async () => {
    const sops = findSops();
    const r = await fluxRepo();
    assert.equal(initWithKey(r).code, 0);
    assert.match(await readFile(join(r.repo, '.sops.yaml'), 'utf8'), /^ {4}mac_only_encrypted: true$/m);
    const plain = 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  labels:\n    tier: a\nstringData:\n  password: mac-only\n';
    const mine = join(r.repo, r.clusterPath, 'mine.yaml');
    const theirs = join(r.repo, r.clusterPath, 'theirs.yaml');
    await writeFile(mine, plain);
    await writeFile(theirs, plain);
    const enc = runCli(['encrypt', '-i', mine], { cwd: r.repo, env: env() });
    assert.equal(enc.code, 0, enc.stderr);
    const sopsRun = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
      execFileSync(sops, args, { cwd: r.repo, env: { ...env(), PATH: process.env.PATH, ...extra }, encoding: 'utf8' });
    sopsRun(['encrypt', '-i', theirs]);
    for (const f of [mine, theirs]) assert.match(await readFile(f, 'utf8'), /^ {4}mac_only_encrypted: true$/m, f);
    // A plaintext field edited by hand: with mac_only_encrypted the MAC still holds for both tools.
    for (const f of [mine, theirs]) await writeFile(f, (await readFile(f, 'utf8')).replace('tier: a', 'tier: b'));
    for (const f of [mine, theirs]) {
      assert.match(sopsRun(['decrypt', f], { SOPS_AGE_KEY_FILE: keyFile }), /password: mac-only/);
      const d = runCli(['decrypt', f], { cwd: r.repo, env: env({ SOPS_AGE_KEY_FILE: keyFile }) });
      assert.equal(d.code, 0, d.stderr);
      assert.match(d.stdout, /password: mac-only/);
    }
  });
});

void describe('init: bad input', () => {
  /** Each case fails with one line naming the file and leaves the repository exactly as it was. */
  async function refuses(r: FluxRepo, args: string[], text: RegExp, where: string, code = 1, extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
    const before = await snapshot(r.repo);
    userError(cli(['init', '--cluster', r.cluster, '--repo', r.repo, ...args], extraEnv), text, where, code);
    assert.deepEqual(await snapshot(r.repo), before, 'nothing written');
  }

  void it('invalid YAML in .sops.yaml, with its line, and nothing else changed', async () => {
    const r = await fluxRepo({ files: { '.sops.yaml': 'creation_rules:\n  - path_regex: a\n    age: x\n  path_regex: b\n' } });
    await refuses(r, ['--key-file', keyFile], /^error: invalid YAML/, '.sops.yaml:4');
  });

  void it('an invalid fluxstrap.yaml, with its line', async () => {
    const r = await fluxRepo({ files: { 'fluxstrap.yaml': 'clusters:\n  production:\n    git:\n      branch: main\n      uri: https://x\n' } });
    await refuses(r, ['--key-file', keyFile], /^error: unknown key "uri"/, 'fluxstrap.yaml:5');
  });

  void it('a .sops.yaml sops would reject', async () => {
    const r = await fluxRepo({ files: { '.sops.yaml': 'creation_rules:\n  - path_regex: "("\n    age: x\n' } });
    await refuses(r, ['--key-file', keyFile], /^error: path_regex .* is not a valid regular expression/, '.sops.yaml:2');
  });

  void it('invalid YAML in kustomization.yaml, with its line', async () => {
    const r = await fluxRepo({
      files: { 'clusters/production/flux-system/kustomization.yaml': 'resources:\n- gotk-components.yaml\nresources:\n- gotk-sync.yaml\n' },
    });
    await refuses(r, ['--key-file', keyFile], /^error: invalid YAML: Map keys must be unique/, 'clusters/production/flux-system/kustomization.yaml:3');
    const root = await fluxRepo({ files: { 'clusters/production/kustomization.yaml': 'resources: flux-system\n' } });
    await refuses(root, ['--key-file', keyFile], /^error: resources must be a list/, 'clusters/production/kustomization.yaml:1');
  });

  void it('an unknown cluster path, naming the clusters there are', async () => {
    const r = await fluxRepo();
    const before = await snapshot(r.repo);
    const res = cli(['init', '--cluster', 'staging', '--repo', r.repo, '--key-file', keyFile]);
    userError(res, /^error: unknown cluster path/, 'clusters/staging');
    assert.match(res.stderr, /hint: clusters in this repository: clusters\/production/);
    assert.deepEqual(await snapshot(r.repo), before);
    userError(cli(['init', '--cluster', 'x', '--repo', join(home, 'nope')]), /^error: repository folder not found/, join(home, 'nope'));
  });

  void it('malformed, missing or directory key files', async () => {
    const r = await fluxRepo();
    const bad = join(home, 'bad-key.txt');
    await writeFile(bad, '# created: now\nAGE-SECRET-KEY-1QQQQQQQQ\n');
    await refuses(r, ['--key-file', bad], /^error: malformed age identity/, `${bad}:2`);
    const dir = join(home, 'key-dir');
    await mkdir(dir, { recursive: true });
    await refuses(r, ['--key-file', dir], /^error: cannot read file: is a directory/, dir);
    await refuses(r, ['--key-file', join(home, 'absent.txt')], /^error: cannot read file: no such file/, join(home, 'absent.txt'));
    await refuses(r, [], /^error: no age key found/, join(home, '.config', 'sops', 'age', 'keys.txt'));
  });

  void it('an unwritable target: a folder where a file must go', async () => {
    const r = await fluxRepo();
    await mkdir(join(r.repo, r.clusterPath, '.sops.pub.age'));
    await refuses(r, ['--key-file', keyFile], /^error: cannot read file: is a directory/, `${join(r.repo, r.clusterPath, '.sops.pub.age')}`);
  });

  void it('--decryption controller with a Flux release before v2.7: the flag, or the header line of gotk-components.yaml', async () => {
    const r = await fluxRepo();
    await refuses(
      r,
      ['--key-file', keyFile, '--decryption', 'controller', '--flux-version', 'v2.6.4'],
      /^error: --decryption controller needs Flux v2\.7\.0 or newer, --flux-version is v2\.6\.4/,
      '--flux-version',
      2,
    );
    const components = join(r.repo, r.clusterPath, 'flux-system', 'gotk-components.yaml');
    await writeFile(components, (await readFile(components, 'utf8')).replace('# Flux Version: v2.7.5', '# Flux Version: v2.6.4'));
    await refuses(
      r,
      ['--key-file', keyFile, '--decryption', 'controller'],
      /^error: --decryption controller needs Flux v2\.7\.0 or newer; the cluster runs Flux v2\.6\.4/,
      `${r.clusterPath}/flux-system/gotk-components.yaml:3`,
      2,
    );
    const both = cli(['init', '--cluster', r.cluster, '--repo', r.repo, '--decryption', 'both']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^error: option '--decryption <mode>' argument 'both' is invalid/);
  });

  void it('an SSH key as the cluster key: refused with the reason, nothing written (kustomize-controller imports only age identities)', async () => {
    const r = await fluxRepo();
    const ssh = join(home, 'id_ed25519');
    await rm(ssh, { force: true });
    await rm(`${ssh}.pub`, { force: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@host', '-f', ssh]);
    const pub = (await readFile(`${ssh}.pub`, 'utf8')).trim();
    await refuses(
      r,
      ['--key-file', ssh],
      /^error: an SSH private key is not an age identity: kustomize-controller imports only age X25519 identities into sops-age/,
      `${ssh}:1`,
    );
    const before = await snapshot(r.repo);
    const only = init(r, '--age', pub);
    assert.equal(only.code, 2);
    assert.match(
      only.stderr,
      /^error: --age names only SSH recipients: kustomize-controller cannot decrypt with an SSH key .*\nhint: add the age1… recipient of the cluster key/,
    );
    assert.deepEqual(await snapshot(r.repo), before, 'nothing written');
    // Next to the cluster's age key an SSH recipient is welcome: people decrypt with it, as sops lets them.
    assert.equal(init(r, '--age', recipient, '--age', pub).code, 0);
    assert.ok((await readFile(join(r.repo, '.sops.yaml'), 'utf8')).includes(`    age: ${recipient},${pub}\n`));
  });

  void it('usage errors exit 2', async () => {
    const r = await fluxRepo();
    const res = cli(['init', '--cluster', r.cluster, '--repo', r.repo, '--age', 'not-a-recipient']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /^error: invalid age recipient not-a-recipient \(--age\)\n/);
    assert.equal(cli(['init', '--cluster', r.cluster, '--repo', r.repo, '--age', recipient, '--key-file', keyFile]).code, 2);
    assert.equal(cli(['init', '--repo', r.repo]).code, 2, '--cluster is required');
    assert.equal(cli(['init', '--cluster', '../etc', '--repo', r.repo]).code, 2);
    assert.equal(cli(['init', '--cluster', 'x', '--path', '../outside', '--repo', r.repo, '--age', recipient]).code, 2);
  });
});
