import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { decryptionPatchKind, findHandAddedDecryption } from '../../../src/tasks/decryption-patch.ts';
import { gotkSyncKind } from '../../../src/tasks/gotk-sync.ts';
import { repoRoot } from '../../helpers/cli.ts';
import { planFile } from '../../helpers/file-tasks.ts';

const fixture = (name: string) => readFileSync(join(repoRoot, 'test', 'fixtures', 'flux', name), 'utf8');
const SYNC = 'clusters/production/flux-system/gotk-sync.yaml';
const params = { file: 'clusters/production/flux-system/kustomization.yaml', gotkSync: SYNC };

interface Patch {
  patch: string;
  target?: { kind?: string; name?: string };
}
const patchesOf = (text: string) => (parse(text) as { patches?: Patch[] }).patches ?? [];
const decryptionOf = (p: Patch) => (parse(p.patch) as { op: string; path: string; value: unknown }[])[0];

void describe('decryption-patch plan', () => {
  void it("adds the patch to flux bootstrap's kustomization.yaml, keeping its resources", () => {
    const { after, changes } = planFile(decryptionPatchKind, params, fixture('kustomization.yaml'), { [SYNC]: fixture('gotk-sync.pristine.yaml') });
    assert.equal(changes[0]?.action, 'update');
    assert.ok(after?.startsWith(fixture('kustomization.yaml')), 'the generated part is untouched');
    const [patch] = patchesOf(after ?? '');
    assert.deepEqual(patch?.target, { kind: 'Kustomization', name: 'flux-system' });
    assert.deepEqual(decryptionOf(patch), { op: 'add', path: '/spec/decryption', value: { provider: 'sops', secretRef: { name: 'sops-age' } } });
  });

  void it('creates the file with the gotk resources when flux bootstrap has not run yet', () => {
    const { after, changes } = planFile(decryptionPatchKind, params, undefined);
    assert.equal(changes[0]?.action, 'create');
    const doc = parse(after ?? '') as { resources: string[]; patches: Patch[] };
    assert.deepEqual(doc.resources, ['gotk-components.yaml', 'gotk-sync.yaml']);
    assert.equal(doc.patches.length, 1);
    // What is true (the flux CLI writes them, fluxstrap does not) and the commands that do.
    const [none] = planFile(decryptionPatchKind, params, undefined).notes;
    assert.match(none ?? '', /^clusters\/production\/flux-system\/gotk-components\.yaml and clusters\/production\/flux-system\/gotk-sync\.yaml are missing: the flux CLI generates them, fluxstrap does not; run `flux install --export > clusters\/production\/flux-system\/gotk-components\.yaml`, then `flux create source git flux-system /);
    assert.doesNotMatch(none ?? '', /fluxstrap bootstrap/);
    const [noComponents, ...more] = planFile(decryptionPatchKind, params, undefined, { [SYNC]: fixture('gotk-sync.pristine.yaml') }).notes;
    assert.match(noComponents ?? '', /^clusters\/production\/flux-system\/gotk-components\.yaml is missing: .* run `flux install --export > clusters\/production\/flux-system\/gotk-components\.yaml`, and commit/);
    assert.deepEqual(more, []);
    const COMPONENTS = 'clusters/production/flux-system/gotk-components.yaml';
    assert.deepEqual(planFile(decryptionPatchKind, params, undefined, { [SYNC]: fixture('gotk-sync.pristine.yaml'), [COMPONENTS]: 'kind: List\n' }).notes, []);
  });

  void it('leaves a kustomization.yaml that already patches decryption alone, other patches and labels included', () => {
    assert.deepEqual(planFile(decryptionPatchKind, params, fixture('kustomization-with-decryption-patch.yaml')).changes, []);
  });

  void it('keeps every other patch, label and resource when it adds its own', () => {
    const withPatch = fixture('kustomization-with-decryption-patch.yaml');
    const doc = parse(withPatch) as { patches: Patch[] };
    const others = doc.patches.filter((p) => !p.patch.includes('decryption'));
    // the same file without its decryption patch: cut that list item out of the text
    const start = withPatch.indexOf('  - patch: |\n      - op: add\n        path: /spec/decryption');
    const end = withPatch.indexOf('  - patch: |', start + 1);
    const without = withPatch.slice(0, start) + withPatch.slice(end);
    const { after } = planFile(decryptionPatchKind, params, without);
    for (const line of without.split('\n')) assert.ok(after?.includes(line), `kept: ${line}`);
    const patches = patchesOf(after ?? '');
    assert.deepEqual(patches.slice(0, others.length), others);
    assert.equal(decryptionOf(patches.at(-1) as Patch)?.path, '/spec/decryption');
    assert.match(after ?? '', /^ {2}- patch: \|\n {6}- op: add\n {8}path: \/spec\/decryption/m, 'indented like the rest of the file');
  });

  void it('moves a hand-added block from gotk-sync.yaml, with its own values', () => {
    const custom = `${fixture('gotk-sync.pristine.yaml')}  decryption:\n    provider: sops\n    secretRef:\n      name: sops-gpg\n`;
    const { after, changes } = planFile(decryptionPatchKind, params, fixture('kustomization.yaml'), { [SYNC]: custom });
    assert.match(changes[0]?.summary ?? '', /moved from .*gotk-sync\.yaml/);
    assert.deepEqual(decryptionOf(patchesOf(after ?? '')[0] as Patch)?.value, { provider: 'sops', secretRef: { name: 'sops-gpg' } });
  });

  void it('reports invalid YAML and a file that is not a kustomization with file and line', () => {
    const cases: [string, number, RegExp][] = [
      ['resources:\n- gotk-components.yaml\nresources:\n- gotk-sync.yaml\n', 3, /^invalid YAML: Map keys must be unique/],
      ['apiVersion: apps/v1\nkind: Deployment\n', 2, /expected a kustomize Kustomization, found kind Deployment/],
      ['resources:\n- a.yaml\npatches: {}\n', 3, /patches must be a list/],
      ['- a\n', 1, /must be a YAML map/],
    ];
    for (const [text, line, message] of cases) {
      assert.throws(() => planFile(decryptionPatchKind, params, text), (e: unknown) =>
        e instanceof FluxstrapError && e.code === 'E_CONFIG' && e.location?.file === params.file && e.location.line === line && message.test(e.message), text);
    }
    assert.throws(() => planFile(decryptionPatchKind, params, fixture('kustomization.yaml'), { [SYNC]: 'kind: [\n' }), (e: unknown) =>
      e instanceof FluxstrapError && e.location?.file === SYNC);
  });
});

void describe('gotk-sync-restore plan', () => {
  void it("restores the seed's hand-edited gotk-sync.yaml to exactly what flux generated", () => {
    const { after } = planFile(gotkSyncKind, { file: SYNC }, fixture('gotk-sync.yaml'));
    assert.equal(after, fixture('gotk-sync.pristine.yaml'));
  });

  void it('leaves a generated or missing gotk-sync.yaml alone', () => {
    assert.deepEqual(planFile(gotkSyncKind, { file: SYNC }, fixture('gotk-sync.pristine.yaml')).changes, []);
    assert.deepEqual(planFile(gotkSyncKind, { file: SYNC }, undefined).changes, []);
  });

  void it('takes out a block in the middle of the spec, and only in the flux-system Kustomization', () => {
    const middle = fixture('gotk-sync.pristine.yaml').replace('  prune: true\n', '  decryption:\n    provider: sops # hand-added\n  prune: true\n');
    assert.equal(planFile(gotkSyncKind, { file: SYNC }, middle).after, fixture('gotk-sync.pristine.yaml'));
    const other = `${fixture('gotk-sync.pristine.yaml')}---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\nspec:\n  decryption:\n    provider: sops\n`;
    assert.deepEqual(planFile(gotkSyncKind, { file: SYNC }, other).changes, []);
    assert.equal(findHandAddedDecryption(other, SYNC), undefined);
    assert.equal(parseAllDocuments(fixture('gotk-sync.pristine.yaml')).length, 2);
  });
});
