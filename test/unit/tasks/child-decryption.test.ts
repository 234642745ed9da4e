import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { isFluxstrapError } from '../../../src/core/errors.ts';
import { childDecryptionKind, withDecryption } from '../../../src/tasks/child-decryption.ts';

const ks = (name: string, spec: string) => `apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: ${name}\nspec:\n${spec}`;
const target = (name: string, line: number) => ({ name, namespace: 'flux-system', line, sops: [`${name}/s.yaml`] });
const decryptions = (text: string) => parseAllDocuments(text).map((d) => (d.toJS() as { spec?: { decryption?: unknown } }).spec?.decryption);
const REF = { provider: 'sops', secretRef: { name: 'sops-age' } };

void describe('withDecryption', () => {
  void it('edits only the target documents; the others stay byte for byte', () => {
    const other = '# a comment\napiVersion: v1\nkind: ConfigMap   # spaced as written\nmetadata: {name: c}\n';
    const text = `${other}---\n${ks('a', '  path: ./a\n')}---\n${ks('b', '  path: ./b\n')}`;
    const out = withDecryption(text, 'f.yaml', [target('b', 13)], REF);
    assert.ok(out.startsWith(`${other}---\n${ks('a', '  path: ./a\n')}---\n`), out);
    assert.deepEqual(decryptions(out), [undefined, undefined, REF]);
    assert.throws(() => withDecryption(text, 'f.yaml', [target('b', 12)], REF), /no Kustomization at line 12/, 'never a silent no-op');
  });

  void it("puts decryption where Flux's alphabetical order does, or last in a spec that has another order", () => {
    assert.match(
      withDecryption(ks('a', '  interval: 1m\n  path: ./a\n'), 'f.yaml', [target('a', 1)], { provider: 'sops' }),
      /spec:\n {2}decryption:\n {4}provider: sops\n {2}interval: 1m\n/,
    );
    assert.match(
      withDecryption(ks('a', '  path: ./a\n  interval: 1m\n'), 'f.yaml', [target('a', 1)], { provider: 'sops' }),
      /interval: 1m\n {2}decryption:\n {4}provider: sops\n$/,
    );
  });

  void it('completes a decryption block without a provider and keeps what it holds', () => {
    const out = withDecryption(ks('a', '  decryption:\n    serviceAccountName: kms # its own identity\n  path: ./a\n'), 'f.yaml', [target('a', 1)], REF);
    assert.deepEqual(decryptions(out), [{ provider: 'sops', serviceAccountName: 'kms' }], 'an identity, so no secretRef');
    assert.match(out, /# its own identity/);
    assert.deepEqual(decryptions(withDecryption(ks('a', '  decryption:\n    provider: vault\n'), 'f.yaml', [target('a', 1)], REF)), [REF]);
  });

  void it('refuses a spec or decryption that is not a map, at its line', () => {
    for (const [spec, line] of [
      ['  decryption: sops\n', 6],
      ['  - path\n', 6],
    ] as const) {
      assert.throws(
        () => withDecryption(ks('a', spec), 'f.yaml', [target('a', 1)], REF),
        (e: unknown) => isFluxstrapError(e) && e.code === 'E_CONFIG' && e.location?.file === 'f.yaml' && e.location.line === line,
      );
    }
  });
});

void describe('childDecryptionKind.plan', () => {
  const files = [{ file: 'c/ks.yaml', text: ks('a', '  path: ./a\n'), targets: [target('a', 1)] }];
  const plan = (fluxSystem: string | undefined, mode?: 'kustomization' | 'controller', secretName?: string) =>
    childDecryptionKind.plan(
      { clusterPath: 'c', fluxSystemKustomization: 'c/flux-system/kustomization.yaml', ...(mode ? { mode } : {}), ...(secretName ? { secretName } : {}) },
      { files, badPaths: [], fluxSystem },
      { paths: { repo: '/r' } },
    );
  const patch = (value: string) =>
    `resources: [gotk-sync.yaml]\npatches:\n- patch: |\n    - op: add\n      path: /spec/decryption\n      value: ${value}\n  target: {kind: Kustomization, name: flux-system}\n`;

  void it('names the Secret the flux-system patch names in kustomization mode, none in controller mode', () => {
    const after = (fluxSystem: string | undefined, mode?: 'kustomization' | 'controller', secretName?: string) =>
      decryptions(plan(fluxSystem, mode, secretName)[0]?.after ?? '')[0];
    assert.deepEqual(after(patch('{provider: sops, secretRef: {name: cluster-key}}'), undefined, 'sops-age'), {
      provider: 'sops',
      secretRef: { name: 'cluster-key' },
    });
    assert.deepEqual(after(undefined, undefined, 'sops-age'), REF, 'no patch yet: the Secret init is about to name');
    assert.deepEqual(after(patch('{provider: sops, secretRef: {name: cluster-key}}'), 'controller', 'sops-age'), { provider: 'sops' });
    assert.deepEqual(after(patch('{provider: sops}'), undefined, undefined), { provider: 'sops' }, 'a cloud key service: no Secret');
  });

  void it('a Kustomization whose spec.path does not exist fails the plan at that line', () => {
    const text = ks('gone', '  interval: 1m\n  path: ./gone\n');
    assert.throws(
      () =>
        childDecryptionKind.plan(
          { clusterPath: 'c', fluxSystemKustomization: 'k' },
          { files, badPaths: [{ id: 'flux-system/gone', path: 'gone', file: 'c/ks.yaml', text, line: 1 }], fluxSystem: undefined },
          { paths: { repo: '/r' } },
        ),
      (e: unknown) => isFluxstrapError(e) && e.code === 'E_NOT_FOUND' && /spec\.path \.\/gone does not exist/.test(e.message) && e.location?.line === 7,
    );
  });
});
