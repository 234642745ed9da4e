import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgeIdentity } from '../../../src/keys/age.ts';
import { decryptValue, encryptValue } from '../../../src/sops/cipher.ts';
import type { KeySources } from '../../../src/sops/datakey.ts';
import { openDocument, parseEncrypted } from '../../../src/sops/engine.ts';
import { formatForPath, type Format } from '../../../src/sops/stores.ts';
import { decryptTree } from '../../../src/sops/walk.ts';
import { commentsOf, toExpected, useVectorKeyring, vector, vectorAgeIdentities, vectorsDir } from './helpers.ts';

/** Every encrypted file in test/vectors/sops, written by real sops releases, opens to its expected plaintext. */

interface ExpectedFile {
  file: string;
  format: string;
  data_key_hex: string;
  mac_hex_upper: string;
  mac_verified: boolean;
  branches: unknown[];
  yaml_comment_aads?: { aad: string; plaintext: string }[];
}

const expectedFiles = readdirSync(join(vectorsDir, 'expected')).filter((f) => f.endsWith('.expected.json'));
const load = (f: string): ExpectedFile => JSON.parse(readFileSync(join(vectorsDir, 'expected', f), 'utf8')) as ExpectedFile;

function formatOf(e: ExpectedFile): Format {
  return e.file.includes('.enc.binary.') ? 'binary' : formatForPath(e.file) === 'binary' ? 'binary' : (e.format as Format);
}

let age: AgeIdentity[];
let restore: () => void;
let sources: KeySources;

void before(async () => {
  age = await vectorAgeIdentities();
  restore = useVectorKeyring();
  sources = { age, pgpFiles: [], gpg: true };
});
void after(() => restore());

void describe('shared sops vectors', () => {
  void it('has the 39 expected files', () => assert.equal(expectedFiles.length, 39));

  for (const f of expectedFiles) {
    const e = load(f);
    void it(`${e.file} decrypts to its expected plaintext and its MAC verifies`, async () => {
      const format = formatOf(e);
      const opened = await openDocument(vector(e.file), format, e.file, sources, { ignoreMac: !e.mac_verified });
      assert.equal(Buffer.from(opened.dataKey).toString('hex'), e.data_key_hex);
      assert.deepEqual(
        opened.branches.map((b) => toExpected(b, format !== 'yaml')),
        e.branches,
      );
      const commentTexts = opened.branches.flatMap(commentsOf);
      for (const c of e.yaml_comment_aads ?? []) assert.ok(commentTexts.includes(c.plaintext), `comment ${JSON.stringify(c.plaintext)}`);
    });
  }

  void it('refuses sops-no-mac.enc.yaml without --ignore-mac', () =>
    assert.rejects(openDocument(vector('sops-no-mac.enc.yaml'), 'yaml', 'no-mac', sources), /no MAC/));

  void it('recomputes the MAC of every vector', () => {
    for (const f of expectedFiles) {
      const e = load(f);
      const { branches, metadata } = parseEncrypted(vector(e.file), formatOf(e), e.file);
      const { mac } = decryptTree(branches, Buffer.from(e.data_key_hex, 'hex'), metadata.rules, { rawStrings: formatOf(e) === 'binary' });
      assert.equal(mac, e.mac_hex_upper, e.file);
    }
  });
});

void describe('tampering', () => {
  const file = 'sopsage-secret.enc.yaml';

  void it('refuses one changed byte of ciphertext', async () => {
    const text = vector(file).toString('utf8');
    const m = /secret: ENC\[AES256_GCM,data:([A-Za-z0-9+/])/.exec(text);
    assert.ok(m);
    const swapped = m[1] === 'A' ? 'B' : 'A';
    const tampered = text.replace(m[0], m[0].slice(0, -1) + swapped);
    await assert.rejects(
      openDocument(Buffer.from(tampered), 'yaml', file, sources),
      (err: Error & { code?: string }) => err.code === 'E_DECRYPT' && /does not decrypt/.test(err.message),
    );
  });

  void it('refuses one changed plaintext value (the MAC covers unencrypted values too)', async () => {
    const text = vector('sops-example.enc.yaml').toString('utf8');
    const tampered = text.replace('remain in clear text', 'remain in clear text!');
    await assert.rejects(openDocument(Buffer.from(tampered), 'yaml', 'x', sources), /MAC mismatch/);
    const opened = await openDocument(Buffer.from(tampered), 'yaml', 'x', sources, { ignoreMac: true });
    assert.ok(opened.branches.length === 1);
  });

  void it('refuses a value moved to another key (the AAD binds the path)', async () => {
    const text = vector(file).toString('utf8');
    const secret = /^secret: (ENC\[[^\]]+\])/m.exec(text)?.[1];
    const string = /^string: (ENC\[[^\]]+\])/m.exec(text)?.[1];
    assert.ok(secret && string);
    const swapped = text.replace(`secret: ${secret}`, `secret: ${string}`);
    await assert.rejects(openDocument(Buffer.from(swapped), 'yaml', file, sources), /does not decrypt/);
  });
});

void describe('the AES value vector from sops cipher_test.go', () => {
  const v = JSON.parse(vector('sops-aes-value-vector.json').toString('utf8')) as { key_hex: string; aad: string; value: string; expected_plaintext: string };

  void it('decrypts, refuses another AAD, and re-encrypts', () => {
    const key = Buffer.from(v.key_hex, 'hex');
    assert.equal(decryptValue(v.value, key, v.aad), v.expected_plaintext);
    assert.throws(() => decryptValue(v.value, key, ''));
    assert.equal(decryptValue(encryptValue('foo', key, 'bar:'), key, 'bar:'), 'foo');
  });
});
