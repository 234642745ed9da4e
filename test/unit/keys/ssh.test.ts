import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { generateSshKey, publicKeyOfPrivate, SSH_KEY_ALGORITHMS, sshPublicKeyOf } from '../../../src/keys/ssh.ts';
import { tempDir } from '../../helpers/tmp.ts';

// ssh-keygen is the reference: it must read the private key we write and derive the same public key and fingerprint.
void describe('SSH deploy keys', () => {
  for (const algorithm of SSH_KEY_ALGORITHMS) {
    void it(`${algorithm}: ssh-keygen reads the private key and agrees on the public key and fingerprint`, async () => {
      const dir = await tempDir('sshkey');
      const key = generateSshKey(algorithm, 'flux-system-main');
      const file = join(dir, 'identity');
      writeFileSync(file, key.privateKey, { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
      assert.equal(derived.split(' ').slice(0, 2).join(' '), key.publicKey.split(' ').slice(0, 2).join(' '));
      const listed = execFileSync('ssh-keygen', ['-l', '-f', file], { encoding: 'utf8' });
      assert.ok(listed.includes(key.fingerprint), listed);
      assert.ok(key.publicKey.endsWith(' flux-system-main'));
      assert.equal(publicKeyOfPrivate(key.privateKey, file), key.publicKey.split(' ').slice(0, 2).join(' '));
      assert.equal(sshPublicKeyOf(key.publicKey)?.fingerprint, key.fingerprint);
    });
  }

  void it('two keys are never the same', () => {
    assert.notEqual(generateSshKey('ed25519', '').publicKey, generateSshKey('ed25519', '').publicKey);
  });

  void it('reads the public key of an ssh-keygen key and of a PKCS#8 PEM key', async () => {
    const dir = await tempDir('sshkey');
    const file = join(dir, 'k');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
    const pub = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
    assert.equal(publicKeyOfPrivate(readFileSync(file, 'utf8'), file), pub.split(' ').slice(0, 2).join(' '));
    const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    assert.match(publicKeyOfPrivate(pem, 'pem'), /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5/);
  });

  void it('refuses what is no private key without echoing it', () => {
    assert.throws(
      () => publicKeyOfPrivate('hunter2-not-a-key', 'f'),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_CONFIG' && !e.message.includes('hunter2'),
    );
  });

  void it('known_hosts lines: host, type and blob; a line whose blob names another type is no key', () => {
    const key = generateSshKey('ed25519', '');
    assert.equal(sshPublicKeyOf(`[127.0.0.1]:2222 ${key.publicKey}`)?.fingerprint, key.fingerprint);
    assert.equal(sshPublicKeyOf(`github.com ssh-rsa ${key.publicKey.split(' ')[1] ?? ''}`), undefined);
    assert.equal(sshPublicKeyOf('# comment'), undefined);
  });
});
