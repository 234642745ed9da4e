import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { must, sh } from '../../scripts/example-repo.ts';
import { gitEnv } from '../../src/adapters/git.ts';
import type { connectKube } from '../../src/adapters/kube.ts';
import { artifactRevision, conditionOf } from '../../src/adapters/kube/readiness.ts';

export interface AfterRotation {
  kube: Awaited<ReturnType<typeof connectKube>>;
  sshUrl: string;
  oldKeyFile: string;
  knownHostsFile: string;
  /** The example repository and its cluster path. */
  repo: string;
  path: string;
  /** Pushes the new commit as whoever may write to the repository on this server. */
  push: () => Promise<unknown>;
}

/**
 * The end of a deploy-key rotation as the cluster sees it: the server refuses the old key, and a new
 * commit reaches source-controller, so it fetched with the new one.
 */
export async function assertFetchesWithNewKeyOnly(r: AfterRotation): Promise<void> {
  const withOld = await sh('git', ['ls-remote', r.sshUrl], {
    quiet: true,
    env: gitEnv({ kind: 'ssh', identityFile: r.oldKeyFile, knownHostsFile: r.knownHostsFile }),
  });
  assert.notEqual(withOld.code, 0, 'the Git server refuses the old key');
  writeFileSync(join(r.repo, r.path, 'apps', 'note.txt'), 'rotated\n');
  await must('git', ['add', '-A'], { cwd: r.repo });
  await must('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '--quiet', '-m', 'after rotation'], { cwd: r.repo });
  await r.push();
  const head = (await must('git', ['rev-parse', 'HEAD'], { cwd: r.repo, quiet: true })).trim();
  const repoRef = { apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'GitRepository', namespace: 'flux-system', name: 'flux-system' };
  await r.kube.patchMerge(repoRef, { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': new Date().toISOString() } } });
  const fetched = await r.kube.waitFor(
    repoRef,
    (o) => ({ done: o !== undefined && artifactRevision(o) === `main@sha1:${head}`, reason: `at ${o ? (artifactRevision(o) ?? '') : ''}` }),
    { timeoutMs: 120_000, what: `artifact at ${head}` },
  );
  assert.equal(conditionOf(fetched, 'Ready')?.status, 'True');
}
