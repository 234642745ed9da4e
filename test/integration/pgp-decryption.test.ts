// The Flux guide's main path with fluxstrap: an OpenPGP cluster key (`sopsKey.pgp`). init writes
// the fingerprint rule and the sops-gpg decryption patch, bootstrap stores the armored private key
// under <FINGERPRINT>.asc, and the real kustomize-controller imports it (with gpg) and applies the
// SOPS-encrypted Secret decrypted; status checks the Secret and that its key opens the files.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { commitAndPush, fleetConfig, fleetSuite, initArgs, writeTree } from '../cluster/fleet.ts';
import { runCliAsync } from '../helpers/cli.ts';
import { fluxGuideKey, newKeyring, stopAgent } from '../helpers/gpg.ts';

const TOKEN_ENV = 'FLUXSTRAP_PGP_TEST_TOKEN';
const FLUX_SYSTEM = { apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', namespace: 'flux-system', name: 'flux-system' };
const DB = { apiVersion: 'v1', kind: 'Secret', namespace: 'default', name: 'db' };
const SOPS_GPG = { apiVersion: 'v1', kind: 'Secret', namespace: 'flux-system', name: 'sops-gpg' };

void describe('an OpenPGP cluster key with the real kustomize-controller', { timeout: 15 * 60_000 }, () => {
  let gnupg: string;
  let fingerprint: string;
  let env: Record<string, string>;
  let url: string;

  const fluxstrap = (args: string[]) => runCliAsync(args, { cwd: s.dir, env });
  const ok = async (args: string[]) => {
    const r = await fluxstrap(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}\n${s.cluster.logTails(20)}`);
    return r;
  };

  const s = fleetSuite('pgp', {
    setup: async ({ cluster, home, dir }) => {
      gnupg = newKeyring(home);
      const keyFile = join(home, 'cluster.asc');
      fingerprint = await fluxGuideKey(gnupg, 'cluster0.yourdomain.com', keyFile);
      env = { [TOKEN_ENV]: cluster.git.password, GNUPGHOME: gnupg };
      url = cluster.git.httpUrl('pgp.git');
      const files: Record<string, string> = {
        'fluxstrap.yaml': fleetConfig(cluster, url, TOKEN_ENV),
        'clusters/test/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [apps]\n',
        'clusters/test/apps/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [db.sops.yaml]\n',
        'clusters/test/apps/db.sops.yaml': 'apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: default}\nstringData: {password: opened-with-pgp}\n',
      };
      writeTree(dir, files);
      await ok(initArgs(url, '--sops-backend', 'pgp', '--pgp-key-file', keyFile));
      // Encrypted for the fingerprint through the user's keyring (GNUPGHOME), as sops does.
      await ok(['encrypt', '--in-place', 'clusters/test/apps/db.sops.yaml']);
      await commitAndPush(cluster, dir, url, 'fleet');
    },
    cleanup: () => stopAgent(gnupg),
  });

  void it('bootstraps: sops-gpg holds <FINGERPRINT>.asc, and the Secret arrives decrypted', async () => {
    await ok(['bootstrap', '--timeout', '3m']);
    const ks = await s.kube.get(FLUX_SYSTEM);
    assert.deepEqual((ks?.spec as { decryption?: unknown }).decryption, { provider: 'sops', secretRef: { name: 'sops-gpg' } });
    const secret = await s.kube.get(SOPS_GPG);
    assert.deepEqual(Object.keys((secret?.data ?? {}) as Record<string, string>), [`${fingerprint}.asc`]);
    assert.equal(await s.kube.get({ ...SOPS_GPG, name: 'sops-age' }), undefined, 'no age Secret for a PGP cluster');
    const password = Buffer.from(((await s.kube.get(DB))?.data as Record<string, string> | undefined)?.password ?? '', 'base64').toString();
    assert.equal(password, 'opened-with-pgp');
  });

  void it('a second bootstrap changes nothing, and status finds the Secret and its key healthy', async () => {
    const again = await ok(['--json', 'bootstrap', '--timeout', '3m']);
    assert.equal((JSON.parse(again.stdout) as { recap: { changed: number } }).recap.changed, 0);
    const status = await fluxstrap(['--json', 'status']);
    const doc = JSON.parse(status.stdout) as { findings: { check: string; status: string; message: string }[] };
    assert.deepEqual(
      doc.findings.filter((f) => f.status !== 'ok'),
      [],
    );
    assert.match(
      doc.findings.find((f) => f.check === 'sops-gpg-secret')?.message ?? '',
      new RegExp(`holds PGP key ${fingerprint}, which opens 1 of the 1 SOPS file`),
    );
    assert.equal(status.code, 0);
  });

  void it('status fails when the sops-gpg Secret holds no .asc key', async () => {
    const live = await s.kube.get(SOPS_GPG);
    assert.ok(live);
    const replace = async (data: Record<string, string>) => {
      await s.cluster.kubectl(['delete', 'secret', '-n', 'flux-system', 'sops-gpg']);
      await s.kube.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sops-gpg', namespace: 'flux-system' }, data });
    };
    await replace({ 'sops.key': Buffer.from('not a key').toString('base64') });
    try {
      const status = await fluxstrap(['--json', 'status']);
      const doc = JSON.parse(status.stdout) as { findings: { check: string; status: string; message: string }[] };
      const f = doc.findings.find((x) => x.check === 'sops-gpg-secret');
      assert.equal(f?.status, 'fail');
      assert.match(f?.message ?? '', /has no key ending in \.asc/);
      assert.notEqual(status.code, 0);
    } finally {
      await replace(live.data as Record<string, string>);
    }
  });
});
