import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { clusterEntryOf, findRepo, parseConfig, resolveCluster } from '../../../src/cluster/config.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';

const GOOD = `# yaml-language-server: $schema=./schema/fluxstrap.schema.json
defaultCluster: staging
clusters:
  prod:
    path: ./clusters/prod/
    kube:
      kubeconfig: secrets/prod.kubeconfig
      context: prod-admin
    git:
      url: ssh://git@git.example.com/homelab.git
      branch: release
      auth:
        ssh:
          keyFile: ~/.ssh/flux
          knownHostsFile: known_hosts
    ageKey:
      ansibleVault:
        file: ansible/group_vars/all/secrets.yml
        passwordFile: ~/.vault_pass
        variable: sops_age_private_key
  staging:
    git:
      url: https://git.example.com/homelab.git
      auth:
        https:
          passwordEnv: GIT_TOKEN
    ageKey:
      env: STAGING_AGE_KEY
`;

const where = { repoDir: '/repo', cwd: '/work', configFile: '/repo/fluxstrap.yaml' };
const config = parseConfig(GOOD, 'fluxstrap.yaml');

function rejectsConfig(text: string, line: number, message: RegExp, field?: string) {
  assert.throws(() => parseConfig(text, 'fluxstrap.yaml'), (e: unknown) => {
    assert.ok(e instanceof FluxstrapError, String(e));
    assert.equal(e.code, 'E_CONFIG');
    assert.match(e.message, message);
    assert.equal(e.location?.line, line, `${e.message} at ${JSON.stringify(e.location)}`);
    if (field !== undefined) assert.equal(e.location?.field, field);
    return true;
  });
}

void describe('fluxstrap.yaml', () => {
  void it('accepts a full config', () => {
    assert.equal(config.defaultCluster, 'staging');
    assert.equal(config.clusters.staging?.git?.auth && 'https' in config.clusters.staging.git.auth ? config.clusters.staging.git.auth.https.username : '', 'git');
  });

  void it('names the line and field of each mistake', () => {
    rejectsConfig('clusters:\n  prod:\n    gti: {}\n', 3, /unknown key "gti"/, 'clusters.prod.gti');
    rejectsConfig('clusters:\n  prod:\n    git:\n      auth:\n        token: x\n', 5, /expected exactly one of: https, ssh/);
    rejectsConfig('clusters:\n  prod:\n    git:\n      auth:\n        https:\n          passwordEnv: my-token\n', 6, /environment variable name/, 'clusters.prod.git.auth.https.passwordEnv');
    rejectsConfig('clusters:\n  prod:\n    git:\n      url: git@github.com:me/x.git\n', 4, /ssh:\/\/ URL/);
    rejectsConfig('defaultCluster: dev\nclusters:\n  prod: {}\n', 1, /not one of the clusters/);
    rejectsConfig('clusters:\n  Prod: {}\n', 2, /lowercase/);
    rejectsConfig('clusters:\n  prod:\n    ageKey: {file: a, env: B}\n', 3, /unknown key|exactly one/);
    rejectsConfig('clusters: [\n', 2, /invalid YAML/);
    rejectsConfig('clusters:\n  prod:\n    ageKey:\n      ansibleVault:\n        file: v.yml\n        password: pw\n', 6,
      /^unknown key "password" \(expected "passwordFile"\)$/, 'clusters.prod.ageKey.ansibleVault.password');
  });
});

void describe('cluster resolution', () => {
  void it('reads the file, resolving its paths against the repository', () => {
    const c = resolveCluster(config, { cluster: 'prod' }, {}, where);
    assert.equal(c.path, 'clusters/prod');
    assert.deepEqual(c.kube, { kubeconfig: '/repo/secrets/prod.kubeconfig', context: 'prod-admin' });
    assert.deepEqual(c.git, {
      url: 'ssh://git@git.example.com/homelab.git',
      branch: 'release',
      auth: { type: 'ssh', keyFile: join(homedir(), '.ssh/flux'), knownHostsFile: '/repo/known_hosts' },
    });
    assert.deepEqual(c.ageKey, {
      type: 'ansible-vault',
      file: '/repo/ansible/group_vars/all/secrets.yml',
      passwordFile: join(homedir(), '.vault_pass'),
      variable: 'sops_age_private_key',
    });
  });

  void it('lets flags beat FLUXSTRAP_* variables, which beat the file', () => {
    const env = { FLUXSTRAP_CLUSTER: 'prod', FLUXSTRAP_CONTEXT: 'from-env', FLUXSTRAP_GIT_BRANCH: 'env-branch', FLUXSTRAP_KUBECONFIG: 'env.kubeconfig' };
    const byEnv = resolveCluster(config, {}, env, where);
    assert.equal(byEnv.name, 'prod');
    assert.deepEqual(byEnv.kube, { kubeconfig: '/work/env.kubeconfig', context: 'from-env' });
    assert.equal(byEnv.git.branch, 'env-branch');
    const byFlag = resolveCluster(config, { cluster: 'staging', context: 'flag', branch: 'b', path: 'k8s/staging', ageKeyFile: 'k.txt' }, env, where);
    assert.equal(byFlag.name, 'staging');
    assert.equal(byFlag.kube.context, 'flag');
    assert.equal(byFlag.git.branch, 'b');
    assert.equal(byFlag.path, 'k8s/staging');
    assert.deepEqual(byFlag.ageKey, { type: 'file', file: '/work/k.txt' });
  });

  void it('falls back to defaultCluster, then the only cluster, then the defaults of sops and kubectl', () => {
    const staging = resolveCluster(config, {}, {}, where);
    assert.equal(staging.name, 'staging');
    assert.equal(staging.path, 'clusters/staging');
    assert.equal(staging.git.branch, 'main');
    assert.deepEqual(staging.kube, {});
    assert.deepEqual(staging.git.auth, { type: 'https', username: 'git', passwordEnv: 'GIT_TOKEN' });
    assert.deepEqual(staging.ageKey, { type: 'env', env: 'STAGING_AGE_KEY' });
    const only = parseConfig('clusters:\n  lab: {}\n', 'f');
    const lab = resolveCluster(only, {}, { SOPS_AGE_KEY_FILE: '/keys.txt' }, where);
    assert.equal(lab.name, 'lab');
    assert.deepEqual(lab.ageKey, { type: 'file', file: '/keys.txt' });
    assert.deepEqual(lab.git.auth, { type: 'none' });
    assert.deepEqual(resolveCluster(only, {}, { SOPS_AGE_KEY: 'AGE-SECRET-KEY-1X' }, where).ageKey, { type: 'env', env: 'SOPS_AGE_KEY' });
  });

  void it('works without a file from flags alone, and says which cluster is missing', () => {
    const c = resolveCluster(undefined, { cluster: 'dev', gitUrl: 'https://x/y.git' }, {}, { repoDir: '/r', cwd: '/r' });
    assert.equal(c.git.url, 'https://x/y.git');
    assert.equal(c.configFile, undefined);
    assert.throws(() => resolveCluster(undefined, {}, {}, where), (e: unknown) => e instanceof FluxstrapError && e.code === 'E_USAGE');
    const two = parseConfig('clusters:\n  a: {}\n  b: {}\n', 'f');
    assert.throws(() => resolveCluster(two, {}, {}, where), /several clusters in fluxstrap.yaml \(a, b\)/);
    assert.throws(() => resolveCluster(config, { cluster: 'nope' }, {}, where), (e: unknown) =>
      e instanceof FluxstrapError && e.code === 'E_USAGE' && /prod, staging/.test(e.hint ?? ''));
    assert.throws(() => resolveCluster(config, { cluster: 'prod', path: '../etc' }, {}, where), /inside the repository/);
  });

  void it('a cluster named constructor, toString or __proto__ is found only when fluxstrap.yaml has it', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      assert.throws(() => resolveCluster(config, { cluster: name }, {}, where), (e: unknown) =>
        e instanceof FluxstrapError && e.code === 'E_USAGE' && e.message === `cluster "${name}" is not in /repo/fluxstrap.yaml`, name);
    }
    const own = parseConfig('clusters:\n  constructor:\n    git: {branch: dev}\n  prod: {}\n', 'f');
    assert.equal(resolveCluster(own, { cluster: 'constructor' }, {}, where).git.branch, 'dev');
    assert.equal(clusterEntryOf(own, 'toString'), undefined);
    rejectsConfig('clusters:\n  __proto__:\n    path: x\n', 2, /lowercase/);
  });

  void it('finds the repository: --repo, FLUXSTRAP_REPO, the nearest fluxstrap.yaml, else cwd', async () => {
    const root = await mkdtemp(join(tmpdir(), 'fluxstrap-repo-'));
    try {
      await mkdir(join(root, 'clusters', 'prod'), { recursive: true });
      await writeFile(join(root, 'fluxstrap.yaml'), 'clusters: {}\n');
      assert.equal(findRepo(undefined, {}, join(root, 'clusters', 'prod')), root);
      assert.equal(findRepo('x', { FLUXSTRAP_REPO: '/elsewhere' }, '/w'), '/w/x');
      assert.equal(findRepo(undefined, { FLUXSTRAP_REPO: '/elsewhere' }, '/w'), '/elsewhere');
      assert.equal(findRepo(undefined, {}, tmpdir()), tmpdir());
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

void describe('sopsKey.vault', () => {
  void it('resolves the address (trailing slash dropped) and the token variable; the token itself is never in the file', () => {
    const c = resolveCluster(parseConfig('clusters:\n  prod:\n    sopsKey:\n      vault: {address: "https://vault.example.com:8200/", tokenEnv: FLUX_VAULT_TOKEN}\n', 'fluxstrap.yaml'), { cluster: 'prod' }, {}, where);
    assert.deepEqual(c.vault, { address: 'https://vault.example.com:8200', tokenEnv: 'FLUX_VAULT_TOKEN' });
    assert.equal(resolveCluster(config, { cluster: 'prod' }, {}, where).vault, undefined);
  });

  void it('refuses an address with a path and a token variable that is not a name, naming the field', () => {
    rejectsConfig('clusters:\n  prod:\n    sopsKey:\n      vault:\n        address: https://vault/v1/transit\n        tokenEnv: T\n', 5, /without a path/, 'clusters.prod.sopsKey.vault.address');
    rejectsConfig('clusters:\n  prod:\n    sopsKey:\n      vault:\n        address: https://vault\n        tokenEnv: hvs.abc-def\n', 6, /environment variable name/, 'clusters.prod.sopsKey.vault.tokenEnv');
  });
});
