import { relative } from 'node:path';
import { exists } from '../adapters/files.ts';
import type { ClusterFlags } from '../cluster/config.ts';
import { resolveClusterFlags } from '../cluster/resolve.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskInstance, TaskKind } from '../core/task.ts';
import { deployKeyAccessKind } from '../tasks/deploy-key-access.ts';
import { deployKeyRotationKind } from '../tasks/deploy-key-rotation.ts';
import { deployKeyPromotedKind, oldKeyClash, retiredKeyFile, stagedKeyFile } from '../tasks/deploy-key-promoted.ts';
import { gitCredentialsFileKeyKind } from '../tasks/git-credentials-file-key.ts';
import { gitIdentitySecretKind } from '../tasks/git-identity-secret.ts';
import type { TaskContext } from '../tasks/context.ts';
import { sourceFetchedKind } from '../tasks/source-fetched.ts';
import { sshDeployKeyKind } from '../tasks/ssh-deploy-key.ts';
import { exitCodeOf, runClusterTasks, runSettings } from './bootstrap.ts';
import { info } from './io.ts';
import type { CommandIo } from './io.ts';

/**
 * `fluxstrap git rotate-key`: the SSH deploy key Flux pulls with, replaced without a moment where
 * Flux holds a key the server refuses. The new key is staged beside the old (`<keyFile>.next`),
 * registered (GitHub, Gitea) or proven accepted (other hosts) while the old one still works, put into
 * the flux-system Secret, proven by a reconcile source-controller handled and finished Ready; only
 * then is the old key retired on the forge, the encrypted copy in the repository (git.auth.sopsFile)
 * updated, and the key files moved (the old one kept as `<keyFile>.old`). Every step observes
 * what exists (files, the forge's keys, the Secret, the GitRepository), so the next run finishes a
 * run stopped anywhere, and a run started after a finished rotation begins a new one.
 */

export interface GitRotateKeyOptions extends ClusterFlags {
  check?: boolean;
  diff?: boolean;
  /** `--no-wait`: fail at once when another Git host does not accept the new key yet. */
  wait?: boolean;
  timeout?: string;
}

export async function gitRotateKey(opts: GitRotateKeyOptions, io: CommandIo): Promise<number> {
  const settings = runSettings({ check: opts.check === true, ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}) });
  const { check: _c, diff: _d, wait: _w, timeout: _t, ...flags } = opts;
  const cluster = await resolveClusterFlags(flags, io.env, io.cwd);
  const auth = cluster.git.auth;
  if (auth.type !== 'ssh') {
    throw new FluxstrapError(
      'E_PRECONDITION',
      `cluster "${cluster.name}" pulls with ${auth.type === 'none' ? 'no' : auth.type} credentials: there is no SSH deploy key to rotate`,
      {
        location: { field: 'git.auth' },
        hint: 'rotate-key rotates git.auth.ssh keys; a token is rotated by exporting the new one and running fluxstrap bootstrap --rotate-secrets',
      },
    );
  }
  const { keyFile } = auth;
  const staged = await exists(stagedKeyFile(keyFile));
  if (!staged && !(await exists(keyFile))) {
    throw new FluxstrapError('E_NOT_FOUND', `the deploy key file ${keyFile} does not exist`, {
      location: { field: 'git.auth.ssh.keyFile' },
      hint: 'rotate-key starts from the key Flux uses now: restore it (or name it with --git-ssh-key) and run again',
    });
  }
  // A new rotation would end by writing <keyFile>.old: refuse before anything changes, not at the end.
  if (!staged && (await exists(retiredKeyFile(keyFile)))) throw oldKeyClash(keyFile);

  const task = <P, O, D>(name: string, kind: TaskKind<P, O, TaskContext, D>, params: P): TaskInstance<TaskContext> => ({ name, kind, params });
  const next = stagedKeyFile(keyFile);
  // A forge fluxstrap calls (GitHub, Gitea) gets the new key through its API; another host from the user.
  const forge = cluster.git.provider === 'github' ? 'GitHub' : cluster.git.provider === 'gitea' ? 'Gitea' : undefined;
  // Resolved to an absolute path; shown and written as the repository's file it is.
  const sopsFile = auth.sopsFile === undefined ? undefined : relative(cluster.repoDir, auth.sopsFile);
  const tasks = [
    task(`new deploy key staged at ${next}`, sshDeployKeyKind, { keyFile: next }),
    forge !== undefined
      ? task(`new key registered on ${forge} beside the old`, deployKeyRotationKind, { keyFile: next, phase: 'register' as const })
      : task('new key accepted by the Git server', deployKeyAccessKind, { keyFile: next, wait: opts.wait !== false, pollMs: 2000 }),
    task('flux-system Secret holds the new key', gitIdentitySecretKind, { keyFile: next, namespace: 'flux-system', gitRepository: 'flux-system' }),
    task('source-controller fetched with the new key', sourceFetchedKind, { keyFile: next, namespace: 'flux-system', gitRepository: 'flux-system' }),
    ...(forge !== undefined ? [task(`old key retired on ${forge}`, deployKeyRotationKind, { keyFile: next, phase: 'finish' as const })] : []),
    ...(sopsFile !== undefined ? [task(`${sopsFile} holds the new key`, gitCredentialsFileKeyKind, { file: sopsFile, keyFile: next })] : []),
    task(`new key in place at ${keyFile}`, deployKeyPromotedKind, { keyFile }),
  ];
  const reporter = await io.reporter({ diff: opts.diff === true });
  const result = await runClusterTasks({ title: `git rotate-key ${cluster.name}`, tasks }, cluster, { ...settings, rotateSecrets: true }, reporter, io.env);
  if (result.success && !settings.check) {
    info(io, `the deploy key of ${cluster.name} is rotated; the old key is kept in ${retiredKeyFile(keyFile)}`);
    if (forge === undefined) info(io, `remove the old deploy key (${retiredKeyFile(keyFile)}.pub) from the Git server: Flux no longer uses it`);
    if (sopsFile !== undefined) info(io, `commit and push ${sopsFile}`);
  }
  return exitCodeOf([{ success: result.success, wouldChange: result.recap.wouldChange }], settings.check);
}
