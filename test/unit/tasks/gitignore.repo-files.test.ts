import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { clusterRootKind } from '../../../src/tasks/cluster-root.ts';
import { gitignoreKind, PRIVATE_KEY_PATTERNS } from '../../../src/tasks/gitignore.ts';
import { makefileKind } from '../../../src/tasks/makefile.ts';
import { ageRecipientsFile, publicKeyFileKind } from '../../../src/tasks/public-key-file.ts';
import { planFile } from '../../helpers/file-tasks.ts';

const ROOT = 'clusters/production/kustomization.yaml';

void describe('cluster-root plan', () => {
  const seed =
    'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  # shared infrastructure first\n  - infrastructure.yaml\n  - monitoring.yaml\n  - services.yaml\n  - policies.yaml\n';

  void it("adds flux-system to the seed's root kustomization, first, keeping comments", () => {
    const { after, changes } = planFile(clusterRootKind, { file: ROOT }, seed);
    assert.equal(changes[0]?.action, 'update');
    assert.deepEqual((parse(after ?? '') as { resources: string[] }).resources, [
      'flux-system',
      'infrastructure.yaml',
      'monitoring.yaml',
      'services.yaml',
      'policies.yaml',
    ]);
    assert.match(after ?? '', /- flux-system\n {2}# shared infrastructure first\n {2}- infrastructure\.yaml/);
  });

  void it('accepts every spelling of the entry, and a missing file', () => {
    for (const entry of ['flux-system', './flux-system', 'flux-system/', './flux-system/']) {
      assert.deepEqual(planFile(clusterRootKind, { file: ROOT }, `resources:\n- apps\n- ${entry}\n`).changes, [], entry);
    }
    const missing = planFile(clusterRootKind, { file: ROOT }, undefined);
    assert.deepEqual(missing.changes, []);
    assert.match(missing.notes[0] ?? '', /Flux includes every manifest/);
  });

  void it('adds resources when there are none, and refuses what it cannot read', () => {
    assert.deepEqual((parse(planFile(clusterRootKind, { file: ROOT }, 'kind: Kustomization\n').after ?? '') as { resources: string[] }).resources, [
      'flux-system',
    ]);
    assert.throws(
      () => planFile(clusterRootKind, { file: ROOT }, 'kind: Kustomization\nresources: flux-system\n'),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_CONFIG' && e.location?.line === 2 && /resources must be a list/.test(e.message),
    );
  });
});

void describe('gitignore plan', () => {
  const entries = [...PRIVATE_KEY_PATTERNS, '/keys/dev.agekey'];

  void it('creates the file, or appends only what is missing under one comment', () => {
    assert.equal(planFile(gitignoreKind, { entries }, undefined).after, `# fluxstrap: private keys must never be committed\n${entries.join('\n')}\n`);
    const { after, changes } = planFile(gitignoreKind, { entries }, 'node_modules/\n*.agekey');
    assert.equal(
      after,
      `node_modules/\n*.agekey\n\n# fluxstrap: private keys must never be committed\n${entries.filter((e) => e !== '*.agekey').join('\n')}\n`,
    );
    assert.doesNotMatch(changes[0]?.summary ?? '', /\*\.agekey/);
  });

  void it('does not repeat its comment when a new entry comes later', () => {
    const first = planFile(gitignoreKind, { entries: PRIVATE_KEY_PATTERNS }, undefined).after;
    assert.equal((planFile(gitignoreKind, { entries }, first).after?.match(/# fluxstrap/g) ?? []).length, 1);
  });
});

void describe('makefile plan', () => {
  const snippet = 'provision:\n\tnpx fluxstrap bootstrap --cluster prod\n';

  void it('creates a Makefile only when there is none', () => {
    assert.equal(planFile(makefileKind, { content: snippet }, undefined).after, snippet);
    const own = planFile(makefileKind, { content: snippet }, 'build:\n\tgo build\n');
    assert.deepEqual(own.changes, []);
    assert.match(own.notes[0] ?? '', /no provision target/);
    assert.deepEqual(planFile(makefileKind, { content: snippet }, 'provision: deps\n\t./provision.sh\n').notes, []);
  });
});

void describe('public-key-file plan', () => {
  void it('writes an age recipients file that age -R reads, and replaces a stale one', () => {
    const content = ageRecipientsFile('clusters/prod', ['age1aaa', 'age1bbb']);
    assert.deepEqual(
      content.split('\n').filter((l) => !l.startsWith('#')),
      ['age1aaa', 'age1bbb', ''],
    );
    assert.equal(planFile(publicKeyFileKind, { file: 'k', content }, undefined).changes[0]?.action, 'create');
    assert.equal(planFile(publicKeyFileKind, { file: 'k', content }, 'age1old\n').changes[0]?.action, 'update');
    assert.deepEqual(planFile(publicKeyFileKind, { file: 'k', content }, content).changes, []);
  });
});
