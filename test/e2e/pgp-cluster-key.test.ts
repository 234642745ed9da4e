import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { gitEnv } from '../../src/adapters/git.ts';
import { startGitServer } from '../cluster/git-server.ts';
import type { GitServer } from '../cluster/git-server.ts';
import { assertUserError, runCli, runCliAsync } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { exportedKeys, exportedPublicKey, pgpCliEnv, stopAgent } from '../helpers/gpg.ts';
import { requireTool, runTool } from '../helpers/tools.ts';
import { findSops } from '../unit/sops/helpers.ts';

/**
 * An OpenPGP cluster key (`sopsKey.pgp`), with keys made by the real gpg: init writes the
 * fingerprint rule, the sops-gpg decryption patch and the key's entry; the keys kustomize-controller
 * could not use are refused at init and at bootstrap's preflight (against the harness Git server
 * and an API that refuses connections), one line each, nothing changed.
 */

const TOKEN_ENV = 'FLUXSTRAP_TEST_GIT_TOKEN';
let home: string;
let gnupg: string;
let server: GitServer;
let kubeconfig: string;
/** Unprotected private key (what the cluster can use), a second one, a locked one, a public one. */
const keys = { plain: { fpr: '', file: '' }, other: { fpr: '', file: '' }, locked: { fpr: '', file: '' }, pub: { fpr: '', file: '' } };

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => pgpCliEnv(home, gnupg, extra);
before(async () => {
  requireTool('gpg');
  requireTool('kubectl');
  home = await tempDir('pgp-home');
  gnupg = await tempDir('pgp-gnupg');
  Object.assign(keys, await exportedKeys(gnupg, home, { plain: '', other: '', locked: 'correct horse' }));
  keys.pub = await exportedPublicKey(gnupg, home, keys.plain.fpr);
  server = await startGitServer(await tempDir('pgp-git'));
  kubeconfig = join(home, 'kubeconfig');
  await writeFile(kubeconfig, DEAD_KUBECONFIG);
});
after(async () => {
  await server.stop();
  await stopAgent(gnupg);
});

const init = (r: FluxRepo, ...args: string[]) =>
  runCli(['init', '--cluster', r.cluster, '--repo', r.repo, '--sops-backend', 'pgp', ...args], { cwd: home, env: env() });

void describe('init --sops-backend pgp --pgp-key-file', () => {
  void it('writes the fingerprint rule, the sops-gpg decryption patch and sopsKey.pgp.file', async () => {
    const r = await fluxRepo({ gotkSync: 'pristine' });
    const run = init(r, '--pgp-key-file', keys.plain.file);
    assert.equal(run.code, 0, run.stderr);
    const file = (p: string) => readFile(join(r.repo, p), 'utf8');
    const rules = (parse(await file('.sops.yaml')) as { creation_rules: Record<string, unknown>[] }).creation_rules;
    assert.equal(rules[0]?.pgp, keys.plain.fpr);
    assert.equal(rules[0]?.age, undefined);
    const config = parse(await file('fluxstrap.yaml')) as { clusters: Record<string, { sopsKey?: unknown; ageKey?: unknown }> };
    // A file under the home folder is written from it, so the committed entry works for teammates too.
    assert.deepEqual(config.clusters[r.cluster]?.sopsKey, { pgp: { file: '~/plain.asc' } });
    assert.equal(config.clusters[r.cluster]?.ageKey, undefined);
    // The public key only is exported beside the cluster; the private one never enters the repository.
    assert.match(await file(`${r.clusterPath}/.sops.pub.asc`), /BEGIN PGP PUBLIC KEY BLOCK/);
    const objs = parseAllDocuments((await runTool('kubectl', ['kustomize', join(r.repo, r.clusterPath, 'flux-system')])).stdout).map(
      (d) => d.toJSON() as { kind: string; metadata: { name: string }; spec?: { decryption?: unknown } },
    );
    assert.deepEqual(objs.find((o) => o.kind === 'Kustomization' && o.metadata.name === 'flux-system')?.spec?.decryption, {
      provider: 'sops',
      secretRef: { name: 'sops-gpg' },
    });
    // Run again: nothing to do.
    const again = init(r, '--pgp-key-file', keys.plain.file);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /nothing to do/);
  });

  for (const [what, key, text] of [
    ['a passphrase-protected key', 'locked', /^error: OpenPGP key [0-9A-F]{40} is protected by a passphrase/],
    ['a public key alone', 'pub', /^error: OpenPGP key [0-9A-F]{40} is a public key: kustomize-controller needs the private key/],
  ] as const) {
    void it(`refuses ${what}, changing nothing`, async () => {
      const r = await fluxRepo({ gotkSync: 'pristine' });
      const before = await snapshot(r.repo);
      const run = init(r, '--pgp-key-file', keys[key].file);
      assertUserError(run, text, keys[key].file);
      assert.deepEqual(await snapshot(r.repo), before);
    });
  }

  void it('keys rotate of a PGP cluster without a new key asks for one, changing nothing (test/e2e/keys-rotate-pgp.test.ts rotates)', async () => {
    const r = await fluxRepo({ gotkSync: 'pristine' });
    assert.equal(init(r, '--pgp-key-file', keys.plain.file).code, 0);
    const before = await snapshot(r.repo);
    const run = runCli(['keys', 'rotate', '--cluster', r.cluster, '--repo', r.repo], { cwd: home, env: env() });
    assertUserError(run, /^error: the key of cluster "production" is OpenPGP \(sopsKey\.pgp\): give the new key/, '--pgp-key-file');
    assert.match(run.stderr, /hint: pass --pgp-key-file FILE .*, or --generate/);
    assert.deepEqual(await snapshot(r.repo), before);
  });

  void it('refuses --pgp-key-file without --sops-backend pgp, and --decryption controller with it', async () => {
    const r = await fluxRepo({ gotkSync: 'pristine' });
    assertUserError(
      runCli(['init', '--cluster', r.cluster, '--repo', r.repo, '--pgp-key-file', keys.plain.file], { cwd: home, env: env() }),
      /^error: --pgp-key-file is the key of --sops-backend pgp/,
      '--pgp-key-file',
    );
    assertUserError(
      init(r, '--pgp-key-file', keys.plain.file, '--decryption', 'controller'),
      /^error: --decryption controller names an age Secret/,
      '--decryption',
    );
  });
});

void describe('bootstrap preflight with a PGP cluster key', () => {
  /** init for `plain`, a Secret encrypted for it by the real sops, pushed; the checkout's sopsKey then set to `use`. */
  async function pushed(name: string, use: Record<string, string>): Promise<FluxRepo> {
    const r = await fluxRepo({ cluster: name, gotkSync: 'pristine' });
    const url = server.httpUrl(`${name}.git`);
    const run = init(
      r,
      '--pgp-key-file',
      keys.plain.file,
      '--git-url',
      url,
      '--branch',
      'main',
      '--git-token-env',
      TOKEN_ENV,
      '--git-username',
      server.username,
    );
    assert.equal(run.code, 0, run.stderr);
    const secret = join(r.repo, r.clusterPath, 'db.sops.yaml');
    await writeFile(secret, 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\nstringData:\n  password: hunter2\n');
    execFileSync(findSops(), ['--encrypt', '--in-place', secret], { cwd: r.repo, env: { ...process.env, GNUPGHOME: gnupg }, stdio: 'ignore' });
    const root = join(r.repo, r.clusterPath, 'kustomization.yaml');
    await writeFile(root, `${await readFile(root, 'utf8')}  - db.sops.yaml\n`);
    await r.git('add', '-A');
    await r.git('commit', '--quiet', '-m', 'init');
    await runTool('git', ['push', '--quiet', url, 'HEAD:main'], {
      cwd: r.repo,
      env: gitEnv({ kind: 'basic', username: server.username, password: server.password }),
    });
    const configFile = join(r.repo, 'fluxstrap.yaml');
    const config = parse(await readFile(configFile, 'utf8')) as { clusters: Record<string, { sopsKey?: unknown }> };
    const entry = config.clusters[name];
    if (entry) entry.sopsKey = { pgp: use };
    await writeFile(configFile, JSON.stringify(config));
    return r;
  }

  async function preflight(r: FluxRepo): Promise<{ message: string; hint: string }> {
    const run = await runCliAsync(['bootstrap', '--check', '--json', '--cluster', r.cluster], {
      cwd: r.repo,
      env: env({ KUBECONFIG: kubeconfig, [TOKEN_ENV]: server.password }),
    });
    assert.equal(run.code, 1, run.stderr);
    const doc = JSON.parse(run.stdout) as { tasks: { kind: string; outcome: string; error?: { message: string; hint?: string } }[] };
    const task = doc.tasks[0];
    assert.deepEqual([task?.kind, task?.outcome], ['preflight', 'failed'], run.stdout);
    return { message: task?.error?.message ?? '', hint: task?.error?.hint ?? '' };
  }

  void it("the key that is the rule's recipient opens the file: only the dead API is a problem", async () => {
    const r = await pushed('pgpok', { file: keys.plain.file });
    const { message } = await preflight(r);
    // The API is down on purpose (the fixture's gotk-sync.yaml names another remote): nothing about the key.
    assert.match(message, /ECONNREFUSED/, message);
    assert.doesNotMatch(message, /PGP|\.sops\.yaml|SOPS file|gpg|passphrase/, message);
  });

  void it('the keyring fingerprint works the same way', async () => {
    const r = await pushed('pgpring', { fingerprint: keys.plain.fpr.toLowerCase() });
    const { message } = await preflight(r);
    assert.match(message, /ECONNREFUSED/, message);
    assert.doesNotMatch(message, /PGP|\.sops\.yaml|SOPS file|gpg|passphrase/, message);
  });

  void it('refuses a key that is not a recipient of the rule and opens none of the files', async () => {
    const r = await pushed('pgpother', { file: keys.other.file });
    const { message, hint } = await preflight(r);
    assert.match(
      message,
      new RegExp(`the \\.sops\\.yaml rule at \\.sops\\.yaml:\\d+ \\(for clusters/pgpother/db\\.sops\\.yaml\\) does not list the PGP key ${keys.other.fpr}`),
    );
    assert.match(message, new RegExp(`the PGP key ${keys.other.fpr} cannot open 1 of the 1 SOPS file\\(s\\)`));
    assert.match(hint, /sopsKey\.pgp/);
  });

  void it('refuses a passphrase-protected key from the keyring, saying why', async () => {
    const r = await pushed('pgplocked', { fingerprint: keys.locked.fpr });
    const { message, hint } = await preflight(r);
    assert.match(
      message,
      new RegExp(
        `gpg exports no private key ${keys.locked.fpr} \\(a key protected by a passphrase cannot be exported here\\) \\(sopsKey\\.pgp\\.fingerprint\\)`,
      ),
    );
    assert.match(hint, /kustomize-controller cannot type a passphrase/);
  });
});
