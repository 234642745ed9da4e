import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import type { KubeAdapter } from '../../../src/adapters/kube.ts';
import type { ResolvedCluster } from '../../../src/cluster/config.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { createTaskContext, readAgeIdentities } from '../../../src/tasks/context.ts';
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

void describe('task context', () => {
  before(async () => {
    dir = await tempDir('ctx');
    secret = await generateIdentity();
    recipient = await identityToRecipient(secret);
  });

  void it('derives the paths of the cluster', () => {
    const ctx = createTaskContext({ cluster: cluster(), rotateSecrets: false, timeoutMs: 1000, log: () => undefined, env: {} });
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
    const ctx = createTaskContext({
      cluster: cluster(), rotateSecrets: false, timeoutMs: 1000, log: () => undefined, env: {},
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
    const ok = createTaskContext({ cluster: cluster(), rotateSecrets: false, timeoutMs: 1, log: () => undefined, env: { LAB_TOKEN: 't0ken' } });
    assert.deepEqual(await ok.gitCredentials(), { type: 'https', username: 'git', password: 't0ken' });
    const missing = createTaskContext({ cluster: cluster(), rotateSecrets: false, timeoutMs: 1, log: () => undefined, env: {} });
    await assert.rejects(missing.gitCredentials(), (e: unknown) => e instanceof FluxstrapError && /LAB_TOKEN/.test(e.message) && !e.message.includes('t0ken'));
  });

  void it('reads SSH credentials from the key and known_hosts files', async () => {
    await writeFile(join(dir, 'id'), 'PRIVATE\n', { mode: 0o600 });
    await writeFile(join(dir, 'kh'), 'git.example ssh-ed25519 AAAA\n');
    const ctx = createTaskContext({
      cluster: cluster({ git: { branch: 'main', auth: { type: 'ssh', keyFile: join(dir, 'id'), knownHostsFile: join(dir, 'kh') }, provider: 'generic' } }),
      rotateSecrets: false, timeoutMs: 1, log: () => undefined, env: {},
    });
    assert.deepEqual(await ctx.gitCredentials(), { type: 'ssh', identity: 'PRIVATE\n', knownHosts: 'git.example ssh-ed25519 AAAA\n' });
  });

  void it('reads age identities from a variable or a file, deriving their recipients', async () => {
    const fromEnv = await readAgeIdentities({ type: 'env', env: 'K' }, { K: `# comment\n${secret}\n` });
    assert.deepEqual(fromEnv.map((i) => [i.recipient, i.source]), [[recipient, '$K']]);
    await writeFile(join(dir, 'keys.txt'), `${secret}\n`, { mode: 0o600 });
    const fromFile = await readAgeIdentities({ type: 'file', file: join(dir, 'keys.txt') }, {});
    assert.equal(fromFile[0]?.recipient, recipient);
    await assert.rejects(readAgeIdentities({ type: 'env', env: 'K' }, {}), (e: unknown) => e instanceof FluxstrapError && e.code === 'E_NOT_FOUND');
    await assert.rejects(readAgeIdentities({ type: 'file', file: join(dir, 'none.txt') }, {}), (e: unknown) => e instanceof FluxstrapError && e.code === 'E_NOT_FOUND');
  });

  void it('ageKey.cmd: the command\'s output, asked once per listed recipient with SOPS_AGE_RECIPIENT set', async () => {
    const other = await generateIdentity();
    const cmd = join(dir, 'key-cmd.sh');
    // Answers only for the recipient it is asked for; with nothing asked it prints both.
    await writeFile(cmd, `#!/bin/sh\nif [ -z "$SOPS_AGE_RECIPIENT" ]; then echo "${other}"; echo "${secret}"; elif [ "$SOPS_AGE_RECIPIENT" = "${recipient}" ]; then echo "${secret}"; fi\n`, { mode: 0o700 });
    assert.equal((await readAgeIdentities({ type: 'cmd', cmd }, {})).length, 2);
    const asked = await readAgeIdentities({ type: 'cmd', cmd, publicKeys: [recipient] }, {});
    assert.deepEqual(asked.map((i) => [i.recipient, i.source]), [[recipient, 'ageKey.cmd']]);
    await assert.rejects(readAgeIdentities({ type: 'cmd', cmd: join(dir, 'missing-cmd') }, {}), (e: unknown) =>
      e instanceof FluxstrapError && e.location?.field === 'ageKey.cmd' && /^ageKey\.cmd \(.*missing-cmd\) failed$/.test(e.message));
  });

  void it('with publicKeys, only the identities listed (a key file shared between clusters), each of which must be there', async () => {
    const other = await generateIdentity();
    const otherRecipient = await identityToRecipient(other);
    const shared = join(dir, 'shared.txt');
    await writeFile(shared, `${other}\n${secret}\n`, { mode: 0o600 });
    assert.equal((await readAgeIdentities({ type: 'file', file: shared }, {})).length, 2);
    const mine = await readAgeIdentities({ type: 'file', file: shared, publicKeys: [recipient] }, {});
    assert.deepEqual(mine.map((i) => i.recipient), [recipient]);
    const absent = 'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq';
    await assert.rejects(readAgeIdentities({ type: 'file', file: shared, publicKeys: [recipient, absent] }, {}), (e: unknown) =>
      e instanceof FluxstrapError && e.code === 'E_CONFIG' && e.location?.field === 'ageKey.publicKeys' && e.message.includes(absent) && !e.message.includes(otherRecipient) && !JSON.stringify(e).includes('AGE-SECRET-KEY'));
  });
});
