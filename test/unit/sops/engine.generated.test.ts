import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { KeySources } from '../../../src/sops/datakey.ts';
import { newStanza } from '../../../src/sops/datakey.ts';
import { stanzaField } from '../../../src/sops/metadata.ts';
import { decryptDocument, encryptDocument, parseEncrypted } from '../../../src/sops/engine.ts';
import { formatForPath } from '../../../src/sops/stores.ts';
import { loadAgeIdentities } from '../../../src/keys/identities.ts';
import { generatedDir } from './helpers.ts';

/**
 * Vectors written by the real sops 3.13.2 for the features the shared vectors lack (see
 * test/vectors/sops-generated/SOURCES.md): fluxstrap must print exactly what `sops decrypt`
 * printed, and encrypting the same plaintext with the same rules must give the same layout.
 */

const encrypted = readdirSync(generatedDir).filter((f) => /\.enc\.[a-z]+$/.test(f));
let sources: KeySources;

void before(async () => {
  const age = await loadAgeIdentities({ keyFiles: ['a', 'b', 'c'].map((k) => join(generatedDir, `key-${k}.txt`)), env: {} });
  sources = { age, pgpFiles: [], gpg: false };
});

/** Ciphertext, IVs, tags, armored keys and dates differ on every run; the rest must not. */
export function layout(text: string): string {
  return text
    .replace(/ENC\[AES256_GCM,[^\]]*type:([a-z]+)\]/g, 'ENC[$1]')
    .replace(/-----BEGIN AGE ENCRYPTED FILE-----[\s\S]*?-----END AGE ENCRYPTED FILE-----/g, 'AGE')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/g, 'DATE');
}

void describe('vectors generated with sops 3.13.2', () => {
  void it('covers the features the shared vectors lack', () => {
    for (const name of [
      'secret.mac-only.enc.yaml',
      'suffix.encrypted-suffix.enc.yaml',
      'secret.unencrypted-regex.enc.yaml',
      'comments.encrypted-comment-regex.enc.yaml',
      'comments.unencrypted-comment-regex.enc.yaml',
      'secret.shamir.enc.yaml',
      'multidoc.enc.yaml',
    ]) {
      assert.ok(encrypted.includes(name), name);
    }
  });

  for (const name of encrypted) {
    // `nested.indent-N.*` were written with stores.yaml.indent: N.
    const indent = /\.indent-(\d)\./.exec(name)?.[1];
    const store = indent === undefined ? {} : { indent: Number(indent) };

    void it(`${name}: decrypts to what sops decrypt printed, MAC verified`, async () => {
      const out = await decryptDocument(readFileSync(join(generatedDir, name)), formatForPath(name), name, sources, { store });
      assert.equal(out.toString('latin1'), readFileSync(join(generatedDir, `${name}.decrypted`)).toString('latin1'));
    });

    void it(`${name}: fluxstrap's encryption of the same plaintext has sops' layout`, async () => {
      const sops = readFileSync(join(generatedDir, name));
      const format = formatForPath(name);
      const { metadata } = parseEncrypted(sops, format, name);
      const plainName = `${name.split('.')[0] ?? ''}.${name.split('.').pop() ?? ''}`;
      const keyGroups = metadata.keyGroups.map((g) => g.map((s) => newStanza('age', stanzaField(s, 'recipient'))));
      const ours = await encryptDocument(
        readFileSync(join(generatedDir, 'plain', plainName)),
        format,
        name,
        { keyGroups, shamirThreshold: metadata.shamirThreshold, rules: metadata.rules },
        sources,
        store,
      );
      assert.equal(layout(ours), layout(sops.toString('utf8')));
    });
  }
});
