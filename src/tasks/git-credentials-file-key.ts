import { join } from 'node:path';
import { z } from 'zod';
import { readBytes, readTextIfExists, writeAtomic } from '../adapters/files.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { decryptGitSecret, replaceGitSecretIdentity } from '../flux/git-secret.ts';
import type { TaskContext } from './context.ts';

/**
 * `git.auth.sopsFile` holding a given deploy key, so that disaster recovery from the repository
 * brings back the key Flux uses now, not a retired one. The file is edited in place (sops set:
 * same recipients and data key); the key exists in clear only in memory.
 */
const Params = z.strictObject({
  file: z.string().min(1).describe('Repository-relative path of the encrypted Git Secret (git.auth.sopsFile).'),
  keyFile: z.string().min(1).describe('Private key file it must hold.'),
});
type Params = z.infer<typeof Params>;

type Facts = { holds: boolean };

export const gitCredentialsFileKeyKind: TaskKind<Params, Facts, TaskContext> = {
  kind: 'git-credentials-file-key',
  params: Params,
  async observe(p, ctx) {
    const path = join(ctx.paths.repo, p.file);
    const bytes = await readBytes(path, 'read the encrypted Git credentials');
    const creds = await decryptGitSecret(bytes, p.file, await ctx.ageIdentities());
    if (creds.type !== 'ssh') {
      throw new FluxstrapError('E_CONFIG', `${p.file} holds ${creds.type} credentials, not the SSH deploy key`, {
        location: { file: p.file },
        hint: 'git.auth.sopsFile of an SSH cluster holds its deploy key: write it again with `fluxstrap init --git-sops-file`',
      });
    }
    const key = await readTextIfExists(p.keyFile, 'read the deploy key');
    return { holds: key !== undefined && creds.identity === key };
  },
  plan(p, facts): Change[] {
    return facts.holds
      ? []
      : [{ action: 'update', target: `file ${p.file}`, summary: `encrypt the new deploy key ${p.keyFile} in place of the old`, sensitive: true }];
  },
  async apply(_change, p, ctx) {
    const path = join(ctx.paths.repo, p.file);
    const key = await readTextIfExists(p.keyFile, 'read the deploy key');
    if (key === undefined) throw new FluxstrapError('E_NOT_FOUND', `no deploy key at ${p.keyFile}`, { hint: 'run fluxstrap git rotate-key again' });
    const text = await replaceGitSecretIdentity(await readBytes(path, 'read the encrypted Git credentials'), p.file, await ctx.ageIdentities(), key);
    if (text !== undefined) await writeAtomic(path, text, { within: ctx.paths.repo });
  },
  notes(p) {
    return [`${p.file} holds the new deploy key: commit and push it`];
  },
};
