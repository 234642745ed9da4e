import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { isFluxstrapError } from '../../../src/core/errors.ts';
import { parseSshIdentity, parseSshRecipient, sshIdentityRecipient, unwrapSsh, wrapSsh, isSshRecipient } from '../../../src/keys/age-ssh.ts';
import { decryptAgeFile, encryptAgeFile } from '../../../src/keys/age-x25519.ts';
import { generateSshKey } from '../../../src/keys/ssh.ts';
import { tempDir } from '../../helpers/tmp.ts';
import { requireTool } from '../../helpers/tools.ts';

// The real age CLI is the reference for the ssh-ed25519 and ssh-rsa stanzas: each side opens what the other wrote.
let dir: string;
const keys: Record<'ed25519' | 'rsa', { file: string; pub: string }> = { ed25519: { file: '', pub: '' }, rsa: { file: '', pub: '' } };

function sshKeygen(name: string, args: string[]): { file: string; pub: string } {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-N', '', '-C', 'me@host', '-f', file, ...args]);
  return { file, pub: readFileSync(`${file}.pub`, 'utf8').trim() };
}

before(async () => {
  requireTool('age');
  requireTool('ssh-keygen');
  dir = await tempDir('age-ssh');
  keys.ed25519 = sshKeygen('id_ed25519', ['-t', 'ed25519']);
  keys.rsa = sshKeygen('id_rsa', ['-t', 'rsa', '-b', '2048']);
});

void describe('age SSH recipients against the real age', () => {
  for (const type of ['ed25519', 'rsa'] as const) {
    void it(`${type}: age -d opens what we encrypt, and we open what age -R encrypts`, () => {
      const { file, pub } = keys[type];
      const r = parseSshRecipient(pub);
      assert.ok(r, 'the ssh-keygen public key line (with its comment) is a recipient');
      const plain = randomBytes(32);
      const ours = join(dir, `ours-${type}.age`);
      writeFileSync(
        ours,
        encryptAgeFile((fk) => wrapSsh(r, fk), plain),
      );
      assert.deepEqual(execFileSync('age', ['-d', '-i', file, ours]), plain);

      const theirs = execFileSync('age', ['-R', `${file}.pub`], { input: plain });
      const id = parseSshIdentity(readFileSync(file, 'utf8'), file);
      assert.equal(sshIdentityRecipient(id), pub.split(' ').slice(0, 2).join(' '));
      assert.deepEqual(
        decryptAgeFile(theirs, (stanzas) => unwrapSsh(stanzas, [id])),
        plain,
      );
    });
  }

  void it('another SSH key opens nothing: the stanza names a different key, or the key does not match', () => {
    const other = generateSshKey('ed25519', '');
    const file = encryptAgeFile((fk) => wrapSsh(parseSshRecipient(keys.ed25519.pub) ?? assert.fail(), fk), randomBytes(16));
    const id = parseSshIdentity(other.privateKey, 'other');
    assert.equal(
      decryptAgeFile(file, (s) => unwrapSsh(s, [id])),
      undefined,
    );
    // Same tag, other key: the AEAD refuses, nothing is returned.
    const mine = parseSshIdentity(readFileSync(keys.ed25519.file, 'utf8'), 'mine');
    const forged = { ...id, tag: mine.tag, wire: mine.wire };
    assert.equal(
      decryptAgeFile(file, (s) => unwrapSsh(s, [forged])),
      undefined,
    );
  });

  void it('reads keys fluxstrap generates and PEM RSA keys as ssh-keygen -m PEM writes them', () => {
    for (const algorithm of ['ed25519', 'rsa'] as const) {
      const k = generateSshKey(algorithm, 'c');
      const id = parseSshIdentity(k.privateKey, 'k');
      assert.equal(sshIdentityRecipient(id), k.publicKey.split(' ').slice(0, 2).join(' '));
    }
    const pem = sshKeygen('pem_rsa', ['-t', 'rsa', '-b', '2048', '-m', 'PEM']);
    assert.match(readFileSync(pem.file, 'utf8'), /BEGIN RSA PRIVATE KEY/);
    const r = parseSshRecipient(pem.pub) ?? assert.fail();
    const plain = randomBytes(16);
    const file = encryptAgeFile((fk) => wrapSsh(r, fk), plain);
    assert.deepEqual(
      decryptAgeFile(file, (s) => unwrapSsh(s, [parseSshIdentity(readFileSync(pem.file, 'utf8'), pem.file)])),
      plain,
    );
  });
});

void describe('what is not an age SSH recipient or identity', () => {
  void it('refuses ECDSA, short RSA, broken blobs and an Ed25519 key that is no curve point', () => {
    const ecdsa = sshKeygen('ecdsa', ['-t', 'ecdsa']);
    const short = sshKeygen('short', ['-t', 'rsa', '-b', '1024']);
    assert.equal(isSshRecipient(ecdsa.pub), false);
    assert.equal(isSshRecipient(short.pub), false);
    assert.equal(isSshRecipient('ssh-ed25519 AAAA'), false);
    assert.equal(isSshRecipient(`ssh-rsa ${keys.ed25519.pub.split(' ')[1] ?? ''}`), false, 'type and blob disagree');
    assert.equal(isSshRecipient(keys.ed25519.pub), true);
    const u32 = (n: number) => Buffer.from([0, 0, 0, n]);
    // y = 2 has no x on edwards25519 ((y²-1)/(dy²+1) is not a square mod p).
    const y2 = Buffer.concat([Buffer.from([2]), Buffer.alloc(31)]);
    const blob = Buffer.concat([u32(11), Buffer.from('ssh-ed25519'), u32(32), y2]);
    assert.equal(isSshRecipient(`ssh-ed25519 ${blob.toString('base64')}`), false);
  });

  void it('a passphrase-protected key: E_DECRYPT naming the file, without a byte of the key', () => {
    const file = join(dir, 'locked');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'correct horse', '-f', file]);
    const text = readFileSync(file, 'utf8');
    assert.throws(
      () => parseSshIdentity(text, file),
      (e) => {
        const shown = JSON.stringify(e) + String(e);
        return (
          isFluxstrapError(e) &&
          e.code === 'E_DECRYPT' &&
          /protected by a passphrase/.test(e.message) &&
          e.location?.file === file &&
          !shown.includes(text.split('\n')[1]?.slice(0, 20) ?? '-')
        );
      },
    );
  });

  void it('an ECDSA or unreadable key: E_CONFIG naming the file', () => {
    const ecdsa = readFileSync(join(dir, 'ecdsa'), 'utf8');
    assert.throws(
      () => parseSshIdentity(ecdsa, 'ecdsa'),
      (e) => isFluxstrapError(e) && e.code === 'E_CONFIG' && /only to ssh-ed25519 and ssh-rsa/.test(e.message),
    );
    assert.throws(
      () => parseSshIdentity('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n', 'x'),
      (e) => isFluxstrapError(e) && e.code === 'E_CONFIG' && e.location?.file === 'x',
    );
  });
});
