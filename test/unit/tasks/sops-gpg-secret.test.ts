import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gpgSecretData } from '../../../src/tasks/sops-gpg-secret.ts';

void describe('sops-gpg Secret contents', () => {
  void it('puts the armored key under <FINGERPRINT>.asc, the suffix kustomize-controller imports, newline-terminated', () => {
    const fingerprint = '0123456789ABCDEF0123456789ABCDEF01234567';
    const armored = '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nx\n-----END PGP PRIVATE KEY BLOCK-----';
    assert.deepEqual(gpgSecretData({ fingerprint, armored }), { [`${fingerprint}.asc`]: `${armored}\n` });
    assert.deepEqual(
      gpgSecretData({ fingerprint, armored: `${armored}\n` }),
      { [`${fingerprint}.asc`]: `${armored}\n` },
      'the same Secret however the key file ends: no drift',
    );
  });
});
