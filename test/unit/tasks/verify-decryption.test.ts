import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { verifyDecryptionKind } from '../../../src/tasks/verify-decryption.ts';

/** What verify says of files only a key service fluxstrap cannot reach opens (Google Cloud KMS, Azure Key Vault). */

const base = { kustomization: 'Kustomization flux-system/flux-system', decryption: { provider: 'sops' }, globalSecret: false, have: {}, check: false };
const notes = (facts: Parameters<NonNullable<typeof verifyDecryptionKind.notes>>[1]) => verifyDecryptionKind.notes?.({}, facts) ?? [];

void describe('verify-decryption notes', () => {
  void it('names the files it could not compare and the service, instead of "nothing was verified"', () => {
    assert.deepEqual(notes({ ...base, want: [], unverified: { service: 'Azure Key Vault', files: ['clusters/aks/db.yaml'] } }), [
      'warning: fluxstrap cannot reach Azure Key Vault to open clusters/aks/db.yaml: the Secrets in them were not compared',
    ]);
    assert.deepEqual(notes({ ...base, want: [] }), ['warning: the cluster reaches no SOPS-encrypted Secret: nothing was verified']);
  });

  void it('lists the compared Secrets after the warning', () => {
    const want = [{ file: 'a.yaml', namespace: 'apps', name: 's', hashes: { k: 'h' } }];
    assert.deepEqual(notes({ ...base, want, unverified: { service: 'Google Cloud KMS', files: ['b.yaml'] } }), [
      'warning: fluxstrap cannot reach Google Cloud KMS to open b.yaml: the Secrets in them were not compared',
      'Kustomization flux-system/flux-system: 1 SOPS-encrypted Secret(s) decrypted in the cluster: apps/s [k]',
    ]);
  });
});
