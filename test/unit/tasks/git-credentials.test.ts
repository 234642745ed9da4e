import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gitEnv } from '../../../src/adapters/git.ts';
import { gitSecretData } from '../../../src/tasks/git-credentials.ts';

void describe('git credentials', () => {
  void it('sends HTTPS basic auth as a header set through the environment, never prompting', () => {
    const env = gitEnv({ kind: 'basic', username: 'u', password: 's3cret' });
    assert.equal(env.GIT_TERMINAL_PROMPT, '0');
    assert.equal(env.GIT_CONFIG_COUNT, '2');
    assert.equal(env.GIT_CONFIG_KEY_0, 'credential.helper');
    assert.equal(env.GIT_CONFIG_VALUE_0, '');
    assert.equal(env.GIT_CONFIG_KEY_1, 'http.extraHeader');
    assert.equal(env.GIT_CONFIG_VALUE_1, `Authorization: Basic ${Buffer.from('u:s3cret').toString('base64')}`);
  });
  void it('pins SSH to the deploy key and the given known_hosts, quoting paths for the shell git uses', () => {
    const cmd = gitEnv({ kind: 'ssh', identityFile: "/k/it's key", knownHostsFile: '/k/known hosts' }).GIT_SSH_COMMAND ?? '';
    assert.match(cmd, /-i '\/k\/it'\\''s key'/);
    assert.match(cmd, /UserKnownHostsFile='\/k\/known hosts'/);
    assert.match(cmd, /IdentitiesOnly=yes/);
    assert.match(cmd, /StrictHostKeyChecking=yes/);
    assert.match(cmd, /BatchMode=yes/);
  });
  void it('uses the keys source-controller reads', () => {
    assert.deepEqual(gitSecretData({ type: 'https', username: 'u', password: 'p' }), { username: 'u', password: 'p' });
    assert.deepEqual(gitSecretData({ type: 'ssh', identity: 'k', knownHosts: 'h' }), { identity: 'k', known_hosts: 'h' });
    assert.equal(gitSecretData({ type: 'none' }), undefined);
  });
  void it("a GitHub App: the githubApp* keys of source-controller's provider github, the base URL only for Enterprise Server", () => {
    assert.deepEqual(gitSecretData({ type: 'github-app', appId: '1', installationId: '2', privateKey: 'PEM' }), {
      githubAppID: '1',
      githubAppInstallationID: '2',
      githubAppPrivateKey: 'PEM',
    });
    assert.deepEqual(
      gitSecretData({ type: 'github-app', appId: '1', installationOwner: 'acme', privateKey: 'PEM', baseUrl: 'https://ghe.example.com/api/v3' }),
      { githubAppID: '1', githubAppInstallationOwner: 'acme', githubAppPrivateKey: 'PEM', githubAppBaseURL: 'https://ghe.example.com/api/v3' },
    );
  });
});
