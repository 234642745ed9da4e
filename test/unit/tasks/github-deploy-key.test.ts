import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { generateSshKey } from '../../../src/keys/ssh.ts';
import { deployKeyTitle } from '../../../src/tasks/deploy-key.ts';
import { githubDeployKeyKind } from '../../../src/tasks/github-deploy-key.ts';
import { sshHostOf } from '../../../src/tasks/known-hosts.ts';

const key = generateSshKey('ed25519', 'c').publicKey;
const other = generateSshKey('ed25519', 'c').publicKey;
const facts = (registered?: { key: string; readOnly: boolean }, readOnly = true) => ({
  owner: 'me',
  repo: 'fleet',
  title: 't',
  readOnly,
  key,
  ...(registered ? { registered: { id: 1, title: 't', ...registered } } : {}),
});
const plan = (f: ReturnType<typeof facts>, rotateSecrets = false) => githubDeployKeyKind.plan({}, f, { env: {}, rotateSecrets });
const refused = (text: RegExp) => (e: unknown) =>
  e instanceof FluxstrapError && e.code === 'E_PRECONDITION' && text.test(e.message) && /--rotate-secrets/.test(e.hint ?? '');

void describe('GitHub deploy key plan', () => {
  void it('titles keys as flux does, leaving out empty parts', () => {
    assert.equal(deployKeyTitle('flux-system', 'main', 'flux-system', 'clusters/prod'), 'flux-system-main-flux-system-clusters/prod');
    assert.equal(deployKeyTitle('flux-system', 'main', 'flux-system', ''), 'flux-system-main-flux-system');
  });

  void it('creates a missing key; the same key and access (comment aside) is no change', () => {
    assert.deepEqual(
      plan(facts()).map((c) => c.action),
      ['create'],
    );
    assert.deepEqual(plan(facts({ key: key.split(' ').slice(0, 2).join(' '), readOnly: true })), []);
  });

  void it('another key or another access under the title: refused, or replaced with --rotate-secrets', () => {
    assert.throws(() => plan(facts({ key: other, readOnly: true })), refused(/registered with another key/));
    assert.throws(() => plan(facts({ key, readOnly: false })), refused(/registered read-write, wanted read-only/));
    assert.deepEqual(
      plan(facts({ key: other, readOnly: true }), true).map((c) => c.action),
      ['update'],
    );
    assert.deepEqual(
      plan(facts({ key, readOnly: true }, false), true).map((c) => c.summary),
      ['replace the deploy key (registered read-only, wanted read-write)'],
    );
  });

  void it('host and port of ssh:// URLs only', () => {
    assert.deepEqual(sshHostOf('ssh://git@github.com/me/fleet.git'), { host: 'github.com', port: 22 });
    assert.deepEqual(sshHostOf('ssh://git@[::1]:2222/fleet.git'), { host: '::1', port: 2222 });
    assert.equal(sshHostOf('https://github.com/me/fleet.git'), undefined);
  });
});
