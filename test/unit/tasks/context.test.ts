import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { generateIdentity } from 'age-encryption';
import { z } from 'zod';
import type { KubeAdapter } from '../../../src/adapters/kube/port.ts';
import type { ResolvedCluster } from '../../../src/cluster/config.ts';
import { runTasks } from '../../../src/core/engine.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';
import type { TaskInstance } from '../../../src/core/task.ts';
import { generateSshKey } from '../../../src/keys/ssh.ts';
import { createTaskContext, readAgeIdentities } from '../../../src/tasks/context.ts';
import type { ContextOptions, TaskContext } from '../../../src/tasks/context.ts';
import type { BootstrapSource, SourceRun } from '../../../src/tasks/source.ts';
import { ageKeyPair } from '../../helpers/age.ts';
import { tempDir } from '../../helpers/tmp.ts';

/** The context kinds receive: lazy, memoized handles, and secrets only from where the config says. */

let dir: string;
let secret: string;
let recipient: string;

const cluster = (over: Partial<ResolvedCluster> = {}): ResolvedCluster => ({
  name: 'lab',
  repoDir: '/repo',
  path: 'clusters/lab',
  kube: { context: 'lab-admin' },
  git: { url: 'https://git.example/lab.git', branch: 'main', auth: { type: 'https', username: 'git', passwordEnv: 'LAB_TOKEN' }, provider: 'generic' },
  ageKey: { type: 'env', env: 'LAB_AGE_KEY' },
  ...over,
});

/** A context for cluster "lab" with no secrets in its environment; a test overrides what it is about. */
const contextWith = (over: Partial<ContextOptions> = {}): TaskContext =>
  createTaskContext({ cluster: cluster(), rotateSecrets: false, timeoutMs: 1000, log: () => undefined, env: {}, ...over });

void describe('task context', () => {
  before(async () => {
    dir = await tempDir('ctx');
    ({ identity: secret, recipient } = await ageKeyPair());
  });

  void it('derives the paths of the cluster', () => {
    const ctx = contextWith();
    assert.deepEqual(ctx.paths, {
      repo: '/repo',
      cluster: join('/repo', 'clusters', 'lab'),
      fluxSystem: join('/repo', 'clusters', 'lab', 'flux-system'),
      sopsConfig: join('/repo', '.sops.yaml'),
    });
  });

  void it('connects to the cluster on first use only, once', async () => {
    let connects = 0;
    const fake = { server: 'https://127.0.0.1:6443', context: 'lab-admin' } as KubeAdapter;
    const ctx = contextWith({
      connect: (c) => {
        connects++;
        assert.equal(c.kube.context, 'lab-admin');
        return Promise.resolve(fake);
      },
    });
    assert.equal(connects, 0);
    assert.equal(await ctx.kube(), fake);
    assert.equal(await ctx.kube(), fake);
    assert.equal(connects, 1);
  });

  void it('reads the Git token from the named variable, and says which one is missing', async () => {
    const ok = contextWith({ timeoutMs: 1, env: { LAB_TOKEN: 't0ken' } });
    assert.deepEqual(await ok.gitCredentials(), { type: 'https', username: 'git', password: 't0ken' });
    const missing = contextWith({ timeoutMs: 1 });
    await assert.rejects(missing.gitCredentials(), (e: unknown) => e instanceof FluxstrapError && /LAB_TOKEN/.test(e.message) && !e.message.includes('t0ken'));
  });

  void it('reads SSH credentials from the key and known_hosts files', async () => {
    await writeFile(join(dir, 'id'), 'PRIVATE\n', { mode: 0o600 });
    await writeFile(join(dir, 'kh'), 'git.example ssh-ed25519 AAAA\n');
    const ctx = contextWith({
      cluster: cluster({ git: { branch: 'main', auth: { type: 'ssh', keyFile: join(dir, 'id'), knownHostsFile: join(dir, 'kh') }, provider: 'generic' } }),
      timeoutMs: 1,
    });
    assert.deepEqual(await ctx.gitCredentials(), { type: 'ssh', identity: 'PRIVATE\n', knownHosts: 'git.example ssh-ed25519 AAAA\n' });
  });

  void it('git.auth.sopsFile: flag > environment > the encrypted Secret, opened with the cluster key', async () => {
    const { encryptGitSecret } = await import('../../../src/flux/git-secret.ts');
    const file = join(dir, 'git-credentials.sops.yaml');
    await writeFile(file, await encryptGitSecret({ type: 'https', username: 'me', password: 'from-file' }, [recipient], 'git-credentials.sops.yaml'));
    const withFile = (auth: ResolvedCluster['git']['auth']) => cluster({ repoDir: dir, git: { branch: 'main', auth, provider: 'generic' } });
    const ctx = (auth: ResolvedCluster['git']['auth'], env: NodeJS.ProcessEnv) =>
      contextWith({ cluster: withFile(auth), timeoutMs: 1, env: { LAB_AGE_KEY: secret, ...env } });
    const https = { type: 'https' as const, username: 'git', passwordEnv: 'LAB_TOKEN', sopsFile: file };
    assert.deepEqual(await ctx(https, { LAB_TOKEN: 'from-env' }).gitCredentials(), { type: 'https', username: 'git', password: 'from-env' });
    assert.deepEqual(await ctx(https, {}).gitCredentials(), { type: 'https', username: 'me', password: 'from-file' });
    assert.deepEqual(await ctx({ type: 'none', sopsFile: file }, {}).gitCredentials(), { type: 'https', username: 'me', password: 'from-file' });
    const ssh = { type: 'ssh' as const, keyFile: join(dir, 'no-such-key'), knownHostsFile: join(dir, 'kh'), sopsFile: file };
    assert.deepEqual(await ctx(ssh, {}).gitCredentials(), { type: 'https', username: 'me', password: 'from-file' });
    const stranger = await generateIdentity();
    await assert.rejects(
      contextWith({
        cluster: withFile(https),
        timeoutMs: 1,
        env: { LAB_AGE_KEY: stranger },
      }).gitCredentials(),
      (e: unknown) => e instanceof FluxstrapError && e.location?.file === 'git-credentials.sops.yaml' && !e.message.includes('from-file'),
    );
  });

  void it('reads age identities from a variable or a file, deriving their recipients', async () => {
    const fromEnv = await readAgeIdentities({ type: 'env', env: 'K' }, { K: `# comment\n${secret}\n` });
    assert.deepEqual(
      fromEnv.map((i) => [i.recipient, i.source]),
      [[recipient, '$K']],
    );
    await writeFile(join(dir, 'keys.txt'), `${secret}\n`, { mode: 0o600 });
    const fromFile = await readAgeIdentities({ type: 'file', file: join(dir, 'keys.txt') }, {});
    assert.equal(fromFile[0]?.recipient, recipient);
    await assert.rejects(readAgeIdentities({ type: 'env', env: 'K' }, {}), (e: unknown) => e instanceof FluxstrapError && e.code === 'E_NOT_FOUND');
    await assert.rejects(
      readAgeIdentities({ type: 'file', file: join(dir, 'none.txt') }, {}),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_NOT_FOUND',
    );
  });

  void it("ageKey.cmd: the command's output, asked once per listed recipient with SOPS_AGE_RECIPIENT set", async () => {
    const other = await generateIdentity();
    const cmd = join(dir, 'key-cmd.sh');
    // Answers only for the recipient it is asked for; with nothing asked it prints both.
    await writeFile(
      cmd,
      `#!/bin/sh\nif [ -z "$SOPS_AGE_RECIPIENT" ]; then echo "${other}"; echo "${secret}"; elif [ "$SOPS_AGE_RECIPIENT" = "${recipient}" ]; then echo "${secret}"; fi\n`,
      { mode: 0o700 },
    );
    assert.equal((await readAgeIdentities({ type: 'cmd', cmd }, {})).length, 2);
    const asked = await readAgeIdentities({ type: 'cmd', cmd, publicKeys: [recipient] }, {});
    assert.deepEqual(
      asked.map((i) => [i.recipient, i.source]),
      [[recipient, 'ageKey.cmd']],
    );
    await assert.rejects(
      readAgeIdentities({ type: 'cmd', cmd: join(dir, 'missing-cmd') }, {}),
      (e: unknown) => e instanceof FluxstrapError && e.location?.field === 'ageKey.cmd' && /^ageKey\.cmd \(.*missing-cmd\) failed$/.test(e.message),
    );
  });

  void it('with publicKeys, only the identities listed (a key file shared between clusters), each of which must be there', async () => {
    const other = await ageKeyPair();
    const shared = join(dir, 'shared.txt');
    await writeFile(shared, `${other.identity}\n${secret}\n`, { mode: 0o600 });
    assert.equal((await readAgeIdentities({ type: 'file', file: shared }, {})).length, 2);
    const mine = await readAgeIdentities({ type: 'file', file: shared, publicKeys: [recipient] }, {});
    assert.deepEqual(
      mine.map((i) => i.recipient),
      [recipient],
    );
    const absent = 'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq';
    await assert.rejects(
      readAgeIdentities({ type: 'file', file: shared, publicKeys: [recipient, absent] }, {}),
      (e: unknown) =>
        e instanceof FluxstrapError &&
        e.code === 'E_CONFIG' &&
        e.location?.field === 'ageKey.publicKeys' &&
        e.message.includes(absent) &&
        !e.message.includes(other.recipient) &&
        !JSON.stringify(e).includes('AGE-SECRET-KEY'),
    );
  });

  void it('an SSH key never becomes the cluster key, from any source: kustomize-controller cannot import it', async () => {
    const ssh = generateSshKey('ed25519', 'me@host').privateKey;
    const file = join(dir, 'id_ed25519');
    await writeFile(file, ssh, { mode: 0o600 });
    const refused = (where: string) => (e: unknown) =>
      e instanceof FluxstrapError &&
      e.code === 'E_CONFIG' &&
      /^an SSH private key is not an age identity: kustomize-controller imports only age X25519 identities/.test(e.message) &&
      e.location?.file === where &&
      /fluxstrap keys new/.test(e.hint ?? '') &&
      !JSON.stringify(e).includes(ssh.split('\n')[1] ?? '-');
    await assert.rejects(readAgeIdentities({ type: 'file', file }, {}), refused(file));
    await assert.rejects(readAgeIdentities({ type: 'env', env: 'K' }, { K: ssh }), refused('$K'));
  });
});

/** The Git source and its flux-system build: one lazy handle per run, shared by the tasks that ask. */
void describe('task context: source and build', () => {
  const gotkSync = `apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: { name: flux-system, namespace: flux-system }
spec: { url: https://git.example/lab.git, ref: { branch: main }, secretRef: { name: flux-system } }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: flux-system, namespace: flux-system }
spec: { path: ./clusters/lab, sourceRef: { kind: GitRepository, name: flux-system } }
`;
  const gotkComponents = 'apiVersion: v1\nkind: Namespace\nmetadata: { name: flux-system }\n';
  let checkout: string;
  before(async () => {
    checkout = join(await tempDir('ctx-source'), 'checkout');
    const fluxSystem = join(checkout, 'clusters', 'lab', 'flux-system');
    await mkdir(fluxSystem, { recursive: true });
    await writeFile(join(fluxSystem, 'kustomization.yaml'), 'resources: [gotk-components.yaml, gotk-sync.yaml]\n');
    await writeFile(join(fluxSystem, 'gotk-components.yaml'), gotkComponents);
    await writeFile(join(fluxSystem, 'gotk-sync.yaml'), gotkSync);
  });

  /** A context whose source is `checkout`, counting resolutions and removals of its (pretend) clone. */
  function counted() {
    const counts = { resolved: 0, removed: 0 };
    const ctx = contextWith({
      resolveSource: async (run: SourceRun): Promise<BootstrapSource> => {
        counts.resolved++;
        run.defer(() => counts.removed++);
        await new Promise((resolve) => setTimeout(resolve, 5));
        const clusterDir = join(checkout, 'clusters', 'lab');
        return {
          remote: { url: 'https://git.example/lab.git', auth: { kind: 'none' } },
          branch: 'main',
          commit: 'c0ffee',
          revision: 'main@sha1:c0ffee',
          dir: checkout,
          clusterDir,
          fluxSystemDir: join(clusterDir, 'flux-system'),
          origin: 'fresh clone',
        };
      },
    });
    return { ctx, counts };
  }

  /** A task whose observe reads what it is given from the context (nothing, the source, the build). */
  const reading = (name: string, read: (ctx: TaskContext) => Promise<unknown>, seen: unknown[] = []): TaskInstance<TaskContext> => ({
    name,
    params: {},
    kind: {
      kind: 'reads',
      params: z.strictObject({}),
      observe: async (_p, ctx) => void seen.push(await read(ctx)),
      plan: () => [],
      apply: () => Promise.resolve(),
    },
  });
  const run = (ctx: TaskContext, tasks: TaskInstance<TaskContext>[]) =>
    runTasks({ title: 't', tasks, ctx, check: false, reporter: { emit: () => undefined, close: () => Promise.resolve() } });

  void it('is not resolved, cloned nor built when no task asks', async () => {
    const { ctx, counts } = counted();
    const result = await run(ctx, [reading('a', () => Promise.resolve()), reading('b', (c) => Promise.resolve(c.paths.repo))]);
    assert.equal(result.success, true);
    ctx.close();
    assert.deepEqual(counts, { resolved: 0, removed: 0 });
  });

  void it('is resolved and built once when several tasks ask, even at the same time; the clone goes at close', async () => {
    const { ctx, counts } = counted();
    const builds: unknown[] = [];
    const sources: unknown[] = [];
    const result = await run(ctx, [
      reading('source', (c) => c.source(), sources),
      reading('build', (c) => c.fluxBuild(), builds),
      reading('both at once', (c) => Promise.all([c.fluxBuild(), c.source(), c.fluxBuild()]).then(([b]) => b), builds),
    ]);
    assert.equal(result.success, true);
    assert.equal(counts.resolved, 1);
    assert.equal(builds.length, 2);
    assert.equal(builds[0], builds[1], 'the second task gets the very build the first one made');
    const build = await ctx.fluxBuild();
    assert.equal(build, builds[0]);
    assert.equal(sources[0], await ctx.source());
    assert.deepEqual(
      [build.sync.gitRepository.kind, build.sync.kustomization.kind, build.components.map((o) => o.kind)],
      ['GitRepository', 'Kustomization', ['Namespace']],
    );
    assert.equal(counts.removed, 0, 'the clone lives as long as the run');
    ctx.close();
    assert.deepEqual(counts, { resolved: 1, removed: 1 });
  });

  void it('asking for the build alone resolves the source it is built from', async () => {
    const { ctx, counts } = counted();
    await ctx.fluxBuild();
    assert.equal(counts.resolved, 1);
  });

  void it('each run has its own: two contexts never share a source', async () => {
    const a = counted();
    const b = counted();
    await Promise.all([a.ctx.source(), b.ctx.source()]);
    assert.deepEqual([a.counts.resolved, b.counts.resolved], [1, 1]);
    assert.notEqual(await a.ctx.fluxBuild(), await b.ctx.fluxBuild());
  });

  void it('the real resolution fails before any Git call without a Git URL, and again when asked again; the build fails with it', async () => {
    const ctx = contextWith({
      cluster: cluster({ git: { branch: 'main', auth: { type: 'none' }, provider: 'generic' } }),
      timeoutMs: 1,
    });
    const first = await ctx.source().catch((e: unknown) => e);
    assert.ok(first instanceof FluxstrapError && first.code === 'E_USAGE' && /no Git URL for cluster "lab"/.test(first.message));
    const again = await ctx.source().catch((e: unknown) => e);
    assert.ok(again instanceof FluxstrapError && again !== first && again.message === first.message, 'a failure is not kept: resolved anew');
    const build = await ctx.fluxBuild().catch((e: unknown) => e);
    assert.ok(build instanceof FluxstrapError && build.message === first.message);
  });

  void it('a source refused once (its deploy key not registered yet) is read on the next ask, then shared', async () => {
    let tries = 0;
    const dir = join(checkout, 'clusters', 'lab');
    const ctx = contextWith({
      resolveSource: (): Promise<BootstrapSource> =>
        ++tries === 1
          ? Promise.reject(new FluxstrapError('E_GIT', 'Permission denied (publickey)'))
          : Promise.resolve({
              remote: { url: 'ssh://git@git.example/lab.git', auth: { kind: 'none' } },
              branch: 'main',
              commit: 'c0ffee',
              revision: 'main@sha1:c0ffee',
              dir: checkout,
              clusterDir: dir,
              fluxSystemDir: join(dir, 'flux-system'),
              origin: 'fresh clone',
            }),
    });
    await assert.rejects(ctx.source(), /Permission denied/);
    const source = await ctx.source();
    assert.equal(await ctx.source(), source);
    assert.equal(tries, 2);
  });
});
