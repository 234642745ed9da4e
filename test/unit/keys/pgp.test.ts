import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { isArmoredPgp } from '../../../src/keys/identities.ts';
import { generatePgpKey, readPgpKey, readPgpPrivateKey } from '../../../src/keys/pgp.ts';

void describe('OpenPGP keys', () => {
  void it('generates an unprotected ed25519 key whose fingerprint survives a re-read of either half', async () => {
    const key = await generatePgpKey('ed25519', { name: 'test', email: 'test@example.org' });
    assert.match(key.fingerprint, /^[0-9A-F]{40}$/);
    assert.ok(isArmoredPgp(key.privateKey) && isArmoredPgp(key.publicKey));
    assert.match(key.privateKey, /^-----BEGIN PGP PRIVATE KEY BLOCK-----/);
    const priv = await readPgpKey(key.privateKey, 'priv.asc');
    const pub = await readPgpKey(key.publicKey, 'pub.asc');
    assert.deepEqual([priv.fingerprint, priv.isPrivate, pub.fingerprint, pub.isPrivate], [key.fingerprint, true, key.fingerprint, false]);
    assert.doesNotMatch(priv.publicKey, /PRIVATE/);
    const openpgp = await import('openpgp');
    assert.equal((await openpgp.readPrivateKey({ armoredKey: key.privateKey })).isDecrypted(), true, 'no passphrase');
  });

  void it('reports a malformed key with its file', async () => {
    await assert.rejects(
      readPgpKey('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64!\n-----END PGP PUBLIC KEY BLOCK-----\n', 'bad.asc'),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_CONFIG' && e.location?.file === 'bad.asc' && /malformed OpenPGP key/.test(e.message),
    );
  });

  void describe("the cluster's private key (sopsKey.pgp)", () => {
    /** A refusal is E_CONFIG naming the file, with a hint, and never carries key material. */
    const refused = (text: RegExp, hint: RegExp) => (e: unknown) => {
      assert.ok(e instanceof FluxstrapError, String(e));
      assert.equal(e.code, 'E_CONFIG');
      assert.equal(e.location?.file, 'cluster.asc');
      assert.match(e.message, text);
      assert.match(e.hint ?? '', hint);
      assert.doesNotMatch(`${e.message} ${e.hint ?? ''}`, /BEGIN PGP|[A-Za-z0-9+/]{60}/);
      return true;
    };

    void it('reads an unprotected private key: its fingerprint and the armored key', async () => {
      const key = await generatePgpKey('ed25519', { name: 'cluster' });
      const read = await readPgpPrivateKey(key.privateKey, 'cluster.asc');
      assert.equal(read.fingerprint, key.fingerprint);
      assert.equal(read.source, 'cluster.asc');
      const openpgp = await import('openpgp');
      const again = await openpgp.readPrivateKey({ armoredKey: read.armored });
      assert.equal(again.getFingerprint().toUpperCase(), key.fingerprint);
      assert.equal(again.isDecrypted(), true);
    });

    void it('refuses a public key alone', async () => {
      const key = await generatePgpKey('ed25519', { name: 'cluster' });
      await assert.rejects(
        readPgpPrivateKey(key.publicKey, 'cluster.asc'),
        refused(new RegExp(`^OpenPGP key ${key.fingerprint} is a public key`), /gpg --export-secret-keys --armor/),
      );
    });

    void it('refuses a key locked by a passphrase, primary or subkey', async () => {
      const openpgp = await import('openpgp');
      const key = await generatePgpKey('ed25519', { name: 'cluster' });
      const privateKey = await openpgp.readPrivateKey({ armoredKey: key.privateKey });
      const locked = await openpgp.encryptKey({ privateKey, passphrase: 'correct horse' });
      await assert.rejects(readPgpPrivateKey(locked.armor(), 'cluster.asc'), refused(/is protected by a passphrase$/, /cannot type a passphrase/));
    });

    void it('refuses a file of several keys: the cluster key is one', async () => {
      const a = await generatePgpKey('ed25519', { name: 'a' });
      const b = await generatePgpKey('ed25519', { name: 'b' });
      await assert.rejects(readPgpPrivateKey(`${a.privateKey}\n${b.privateKey}`, 'cluster.asc'), refused(/holds 2 armored OpenPGP key blocks/, /the one key/));
      // One block of two keys, as `gpg --export-secret-keys --armor` writes several.
      const openpgp = await import('openpgp');
      const [ka, kb] = await Promise.all([a, b].map((k) => openpgp.readPrivateKey({ armoredKey: k.privateKey })));
      const both = openpgp.armor(openpgp.enums.armor.privateKey, new Uint8Array([...(ka?.write() ?? []), ...(kb?.write() ?? [])]));
      await assert.rejects(readPgpPrivateKey(both, 'cluster.asc'), refused(/holds 2 OpenPGP keys/, /the one key/));
    });
  });
});
