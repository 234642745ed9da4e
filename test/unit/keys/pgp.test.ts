import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { isArmoredPgp } from '../../../src/keys/identities.ts';
import { generatePgpKey, readPgpKey } from '../../../src/keys/pgp.ts';

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
    await assert.rejects(readPgpKey('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64!\n-----END PGP PUBLIC KEY BLOCK-----\n', 'bad.asc'), (e: unknown) =>
      e instanceof FluxstrapError && e.code === 'E_CONFIG' && e.location?.file === 'bad.asc' && /malformed OpenPGP key/.test(e.message));
  });
});
