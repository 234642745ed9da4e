import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFluxstrapError } from '../../../src/core/errors.ts';
import { planSecret, secretDrift, secretManifest } from '../../../src/tasks/secret.ts';
import { ageSecretData } from '../../../src/tasks/sops-age-secret.ts';

const spec = { namespace: 'flux-system', name: 'sops-age', data: { 'age.agekey': 'AGE-SECRET-KEY-1SECRETVALUE' } };

void describe('planSecret', () => {
  void it('creates a missing Secret, masking values', () => {
    const [c] = planSecret({ spec, rotate: false });
    assert.equal(c?.action, 'create');
    assert.equal(c?.sensitive, true);
    assert.doesNotMatch(JSON.stringify({ ...c, data: undefined }), /SECRETVALUE/);
  });
  void it('leaves an equal Secret alone', () => {
    assert.deepEqual(planSecret({ spec, live: { ...spec.data }, rotate: false }), []);
  });
  void it('removes the values kubectl apply left in clear in an annotation, without --rotate-secrets', () => {
    const [c] = planSecret({ spec, live: { ...spec.data }, lastApplied: true, rotate: false });
    assert.equal(c?.action, 'update');
    assert.match(c?.summary ?? '', /last-applied-configuration/);
  });
  void it('refuses drift without --rotate-secrets, naming keys only', () => {
    assert.throws(
      () => planSecret({ spec, live: { 'age.agekey': 'OTHER', extra: 'x' }, rotate: false }),
      (e) => {
        assert.ok(isFluxstrapError(e));
        assert.equal(e.code, 'E_PRECONDITION');
        assert.match(e.message, /changed age\.agekey; extra extra/);
        assert.match(e.hint ?? '', /--rotate-secrets/);
        assert.doesNotMatch(e.message + (e.hint ?? ''), /SECRETVALUE|OTHER/);
        return true;
      },
    );
  });
  void it('rotates drift with --rotate-secrets, masking both sides', () => {
    const [c] = planSecret({ spec, live: { 'age.agekey': 'OTHER' }, rotate: true });
    assert.equal(c?.action, 'update');
    assert.doesNotMatch(`${c?.before ?? ''}${c?.after ?? ''}${c?.summary ?? ''}`, /SECRETVALUE|OTHER/);
  });
  void it('secretDrift sorts added, removed and changed keys', () => {
    assert.deepEqual(secretDrift({ a: '1', b: '2', c: '3' }, { b: '2', c: 'x', d: '4' }), { added: ['a'], removed: ['d'], changed: ['c'] });
  });
  void it('secretDrift sees keys named constructor or toString (legal Secret keys) as keys, not Object members', () => {
    assert.deepEqual(secretDrift({ constructor: '1' }, { toString: '2' }), { added: ['constructor'], removed: ['toString'], changed: [] });
  });

  void it('an optional key another tool added (identity.pub from flux bootstrap) is not drift', () => {
    const want = { identity: 'k', known_hosts: 'h' };
    const have = { ...want, 'identity.pub': 'ssh-ed25519 AAAA' };
    assert.deepEqual(secretDrift(want, have, ['identity.pub']), { added: [], removed: [], changed: [] });
    assert.deepEqual(secretDrift(want, have), { added: [], removed: ['identity.pub'], changed: [] });
  });
  void it('secretManifest base64-encodes values', () => {
    assert.deepEqual(secretManifest(spec).data, { 'age.agekey': Buffer.from(spec.data['age.agekey']).toString('base64') });
  });
});

void describe('Secret contents', () => {
  void it('puts every age identity under its own .agekey key', () => {
    const data = ageSecretData([
      { secret: 'AGE-SECRET-KEY-1A', recipient: 'age1a' },
      { secret: 'AGE-SECRET-KEY-1B', recipient: 'age1b' },
    ]);
    assert.deepEqual(Object.keys(data), ['age.agekey', 'age-2.agekey']);
    assert.match(data['age-2.agekey'] ?? '', /^# public key: age1b\nAGE-SECRET-KEY-1B\n$/);
  });
});
