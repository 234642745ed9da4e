// Smoke test of the cluster harness against the real kube-apiserver, the real Flux
// controllers, the real sops and the harness's Git server: a SOPS/age-encrypted Secret pushed
// to Git comes out decrypted in the cluster, over HTTP basic auth and over SSH, and a wrong
// age key surfaces kustomize-controller's decryption error.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { commitAll, decryptedToken, ensureNamespace, plainSecret, pushHttp, readyFailed, syncDecrypting } from '../cluster/fleet.ts';
import { run } from '../cluster/proc.ts';
import { clusterForFile } from '../cluster/testing.ts';

const work = mkdtempSync(join(tmpdir(), 'fluxstrap-smoke-'));
after(() => rmSync(work, { recursive: true, force: true }));
// Only the controllers this file exercises: less to start on a shared machine.
const suite = clusterForFile({ flux: 'now', controllers: ['source-controller', 'kustomize-controller'] }, (c) => ensureNamespace(c, 'flux-system'));

async function ageKey(name: string): Promise<{ identity: string; recipient: string }> {
  const file = join(work, `${name}.agekey`);
  await run('age-keygen', ['-o', file]);
  const identity = readFileSync(file, 'utf8');
  const recipient = /# public key: (age1\w+)/.exec(identity)?.[1];
  assert.ok(recipient, `age-keygen wrote no public key to ${file}`);
  return { identity, recipient };
}

/** A repository with one sops-encrypted Secret at app/secret.yaml. */
async function repoWithEncryptedSecret(name: string, recipient: string, secretName: string, value: string): Promise<string> {
  const dir = join(work, name);
  mkdirSync(join(dir, 'app'), { recursive: true });
  const plain = join(work, `${name}-plain.yaml`);
  writeFileSync(plain, plainSecret(secretName, value));
  const encrypted = await run(suite.cluster.binaries.sops, ['--encrypt', '--age', recipient, '--encrypted-regex', '^(data|stringData)$', plain]);
  assert.doesNotMatch(encrypted, new RegExp(value), 'sops left the value in clear text');
  writeFileSync(join(dir, 'app', 'secret.yaml'), encrypted);
  await commitAll(dir, 'encrypted secret');
  return dir;
}

async function pushSsh(dir: string, repo: string): Promise<void> {
  const knownHosts = join(work, 'known_hosts');
  writeFileSync(knownHosts, `${suite.cluster.git.knownHosts}\n`);
  await run('git', ['-C', dir, 'push', '--quiet', suite.cluster.git.sshUrl(repo), 'main'], {
    env: {
      ...process.env,
      GIT_SSH_COMMAND: `ssh -i ${suite.cluster.git.sshPrivateKeyPath} -o IdentitiesOnly=yes -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes`,
    },
  });
}

/** Syncs ./app of url in namespace, decrypting with the age identity in a sops-age Secret. */
async function syncWithAge(namespace: string, name: string, url: string, auth: Record<string, string> | undefined, ageIdentity: string): Promise<void> {
  const sopsAge = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sops-age', namespace }, stringData: { 'age.agekey': ageIdentity } };
  await syncDecrypting(suite.cluster, { namespace, name, url, decryptionSecret: 'sops-age', objects: [sopsAge], ...(auth ? { auth } : {}) });
}

void describe('Flux decrypts SOPS secrets from the harness Git server', () => {
  void test('over HTTP basic auth', () =>
    suite.run(async () => {
      const key = await ageKey('http');
      const dir = await repoWithEncryptedSecret('repo-http', key.recipient, 'smoke-http', 'http-s3cret');
      await pushHttp(suite.cluster, dir, suite.cluster.git.httpUrl('smoke/http.git'));
      await syncWithAge('flux-system', 'smoke-http', suite.cluster.git.httpUrl('smoke/http.git'), undefined, key.identity);
      assert.equal(await decryptedToken(suite.cluster, 'smoke-http'), 'http-s3cret');
    }));

  void test('over SSH with a deploy key and known_hosts', () =>
    suite.run(async () => {
      const key = await ageKey('ssh');
      const dir = await repoWithEncryptedSecret('repo-ssh', key.recipient, 'smoke-ssh', 'ssh-s3cret');
      await pushSsh(dir, 'smoke/ssh.git');
      const auth = { identity: readFileSync(suite.cluster.git.sshPrivateKeyPath, 'utf8'), known_hosts: suite.cluster.git.knownHosts };
      await syncWithAge('flux-system', 'smoke-ssh', suite.cluster.git.sshUrl('smoke/ssh.git'), auth, key.identity);
      assert.equal(await decryptedToken(suite.cluster, 'smoke-ssh'), 'ssh-s3cret');
    }));

  void test('a wrong age key surfaces the decryption error on the Kustomization', () =>
    suite.run(async () => {
      const [right, wrong] = await Promise.all([ageKey('right'), ageKey('wrong')]);
      const dir = await repoWithEncryptedSecret('repo-wrong', right.recipient, 'smoke-wrong', 'never-decrypted');
      await pushHttp(suite.cluster, dir, suite.cluster.git.httpUrl('smoke/wrong.git'));
      await ensureNamespace(suite.cluster, 'smoke-wrong');
      await syncWithAge('smoke-wrong', 'smoke-wrong', suite.cluster.git.httpUrl('smoke/wrong.git'), undefined, wrong.identity);
      // The source is Ready before the Kustomization exists, so its first failure is the build.
      const ready = await readyFailed(suite.cluster, 'smoke-wrong', 'smoke-wrong');
      assert.equal(ready.reason, 'BuildFailed', ready.message);
      assert.match(ready.message ?? '', /decrypt/i);
      assert.match(ready.message ?? '', /age/i);
      console.log(`# kustomize-controller reported: ${ready.message ?? ''}`);
      const leaked = await suite.cluster.kubectl(['get', 'secret', '-n', 'default', 'smoke-wrong', '--ignore-not-found']);
      assert.equal(leaked.trim(), '', 'a Secret that could not be decrypted must not be applied');
    }));
});
