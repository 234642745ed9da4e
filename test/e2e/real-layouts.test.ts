import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { repoRoot, runCli } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { kustomizeBuild } from '../../src/adapters/kustomize.ts';
import { parseAgeKeyFile, recipientOf } from '../../src/keys/age.ts';
import { keyProblems } from '../../src/tasks/preflight.ts';
import { ageClusterKey } from '../../src/tasks/sops-files.ts';
import { splitBuild } from '../../src/tasks/source.ts';
import { fixtureRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';

/**
 * The vendored real layouts (test/fixtures/homelab, test/fixtures/flux2-kustomize-helm-example)
 * through the built CLI: the SOPS files live where the cluster's Kustomizations point, not in the
 * cluster folder, and every command looks there.
 */

const SEED_KEY = 'age1t35sxk7cxkxk0rgfdmnkcnvky7zuf7g9407d3s03qyggu3w62adqnst5ya';
const SEED_SECRETS = [
  ['infrastructure/base/networking/secret.sops.yaml', 'infrastructure'],
  ['monitoring/base/grafana/secret.sops.yaml', 'monitoring'],
  ['services/base/karakeep/secret.sops.yaml', 'services'],
  ['services/base/silverbullet/secret.sops.yaml', 'services'],
] as const;
const PLAIN = join(repoRoot, 'test', 'fixtures', 'homelab', 'plain');

let home: string;
let keyFile: string;
let recipient: string;
let otherKey: string;
let other: string;

const env = (): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: undefined,
  KUBECONFIG: join(home, 'kubeconfig'),
  FLUXSTRAP_CLUSTER: undefined,
});
const cli = (args: string[], cwd = home): CliResult => runCli(args, { cwd, env: env() });
const ok = (r: CliResult) => assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
const rulesOf = async (repo: string) =>
  (parse(await readFile(join(repo, '.sops.yaml'), 'utf8')) as { creation_rules: { path_regex?: string; age?: string }[] }).creation_rules;

function newKey(name: string): [string, string] {
  const file = join(home, `${name}.agekey`);
  const r = cli(['keys', 'new', '--out', file]);
  ok(r);
  return [file, r.stdout.trim()];
}

before(async () => {
  home = await tempDir('layouts-home');
  await writeFile(join(home, 'kubeconfig'), DEAD_KUBECONFIG);
  [keyFile, recipient] = newKey('cluster');
  [otherKey, other] = newKey('other');
});

const initArgs = (r: FluxRepo) => [
  'init',
  '--cluster',
  r.cluster,
  '--repo',
  r.repo,
  '--key-file',
  keyFile,
  '--git-url',
  'https://git.example.invalid/homelab.git',
  '--branch',
  'main',
];
const checkCluster = (r: FluxRepo, key = keyFile) => cli(['check', '--cluster', r.cluster, '--repo', r.repo, '--key-file', key]);

void describe('the seed homelab (kristiangogov/homelab)', () => {
  let r: FluxRepo;
  before(async () => {
    r = await fixtureRepo('homelab');
  });

  void it('init adds the cluster key to the catch-all rule that governs the reached Secrets, not a rule for clusters/production', async () => {
    const res = cli(initArgs(r));
    ok(res);
    assert.match(
      res.stderr,
      /add the cluster's key to the creation rule at \.sops\.yaml:2 \(path_regex \.\*\\\.sops\\\.yaml\$\), which governs the 4 SOPS file\(s\) the cluster reaches \(infrastructure\/base\/networking\/secret\.sops\.yaml, monitoring/,
    );
    assert.deepEqual(await rulesOf(r.repo), [{ path_regex: '.*\\.sops\\.yaml$', age: `${SEED_KEY},${recipient}` }]);
    const converged = await snapshot(r.repo);
    const again = cli(initArgs(r));
    ok(again);
    assert.match(again.stderr, /nothing to do/);
    assert.deepEqual(await snapshot(r.repo), converged, 'a second run changes nothing');
  });

  void it('a key that opens none of the reached Secrets is refused, naming each file, the Kustomization that applies it and its recipients', () => {
    const res = checkCluster(r);
    assert.equal(res.code, 1, res.stderr);
    const lines = res.stdout.trim().split('\n');
    assert.equal(lines.length, 4, res.stdout);
    for (const [[file, ks], line] of SEED_SECRETS.map((s, i) => [s, lines[i] ?? ''] as const)) {
      assert.ok(line.startsWith(`${file}: the given keys cannot open it`), line);
      assert.ok(line.includes(SEED_KEY), `names the recipient: ${line}`);
      assert.ok(line.endsWith(`(applied by Kustomization flux-system/${ks} (clusters/production/${ks}.yaml:1))`), line);
    }
  });

  void it("preflight's key check refuses the key, naming every Secret it cannot open with its Kustomization and recipients", async () => {
    const identities = await parseAgeKeyFile(await readFile(keyFile, 'utf8'), keyFile, recipientOf);
    const build = splitBuild(await kustomizeBuild(join(r.repo, r.clusterPath, 'flux-system')));
    const notes: string[] = [];
    const problems = await keyProblems(
      { cluster: { name: r.cluster, path: r.clusterPath } },
      { dir: r.repo, clusterDir: join(r.repo, r.clusterPath) },
      build,
      ageClusterKey(identities),
      notes,
    );
    assert.equal(problems.length, 1, JSON.stringify(problems));
    const what = problems[0]?.what ?? '';
    assert.match(what, new RegExp(`^the age key \\(${recipient}\\) cannot open 4 of the 4 SOPS file\\(s\\) the cluster reaches: `));
    for (const [file, ks] of SEED_SECRETS) {
      assert.ok(what.includes(`${file} (reached by Kustomization flux-system/${ks} (clusters/production/${ks}.yaml:1); encrypted for ${SEED_KEY})`), what);
    }
    assert.deepEqual(notes, []);
  });

  void it('status lists, per Kustomization, the SOPS files it reaches', () => {
    const res = cli(['status', '--cluster', r.cluster, '--repo', r.repo, '--json'], r.repo);
    const doc = JSON.parse(res.stdout) as { findings: { check: string; status: string; message: string }[] };
    const reach = doc.findings.filter((f) => f.check === 'sops-reach');
    assert.deepEqual(
      reach.map((f) => f.status),
      ['ok'],
      JSON.stringify(reach),
    );
    assert.equal(
      reach[0]?.message,
      [
        'Kustomization flux-system/infrastructure (clusters/production/infrastructure.yaml:1) → infrastructure/production: infrastructure/base/networking/secret.sops.yaml',
        'Kustomization flux-system/monitoring (clusters/production/monitoring.yaml:1) → monitoring/production: monitoring/base/grafana/secret.sops.yaml',
        'Kustomization flux-system/services (clusters/production/services.yaml:1) → services/production: services/base/karakeep/secret.sops.yaml, services/base/silverbullet/secret.sops.yaml',
      ].join('; '),
    );
    assert.deepEqual(
      doc.findings.filter((f) => f.check === 'kustomization-decryption'),
      [],
    );
  });

  void it('re-encrypted to the cluster key, every reached Secret opens; a Kustomization without decryption is named at its line', async () => {
    for (const [file] of SEED_SECRETS) {
      await copyFile(join(PLAIN, file), join(r.repo, file));
      ok(cli(['encrypt', '--in-place', join(r.repo, file)], r.repo));
    }
    const res = checkCluster(r);
    ok(res);
    assert.equal(res.stdout, '');
    const notes: string[] = [];
    const identities = await parseAgeKeyFile(await readFile(keyFile, 'utf8'), keyFile, recipientOf);
    const build = splitBuild(await kustomizeBuild(join(r.repo, r.clusterPath, 'flux-system')));
    assert.deepEqual(
      await keyProblems(
        { cluster: { name: r.cluster, path: r.clusterPath } },
        { dir: r.repo, clusterDir: join(r.repo, r.clusterPath) },
        build,
        ageClusterKey(identities),
        notes,
      ),
      [],
    );
    assert.deepEqual(notes, ['the age key opens all 4 SOPS file(s) the cluster reaches (infrastructure: 1, monitoring: 1, services: 2)']);
    // The seed key is in the rule too, so the files open for its owner as well; the other key opens none.
    assert.equal(checkCluster(r, otherKey).stdout.trim().split('\n').length, 4);

    // keys rotate, phase 1: the catch-all rule and the four reached files get the new key; the
    // cluster folder holds none of them.
    const rotating = join(home, 'rotating.agekey');
    await copyFile(keyFile, rotating);
    const rotate = cli(['keys', 'rotate', '--cluster', r.cluster, '--repo', r.repo, '--key-file', rotating]);
    ok(rotate);
    const added = /added a new age identity to .*: (age1[0-9a-z]+)/.exec(rotate.stderr)?.[1] ?? '';
    assert.ok(added !== '', rotate.stderr);
    assert.deepEqual(await rulesOf(r.repo), [{ path_regex: '.*\\.sops\\.yaml$', age: `${SEED_KEY},${recipient},${added}` }]);
    for (const [file] of SEED_SECRETS) assert.ok((await readFile(join(r.repo, file), 'utf8')).includes(added), `${file} rekeyed`);
    assert.match(rotate.stderr, /every SOPS file clusters\/production reaches opens with the old and the new key/);

    const services = join(r.repo, 'clusters', 'production', 'services.yaml');
    await writeFile(services, (await readFile(services, 'utf8')).replace(/ {2}decryption:\n {4}provider: sops\n {4}secretRef:\n {6}name: sops-age/, ''));
    const lint = checkCluster(r);
    assert.equal(lint.code, 1);
    assert.equal(
      lint.stdout,
      'clusters/production/services.yaml:1: Kustomization flux-system/services applies SOPS-encrypted services/base/karakeep/secret.sops.yaml, services/base/silverbullet/secret.sops.yaml without decryption.provider sops (fix: fluxstrap init --cluster production --child-decryption)\n',
    );
  });
});

void describe('flux2-kustomize-helm-example (apps/ and infrastructure/ overlays per cluster)', () => {
  let r: FluxRepo;
  const SECRET = 'infrastructure/configs/dns-token.yaml';
  before(async () => {
    // A team that keeps infrastructure Secrets under a rule of their own, encrypted for their key.
    r = await fixtureRepo('flux2-kustomize-helm-example', 'production', {
      '.sops.yaml': `creation_rules:\n  - path_regex: ^infrastructure/.*\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: ${other}\n`,
      [SECRET]: 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: dns-token\n  namespace: cert-manager\nstringData:\n  token: made-up\n',
    });
    const kustomization = join(r.repo, 'infrastructure', 'configs', 'kustomization.yaml');
    await writeFile(kustomization, `${await readFile(kustomization, 'utf8')}  - dns-token.yaml\n`);
    ok(cli(['encrypt', '--in-place', join(r.repo, SECRET)], r.repo));
  });

  void it('init adds the cluster key to the rule of infrastructure/, which the cluster reaches through infra-configs', async () => {
    const res = cli(initArgs(r));
    ok(res);
    assert.deepEqual(await rulesOf(r.repo), [
      { path_regex: '^infrastructure/.*\\.yaml$', encrypted_regex: '^(data|stringData)$', age: `${other},${recipient}` },
    ]);
  });

  void it('status: the Kustomizations of both overlays, and the lint (infra-configs has no decryption)', () => {
    const res = cli(['status', '--cluster', r.cluster, '--repo', r.repo, '--json'], r.repo);
    const doc = JSON.parse(res.stdout) as { findings: { check: string; status: string; message: string }[] };
    assert.deepEqual(
      doc.findings.filter((f) => f.check === 'sops-reach').map((f) => [f.status, f.message]),
      [
        [
          'ok',
          'Kustomization flux-system/infra-configs (clusters/production/infrastructure.yaml:18) → infrastructure/configs: infrastructure/configs/dns-token.yaml',
        ],
      ],
    );
    assert.deepEqual(
      doc.findings.filter((f) => f.check === 'kustomization-decryption').map((f) => f.status),
      ['fail'],
    );
  });
  void it('the Secret is still encrypted for the old key only, and infra-configs does not decrypt: check names both; updatekeys and decryption fix them', async () => {
    const lint =
      'clusters/production/infrastructure.yaml:18: Kustomization flux-system/infra-configs applies SOPS-encrypted infrastructure/configs/dns-token.yaml without decryption.provider sops (fix: fluxstrap init --cluster production --child-decryption)\n';
    const before = checkCluster(r);
    assert.equal(before.code, 1);
    const [closed, rest] = before.stdout.split(/(?<=\n)/);
    assert.match(
      closed ?? '',
      new RegExp(
        `^infrastructure/configs/dns-token\\.yaml: the given keys cannot open it \\(encrypted to age ${other}; .*\\(applied by Kustomization flux-system/infra-configs \\(clusters/production/infrastructure\\.yaml:18\\)\\)\\n$`,
      ),
    );
    assert.equal(rest, lint);
    // updatekeys over the cluster: the files it reaches, wherever they are
    const update = cli(['updatekeys', '--cluster', r.cluster, '--repo', r.repo, '--key-file', otherKey]);
    ok(update);
    assert.match(update.stderr, /dns-token\.yaml: keys updated; added age:/);
    assert.equal(checkCluster(r).stdout, lint);
    // The fix the lint names, on the example's own file: only infra-configs gains the block (last,
    // its spec is not in alphabetical order); the other document and the inline patch stay as written.
    const file = join(r.repo, 'clusters', 'production', 'infrastructure.yaml');
    const was = await readFile(file, 'utf8');
    ok(cli([...initArgs(r), '--child-decryption']));
    const now = await readFile(file, 'utf8');
    assert.equal(now.slice(0, now.indexOf('\n---\n', 4)), was.slice(0, was.indexOf('\n---\n', 4)), 'infra-controllers untouched');
    assert.equal(now, was.replace(/\n$/, '').concat('\n  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n'));
    ok(checkCluster(r));
  });
});

void describe('a cluster that reaches no SOPS file', () => {
  void it('check --cluster says so instead of passing in silence', async () => {
    const r = await fixtureRepo('flux2-kustomize-helm-example', 'staging');
    const res = cli(['check', '--cluster', 'staging', '--repo', r.repo]);
    ok(res);
    assert.match(res.stderr, /^warning: cluster staging \(clusters\/staging\) reaches no SOPS-encrypted file through its 4 Kustomization\(s\)\n/);
    // preflight: a warning, not "the age key opens …"
    ok(cli(['init', '--cluster', 'staging', '--repo', r.repo, '--key-file', keyFile, '--git-url', 'https://git.example.invalid/x.git', '--branch', 'main']));
    const notes: string[] = [];
    const identities = await parseAgeKeyFile(await readFile(keyFile, 'utf8'), keyFile, recipientOf);
    const build = splitBuild(await kustomizeBuild(join(r.repo, 'clusters/staging/flux-system')));
    assert.deepEqual(
      await keyProblems(
        { cluster: { name: 'staging', path: 'clusters/staging' } },
        { dir: r.repo, clusterDir: join(r.repo, 'clusters/staging') },
        build,
        ageClusterKey(identities),
        notes,
      ),
      [],
    );
    assert.deepEqual(notes, [
      'warning: the cluster reaches no SOPS-encrypted file (4 Kustomization(s) from clusters/staging): the age key was not tried on any',
    ]);
  });
});
