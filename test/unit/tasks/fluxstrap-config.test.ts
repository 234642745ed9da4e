import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig, resolveCluster } from '../../../src/cluster/config.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { configPath, fluxGitUrl, fluxstrapConfigKind, fluxstrapConfigTaskParams } from '../../../src/tasks/fluxstrap-config.ts';
import { planFile } from '../../helpers/file-tasks.ts';
import { tempDir } from '../../helpers/tmp.ts';
import { runTool } from '../../helpers/tools.ts';

const LOCAL_SCHEMA = 'node_modules/fluxstrap/schema/fluxstrap.schema.json';
const prod = (set: object, fill: object = {}) => ({ cluster: 'prod', set, fill });
const GIT = { url: 'https://git.example.com/me/fleet.git', branch: 'main' };

/** The team's file: comments everywhere, a second cluster, and prod described in part. */
const TEAM = `# how fluxstrap reaches our clusters
defaultCluster: lab
clusters:
  # the homelab
  lab:
    kube: { context: lab-admin }
    ageKey:
      env: SOPS_AGE_KEY # from the password manager
  prod:
    git:
      branch: main # Flux follows this
`;

const isConfigError = (line: number, text: RegExp) => (e: unknown) =>
  e instanceof FluxstrapError && e.code === 'E_CONFIG' && e.location?.file === 'fluxstrap.yaml' && e.location.line === line && text.test(e.message);

void describe('fluxstrap-config plan', () => {
  void it('creates the file with the editor schema comment, and bootstrap resolves the cluster from it', () => {
    const { changes, after } = planFile(
      fluxstrapConfigKind,
      prod({ path: 'clusters/eu/prod', ageKey: { file: '~/.config/sops/age/prod.agekey' } }, { git: GIT }),
      undefined,
    );
    assert.equal(changes[0]?.action, 'create');
    assert.equal(changes[0]?.summary, 'add cluster prod: path, git.url, git.branch, ageKey.file');
    assert.equal(
      after,
      `# yaml-language-server: $schema=https://unpkg.com/fluxstrap@0.1.0/schema/fluxstrap.schema.json
clusters:
  prod:
    path: clusters/eu/prod
    git:
      url: ${GIT.url}
      branch: main
    ageKey:
      file: ~/.config/sops/age/prod.agekey
`,
    );
    const cluster = resolveCluster(parseConfig(after ?? '', 'fluxstrap.yaml'), { cluster: 'prod' }, {}, { repoDir: '/repo', cwd: '/elsewhere' });
    assert.equal(cluster.path, 'clusters/eu/prod');
    assert.deepEqual(cluster.git, { ...GIT, auth: { type: 'none' }, provider: 'generic' });
    assert.equal(cluster.ageKey.type === 'file' && cluster.ageKey.file.endsWith('/.config/sops/age/prod.agekey'), true);
  });

  void it('points the schema comment at an installed fluxstrap when the repository has one', () => {
    const { after } = planFile(fluxstrapConfigKind, prod({}), undefined, { [LOCAL_SCHEMA]: '{}' });
    assert.ok(after?.startsWith(`# yaml-language-server: $schema=./${LOCAL_SCHEMA}\nclusters:\n  prod: {}\n`), after);
  });

  void it('leaves out the default cluster folder', () => {
    assert.doesNotMatch(planFile(fluxstrapConfigKind, prod({ path: 'clusters/prod' }), undefined).after ?? '', /path:/);
  });

  void it('fills in the entry of an existing file, keeping comments, order and the other cluster', () => {
    const { changes, after } = planFile(fluxstrapConfigKind, prod({ ageKey: { file: 'keys/prod.agekey' } }, { git: GIT }), TEAM);
    assert.equal(changes[0]?.action, 'update');
    assert.equal(changes[0]?.summary, 'add to cluster prod: git.url, ageKey.file');
    assert.equal(
      after,
      `${TEAM.replace('      branch: main # Flux follows this\n', `      branch: main # Flux follows this\n      url: ${GIT.url}\n    ageKey:\n      file: keys/prod.agekey\n`)}`,
    );
    assert.doesNotMatch(after ?? '', /yaml-language-server/, 'an existing file gets no schema comment');
  });

  void it('adds a new cluster after the others', () => {
    const { after } = planFile(fluxstrapConfigKind, { cluster: 'edge', set: { ageKey: { file: 'edge.agekey' } } }, TEAM);
    assert.equal(after, `${TEAM}  edge:\n    ageKey:\n      file: edge.agekey\n`);
  });

  void it('a second plan on the result finds nothing, and found values never replace what is there', () => {
    const { after } = planFile(fluxstrapConfigKind, prod({ ageKey: { file: 'keys/prod.agekey' } }, { git: GIT }), TEAM);
    assert.deepEqual(planFile(fluxstrapConfigKind, prod({ ageKey: { file: 'keys/prod.agekey' } }, { git: GIT }), after).changes, []);
    const otherRemote = { git: { url: 'ssh://git@mirror.example.com/fleet.git', branch: 'trunk' } };
    assert.deepEqual(planFile(fluxstrapConfigKind, prod({}, otherRemote), after).changes, [], 'the origin remote only fills gaps');
  });

  void it('a flag given now that conflicts with the entry updates that field, in place, and says so', () => {
    const { changes, after } = planFile(fluxstrapConfigKind, prod({ git: { branch: 'release' } }), TEAM);
    assert.equal(changes[0]?.summary, 'set clusters.prod.git.branch to release (was main)');
    assert.equal(changes[0]?.before, TEAM);
    assert.equal(after, TEAM.replace('branch: main # Flux follows this', 'branch: release # Flux follows this'));
  });

  void it("edits an entry whose settings are aliases of another cluster's without dropping what the anchor holds", () => {
    const shared = `clusters:\n  demo:\n    git: &git\n      url: ${GIT.url}\n      branch: main\n      auth:\n        https:\n          username: bot\n          passwordEnv: TOKEN\n  prod:\n    git: *git\n`;
    // Nothing to change: the file stays as written, aliases and all.
    assert.deepEqual(planFile(fluxstrapConfigKind, prod({ git: GIT }), shared).changes, []);
    const { after } = planFile(fluxstrapConfigKind, prod({ git: { branch: 'release' } }), shared);
    const clusters = parseConfig(after ?? '', 'fluxstrap.yaml').clusters;
    assert.deepEqual(clusters.prod?.git, { url: GIT.url, branch: 'release', auth: { https: { username: 'bot', passwordEnv: 'TOKEN' } } });
    assert.equal(clusters.demo?.git?.branch, 'main', "the anchor's owner is not changed");
  });

  void it('never removes what the user set: an age key of another kind is kept, with a note', () => {
    const { changes, notes } = planFile(fluxstrapConfigKind, { cluster: 'lab', set: { ageKey: { file: 'lab.agekey' } } }, TEAM);
    assert.deepEqual(changes, []);
    assert.deepEqual(notes, ['kept clusters.lab.ageKey.env as written in fluxstrap.yaml']);
  });

  void it('notes Git auth that does not fit the URL scheme', () => {
    const { notes } = planFile(fluxstrapConfigKind, prod({ git: { url: 'ssh://git@host/fleet.git', auth: { https: { passwordEnv: 'TOKEN' } } } }), undefined);
    assert.match(notes[0] ?? '', /git\.auth of cluster prod does not fit its ssh URL/);
  });

  void it('a cluster name fluxstrap.yaml cannot hold: nothing written, a note with the way out', () => {
    const { changes, notes } = planFile(fluxstrapConfigKind, { cluster: 'Prod_EU', set: {} }, undefined);
    assert.deepEqual(changes, []);
    assert.match(notes[0] ?? '', /--cluster prod-eu --path clusters\/Prod_EU/);
  });

  void it('an invalid file is E_CONFIG at its line, and nothing is planned', () => {
    assert.throws(() => planFile(fluxstrapConfigKind, prod({}), 'clusters:\n  prod:\n    path: a\n    path: b\n'), isConfigError(4, /invalid YAML/));
    assert.throws(() => planFile(fluxstrapConfigKind, prod({}), 'clusters:\n  prod:\n    git:\n      uri: https://x\n'), isConfigError(4, /unknown key "uri"/));
    assert.throws(() => planFile(fluxstrapConfigKind, prod({}), '# nothing yet\nclusters: []\n'), isConfigError(2, /expected record/));
  });

  void it('an empty file is filled like a new one, keeping its comment', () => {
    const { after } = planFile(fluxstrapConfigKind, prod({}), '# our clusters\n');
    assert.equal(after, '# our clusters\n\nclusters:\n  prod: {}\n');
  });
});

void describe('fluxGitUrl', () => {
  void it('gives Flux an https:// or ssh:// URL without credentials', () => {
    const cases: [string, string | undefined][] = [
      ['git@github.com:me/fleet.git', 'ssh://git@github.com/me/fleet.git'],
      ['gitea.lan:/srv/git/fleet.git', 'ssh://gitea.lan/srv/git/fleet.git'],
      ['ssh://git@host:2222/fleet.git', 'ssh://git@host:2222/fleet.git'],
      ['git+ssh://git@host/fleet.git', 'ssh://git@host/fleet.git'],
      ['https://me:ghp_secret@github.com/me/fleet.git', 'https://github.com/me/fleet.git'],
      ['http://git.lan/fleet.git', 'http://git.lan/fleet.git'],
      ['git://host/fleet.git', undefined],
      ['file:///srv/fleet.git', undefined],
      ['/srv/fleet.git', undefined],
      ['../fleet', undefined],
    ];
    for (const [remote, url] of cases) assert.equal(fluxGitUrl(remote), url, remote);
  });
});

void describe('configPath', () => {
  void it('keeps ~, anchors relative paths on the repository, and writes home and repository paths portably', () => {
    const at = (given: string) => configPath(given, '/home/me/src/fleet', '/home/me/src/fleet/clusters', '/home/me');
    assert.equal(at('~/.config/sops/age/keys.txt'), '~/.config/sops/age/keys.txt');
    assert.equal(at('../keys/prod.agekey'), 'keys/prod.agekey');
    assert.equal(at('../../prod.agekey'), '../prod.agekey');
    assert.equal(at('/home/me/src/fleet/keys/prod.agekey'), 'keys/prod.agekey');
    assert.equal(at('/home/me/.ssh/flux'), '~/.ssh/flux');
    assert.equal(at('/etc/flux/known_hosts'), '/etc/flux/known_hosts');
  });
});

void describe("init's fluxstrap.yaml params", () => {
  void it('flags become settings; the origin remote fills URL and default branch', async () => {
    const repo = await tempDir('config-origin');
    await runTool('git', ['init', '--quiet'], { cwd: repo });
    await runTool('git', ['remote', 'add', 'origin', 'git@github.com:me/fleet.git'], { cwd: repo });
    await runTool('git', ['symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/trunk'], { cwd: repo });
    const found = await fluxstrapConfigTaskParams(repo, 'prod', 'clusters/prod', {}, process.cwd());
    assert.deepEqual(found, { cluster: 'prod', set: {}, fill: { git: { url: 'ssh://git@github.com/me/fleet.git', branch: 'trunk' } } });
    const given = await fluxstrapConfigTaskParams(
      repo,
      'prod',
      'clusters/x',
      {
        path: 'clusters/x',
        gitUrl: 'https://github.com/me/fleet.git',
        branch: 'main',
        gitSshKey: join(repo, 'deploy'),
        gitKnownHosts: join(repo, 'known_hosts'),
        ageKeyFile: '~/k.agekey',
      },
      process.cwd(),
    );
    assert.deepEqual(given, {
      cluster: 'prod',
      set: {
        path: 'clusters/x',
        git: { url: 'https://github.com/me/fleet.git', branch: 'main', auth: { ssh: { keyFile: 'deploy', knownHostsFile: 'known_hosts' } } },
        ageKey: { file: '~/k.agekey' },
      },
      fill: {},
    });
  });

  void it('keeps how the entry spells a file the flags name too', async () => {
    const repo = await tempDir('config-spelling');
    await writeFile(join(repo, 'fluxstrap.yaml'), 'clusters:\n  prod:\n    ageKey: { file: ./keys/../prod.agekey }\n');
    const params = await fluxstrapConfigTaskParams(repo, 'prod', 'clusters/prod', { ageKeyFile: join(repo, 'prod.agekey') }, process.cwd());
    assert.deepEqual(params.set, { ageKey: { file: './keys/../prod.agekey' } });
    const other = await fluxstrapConfigTaskParams(repo, 'prod', 'clusters/prod', { ageKeyFile: join(repo, 'new.agekey') }, process.cwd());
    assert.deepEqual(other.set, { ageKey: { file: 'new.agekey' } });
  });

  void it('--git-username is written with the token variable, and bootstrap sends it', async () => {
    const repo = await tempDir('config-username');
    const url = 'https://gitea.example.com/me/fleet.git';
    const params = await fluxstrapConfigTaskParams(
      repo,
      'prod',
      'clusters/prod',
      { gitUrl: url, gitTokenEnv: 'GITEA_TOKEN', gitUsername: 'flux-bot' },
      process.cwd(),
    );
    assert.deepEqual(params.set, { git: { url, auth: { https: { username: 'flux-bot', passwordEnv: 'GITEA_TOKEN' } } } });
    const { after } = planFile(fluxstrapConfigKind, params, undefined);
    assert.match(after ?? '', /^ {6}auth:\n {8}https:\n {10}username: flux-bot\n {10}passwordEnv: GITEA_TOKEN\n/m);
    const cluster = resolveCluster(parseConfig(after ?? '', 'fluxstrap.yaml'), {}, {}, { repoDir: repo, cwd: repo });
    assert.deepEqual(cluster.git.auth, { type: 'https', username: 'flux-bot', passwordEnv: 'GITEA_TOKEN' });
  });

  void it('--git-username alone completes the HTTPS auth the entry has, keeping its token variable', async () => {
    const repo = await tempDir('config-username-later');
    const written = 'clusters:\n  prod:\n    git:\n      auth:\n        https: { passwordEnv: GITEA_TOKEN } # from CI\n';
    await writeFile(join(repo, 'fluxstrap.yaml'), written);
    const params = await fluxstrapConfigTaskParams(
      repo,
      'prod',
      'clusters/prod',
      { gitUsername: 'me', gitUrl: 'https://gitea.example.com/me/fleet.git' },
      process.cwd(),
    );
    const { changes, after } = planFile(fluxstrapConfigKind, params, written);
    assert.match(changes[0]?.summary ?? '', /git\.auth\.https\.username/);
    assert.deepEqual(resolveCluster(parseConfig(after ?? '', 'fluxstrap.yaml'), {}, {}, { repoDir: repo, cwd: repo }).git.auth, {
      type: 'https',
      username: 'me',
      passwordEnv: 'GITEA_TOKEN',
    });
    assert.match(after ?? '', /# from CI/);
  });

  void it('an ssh:// URL with no key named gets a deploy key to generate, outside the repository, and known_hosts beside the manifests', async () => {
    const repo = await tempDir('config-deploy-key');
    const generated = await fluxstrapConfigTaskParams(
      repo,
      'prod',
      'clusters/prod',
      { gitUrl: 'git@github.com:me/fleet.git', sshKeyAlgorithm: 'ecdsa-p384' },
      repo,
    );
    assert.deepEqual(generated.set?.git?.auth, {
      ssh: { keyFile: '~/.config/fluxstrap/prod-deploy-key', knownHostsFile: 'clusters/prod/known_hosts', keyAlgorithm: 'ecdsa-p384' },
    });
    // A key file named alone keeps the default known_hosts file; a token means no key at all.
    const named = await fluxstrapConfigTaskParams(repo, 'prod', 'clusters/prod', { gitSshKey: 'k' }, repo);
    assert.deepEqual(named.set?.git?.auth, { ssh: { keyFile: 'k', knownHostsFile: 'clusters/prod/known_hosts' } });
    const https = await fluxstrapConfigTaskParams(repo, 'prod', 'clusters/prod', { gitUrl: 'ssh://git@host/fleet.git', gitTokenEnv: 'T' }, repo);
    assert.deepEqual(https.set?.git?.auth, { https: { passwordEnv: 'T' } });
  });

  void it('refuses flags that cannot make a valid entry', async () => {
    const repo = await tempDir('config-flags');
    const usage = (text: RegExp) => (e: unknown) => e instanceof FluxstrapError && e.code === 'E_USAGE' && text.test(e.message);
    const params = (flags: object) => fluxstrapConfigTaskParams(repo, 'prod', 'clusters/prod', flags, process.cwd());
    await assert.rejects(params({ sshKeyAlgorithm: 'rsa', gitUrl: 'https://host/fleet.git' }), usage(/--ssh-key-algorithm is for an ssh:\/\/ Git URL/));
    await assert.rejects(params({ gitSshKey: 'k', gitKnownHosts: 'h', gitTokenEnv: 'T' }), usage(/alternatives/));
    await assert.rejects(params({ gitUrl: 'git://host/fleet.git' }), usage(/Flux pulls from https:\/\/ or ssh:\/\//));
    await assert.rejects(params({ gitUrl: 'https://me:tok@host/fleet.git' }), usage(/must not carry a password/));
    await assert.rejects(params({ gitTokenEnv: 'MY-TOKEN' }), usage(/git\.auth\.https\.passwordEnv .*environment variable name/));
    await assert.rejects(params({ gitUsername: 'me' }), usage(/--git-username needs --git-token-env/));
    await assert.rejects(params({ gitUsername: 'me', gitSshKey: 'k', gitKnownHosts: 'h' }), usage(/--git-username is for HTTPS auth/));
    await assert.rejects(params({ gitUsername: 'me:x', gitTokenEnv: 'T' }), usage(/no colon or whitespace/));
    await assert.rejects(params({ gitProvider: 'gitea' }), usage(/^--git-provider gitea needs --gitea-api-url$/));
    await assert.rejects(
      params({ giteaApiUrl: 'gitea.example.com/api/v1' }),
      usage(/^--gitea-api-url "gitea.example.com\/api\/v1" is not an http\(s\):\/\/ URL$/),
    );
    await assert.rejects(
      params({ gitProvider: 'github', giteaApiUrl: 'https://g/api/v1' }),
      usage(/^--gitea-api-url is for --git-provider gitea, not github$/),
    );
    await assert.rejects(
      params({ gitProvider: 'gitea', githubApiUrl: 'https://ghe/api/v3' }),
      usage(/^--github-api-url is for --git-provider github, not gitea$/),
    );
  });

  void it('--git-provider gitea --gitea-api-url: git.provider and git.gitea.apiUrl; the API root once written is enough', async () => {
    const repo = await tempDir('config-gitea');
    const flags = { gitUrl: 'ssh://git@gitea.example.com/me/fleet.git', gitProvider: 'gitea' as const, giteaApiUrl: 'https://gitea.example.com/api/v1' };
    const given = await fluxstrapConfigTaskParams(repo, 'prod', 'clusters/prod', flags, process.cwd());
    assert.deepEqual(given.set?.git?.provider, 'gitea');
    assert.deepEqual(given.set?.git?.gitea, { apiUrl: 'https://gitea.example.com/api/v1' });
    const implied = await fluxstrapConfigTaskParams(repo, 'prod', 'clusters/prod', { giteaApiUrl: 'http://127.0.0.1:3000/api/v1' }, process.cwd());
    assert.deepEqual([implied.set?.git?.provider, implied.set?.git?.gitea], ['gitea', { apiUrl: 'http://127.0.0.1:3000/api/v1' }]);
    await writeFile(
      join(repo, 'fluxstrap.yaml'),
      'clusters:\n  prod:\n    git:\n      url: ssh://git@gitea.example.com/me/fleet.git\n      provider: gitea\n      gitea: { apiUrl: https://gitea.example.com/api/v1 }\n',
    );
    const again = await fluxstrapConfigTaskParams(repo, 'prod', 'clusters/prod', { gitProvider: 'gitea' }, process.cwd());
    assert.deepEqual([again.set?.git?.provider, again.set?.git?.gitea], ['gitea', undefined]);
  });
});
