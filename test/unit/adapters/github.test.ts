import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { checkAppPrivateKey, githubError } from '../../../src/adapters/github.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';

const rsa = (type: 'pkcs1' | 'pkcs8') =>
  generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type, format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
    .privateKey;
const where = { file: 'app.pem', field: 'git.auth.githubApp.privateKeyFile' };

function refuses(text: string, message: RegExp): void {
  assert.throws(
    () => checkAppPrivateKey(text, where),
    (e: unknown) => {
      assert.ok(e instanceof FluxstrapError);
      assert.match(e.message, message);
      assert.deepEqual(e.location, where);
      assert.ok(e.hint?.includes('.pem'));
      // The key's text never reaches the message.
      const longest = text.split('\n').reduce((a, b) => (b.length > a.length ? b : a), '');
      assert.ok(!e.message.includes(longest));
      return true;
    },
  );
}

void describe('GitHub App private key', () => {
  void it('takes the RSA PEM GitHub hands out (PKCS#1) and PKCS#8, unchanged', () => {
    for (const key of [rsa('pkcs1'), rsa('pkcs8')]) assert.equal(checkAppPrivateKey(key, where), key);
  });
  void it('refuses what is not a PEM private key, a broken PEM, and a key that is not RSA', () => {
    refuses('AGE-SECRET-KEY-1QQQQ\n', /is not a PEM private key/);
    refuses(
      generateKeyPairSync('rsa', {
        modulusLength: 2048,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      }).publicKey,
      /is not a PEM private key/,
    );
    const key = rsa('pkcs1');
    refuses(key.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!'), /is not a valid PEM private key/);
    refuses(
      generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey,
      /is ed25519 key; GitHub Apps sign with RSA/,
    );
  });
});

void describe('GitHub errors', () => {
  const failure = (status: number, headers: Record<string, string>) =>
    Object.assign(new Error('Resource not accessible by integration'), { status, response: { headers } });
  void it('a 403 or 404 quotes X-Accepted-GitHub-Permissions as GitHub wrote it', () => {
    const e = githubError(failure(403, { 'x-accepted-github-permissions': 'repository_projects=write; organization_projects=admin' }), 'list collaborators');
    assert.equal(
      e.message,
      "list collaborators: GitHub answered 403 (Resource not accessible by integration); GitHub's X-Accepted-GitHub-Permissions: repository_projects=write; organization_projects=admin",
    );
    assert.match(
      githubError(failure(404, { 'x-accepted-github-permissions': 'metadata=read' }), 'read').message,
      /X-Accepted-GitHub-Permissions: metadata=read$/,
    );
    assert.equal(githubError(failure(404, { 'x-accepted-github-permissions': 'metadata=read' }), 'read').code, 'E_NOT_FOUND');
  });
  void it('says nothing of it on other answers, or when GitHub sent none', () => {
    assert.doesNotMatch(githubError(failure(422, { 'x-accepted-github-permissions': 'administration=write' }), 'x').message, /Accepted/);
    assert.doesNotMatch(githubError(failure(403, {}), 'x').message, /Accepted/);
  });
});
