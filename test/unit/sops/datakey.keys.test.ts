import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Decrypter, Encrypter, generateIdentity, identityToRecipient } from 'age-encryption';
import { loadAgeIdentities, splitCommand } from '../../../src/keys/identities.ts';
import { ageDecrypt, ageEncrypt, armor, dearmor } from '../../../src/sops/age.ts';
import { decryptX25519, encryptX25519, x25519RecipientOf, x25519Secret } from '../../../src/keys/age-x25519.ts';
import { encryptDataKey, newStanza, type KeySources } from '../../../src/sops/datakey.ts';
import { rotate, updateKeys } from '../../../src/sops/engine.ts';
import { keyFileDecrypt, keyFileEncrypt } from '../../../src/sops/pgp.ts';
import { combine, split } from '../../../src/sops/shamir.ts';
import { TreeMap } from '../../../src/sops/tree.ts';
import { generatedDir, vectorsDir } from './helpers.ts';

/** The key layer: native age against age-encryption and the age CLI, PGP through openpgp, Shamir, discovery. */

const tmp = mkdtempSync(join(tmpdir(), 'fluxstrap-keys-'));
void after(() => rmSync(tmp, { recursive: true, force: true }));

void describe('age X25519 on node:crypto', () => {
  void it('derives the same recipient as age-encryption', async () => {
    for (let i = 0; i < 5; i++) {
      const id = await generateIdentity();
      assert.equal(x25519RecipientOf(id), await identityToRecipient(id));
    }
  });

  void it('what it encrypts, age-encryption and the age CLI decrypt', async () => {
    const id = await generateIdentity();
    const key = randomBytes(32);
    const file = encryptX25519(await identityToRecipient(id), key);
    const d = new Decrypter();
    d.addIdentity(id);
    assert.deepEqual(Buffer.from(await d.decrypt(file)), key);
    writeFileSync(join(tmp, 'id.txt'), `${id}\n`, { mode: 0o600 });
    const viaCli = execFileSync('age', ['-d', '-i', join(tmp, 'id.txt')], { input: armor(file) });
    assert.deepEqual(viaCli, key);
  });

  void it('opens what age-encryption and the age CLI encrypt, and nothing for another key', async () => {
    const id = await generateIdentity();
    const recipient = await identityToRecipient(id);
    const key = randomBytes(32);
    const e = new Encrypter();
    e.addRecipient(recipient);
    const secret = x25519Secret(id);
    assert.ok(secret);
    assert.deepEqual(decryptX25519(await e.encrypt(key), [secret]), key);
    const viaCli = execFileSync('age', ['-e', '-a', '-r', recipient], { input: key });
    assert.deepEqual(decryptX25519(dearmor(viaCli.toString()), [secret]), key);
    const other = x25519Secret(await generateIdentity());
    assert.ok(other);
    assert.equal(decryptX25519(await e.encrypt(key), [other]), undefined);
  });

  void it('opens the sops age test constant (derived from age/keysource_test.go)', async () => {
    const ids = await loadAgeIdentities({ keyFiles: [join(vectorsDir, 'sops-age-mock-identity.txt')], env: {} });
    const plain = await ageDecrypt(readFileSync(join(vectorsDir, 'sops-age-mock-encrypted-key.age.txt'), 'utf8'), ids);
    assert.equal(Buffer.from(plain ?? []).toString(), 'data');
  });

  void it('post-quantum recipients go through age-encryption', async () => {
    const pq = await loadAgeIdentities({ keyFiles: [join(vectorsDir, 'flux-key-age-pq.txt')], env: {} });
    const recipient = pq[0]?.recipient ?? '';
    assert.match(recipient, /^age1pq1/);
    const key = randomBytes(32);
    assert.deepEqual(Buffer.from((await ageDecrypt(await ageEncrypt(recipient, key), pq)) ?? []), key);
  });
});

void describe('identity discovery', () => {
  void it('reads SOPS_AGE_KEY (several per line), SOPS_AGE_KEY_FILE and the default key file together', async () => {
    const [a, b, c] = await Promise.all([generateIdentity(), generateIdentity(), generateIdentity()]);
    const home = join(tmp, 'xdg');
    execFileSync('mkdir', ['-p', join(home, 'sops', 'age')]);
    writeFileSync(join(home, 'sops', 'age', 'keys.txt'), `# default\n${c}\n`);
    writeFileSync(join(tmp, 'env-file.txt'), `${b}\n`);
    const ids = await loadAgeIdentities({ env: { SOPS_AGE_KEY: `# comment\n${a} ${a}`, SOPS_AGE_KEY_FILE: join(tmp, 'env-file.txt'), XDG_CONFIG_HOME: home } });
    assert.deepEqual(ids.map((i) => i.secret).sort(), [a, b, c].sort());
    assert.deepEqual(ids.map((i) => i.source).sort(), ['SOPS_AGE_KEY', join(home, 'sops', 'age', 'keys.txt'), join(tmp, 'env-file.txt')].sort());
  });

  void it('runs SOPS_AGE_KEY_CMD without a shell and reads its output as a key file', async () => {
    const id = await generateIdentity();
    writeFileSync(join(tmp, 'cmd key.txt'), `${id}\n`);
    const ids = await loadAgeIdentities({ env: { SOPS_AGE_KEY_CMD: `cat "${join(tmp, 'cmd key.txt')}"`, PATH: process.env.PATH, XDG_CONFIG_HOME: tmp } });
    assert.deepEqual(
      ids.map((i) => [i.secret, i.source]),
      [[id, 'SOPS_AGE_KEY_CMD']],
    );
    await assert.rejects(
      loadAgeIdentities({ env: { SOPS_AGE_KEY_CMD: 'false', PATH: process.env.PATH, XDG_CONFIG_HOME: tmp } }),
      /SOPS_AGE_KEY_CMD \(false\) failed/,
    );
    assert.deepEqual(splitCommand(`pass show 'sops/age key' --x="a b" c\\ d`), ['pass', 'show', 'sops/age key', '--x=a b', 'c d']);
  });

  void it('a named --key-file must parse; armored PGP key files are left to the PGP side', async () => {
    writeFileSync(join(tmp, 'bad.txt'), 'age1notasecret\n');
    await assert.rejects(loadAgeIdentities({ keyFiles: [join(tmp, 'bad.txt')], env: {} }), /public key/);
    assert.deepEqual(await loadAgeIdentities({ keyFiles: [join(vectorsDir, 'flux-key-pgp.asc')], env: {} }), []);
  });

  void it('a broken environment source is fatal only when nothing else yields an identity', async () => {
    const good = await generateIdentity();
    const ids = await loadAgeIdentities({ env: { SOPS_AGE_KEY: good, SOPS_AGE_KEY_FILE: join(tmp, 'missing.txt'), XDG_CONFIG_HOME: tmp } });
    assert.equal(ids.length, 1);
    await assert.rejects(loadAgeIdentities({ env: { SOPS_AGE_KEY_FILE: join(tmp, 'missing.txt'), XDG_CONFIG_HOME: tmp } }), /SOPS_AGE_KEY_FILE/);
  });
});

void describe('PGP through armored key files (openpgp.js)', () => {
  void it('encrypts to a fingerprint in a key file and decrypts with its private key', async () => {
    const files = [{ armored: readFileSync(join(vectorsDir, 'sops-functional-tests-key.asc'), 'utf8'), source: 'test' }];
    const key = randomBytes(32);
    const enc = await keyFileEncrypt('FBC7 B9E2 A4F9 289A C0C1 D484 3D16 CEE4 A273 81B4', key, files);
    assert.ok(enc !== undefined && enc.startsWith('-----BEGIN PGP MESSAGE-----') && !enc.endsWith('\n'));
    assert.deepEqual(Buffer.from((await keyFileDecrypt(enc, files)) ?? []), key);
    assert.equal(await keyFileEncrypt('0000000000000000000000000000000000000000', key, files), undefined);
  });
});

void describe('Shamir over GF(2^8)', () => {
  void it('any threshold-sized subset of shares recovers the secret', () => {
    for (let t = 2; t <= 4; t++) {
      const secret = randomBytes(32);
      const shares = split(secret, 5, t);
      assert.ok(shares.every((s) => s.length === 33));
      for (let i = 0; i + t <= 5; i++) assert.deepEqual(Buffer.from(combine(shares.slice(i, i + t))), secret);
      if (t > 2) assert.notDeepEqual(Buffer.from(combine(shares.slice(0, t - 1))), secret, 'fewer shares than the threshold reveal nothing');
    }
  });
});

void describe('re-keying keeps what fluxstrap cannot use', () => {
  const keyText = (k: string): string => readFileSync(join(generatedDir, `key-${k}.txt`), 'utf8');
  const recipient = (k: string): string => /public key: (age1\S+)/.exec(keyText(k))?.[1] ?? '';

  async function fileWithKms(): Promise<{ bytes: Buffer; sources: KeySources }> {
    const age = await loadAgeIdentities({ keyFiles: [join(generatedDir, 'key-a.txt'), join(generatedDir, 'key-b.txt')], env: {} });
    const text = readFileSync(join(generatedDir, 'secret.unencrypted-regex.enc.yaml'), 'utf8').replace(
      '\n    lastmodified:',
      '\n    kms:\n        - arn: arn:aws:kms:eu-west-1:111122223333:key/abcd\n          aws_profile: ""\n          created_at: "2024-01-01T00:00:00Z"\n          enc: AQICAHh4c29tZWNpcGhlcnRleHQ=\n    lastmodified:',
    );
    return { bytes: Buffer.from(text), sources: { age, pgpFiles: [], gpg: false } };
  }

  void it('updatekeys keeps a kms stanza byte for byte and adds the new age recipient', async () => {
    const { bytes, sources } = await fileWithKms();
    const groups = [
      [
        newStanza('age', recipient('a')),
        newStanza('age', recipient('b')),
        { type: 'kms' as const, fields: new TreeMap([{ key: 'arn', value: 'arn:aws:kms:eu-west-1:111122223333:key/abcd' }]) },
      ],
    ];
    const res = await updateKeys(bytes, 'yaml', 'f.yaml', groups, 0, sources);
    assert.ok(res.output.includes('          enc: AQICAHh4c29tZWNpcGhlcnRleHQ=\n'), 'kms enc kept');
    assert.ok(res.output.includes(`recipient: ${recipient('b')}`));
    assert.deepEqual(
      res.after.filter((k) => !res.before.includes(k)),
      [`age:${recipient('b')}`],
    );
  });

  void it('rotate refuses to leave a kms key behind with a data key it cannot encrypt', async () => {
    const { bytes, sources } = await fileWithKms();
    await assert.rejects(
      rotate(bytes, 'yaml', 'f.yaml', sources, {}),
      (e: Error & { code?: string }) => e.code === 'E_PRECONDITION' && /kms key arn:aws:kms/.test(e.message),
    );
  });

  void it('updatekeys refuses a kms key in a Shamir group: the new split would leave it holding an old share', async () => {
    const { bytes, sources } = await fileWithKms();
    const kms = { type: 'kms' as const, fields: new TreeMap([{ key: 'arn', value: 'arn:aws:kms:eu-west-1:111122223333:key/abcd' }]) };
    const groups = [[newStanza('age', recipient('a')), kms], [newStanza('age', recipient('b'))]];
    await assert.rejects(
      updateKeys(bytes, 'yaml', 'f.yaml', groups, 2, sources),
      (e: Error & { code?: string }) => e.code === 'E_PRECONDITION' && /key share for kms key/.test(e.message),
    );
  });

  void it('a data key split over groups records the threshold', async () => {
    const out = await encryptDataKey(randomBytes(32), [[newStanza('age', recipient('a'))], [newStanza('age', recipient('b'))]], 0, {
      age: [],
      pgpFiles: [],
      gpg: false,
    });
    assert.equal(out.threshold, 2);
  });
});
