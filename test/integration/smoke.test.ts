// Smoke test of the cluster harness against the real kube-apiserver, the real Flux
// controllers, the real sops and the harness's Git server: a SOPS/age-encrypted Secret pushed
// to Git comes out decrypted in the cluster, over HTTP basic auth and over SSH, and a wrong
// age key surfaces kustomize-controller's decryption error.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { condition } from '../cluster/kube.ts';
import { run, waitFor } from '../cluster/proc.ts';
import { clusterForFile } from '../cluster/testing.ts';

const work = mkdtempSync(join(tmpdir(), 'fluxstrap-smoke-'));
after(() => rmSync(work, { recursive: true, force: true }));
// Only the controllers this file exercises: less to start on a shared machine.
const suite = clusterForFile({ flux: 'now', controllers: ['source-controller', 'kustomize-controller'] }, () => ensureNamespace('flux-system'));

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
  writeFileSync(
    plain,
    [
      'apiVersion: v1',
      'kind: Secret',
      'metadata:',
      `  name: ${secretName}`,
      '  namespace: default',
      'type: Opaque',
      'stringData:',
      `  token: ${value}`,
      '',
    ].join('\n'),
  );
  const encrypted = await run(suite.cluster.binaries.sops, ['--encrypt', '--age', recipient, '--encrypted-regex', '^(data|stringData)$', plain]);
  assert.doesNotMatch(encrypted, new RegExp(value), 'sops left the value in clear text');
  writeFileSync(join(dir, 'app', 'secret.yaml'), encrypted);
  const git = (...args: string[]): Promise<string> => run('git', ['-C', dir, ...args]);
  await git('init', '--quiet', '--initial-branch=main');
  await git('add', '.');
  await git('-c', 'user.name=fluxstrap-test', '-c', 'user.email=test@fluxstrap.invalid', 'commit', '--quiet', '-m', 'encrypted secret');
  return dir;
}

async function pushHttp(dir: string, repo: string): Promise<void> {
  const auth = Buffer.from(`${suite.cluster.git.username}:${suite.cluster.git.password}`).toString('base64');
  await run('git', ['-C', dir, '-c', `http.extraHeader=Authorization: Basic ${auth}`, 'push', '--quiet', suite.cluster.git.httpUrl(repo), 'main']);
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

interface FluxSetup {
  namespace: string;
  name: string;
  url: string;
  /** Data of the Git credentials Secret. */
  auth: Record<string, string>;
  ageIdentity: string;
}

/**
 * Applies a Git credentials Secret, the sops-age Secret and a GitRepository, waits for the
 * artifact (a Kustomization created earlier would back off for 30s), then a decrypting
 * Kustomization.
 */
async function applyFluxObjects(s: FluxSetup): Promise<void> {
  const secret = (name: string, data: Record<string, string>): object => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: s.namespace },
    stringData: data,
  });
  const apply = (objects: object[]): Promise<string> =>
    suite.cluster.kubectl(['apply', '--server-side', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n---\n'));
  await apply([
    secret(`${s.name}-git`, s.auth),
    secret('sops-age', { 'age.agekey': s.ageIdentity }),
    {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'GitRepository',
      metadata: { name: s.name, namespace: s.namespace },
      spec: { url: s.url, interval: '1m', timeout: '20s', ref: { branch: 'main' }, secretRef: { name: `${s.name}-git` } },
    },
  ]);
  await waitFor(
    `GitRepository ${s.namespace}/${s.name} Ready`,
    async () => {
      const ready = condition(await fluxObject('gitrepository', s.namespace, s.name), 'Ready');
      return ready?.status === 'True' ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  await apply([
    {
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name: s.name, namespace: s.namespace },
      spec: {
        interval: '1m',
        retryInterval: '5s',
        path: './app',
        prune: true,
        timeout: '30s',
        sourceRef: { kind: 'GitRepository', name: s.name },
        decryption: { provider: 'sops', secretRef: { name: 'sops-age' } },
      },
    },
  ]);
}

type FluxObject = Parameters<typeof condition>[0];

async function fluxObject(kind: string, namespace: string, name: string): Promise<FluxObject> {
  return JSON.parse(await suite.cluster.kubectl(['get', kind, '-n', namespace, name, '-o', 'json'])) as FluxObject;
}

async function ensureNamespace(name: string): Promise<void> {
  await suite.cluster.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
}

async function decryptedToken(secretName: string): Promise<string> {
  return waitFor(
    `Secret default/${secretName} applied by kustomize-controller`,
    async () => {
      const out = await suite.cluster.kubectl(['get', 'secret', '-n', 'default', secretName, '-o', 'json', '--ignore-not-found']);
      if (out.trim() === '') return undefined;
      const token = (JSON.parse(out) as { data?: { token?: string } }).data?.token;
      return token === undefined ? undefined : Buffer.from(token, 'base64').toString('utf8');
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

void describe('Flux decrypts SOPS secrets from the harness Git server', () => {
  void test('over HTTP basic auth', () =>
    suite.run(async () => {
      const key = await ageKey('http');
      const dir = await repoWithEncryptedSecret('repo-http', key.recipient, 'smoke-http', 'http-s3cret');
      await pushHttp(dir, 'smoke/http.git');
      await applyFluxObjects({
        namespace: 'flux-system',
        name: 'smoke-http',
        url: suite.cluster.git.httpUrl('smoke/http.git'),
        auth: { username: suite.cluster.git.username, password: suite.cluster.git.password },
        ageIdentity: key.identity,
      });
      assert.equal(await decryptedToken('smoke-http'), 'http-s3cret');
    }));

  void test('over SSH with a deploy key and known_hosts', () =>
    suite.run(async () => {
      const key = await ageKey('ssh');
      const dir = await repoWithEncryptedSecret('repo-ssh', key.recipient, 'smoke-ssh', 'ssh-s3cret');
      await pushSsh(dir, 'smoke/ssh.git');
      await applyFluxObjects({
        namespace: 'flux-system',
        name: 'smoke-ssh',
        url: suite.cluster.git.sshUrl('smoke/ssh.git'),
        auth: { identity: readFileSync(suite.cluster.git.sshPrivateKeyPath, 'utf8'), known_hosts: suite.cluster.git.knownHosts },
        ageIdentity: key.identity,
      });
      assert.equal(await decryptedToken('smoke-ssh'), 'ssh-s3cret');
    }));

  void test('a wrong age key surfaces the decryption error on the Kustomization', () =>
    suite.run(async () => {
      const [right, wrong] = await Promise.all([ageKey('right'), ageKey('wrong')]);
      const dir = await repoWithEncryptedSecret('repo-wrong', right.recipient, 'smoke-wrong', 'never-decrypted');
      await pushHttp(dir, 'smoke/wrong.git');
      await ensureNamespace('smoke-wrong');
      await applyFluxObjects({
        namespace: 'smoke-wrong',
        name: 'smoke-wrong',
        url: suite.cluster.git.httpUrl('smoke/wrong.git'),
        auth: { username: suite.cluster.git.username, password: suite.cluster.git.password },
        ageIdentity: wrong.identity,
      });
      // The source is Ready before the Kustomization exists, so its first failure is the build.
      const ready = await waitFor(
        'Kustomization smoke-wrong/smoke-wrong Ready=False',
        async () => {
          const c = condition(await fluxObject('kustomization', 'smoke-wrong', 'smoke-wrong'), 'Ready');
          return c?.status === 'False' && c.reason !== 'Progressing' ? c : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 500 },
      );
      assert.equal(ready.reason, 'BuildFailed', ready.message);
      assert.match(ready.message ?? '', /decrypt/i);
      assert.match(ready.message ?? '', /age/i);
      console.log(`# kustomize-controller reported: ${ready.message ?? ''}`);
      const leaked = await suite.cluster.kubectl(['get', 'secret', '-n', 'default', 'smoke-wrong', '--ignore-not-found']);
      assert.equal(leaked.trim(), '', 'a Secret that could not be decrypted must not be applied');
    }));
});
