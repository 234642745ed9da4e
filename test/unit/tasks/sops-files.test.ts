import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { findSopsFiles, secretDigests, sha256 } from '../../../src/tasks/sops-files.ts';
import { generatedDir } from '../sops/helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-sops-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const recipientsOf = (file: string): string[] => [...readFileSync(join(generatedDir, file), 'utf8').matchAll(/recipient: (age1\S+)/g)].map((m) => m[1] ?? '');

void describe('SOPS files of a cluster folder', () => {
  void it('are found by their metadata, with the age recipients of every key group', async () => {
    mkdirSync(join(dir, 'apps'), { recursive: true });
    copyFileSync(join(generatedDir, 'secret.shamir.enc.yaml'), join(dir, 'apps', 'shamir.yaml'));
    copyFileSync(join(generatedDir, 'secret.unencrypted-regex.enc.yaml'), join(dir, 'flat.yaml'));
    writeFileSync(join(dir, 'plain.yaml'), 'sops: not metadata\n');
    const files = await findSopsFiles(dir, dir);
    assert.deepEqual(
      files.map((f) => f.name),
      ['apps/shamir.yaml', 'flat.yaml'],
    );
    const shamir = recipientsOf('secret.shamir.enc.yaml');
    assert.ok(shamir.length >= 2, 'the vector has several groups');
    assert.deepEqual(files[0]?.recipients, [...new Set(shamir)]);
    assert.deepEqual(files[1]?.recipients, recipientsOf('secret.unencrypted-regex.enc.yaml'));
  });
});

void describe('secretDigests', () => {
  void it('hashes Secret keys named __proto__ and constructor like any other; stringData wins over data', () => {
    const [d] = secretDigests('kind: Secret\nmetadata: {name: s}\ndata:\n  __proto__: eA==\n  constructor: eQ==\nstringData:\n  constructor: z\n', 'f.yaml');
    assert.deepEqual(Object.keys(d?.hashes ?? {}), ['__proto__', 'constructor']);
    assert.equal(Object.getOwnPropertyDescriptor(d?.hashes, '__proto__')?.value, sha256(Buffer.from('x')));
    assert.equal(d?.hashes.constructor, sha256(Buffer.from('z')));
  });
});
