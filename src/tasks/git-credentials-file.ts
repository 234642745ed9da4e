import { join } from 'node:path';
import { z } from 'zod';
import { exists, readText, writeAtomic } from '../adapters/files.ts';
import { gitToken } from '../cluster/remote.ts';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import { encryptGitSecret, GIT_SECRET } from '../flux/git-secret.ts';
import type { StoredGitCredentials } from '../flux/git-secret.ts';
import type { RepoContext } from './file-content.ts';

/**
 * `git.auth.sopsFile`: the flux-system Git credential Secret, encrypted for the cluster's age
 * recipients and kept in the repository, so that bootstrap on a fresh machine needs only the age
 * key. The credentials are read when the file is written (a deploy key generated earlier in the
 * same run is there by then) and exist in clear only in memory. An existing file is kept: it may
 * hold a token this machine does not have.
 */
const Params = z.strictObject({
  file: z.string().min(1).describe('Repository-relative path of the encrypted Secret, outside flux-system/.'),
  age: z.array(z.string().min(1)).min(1).describe('age recipients it is encrypted for: the cluster key.'),
  source: z
    .union([
      z.strictObject({ https: z.strictObject({ username: z.string().min(1), passwordEnv: z.string().min(1) }) }),
      z.strictObject({ ssh: z.strictObject({ keyFile: z.string().min(1), knownHostsFile: z.string().min(1) }) }),
    ])
    .describe("Where the credentials are read from: the token's environment variable, or the deploy key and known_hosts files."),
});
type Params = z.infer<typeof Params>;

export interface CredentialsFileContext extends RepoContext {
  readonly env: NodeJS.ProcessEnv;
}

type Facts = { exists: boolean };

async function credentials(source: Params['source'], env: NodeJS.ProcessEnv): Promise<StoredGitCredentials> {
  if ('https' in source) return { type: 'https', username: source.https.username, password: gitToken(source.https, env, undefined) };
  return {
    type: 'ssh',
    identity: await readText(source.ssh.keyFile, 'read the deploy key'),
    knownHosts: await readText(source.ssh.knownHostsFile, 'read known_hosts'),
  };
}

export const gitCredentialsFileKind: TaskKind<Params, Facts, CredentialsFileContext> = {
  kind: 'git-credentials-file',
  params: Params,
  async observe(p, ctx) {
    const present = await exists(join(ctx.paths.repo, p.file));
    // A missing token stops the run before anything is written (init plans every task first).
    if (!present && 'https' in p.source) gitToken(p.source.https, ctx.env, undefined);
    return { exists: present };
  },
  plan(p, facts): Change[] {
    if (facts.exists) return [];
    const what = 'https' in p.source ? `the Git token from $${p.source.https.passwordEnv}` : `the SSH deploy key ${p.source.ssh.keyFile}`;
    return [
      { action: 'create', target: `file ${p.file}`, summary: `encrypt ${what} as Secret ${GIT_SECRET.namespace}/${GIT_SECRET.name} for ${p.age.join(', ')}` },
    ];
  },
  async apply(_change, p, ctx) {
    const text = await encryptGitSecret(await credentials(p.source, ctx.env), p.age, p.file);
    await writeAtomic(join(ctx.paths.repo, p.file), text, { exclusive: true, within: ctx.paths.repo });
  },
  notes(p) {
    return [`bootstrap applies ${p.file} when no token or key file is given; to write it anew, remove it and run init again`];
  },
};
