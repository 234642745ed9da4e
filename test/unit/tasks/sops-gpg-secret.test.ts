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

  void it('holds the retiring key beside the new one during a rotation, each under its own fingerprint', () => {
    const armored = (n: string) => `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n${n}\n-----END PGP PRIVATE KEY BLOCK-----\n`;
    const next = { fingerprint: 'A'.repeat(40), armored: armored('new') };
    const old = { fingerprint: 'B'.repeat(40), armored: armored('old') };
    assert.deepEqual(gpgSecretData({ ...next, retiring: old }), { [`${next.fingerprint}.asc`]: next.armored, [`${old.fingerprint}.asc`]: old.armored });
  });
});
