import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { findSops, generatedDir, useVectorKeyring, vectorsDir } from '../unit/sops/helpers.ts';

/**
 * Interoperability with the real sops CLI, both ways: what fluxstrap writes, sops opens; what sops
 * writes, fluxstrap opens; after fluxstrap's updatekeys/rotate sops still opens the file. Without
 * a sops binary these tests fail, saying how to build one.
 */

const keyText = (k: string): string => readFileSync(join(generatedDir, `key-${k}.txt`), 'utf8');
const recipient = (k: string): string => /public key: (age1\S+)/.exec(keyText(k))?.[1] ?? '';
const PGP_FP = 'FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4';

let sops: string;
let dir: string;
let restoreKeyring: () => void;

/** Run sops with exactly one age key file (0600) as SOPS_AGE_KEY_FILE, no other identities. */
function runSops(args: string[], keys: string[], opts: { cwd?: string } = {}): { code: number; stdout: string; stderr: string } {
  const keyFile = join(dir, `sops-keys-${keys.join('')}.txt`);
  writeFileSync(keyFile, keys.map(keyText).join(''), { mode: 0o600 });
  const r = spawnSync(sops, args, {
    cwd: opts.cwd ?? dir,
    encoding: 'utf8',
    env: { ...process.env, SOPS_AGE_KEY_FILE: keyFile, XDG_CONFIG_HOME: join(dir, 'no-config'), SOPS_AGE_SSH_PRIVATE_KEY_FILE: join(dir, 'none') },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The built fluxstrap with no identity but the named generated keys (`--key-file`). */
function ours(args: string[], keys: string[] = [], cwd?: string): { code: number; stdout: string; stderr: string } {
  const [command = '', ...rest] = args;
  const keyFlags = keys.flatMap((k) => ['--key-file', join(generatedDir, `key-${k}.txt`)]);
  return runCli([command, ...keyFlags, ...rest], {
    cwd: cwd ?? dir,
    env: { XDG_CONFIG_HOME: join(dir, 'no-config'), SOPS_AGE_KEY_FILE: '', SOPS_AGE_KEY: '' },
  });
}

void before(async () => {
  sops = findSops();
  dir = await tempDir('sops-interop');
  restoreKeyring = useVectorKeyring();
});
void after(() => restoreKeyring?.());

const PLAINS = ['secret.yaml', 'types.yaml', 'multidoc.yaml', 'comments.yaml', 'edge-comments.yaml', 'app.json', 'app.env', 'app.ini', 'blob.bin'];

void describe('fluxstrap encrypt → sops decrypt', () => {
  for (const name of PLAINS) {
    void it(`${name}: sops opens it and prints what it prints for its own encryption`, () => {
      const plain = join(generatedDir, 'plain', name);
      const enc = ours(['encrypt', '--age', recipient('a'), plain]);
      assert.equal(enc.code, 0, enc.stderr);
      const ext = name.split('.').pop() ?? '';
      const mine = join(dir, `mine-${name}`);
      writeFileSync(mine, enc.stdout);
      const type = ext === 'bin' ? 'binary' : ext === 'env' ? 'dotenv' : ext;
      const theirs = runSops(['decrypt', '--input-type', type, '--output-type', type, mine], ['a']);
      assert.equal(theirs.code, 0, theirs.stderr);
      assert.doesNotMatch(theirs.stderr, /warn/i, 'sops opened every comment too');
      const own = join(dir, `own-${name}`);
      writeFileSync(own, runSops(['encrypt', '--age', recipient('a'), plain], []).stdout);
      assert.equal(theirs.stdout, runSops(['decrypt', '--input-type', type, '--output-type', type, own], ['a']).stdout);
    });
  }

  void it('with encrypted_regex and mac_only_encrypted, sops verifies the MAC', () => {
    const enc = ours([
      'encrypt',
      '--age',
      recipient('a'),
      '--encrypted-regex',
      '^(data|stringData)$',
      '--mac-only-encrypted',
      join(generatedDir, 'plain', 'secret.yaml'),
    ]);
    assert.equal(enc.code, 0, enc.stderr);
    assert.match(enc.stdout, /mac_only_encrypted: true/);
    assert.match(enc.stdout, /^kind: Secret$/m);
    writeFileSync(join(dir, 'maconly.yaml'), enc.stdout);
    const r = runSops(['decrypt', join(dir, 'maconly.yaml')], ['a']);
    assert.equal(r.code, 0, r.stderr);
  });

  void it('with a Shamir .sops.yaml (3 groups, threshold 2), sops opens it with any two keys and not with one', () => {
    const sub = join(dir, 'shamir');
    execFileSync('mkdir', ['-p', sub]);
    writeFileSync(
      join(sub, '.sops.yaml'),
      `creation_rules:\n  - path_regex: \\.yaml$\n    shamir_threshold: 2\n    key_groups:\n      - age: [${recipient('a')}]\n      - age: [${recipient('b')}]\n      - age: [${recipient('c')}]\n`,
    );
    copyFileSync(join(generatedDir, 'plain', 'secret.yaml'), join(sub, 'secret.yaml'));
    const enc = ours(['encrypt', '-i', 'secret.yaml'], [], sub);
    assert.equal(enc.code, 0, enc.stderr);
    assert.equal(runSops(['decrypt', 'secret.yaml'], ['a', 'c'], { cwd: sub }).code, 0);
    assert.notEqual(runSops(['decrypt', 'secret.yaml'], ['b'], { cwd: sub }).code, 0);
    const back = ours(['decrypt', 'secret.yaml'], ['b', 'c'], sub);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout, readFileSync(join(generatedDir, 'secret.shamir.enc.yaml.decrypted'), 'utf8'));
  });

  void it('to a PGP fingerprint (through gpg), sops opens it with the gpg keyring', () => {
    const enc = ours(['encrypt', '--pgp', PGP_FP, join(generatedDir, 'plain', 'app.json')]);
    assert.equal(enc.code, 0, enc.stderr);
    writeFileSync(join(dir, 'pgp.json'), enc.stdout);
    const r = runSops(['decrypt', join(dir, 'pgp.json')], []);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, readFileSync(join(generatedDir, 'app.enc.json.decrypted'), 'utf8'));
  });

  void it('to a post-quantum age recipient, sops opens it', () => {
    const pq = readFileSync(join(vectorsDir, 'flux-key-age-pq.txt'), 'utf8');
    const pqRecipient = /public key: (age1pq1\S+)/.exec(pq)?.[1];
    assert.ok(pqRecipient);
    const enc = ours(['encrypt', '--age', pqRecipient, join(generatedDir, 'plain', 'secret.yaml')]);
    assert.equal(enc.code, 0, enc.stderr);
    writeFileSync(join(dir, 'pq.yaml'), enc.stdout);
    const keyFile = join(dir, 'pq-key.txt');
    writeFileSync(keyFile, pq, { mode: 0o600 });
    const r = spawnSync(sops, ['decrypt', join(dir, 'pq.yaml')], { encoding: 'utf8', env: { ...process.env, SOPS_AGE_KEY_FILE: keyFile } });
    assert.equal(r.status, 0, r.stderr);
  });
});

void describe('sops encrypt → fluxstrap decrypt', () => {
  for (const name of PLAINS) {
    void it(`${name}: fluxstrap prints what sops prints`, () => {
      const plain = join(generatedDir, 'plain', name);
      const enc = runSops(['encrypt', '--age', `${recipient('a')},${recipient('b')}`, plain], []);
      assert.equal(enc.code, 0, enc.stderr);
      const file = join(dir, `theirs-${name}`);
      writeFileSync(file, enc.stdout);
      const mine = ours(['decrypt', file], ['b']);
      assert.equal(mine.code, 0, mine.stderr);
      assert.equal(mine.stdout, runSops(['decrypt', file], ['b']).stdout);
    });
  }

  void it('a PGP file, with an armored private key as --key-file (openpgp.js, no keyring)', () => {
    const enc = runSops(['encrypt', '--pgp', PGP_FP, join(generatedDir, 'plain', 'secret.yaml')], []);
    assert.equal(enc.code, 0, enc.stderr);
    writeFileSync(join(dir, 'theirs-pgp.yaml'), enc.stdout);
    const r = runCli(['decrypt', '--key-file', join(vectorsDir, 'sops-functional-tests-key.asc'), join(dir, 'theirs-pgp.yaml')], {
      env: { GNUPGHOME: join(dir, 'empty-gnupg'), SOPS_GPG_EXEC: '/bin/false', XDG_CONFIG_HOME: join(dir, 'no-config') },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, readFileSync(join(generatedDir, 'secret.unencrypted-regex.enc.yaml.decrypted'), 'utf8'));
  });
});

void describe('after fluxstrap re-keys, sops still opens the file', () => {
  void it("updatekeys adds the rule's new recipient, keeps values and MAC, and sops opens it with the new key", () => {
    const sub = join(dir, 'update');
    execFileSync('mkdir', ['-p', sub]);
    copyFileSync(join(generatedDir, 'secret.unencrypted-regex.enc.yaml'), join(sub, 'secret.yaml'));
    chmodSync(join(sub, 'secret.yaml'), 0o640);
    writeFileSync(join(sub, '.sops.yaml'), `creation_rules:\n  - path_regex: secret\\.yaml$\n    age: ${recipient('a')},${recipient('b')}\n`);
    const before = readFileSync(join(sub, 'secret.yaml'), 'utf8');
    const r = ours(['updatekeys', 'secret.yaml'], ['a'], sub);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /added age:age1/);
    const after = readFileSync(join(sub, 'secret.yaml'), 'utf8');
    const mac = (t: string): string | undefined => /mac: (ENC\[[^\]]+\])/.exec(t)?.[1];
    assert.equal(mac(after), mac(before));
    assert.equal(statSync(join(sub, 'secret.yaml')).mode & 0o777, 0o640);
    const s = runSops(['decrypt', 'secret.yaml'], ['b'], { cwd: sub });
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout, readFileSync(join(generatedDir, 'secret.unencrypted-regex.enc.yaml.decrypted'), 'utf8'));
  });

  void it('updatekeys to a Shamir rule splits the same data key over the groups; sops needs both keys', () => {
    const sub = join(dir, 'update-shamir');
    execFileSync('mkdir', ['-p', sub]);
    copyFileSync(join(generatedDir, 'suffix.encrypted-suffix.enc.yaml'), join(sub, 'suffix.yaml'));
    writeFileSync(join(sub, '.sops.yaml'), `creation_rules:\n  - key_groups:\n      - age: [${recipient('b')}]\n      - age: [${recipient('c')}]\n`);
    const r = ours(['updatekeys', 'suffix.yaml'], ['a'], sub);
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(join(sub, 'suffix.yaml'), 'utf8'), /shamir_threshold: 2/);
    const s = runSops(['decrypt', 'suffix.yaml'], ['b', 'c'], { cwd: sub });
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout, readFileSync(join(generatedDir, 'suffix.encrypted-suffix.enc.yaml.decrypted'), 'utf8'));
    assert.notEqual(runSops(['decrypt', 'suffix.yaml'], ['b'], { cwd: sub }).code, 0);
  });

  void it('rotate --add-age/--rm-age: a new data key; sops opens it with the added key, not the removed one', () => {
    const file = join(dir, 'rotate.yaml');
    copyFileSync(join(generatedDir, 'multidoc.enc.yaml'), file);
    const r = ours(['rotate', '-i', '--add-age', recipient('c'), '--rm-age', recipient('a'), file], ['a']);
    assert.equal(r.code, 0, r.stderr);
    const ok = runSops(['decrypt', file], ['c']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, readFileSync(join(generatedDir, 'multidoc.enc.yaml.decrypted'), 'utf8'));
    assert.notEqual(runSops(['decrypt', file], ['a']).code, 0);
  });
});

void describe('set, unset and --extract, against sops', () => {
  const changedLines = (a: string, b: string): string[] => {
    const before = a.split('\n');
    return b
      .split('\n')
      .filter((l, i) => l !== before[i])
      .map((l) => l.trim().split(':')[0] ?? '');
  };

  void it('set changes one value: the diff is that line, lastmodified and mac; sops reads the new value and can set on top', () => {
    const file = join(dir, 'set-types.yaml');
    copyFileSync(join(generatedDir, 'types.enc.yaml'), file);
    const before = readFileSync(file, 'utf8');
    const r = runCli(['set', '--key-file', join(generatedDir, 'key-a.txt'), file, '["café"]["passwörd"]'], {
      cwd: dir,
      input: 'n3w: pässword\n',
      env: { XDG_CONFIG_HOME: join(dir, 'no-config'), SOPS_AGE_KEY_FILE: '', SOPS_AGE_KEY: '' },
    });
    assert.equal(r.code, 0, r.stderr);
    // Every other value keeps its ciphertext (same IV): the vector's lastmodified is long past.
    assert.deepEqual(changedLines(before, readFileSync(file, 'utf8')).sort(), ['lastmodified', 'mac', 'passwörd']);
    const extracted = runSops(['decrypt', '--extract', '["café"]["passwörd"]', file], ['a']);
    assert.equal(extracted.code, 0, extracted.stderr);
    assert.equal(extracted.stdout, 'n3w: pässword');
    const theirs = runSops(['set', file, '["int"]', '43'], ['a']);
    assert.equal(theirs.code, 0, theirs.stderr);
    assert.equal(ours(['decrypt', '--extract', '["int"]', file], ['a']).stdout, '43\n');
  });

  void it('unset removes a value; sops opens the result and no longer has it', () => {
    const file = join(dir, 'unset-types.yaml');
    copyFileSync(join(generatedDir, 'types.enc.yaml'), file);
    const r = ours(['unset', file, '["list_with_null"]'], ['a']);
    assert.equal(r.code, 0, r.stderr);
    const all = runSops(['decrypt', file], ['a']);
    assert.equal(all.code, 0, all.stderr);
    assert.doesNotMatch(all.stdout, /list_with_null/);
    assert.match(all.stdout, /^int: 42$/m);
  });

  void it('decrypt --extract prints what sops prints, for a string and for a map', () => {
    const file = join(generatedDir, 'types.enc.yaml');
    for (const path of ['["café"]["passwörd"]', '["merged"]', '["int"]']) {
      const mine = ours(['decrypt', '--extract', path, file], ['a']);
      assert.equal(mine.code, 0, mine.stderr);
      assert.equal(mine.stdout, runSops(['decrypt', '--extract', path, file], ['a']).stdout, path);
    }
  });
});

void describe('keys and values named like Object members, against sops', () => {
  const PLAIN =
    '__proto__:\n    constructor: toString\n    polluted: "yes"\nconstructor:\n    prototype: __proto__\nlist:\n    - valueOf\n    - hasOwnProperty\n';

  void it('both ways: what one encrypts the other decrypts to the same document; set and unset address __proto__ literally', () => {
    const plain = join(dir, 'proto.yaml');
    writeFileSync(plain, PLAIN);
    const mine = ours(['encrypt', '--age', recipient('a'), plain]);
    assert.equal(mine.code, 0, mine.stderr);
    const file = join(dir, 'proto.enc.yaml');
    writeFileSync(file, mine.stdout);
    const bySops = runSops(['decrypt', file], ['a']);
    assert.equal(bySops.code, 0, bySops.stderr);
    assert.equal(bySops.stdout, PLAIN);

    const theirs = runSops(['encrypt', '--age', recipient('a'), plain], []);
    assert.equal(theirs.code, 0, theirs.stderr);
    writeFileSync(join(dir, 'proto.theirs.yaml'), theirs.stdout);
    assert.equal(ours(['decrypt', join(dir, 'proto.theirs.yaml')], ['a']).stdout, PLAIN);

    const set = runCli(['set', '--key-file', join(generatedDir, 'key-a.txt'), file, '["__proto__"]["added"]'], {
      cwd: dir,
      input: 'v',
      env: { XDG_CONFIG_HOME: join(dir, 'no-config'), SOPS_AGE_KEY_FILE: '', SOPS_AGE_KEY: '' },
    });
    assert.equal(set.code, 0, set.stderr);
    assert.equal(ours(['unset', file, '["constructor"]["prototype"]'], ['a']).code, 0);
    const after = runSops(['decrypt', file], ['a']);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(
      after.stdout,
      '__proto__:\n    constructor: toString\n    polluted: "yes"\n    added: v\nconstructor: {}\nlist:\n    - valueOf\n    - hasOwnProperty\n',
    );
    assert.equal(runSops(['decrypt', '--extract', '["__proto__"]["polluted"]', file], ['a']).stdout, 'yes');
  });
});
