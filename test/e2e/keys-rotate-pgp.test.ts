import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { assertUserError, runCli } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { exportedKeys, exportedPublicKey, gpgIn, pgpCliEnv, stopAgent } from '../helpers/gpg.ts';
import { requireTool } from '../helpers/tools.ts';
import { findSops } from '../unit/sops/helpers.ts';

/**
 * `fluxstrap keys rotate` of an OpenPGP cluster key (`sopsKey.pgp`), keys made by the real gpg,
 * files checked with the real sops holding one key at a time (a keyring per key): after phase 1
 * both keys open every file, after --finish only the new one does.
 */

let home: string;
let sops: string;
let r: FluxRepo;
/** gnupg: every key (what fluxstrap reads); one keyring per key for sops. */
let gnupg: string;
const keys = {
  old: { fpr: '', file: '', ring: '' },
  next: { fpr: '', file: '', ring: '' },
  locked: { fpr: '', file: '', ring: '' },
  pub: { fpr: '', file: '', ring: '' },
};

const SECRETS = ['db.yaml', 'apps/api.yaml'];
const plain = (name: string) => `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\n  namespace: default\nstringData:\n  password: s3cret-${name}\n`;

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => pgpCliEnv(home, gnupg, extra);
const cli = (args: string[]): CliResult => runCli(args, { cwd: r.repo, env: env() });
const rotate = (...args: string[]) => cli(['keys', 'rotate', '--cluster', r.cluster, ...args]);

/** The real sops with one keyring: the decrypted password, or the failure. */
async function sopsDecrypt(file: string, ring: string): Promise<{ ok: boolean; password?: string }> {
  try {
    const { stdout } = await promisify(execFile)(sops, ['decrypt', join(r.repo, r.clusterPath, file)], { env: { ...process.env, ...env(), GNUPGHOME: ring } });
    return { ok: true, password: (parse(stdout) as { stringData: { password: string } }).stringData.password };
  } catch (e) {
    if (process.env.DEBUG_SOPS) console.error(e);
    return { ok: false };
  }
}

const text = (p: string) => readFile(join(r.repo, p), 'utf8');
const fingerprintsOf = async (f: string) =>
  ((parse(await text(`${r.clusterPath}/${f}`)) as { sops: { pgp?: { fp: string }[] } }).sops.pgp ?? []).map((p) => p.fp).sort();
const rulePgp = async () => (parse(await text('.sops.yaml')) as { creation_rules: { pgp: string }[] }).creation_rules[0]?.pgp;
const pgpEntry = async () =>
  (parse(await text('fluxstrap.yaml')) as { clusters: Record<string, { sopsKey: { pgp: unknown } }> }).clusters[r.cluster]?.sopsKey.pgp;

before(async () => {
  requireTool('gpg');
  sops = findSops();
  home = await tempDir('pgp-rotate-home');
  gnupg = await tempDir('pgp-rotate-gnupg');
  const made = await exportedKeys(gnupg, home, { old: '', next: '', locked: 'correct horse' });
  for (const name of ['old', 'next', 'locked'] as const) {
    const ring = await tempDir(`pgp-rotate-${name}`);
    await gpgIn(ring, ['--import', made[name].file]);
    keys[name] = { ...made[name], ring };
  }
  keys.pub = { ...(await exportedPublicKey(gnupg, home, keys.next.fpr)), ring: '' };
  r = await fluxRepo();
  const init = cli(['init', '--cluster', r.cluster, '--repo', r.repo, '--sops-backend', 'pgp', '--pgp-key-file', keys.old.file]);
  assert.equal(init.code, 0, init.stderr);
  for (const name of SECRETS) {
    const file = join(r.repo, r.clusterPath, name);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, plain(name));
    const enc = cli(['encrypt', '--in-place', file]);
    assert.equal(enc.code, 0, enc.stderr);
  }
});
after(async () => {
  for (const ring of [gnupg, keys.old.ring, keys.next.ring, keys.locked.ring]) {
    await stopAgent(ring);
  }
});

void describe('keys rotate, OpenPGP cluster key: bad input changes nothing', () => {
  for (const [what, args, pattern, where] of [
    ['a public key alone', () => ['--pgp-key-file', keys.pub.file], /^error: OpenPGP key [0-9A-F]{40} is a public key/, () => keys.pub.file],
    [
      'a passphrase-protected key',
      () => ['--pgp-key-file', keys.locked.file],
      /^error: OpenPGP key [0-9A-F]{40} is protected by a passphrase/,
      () => keys.locked.file,
    ],
    ['the current key again', () => ['--pgp-key-file', keys.old.file], /^error: OpenPGP key [0-9A-F]{40} is the cluster's key already/, () => '--pgp-key-file'],
    ['no new key', () => [], /^error: the key of cluster "production" is OpenPGP \(sopsKey\.pgp\): give the new key/, () => '--pgp-key-file'],
    [
      '--pgp-key-file with --finish before any rotation',
      () => ['--finish', '--pgp-key-file', keys.next.file],
      /^error: --pgp-key-file starts a rotation/,
      () => '--pgp-key-file',
    ],
    [
      '--generate over an existing file',
      () => ['--generate', '--pgp-key-file', keys.next.file],
      /^error: refusing to overwrite an existing key file/,
      () => keys.next.file,
    ],
  ] as const) {
    void it(`refuses ${what}`, async () => {
      const before = await snapshot(r.repo);
      const res = rotate(...args());
      assertUserError(res, pattern, where());
      assert.deepEqual(await snapshot(r.repo), before);
    });
  }
});

void describe('keys rotate --generate when the cluster key is not in the rule', () => {
  void it('refuses before gpg makes a key: no key file, no new key in the keyring, nothing changed', async () => {
    const sopsYaml = join(r.repo, '.sops.yaml');
    const rule = await readFile(sopsYaml, 'utf8');
    await writeFile(sopsYaml, rule.replaceAll(keys.old.fpr, keys.locked.fpr));
    try {
      const before = await snapshot(r.repo);
      const secretKeys = async () => (await gpgIn(gnupg, ['--with-colons', '--list-secret-keys'])).stdout.match(/^sec:/gm)?.length;
      const held = await secretKeys();
      const out = join(home, 'never.asc');
      assertUserError(
        rotate('--generate', '--pgp-key-file', out),
        /^error: OpenPGP key [0-9A-F]{40} is not in the creation rule for clusters\/production/,
        '.sops.yaml',
      );
      assert.deepEqual(await snapshot(r.repo), before);
      assert.equal(await secretKeys(), held);
      await assert.rejects(readFile(out));
    } finally {
      await writeFile(sopsYaml, rule);
    }
  });
});

void describe('keys rotate, OpenPGP cluster key', () => {
  void it('--check shows the whole plan, exits 3 and changes nothing', async () => {
    const before = await snapshot(r.repo);
    const res = rotate('--pgp-key-file', keys.next.file, '--check', '--json');
    assert.equal(res.code, 3, res.stderr);
    const doc = JSON.parse(res.stdout) as { tasks: { kind: string; outcome: string; changes: unknown[] }[] };
    assert.deepEqual(
      doc.tasks.map((t) => [t.kind, t.outcome]),
      [
        ['pgp-key-config', 'would-change'],
        ['sops-recipients', 'would-change'],
        ['sops-files-rekeyed', 'would-change'],
      ],
    );
    assert.equal(doc.tasks[2]?.changes.length, SECRETS.length);
    assert.deepEqual(await snapshot(r.repo), before);
  });

  void it('phase 1: the rule and every file list both fingerprints, both keys open them with the real sops, values and MAC kept', async () => {
    const macs = await Promise.all(SECRETS.map(async (f) => (parse(await text(`${r.clusterPath}/${f}`)) as { sops: { mac: string } }).sops.mac));
    const res = rotate('--pgp-key-file', keys.next.file);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /next: fluxstrap bootstrap --cluster production --rotate-secrets \(the sops-gpg Secret then holds both keys\)/);
    assert.deepEqual(await pgpEntry(), { file: '~/next.asc', retiring: { file: '~/old.asc' } });
    assert.equal(await rulePgp(), `${keys.old.fpr},${keys.next.fpr}`);
    for (const [i, f] of SECRETS.entries()) {
      assert.deepEqual(await fingerprintsOf(f), [keys.old.fpr, keys.next.fpr].sort());
      assert.equal((parse(await text(`${r.clusterPath}/${f}`)) as { sops: { mac: string } }).sops.mac, macs[i]);
      for (const k of [keys.old, keys.next]) assert.deepEqual(await sopsDecrypt(f, k.ring), { ok: true, password: `s3cret-${f}` });
    }
  });

  void it('phase 1 again has nothing to do; a different new key is refused while the rotation is under way', async () => {
    const again = cli(['--json', 'keys', 'rotate', '--cluster', r.cluster]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { recap: { changed: number } }).recap.changed, 0);
    const before = await snapshot(r.repo);
    const other = rotate('--pgp-key-file', keys.locked.file);
    assert.notEqual(other.code, 0);
    assert.deepEqual(await snapshot(r.repo), before);
  });

  void it('--finish: only the new key opens the files (new data key), the old one fails; fluxstrap.yaml forgets the old key', async () => {
    const check = rotate('--finish', '--check');
    assert.equal(check.code, 3, check.stderr);
    const res = rotate('--finish');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /so that the sops-gpg Secret holds [0-9A-F]{40} only/);
    assert.deepEqual(await pgpEntry(), { file: '~/next.asc' });
    assert.equal(await rulePgp(), keys.next.fpr);
    for (const f of SECRETS) {
      assert.deepEqual(await fingerprintsOf(f), [keys.next.fpr]);
      assert.deepEqual(await sopsDecrypt(f, keys.next.ring), { ok: true, password: `s3cret-${f}` });
      assert.deepEqual(await sopsDecrypt(f, keys.old.ring), { ok: false });
    }
    const again = cli(['--json', 'keys', 'rotate', '--cluster', r.cluster, '--finish']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { recap: { changed: number } }).recap.changed, 0);
  });
});

void describe('keys rotate --generate, OpenPGP cluster key', () => {
  void it('writes a new key file (never over one), resumes after an interruption, and the new key opens the files after --finish', async () => {
    const out = join(home, 'generated', 'prod-3.asc');
    const before = await snapshot(r.repo);
    const check = rotate('--generate', '--pgp-key-file', out, '--check');
    assert.equal(check.code, 3, check.stderr);
    assert.match(check.stderr, /<NEW_PGP_FINGERPRINT>/);
    assert.deepEqual(await snapshot(r.repo), before);
    await assert.rejects(readFile(out), 'no key file under --check');
    const res = rotate('--generate', '--pgp-key-file', out);
    assert.equal(res.code, 0, res.stderr);
    const fpr = /wrote the new OpenPGP key ([0-9A-F]{40})/.exec(res.stderr)?.[1] ?? assert.fail(res.stderr);
    assert.match(await readFile(out, 'utf8'), /BEGIN PGP PRIVATE KEY BLOCK/);
    // Made by gpg in the user's keyring, as the Flux guide makes a key: sops here finds it there.
    assert.match((await gpgIn(gnupg, ['--with-colons', '--list-secret-keys', fpr])).stdout, /^uid:.*fluxstrap production \(flux secrets, /m);
    assert.deepEqual(await pgpEntry(), { file: '~/generated/prod-3.asc', retiring: { file: '~/next.asc' } });
    const ring = await tempDir('pgp-rotate-generated');
    await gpgIn(ring, ['--import', out]);
    try {
      for (const f of SECRETS) assert.deepEqual(await sopsDecrypt(f, ring), { ok: true, password: `s3cret-${f}` });
      // A run that stopped after fluxstrap.yaml recorded the rotation: the rule and a file still lack the new key.
      const rule = await text('.sops.yaml');
      await writeFile(join(r.repo, '.sops.yaml'), rule.replace(`,${fpr}`, ''));
      const resumed = rotate();
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.equal(await rulePgp(), `${keys.next.fpr},${fpr}`);
      const fin = rotate('--finish');
      assert.equal(fin.code, 0, fin.stderr);
      for (const f of SECRETS) {
        assert.deepEqual(await sopsDecrypt(f, ring), { ok: true, password: `s3cret-${f}` });
        assert.deepEqual(await sopsDecrypt(f, keys.next.ring), { ok: false });
      }
    } finally {
      await stopAgent(ring);
      await rm(ring, { recursive: true, force: true });
    }
  });
});
