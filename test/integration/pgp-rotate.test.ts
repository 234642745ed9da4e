// `keys rotate --generate` of an OpenPGP cluster key against the real kustomize-controller (it imports the
// sops-gpg Secret's keys with gpg on every reconcile): after phase 1 and `bootstrap --rotate-secrets`
// the Secret holds both <FINGERPRINT>.asc entries and the SOPS Secret is decrypted again; after
// --finish it holds the new key only, and the files, now encrypted for the new key alone, still decrypt.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { commitAndPush, fleetConfig, fleetSuite, initArgs, writeTree } from '../cluster/fleet.ts';
import { runCliAsync } from '../helpers/cli.ts';
import { fluxGuideKey, newKeyring, stopAgent } from '../helpers/gpg.ts';

const TOKEN_ENV = 'FLUXSTRAP_PGP_ROTATE_TOKEN';
const FLUX_SYSTEM = { apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', namespace: 'flux-system', name: 'flux-system' };
const DB = { apiVersion: 'v1', kind: 'Secret', namespace: 'default', name: 'db' };
const SOPS_GPG = { apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-gpg' };
const DB_FILE = 'clusters/test/apps/db.sops.yaml';

void describe('keys rotate of an OpenPGP cluster key with the real kustomize-controller', { timeout: 20 * 60_000 }, () => {
  let gnupg: string;
  let env: Record<string, string>;
  let url: string;
  const fpr = { old: '', next: '' };

  const fluxstrap = (args: string[]) => runCliAsync(args, { cwd: s.dir, env });
  const ok = async (args: string[]) => {
    const r = await fluxstrap(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}\n${s.cluster.logTails(20)}`);
    return r;
  };
  const push = (message: string) => commitAndPush(s.cluster, s.dir, url, message);
  /** The SOPS Secret deleted, then bootstrap: it is back only if kustomize-controller decrypted the file again. */
  const bootstrapDecrypts = async (args: string[]) => {
    await s.cluster.kubectl(['delete', 'secret', '-n', 'default', 'db', '--ignore-not-found']);
    await ok(['bootstrap', '--timeout', '4m', ...args]);
    const ks = await s.kube.get(FLUX_SYSTEM);
    assert.equal(((ks?.status as { conditions?: { type: string; status: string }[] }).conditions ?? []).find((c) => c.type === 'Ready')?.status, 'True');
    const password = Buffer.from(((await s.kube.get(DB))?.data as Record<string, string> | undefined)?.password ?? '', 'base64').toString();
    assert.equal(password, 'rotated-with-pgp');
  };
  const secretKeys = async () => Object.keys((await s.kube.get(SOPS_GPG))?.data ?? {}).sort();
  const fileFingerprints = async () => {
    const { readFile } = await import('node:fs/promises');
    return ((parse(await readFile(join(s.dir, DB_FILE), 'utf8')) as { sops: { pgp?: { fp: string }[] } }).sops.pgp ?? []).map((p) => p.fp).sort();
  };

  const s = fleetSuite('pgp-rotate', {
    setup: async ({ cluster, home, dir }) => {
      gnupg = newKeyring(home);
      fpr.old = await fluxGuideKey(gnupg, 'old', join(home, 'old.asc'));
      env = { [TOKEN_ENV]: cluster.git.password, GNUPGHOME: gnupg, HOME: home };
      url = cluster.git.httpUrl('pgp-rotate.git');
      const files: Record<string, string> = {
        'fluxstrap.yaml': fleetConfig(cluster, url, TOKEN_ENV),
        'clusters/test/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [apps]\n',
        'clusters/test/apps/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [db.sops.yaml]\n',
        [DB_FILE]: 'apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: default}\nstringData: {password: rotated-with-pgp}\n',
      };
      writeTree(dir, files);
      await ok(initArgs(url, '--sops-backend', 'pgp', '--pgp-key-file', join(home, 'old.asc')));
      await ok(['encrypt', '--in-place', DB_FILE]);
      await push('fleet');
    },
    cleanup: () => stopAgent(gnupg),
  });

  void it('bootstraps with the old key', async () => {
    await bootstrapDecrypts([]);
    assert.deepEqual(await secretKeys(), [`${fpr.old}.asc`]);
  });

  void it('phase 1: the Secret holds both keys and kustomize-controller decrypts the files listing both', async () => {
    // The new key made by gpg itself (--generate), as the Flux guide makes one.
    const rotated = await ok(['keys', 'rotate', '--cluster', 'test', '--generate', '--pgp-key-file', join(s.home, 'next.asc')]);
    fpr.next = /wrote the new OpenPGP key ([0-9A-F]{40})/.exec(rotated.stderr)?.[1] ?? assert.fail(rotated.stderr);
    assert.deepEqual(await fileFingerprints(), [fpr.old, fpr.next].sort());
    await push('keys rotate: phase 1');
    await bootstrapDecrypts(['--rotate-secrets']);
    assert.deepEqual(await secretKeys(), [`${fpr.old}.asc`, `${fpr.next}.asc`].sort());
  });

  void it('--finish: the Secret holds the new key only and kustomize-controller decrypts files encrypted for it alone', async () => {
    await ok(['keys', 'rotate', '--cluster', 'test', '--finish']);
    assert.deepEqual(await fileFingerprints(), [fpr.next]);
    await push('keys rotate: phase 2');
    await bootstrapDecrypts(['--rotate-secrets']);
    assert.deepEqual(await secretKeys(), [`${fpr.next}.asc`]);
    const status = await fluxstrap(['--json', 'status']);
    const doc = JSON.parse(status.stdout) as { findings: { check: string; status: string; message: string }[] };
    assert.deepEqual(
      doc.findings.filter((f) => f.status !== 'ok'),
      [],
    );
  });
});
