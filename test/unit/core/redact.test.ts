import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { errorReport, FluxstrapError } from '../../../src/core/errors.ts';
import { badPublicKey, describePrivateKey, quoteKeyValue, redactPrivateKeys } from '../../../src/core/redact.ts';
import { generateSshKey } from '../../../src/keys/ssh.ts';

const AGE = 'AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQZHQ8X';
const PQ = 'AGE-SECRET-KEY-PQ-1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L';
const PLUGIN = 'AGE-PLUGIN-YUBIKEY-1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L';
const PGP = '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxVgEaxCZ5xYJKwYBBAHaRw8BAQdA\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----';
const SSH = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n-----END OPENSSH PRIVATE KEY-----';
const PEM = '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----';

void describe('describePrivateKey', () => {
  for (const [key, what] of [
    [AGE, 'an age private key'],
    [AGE.toLowerCase(), 'an age private key'],
    [PQ, 'a post-quantum age private key'],
    [PLUGIN, 'a private age plugin identity'],
    [PGP, 'an armored OpenPGP private key'],
    // As a .sops.yaml fingerprint is normalised: spaces gone, upper case.
    [PGP.replace(/\s+/g, '').toUpperCase(), 'an armored OpenPGP private key'],
    [SSH, 'an SSH private key'],
    [PEM, 'a PEM private key'],
    ['-----BEGIN RSA PRIVATE KEY-----', 'a PEM private key'],
    ['xVgEaxCZ5xYJ\n-----END PGP PRIVATE KEY BLOCK-----', 'part of an armored private key'],
  ] as const) {
    void it(`names ${what} (${key.slice(0, 24).replace(/\n/g, '\\n')}…)`, () => assert.equal(describePrivateKey(`before ${key} after`), what));
  }

  void it('finds nothing in public keys and ordinary text', () => {
    for (const text of [
      'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p',
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\nabc',
      'AGE-SECRET-KEY-',
      'password: hunter2',
      '',
    ]) {
      assert.equal(describePrivateKey(text), undefined, text);
    }
  });
});

void describe('redactPrivateKeys', () => {
  void it('replaces every key, of every kind, and keeps the text around them', () => {
    assert.equal(
      redactPrivateKeys(`a ${AGE} b ${PGP} c ${AGE}`),
      'a <an age private key, not shown> b <an armored OpenPGP private key, not shown> c <an age private key, not shown>',
    );
    assert.equal(redactPrivateKeys(`x ${SSH}\ny`), 'x <an SSH private key, not shown>\ny');
  });

  void it('removes whole SSH private keys as ssh-keygen and fluxstrap write them, leaving no line of their body', () => {
    const keys = [
      generateSshKey('ed25519', 'me@host').privateKey,
      generateSshKey('rsa', 'me@host').privateKey,
      // PKCS#1 PEM (ssh-keygen -m PEM) and an encrypted PKCS#8 key: the body is just as secret.
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs1' }).toString(),
      generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'p' }).toString(),
    ];
    for (const key of keys) {
      const out = redactPrivateKeys(`cannot use ${key} here`);
      assert.match(out, /^cannot use <an? (SSH|PEM) private key, not shown>\n? here$/);
      for (const line of key.split('\n').filter((l) => l.length > 8 && !l.startsWith('-----'))) assert.ok(!out.includes(line), line);
      assert.equal(errorReport(new Error(`boom ${key}`)).message.includes(key.split('\n')[1] ?? '-'), false);
      const report = errorReport(new FluxstrapError('E_USAGE', `bad ${key}`));
      assert.match(report.message, /^bad <an? (SSH|PEM) private key, not shown>/);
      assert.doesNotMatch(report.message, /\n/);
      for (const line of key.split('\n').filter((l) => l.length > 8 && !l.startsWith('-----'))) assert.ok(!report.message.includes(line), line);
    }
  });

  void it('removes a block cut short up to the end of the text', () => {
    assert.equal(redactPrivateKeys(`quoted "${PGP.slice(0, 60)}"…`), 'quoted "<an armored OpenPGP private key, not shown>');
  });

  void it('takes linear time on a long run of near-misses', () => {
    const start = performance.now();
    redactPrivateKeys(`${'-----BEGIN PGP '.repeat(20_000)}${'AGE-SECRET-KEY-'.repeat(20_000)}`);
    assert.ok(performance.now() - start < 2000);
  });
});

void describe('quoteKeyValue and badPublicKey', () => {
  void it('quotes a value with control characters, cuts a long one, names a private key', () => {
    assert.equal(quoteKeyValue('age1typo'), 'age1typo');
    assert.equal(quoteKeyValue('age1x\nerror: forged'), '"age1x\\nerror: forged"');
    assert.equal(quoteKeyValue(`age1${'q'.repeat(200)}`), `age1${'q'.repeat(76)}…`);
    assert.equal(quoteKeyValue(`age1 ${AGE}`), 'an age private key');
  });

  void it('says what was given instead of repeating a private key', () => {
    const bad = badPublicKey(AGE, 'age recipient', 'normal hint');
    assert.equal(bad.message, 'an age private key was given where an age recipient (a public key) belongs; it is not shown');
    assert.match(bad.hint, /fluxstrap keys pub/);
    assert.deepEqual(badPublicKey('age1typo', 'age recipient', 'normal hint'), { message: 'invalid age recipient age1typo', hint: 'normal hint' });
  });
});

void describe('errorReport', () => {
  void it('scrubs the message, the hint and the location of whoever built the error', () => {
    const e = new FluxstrapError('E_CONFIG', `bad value ${AGE}`, { location: { file: `/tmp/${PQ}`, line: 3 }, hint: `try ${PLUGIN}` });
    assert.deepEqual(errorReport(e), {
      code: 'E_CONFIG',
      message: 'bad value <an age private key, not shown>',
      where: '/tmp/<a post-quantum age private key, not shown>:3',
      hint: 'try <a private age plugin identity, not shown>',
    });
    assert.deepEqual(errorReport(new Error(`boom ${SSH}`)), { code: 'E_INTERNAL', message: 'boom <an SSH private key, not shown>' });
  });
});
