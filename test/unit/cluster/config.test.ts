import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { clusterEntryOf, findRepo, githubRepoOf, parseConfig, resolveCluster } from '../../../src/cluster/config.ts';
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
  assert.throws(
    () => parseConfig(text, 'fluxstrap.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof FluxstrapError, String(e));
      assert.equal(e.code, 'E_CONFIG');
      assert.match(e.message, message);
      assert.equal(e.location?.line, line, `${e.message} at ${JSON.stringify(e.location)}`);
      if (field !== undefined) assert.equal(e.location?.field, field);
      return true;
    },
  );
}

void describe('fluxstrap.yaml', () => {
  void it('accepts a full config', () => {
    assert.equal(config.defaultCluster, 'staging');
    assert.equal(
      config.clusters.staging?.git?.auth && 'https' in config.clusters.staging.git.auth ? config.clusters.staging.git.auth.https.username : '',
      'git',
    );
  });

  void it('git.auth.githubApp: IDs as the strings the Secret holds, the key file relative to the repository, GitHub Enterprise from baseUrl', () => {
    const c = parseConfig(
      'clusters:\n  a:\n    git:\n      url: https://github.com/me/fleet.git\n      auth:\n        githubApp: { appId: 1234, installationId: "55", privateKeyFile: keys/app.pem }\n  b:\n    git:\n      url: https://ghe.example.com/me/fleet.git\n      auth:\n        githubApp: { appId: "7", installationOwner: acme, privateKeyFile: /k.pem, baseUrl: https://ghe.example.com/api/v3/ }\n',
      'fluxstrap.yaml',
    );
    const a = resolveCluster(c, { cluster: 'a' }, {}, where).git;
    assert.deepEqual(a.auth, { type: 'github-app', appId: '1234', installationId: '55', privateKeyFile: '/repo/keys/app.pem' });
    const b = resolveCluster(c, { cluster: 'b' }, {}, where).git;
    assert.deepEqual(b.auth, {
      type: 'github-app',
      appId: '7',
      installationOwner: 'acme',
      privateKeyFile: '/k.pem',
      baseUrl: 'https://ghe.example.com/api/v3',
    });
    assert.equal(b.provider, 'github', 'an App means GitHub, whatever the host');
    assert.equal(b.github?.apiUrl, 'https://ghe.example.com/api/v3');
    rejectsConfig(
      'clusters:\n  a:\n    git:\n      auth:\n        githubApp: { appId: 1, installationId: 2, installationOwner: me, privateKeyFile: k }\n',
      5,
      /set one of installationId and installationOwner/,
    );
    rejectsConfig(
      'clusters:\n  a:\n    git:\n      auth:\n        githubApp:\n          appId: abc\n          installationId: 2\n          privateKeyFile: k\n',
      6,
      /must be a number|Invalid/,
    );
  });

  void it('names the line and field of each mistake', () => {
    rejectsConfig('clusters:\n  prod:\n    gti: {}\n', 3, /unknown key "gti"/, 'clusters.prod.gti');
    rejectsConfig('clusters:\n  prod:\n    git:\n      auth:\n        token: x\n', 5, /expected exactly one of: https, ssh/);
    rejectsConfig(
      'clusters:\n  prod:\n    git:\n      auth:\n        https:\n          passwordEnv: my-token\n',
      6,
      /environment variable name/,
      'clusters.prod.git.auth.https.passwordEnv',
    );
    rejectsConfig('clusters:\n  prod:\n    git:\n      url: git@github.com:me/x.git\n', 4, /ssh:\/\/ URL/);
    rejectsConfig('defaultCluster: dev\nclusters:\n  prod: {}\n', 1, /not one of the clusters/);
    rejectsConfig('clusters:\n  Prod: {}\n', 2, /lowercase/);
    rejectsConfig('clusters:\n  prod:\n    ageKey: {file: a, env: B}\n', 3, /unknown key|exactly one/);
    rejectsConfig('clusters: [\n', 2, /invalid YAML/);
    rejectsConfig(
      'clusters:\n  prod:\n    ageKey:\n      ansibleVault:\n        file: v.yml\n        password: pw\n',
      6,
      /^unknown key "password" \(expected "passwordFile"\)$/,
      'clusters.prod.ageKey.ansibleVault.password',
    );
    rejectsConfig(
      'clusters:\n  prod:\n    ageKey:\n      file: k.txt\n      publicKeys:\n        - ssh-ed25519 AAAA\n',
      6,
      /^an SSH recipient cannot be the cluster key: kustomize-controller imports only age identities/,
    );
    rejectsConfig('clusters:\n  prod:\n    ageKey:\n      file: k.txt\n      publicKeys:\n        - age2xyz\n', 6, /must be an age recipient/);
  });

  void it('ageKey.publicKeys with any key source', () => {
    const r = 'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq';
    const c = parseConfig(`clusters:\n  prod:\n    ageKey: {file: k.txt, publicKeys: [${r}]}\n  lab:\n    ageKey: {env: K, publicKeys: [${r}]}\n`, 'f');
    assert.deepEqual(c.clusters.prod?.ageKey && 'file' in c.clusters.prod.ageKey ? c.clusters.prod.ageKey.publicKeys : undefined, [r]);
    const resolved = resolveCluster(c, { cluster: 'prod' }, {}, where);
    assert.deepEqual(resolved.ageKey, { type: 'file', file: '/repo/k.txt', publicKeys: [r] });
  });

  void it('sopsKey.pgp: a key file or a keyring fingerprint (spaces and case as gpg prints them), never with ageKey', () => {
    const fpr = '0123456789ABCDEF0123456789ABCDEF01234567';
    const c = parseConfig(
      `clusters:\n  prod:\n    sopsKey: {pgp: {file: keys/prod.asc}}\n  lab:\n    sopsKey:\n      pgp: {fingerprint: "0123 4567 89ab cdef 0123  4567 89AB CDEF 0123 4567"}\n`,
      'f',
    );
    assert.deepEqual(resolveCluster(c, { cluster: 'prod' }, {}, where).pgpKey, { type: 'file', file: '/repo/keys/prod.asc' });
    assert.deepEqual(resolveCluster(c, { cluster: 'lab' }, {}, where).pgpKey, { type: 'gpg', fingerprint: fpr });
    // An age key typed for this run is the key of the run.
    const typed = resolveCluster(c, { cluster: 'prod', ageKeyFile: 'k.txt' }, {}, where);
    assert.deepEqual([typed.pgpKey, typed.ageKey], [undefined, { type: 'file', file: '/work/k.txt' }]);
    assert.equal(resolveCluster(config, { cluster: 'prod' }, {}, where).pgpKey, undefined);
    rejectsConfig('clusters:\n  prod:\n    sopsKey:\n      pgp: {fingerprint: ABCD}\n', 4, /40-hex-digit OpenPGP v4 fingerprint/);
  });

  void it('sopsKey.pgp.retiring (keys rotate, until --finish) resolves beside the key, of either shape', () => {
    const fpr = '0123456789ABCDEF0123456789ABCDEF01234567';
    const c = parseConfig(
      `clusters:\n  prod:\n    sopsKey:\n      pgp: {file: keys/new.asc, retiring: {fingerprint: "${fpr.toLowerCase()}"}}\n  lab:\n    sopsKey: {pgp: {fingerprint: ${fpr}, retiring: {file: ~/old.asc}}}\n`,
      'f',
    );
    const prod = resolveCluster(c, { cluster: 'prod' }, {}, where);
    assert.deepEqual(
      [prod.pgpKey, prod.pgpRetiring],
      [
        { type: 'file', file: '/repo/keys/new.asc' },
        { type: 'gpg', fingerprint: fpr },
      ],
    );
    assert.deepEqual(resolveCluster(c, { cluster: 'lab' }, {}, where).pgpRetiring, { type: 'file', file: join(homedir(), 'old.asc') });
    assert.equal(resolveCluster(c, { cluster: 'prod', ageKeyFile: 'k.txt' }, {}, where).pgpRetiring, undefined, 'an age key typed for this run wins');
    rejectsConfig('clusters:\n  prod:\n    sopsKey:\n      pgp: {file: a.asc, retiring: {file: b.asc, retiring: {file: c.asc}}}\n', 4, /retiring/);
    rejectsConfig(
      'clusters:\n  prod:\n    sopsKey:\n      pgp: {file: p.asc, fingerprint: 0123456789ABCDEF0123456789ABCDEF01234567}\n',
      4,
      /^expected exactly one of: file, fingerprint$/,
    );
    rejectsConfig(
      'clusters:\n  prod:\n    ageKey: {file: k.txt}\n    sopsKey: {pgp: {file: p.asc}}\n',
      4,
      /cluster "prod" names two keys, ageKey and sopsKey/,
      'clusters.prod.sopsKey',
    );
  });
});

void describe('cluster resolution', () => {
  void it('GitHub: detected from a github.com URL, API URL from the flag, env or file, token variable from the file, the HTTPS auth, else GITHUB_TOKEN', () => {
    const gh = parseConfig(
      'clusters:\n  a:\n    git:\n      url: ssh://git@github.com/me/fleet.git\n  b:\n    git:\n      url: https://ghe.example.com/me/fleet.git\n      provider: github\n      github: { apiUrl: https://ghe.example.com/api/v3/, tokenEnv: GHE_TOKEN }\n  c:\n    git:\n      url: https://github.com/me/fleet.git\n      auth: { https: { passwordEnv: FLEET_TOKEN } }\n',
      'fluxstrap.yaml',
    );
    const a = resolveCluster(gh, { cluster: 'a' }, {}, where).git;
    assert.deepEqual([a.provider, a.github], ['github', { apiUrl: 'https://api.github.com', tokenEnv: 'GITHUB_TOKEN' }]);
    assert.deepEqual(resolveCluster(gh, { cluster: 'b' }, {}, where).git.github, { apiUrl: 'https://ghe.example.com/api/v3', tokenEnv: 'GHE_TOKEN' });
    assert.equal(resolveCluster(gh, { cluster: 'b', githubApiUrl: 'http://127.0.0.1:1' }, {}, where).git.github?.apiUrl, 'http://127.0.0.1:1');
    assert.equal(resolveCluster(gh, { cluster: 'a' }, { FLUXSTRAP_GITHUB_API_URL: 'http://x' }, where).git.github?.apiUrl, 'http://x');
    assert.equal(resolveCluster(gh, { cluster: 'c' }, {}, where).git.github?.tokenEnv, 'FLEET_TOKEN');
    assert.deepEqual(githubRepoOf('ssh://git@github.com/me/fleet.git'), { owner: 'me', repo: 'fleet' });
    assert.deepEqual(githubRepoOf('https://github.com/org/a.b'), { owner: 'org', repo: 'a.b' });
    assert.equal(githubRepoOf('https://github.com/only'), undefined);
  });

  void it('Gitea: explicit provider with its API root from the flag, env or file; token variable from the file, else GITEA_TOKEN', () => {
    const g = parseConfig(
      'clusters:\n  a:\n    git:\n      url: ssh://git@gitea.example.com/me/fleet.git\n      provider: gitea\n      gitea: { apiUrl: https://gitea.example.com/api/v1/ }\n  b:\n    git:\n      url: https://gitea.example.com/me/fleet.git\n      provider: gitea\n      gitea: { apiUrl: http://10.0.0.5:3000/api/v1, tokenEnv: FORGEJO_TOKEN }\n  c:\n    git:\n      url: https://gitea.example.com/me/fleet.git\n',
      'fluxstrap.yaml',
    );
    const a = resolveCluster(g, { cluster: 'a' }, {}, where).git;
    assert.deepEqual([a.provider, a.gitea, a.github], ['gitea', { apiUrl: 'https://gitea.example.com/api/v1', tokenEnv: 'GITEA_TOKEN' }, undefined]);
    assert.deepEqual(resolveCluster(g, { cluster: 'b' }, {}, where).git.gitea, { apiUrl: 'http://10.0.0.5:3000/api/v1', tokenEnv: 'FORGEJO_TOKEN' });
    assert.equal(resolveCluster(g, { cluster: 'a', giteaApiUrl: 'http://127.0.0.1:1/api/v1' }, {}, where).git.gitea?.apiUrl, 'http://127.0.0.1:1/api/v1');
    assert.equal(resolveCluster(g, { cluster: 'a' }, { FLUXSTRAP_GITEA_API_URL: 'http://x/api/v1' }, where).git.gitea?.apiUrl, 'http://x/api/v1');
    const c = resolveCluster(g, { cluster: 'c' }, { FLUXSTRAP_GITEA_API_URL: 'http://x/api/v1' }, where).git;
    assert.deepEqual([c.provider, c.gitea], ['generic', undefined], 'a Gitea URL is not recognised: the provider is named');
    assert.throws(
      () => resolveCluster(g, { cluster: 'a', giteaApiUrl: 'gitea.example.com/api/v1' }, {}, where),
      (e: unknown) =>
        e instanceof FluxstrapError && e.code === 'E_USAGE' && /^--gitea-api-url "gitea.example.com\/api\/v1" is not an http\(s\):\/\/ URL$/.test(e.message),
    );
  });

  void it('Gitea: provider without its API root, settings without the provider, a non-http(s) API root: one error at the line', () => {
    rejectsConfig(
      'clusters:\n  prod:\n    git:\n      url: ssh://git@gitea.example.com/me/fleet.git\n      provider: gitea\n',
      5,
      /^cluster "prod" has git.provider gitea without git.gitea.apiUrl$/,
      'clusters.prod.git.provider',
    );
    rejectsConfig(
      'clusters:\n  prod:\n    git:\n      url: ssh://git@gitea.example.com/me/fleet.git\n      gitea:\n        apiUrl: https://gitea.example.com/api/v1\n',
      6,
      /^cluster "prod" has git.gitea settings but git.provider is not set$/,
      'clusters.prod.git.gitea',
    );
    rejectsConfig('clusters:\n  prod:\n    git:\n      provider: gitea\n      gitea: { apiUrl: gitea.example.com }\n', 5, /must be an http\(s\):\/\/ URL/);
    rejectsConfig('clusters:\n  prod:\n    git:\n      provider: gitea\n      gitea: { tokenEnv: GITEA_TOKEN }\n', 5, /apiUrl/);
    rejectsConfig('clusters:\n  prod:\n    git:\n      provider: forgejo\n', 4, /github|gitea|generic/);
  });

  void it('reads the file, resolving its paths against the repository', () => {
    const c = resolveCluster(config, { cluster: 'prod' }, {}, where);
    assert.equal(c.path, 'clusters/prod');
    assert.deepEqual(c.kube, { kubeconfig: '/repo/secrets/prod.kubeconfig', context: 'prod-admin' });
    assert.deepEqual(c.git, {
      url: 'ssh://git@git.example.com/homelab.git',
      branch: 'release',
      auth: { type: 'ssh', keyFile: join(homedir(), '.ssh/flux'), knownHostsFile: '/repo/known_hosts' },
      provider: 'generic',
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

  void it('takes Git auth from flags and FLUXSTRAP_GIT_* over the file: a token variable makes HTTPS, a deploy key SSH', () => {
    // The file's HTTPS user name stays when only the token variable is given.
    const https = resolveCluster(config, { cluster: 'staging', gitTokenEnv: 'MY_TOKEN' }, {}, where);
    assert.deepEqual(https.git.auth, { type: 'https', username: 'git', passwordEnv: 'MY_TOKEN' });
    const named = resolveCluster(undefined, { cluster: 'dev', gitUsername: 'me' }, { FLUXSTRAP_GIT_TOKEN_ENV: 'T' }, where);
    assert.deepEqual(named.git.auth, { type: 'https', username: 'me', passwordEnv: 'T' });
    // Over a file's SSH auth, and relative to where the user stands.
    const ssh = resolveCluster(config, { cluster: 'staging', gitSshKey: 'deploy', gitKnownHosts: '/kh' }, {}, where);
    assert.deepEqual(ssh.git.auth, { type: 'ssh', keyFile: '/work/deploy', knownHostsFile: '/kh' });
    const envSsh = resolveCluster(undefined, { cluster: 'dev' }, { FLUXSTRAP_GIT_SSH_KEY: 'k', FLUXSTRAP_GIT_KNOWN_HOSTS: 'h' }, where);
    assert.deepEqual(envSsh.git.auth, { type: 'ssh', keyFile: '/work/k', knownHostsFile: '/work/h' });
    // --git-username alone renames the file's HTTPS user.
    assert.deepEqual(resolveCluster(config, { cluster: 'staging', gitUsername: 'bot' }, {}, where).git.auth, {
      type: 'https',
      username: 'bot',
      passwordEnv: 'GIT_TOKEN',
    });
  });

  void it('git.auth.sopsFile: beside https or ssh, or alone; resolved against the repository, dropped when flags name the auth; never in flux-system/', () => {
    const text = (auth: string) => `clusters:\n  prod:\n    git:\n      auth:\n${auth}`;
    const beside = parseConfig(text('        https: {passwordEnv: T}\n        sopsFile: bootstrap/prod/git.sops.yaml\n'), 'fluxstrap.yaml');
    assert.deepEqual(resolveCluster(beside, { cluster: 'prod' }, {}, where).git.auth, {
      type: 'https',
      username: 'git',
      passwordEnv: 'T',
      sopsFile: '/repo/bootstrap/prod/git.sops.yaml',
    });
    assert.deepEqual(resolveCluster(beside, { cluster: 'prod', gitTokenEnv: 'OTHER' }, {}, where).git.auth, {
      type: 'https',
      username: 'git',
      passwordEnv: 'OTHER',
    });
    const alone = parseConfig(text('        sopsFile: bootstrap/prod/git.sops.yaml\n'), 'fluxstrap.yaml');
    assert.deepEqual(resolveCluster(alone, { cluster: 'prod' }, {}, where).git.auth, { type: 'none', sopsFile: '/repo/bootstrap/prod/git.sops.yaml' });
    assert.throws(() => parseConfig(text('        sopsFile: clusters/prod/flux-system/git.sops.yaml\n'), 'fluxstrap.yaml'), FluxstrapError);
  });

  void it('refuses Git auth flags that do not make one kind of auth, and a token given where its variable name belongs, without echoing it', () => {
    const usage = (flags: Parameters<typeof resolveCluster>[1], message: RegExp) =>
      assert.throws(
        () => resolveCluster(undefined, { cluster: 'dev', ...flags }, {}, where),
        (e: unknown) => e instanceof FluxstrapError && e.code === 'E_USAGE' && message.test(e.message) && e.hint !== undefined,
      );
    usage({ gitTokenEnv: 'T', gitSshKey: 'k', gitKnownHosts: 'h' }, /both given/);
    usage({ gitSshKey: 'k' }, /--git-ssh-key is given without --git-known-hosts/);
    usage({ gitKnownHosts: 'h' }, /--git-known-hosts is given without --git-ssh-key/);
    usage({ gitUsername: 'me' }, /--git-username is given without --git-token-env/);
    usage({ gitUsername: 'me', gitSshKey: 'k', gitKnownHosts: 'h' }, /applies to HTTPS/);
    for (const token of ['ghp_abcdefghijklmnop1234', 'glpat-abcdefghij', 'github_pat_11ABC', 'a token with spaces']) {
      assert.throws(
        () => resolveCluster(undefined, { cluster: 'dev', gitTokenEnv: token }, {}, where),
        (e: unknown) => e instanceof FluxstrapError && /not the token/.test(e.message) && !`${e.message} ${e.hint ?? ''}`.includes(token),
      );
    }
    const inUrl = 'https://me:s3cr3t-token@git.example.com/x.git';
    assert.throws(
      () => resolveCluster(undefined, { cluster: 'dev', gitUrl: inUrl }, {}, where),
      (e: unknown) => e instanceof FluxstrapError && /carries a password/.test(e.message) && !`${e.message} ${e.hint ?? ''}`.includes('s3cr3t'),
    );
    // A user name alone in the URL is no secret.
    assert.equal(resolveCluster(undefined, { cluster: 'dev', gitUrl: 'ssh://git@h/x.git' }, {}, where).git.url, 'ssh://git@h/x.git');
  });

  void it('takes the age key from a backup (flag or FLUXSTRAP_AGE_KEY_BACKUP), with its passphrase file, never together with a key file', () => {
    assert.deepEqual(resolveCluster(config, { cluster: 'staging', ageKeyBackup: 'b.age', passphraseFile: 'p' }, {}, where).ageKey, {
      type: 'backup',
      file: '/work/b.age',
      passphraseFile: '/work/p',
    });
    assert.deepEqual(resolveCluster(config, { cluster: 'staging' }, { FLUXSTRAP_AGE_KEY_BACKUP: '/b.age' }, where).ageKey, { type: 'backup', file: '/b.age' });
    assert.throws(() => resolveCluster(config, { cluster: 'staging', ageKeyBackup: 'b', ageKeyFile: 'k' }, {}, where), /both name the age key/);
    assert.throws(() => resolveCluster(config, { cluster: 'staging', passphraseFile: 'p' }, {}, where), /without --age-key-backup/);
  });

  void it('works without a file from flags alone, and says which cluster is missing', () => {
    const c = resolveCluster(undefined, { cluster: 'dev', gitUrl: 'https://x/y.git' }, {}, { repoDir: '/r', cwd: '/r' });
    assert.equal(c.git.url, 'https://x/y.git');
    assert.equal(c.configFile, undefined);
    assert.throws(
      () => resolveCluster(undefined, {}, {}, where),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_USAGE',
    );
    const two = parseConfig('clusters:\n  a: {}\n  b: {}\n', 'f');
    assert.throws(() => resolveCluster(two, {}, {}, where), /several clusters in fluxstrap.yaml \(a, b\)/);
    assert.throws(
      () => resolveCluster(config, { cluster: 'nope' }, {}, where),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_USAGE' && /prod, staging/.test(e.hint ?? ''),
    );
    assert.throws(() => resolveCluster(config, { cluster: 'prod', path: '../etc' }, {}, where), /inside the repository/);
  });

  void it('a cluster named constructor, toString or __proto__ is found only when fluxstrap.yaml has it', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      assert.throws(
        () => resolveCluster(config, { cluster: name }, {}, where),
        (e: unknown) => e instanceof FluxstrapError && e.code === 'E_USAGE' && e.message === `cluster "${name}" is not in /repo/fluxstrap.yaml`,
        name,
      );
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
    const c = resolveCluster(
      parseConfig(
        'clusters:\n  prod:\n    sopsKey:\n      vault: {address: "https://vault.example.com:8200/", tokenEnv: FLUX_VAULT_TOKEN}\n',
        'fluxstrap.yaml',
      ),
      { cluster: 'prod' },
      {},
      where,
    );
    assert.deepEqual(c.vault, { address: 'https://vault.example.com:8200', tokenEnv: 'FLUX_VAULT_TOKEN' });
    assert.equal(resolveCluster(config, { cluster: 'prod' }, {}, where).vault, undefined);
  });

  void it('refuses an address with a path and a token variable that is not a name, naming the field', () => {
    rejectsConfig(
      'clusters:\n  prod:\n    sopsKey:\n      vault:\n        address: https://vault/v1/transit\n        tokenEnv: T\n',
      5,
      /without a path/,
      'clusters.prod.sopsKey.vault.address',
    );
    rejectsConfig(
      'clusters:\n  prod:\n    sopsKey:\n      vault:\n        address: https://vault\n        tokenEnv: hvs.abc-def\n',
      6,
      /environment variable name/,
      'clusters.prod.sopsKey.vault.tokenEnv',
    );
  });

  void it('is one of the sopsKey choices: beside pgp or a cloud key service it is refused', () => {
    const vault = '      vault: {address: "https://vault:8200", tokenEnv: T}\n';
    rejectsConfig(
      `clusters:\n  prod:\n    sopsKey:\n${vault}      pgp: {file: p.asc}\n`,
      4,
      /^give exactly one of pgp, vault, awsKms, gcpKms, azureKv$/,
      'clusters.prod.sopsKey',
    );
    rejectsConfig(
      `clusters:\n  prod:\n    sopsKey:\n${vault}      awsKms: {arn: "arn:aws:kms:eu-west-1:111122223333:key/k"}\n`,
      4,
      /^give exactly one of pgp, vault, awsKms, gcpKms, azureKv$/,
      'clusters.prod.sopsKey',
    );
  });
});
