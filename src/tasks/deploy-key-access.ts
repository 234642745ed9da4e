import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { publicKeyOfPrivate, sshPublicKeyOf } from '../keys/ssh.ts';
import type { TaskContext } from './context.ts';

/**
 * A deploy key the Git server accepts, on a host fluxstrap cannot register keys with (anything but
 * GitHub): proven by reading the branch with that key alone (`git ls-remote`), and waited for
 * while the user adds it, since nothing else may switch the cluster to a key the server refuses.
 */
const Params = z.strictObject({
  keyFile: z.string().min(1).describe('Private key file to prove (`<keyFile>.next` during a rotation).'),
  wait: z.boolean().default(true).describe('Wait (up to --timeout) until the server accepts it; false: fail at once, saying what to add.'),
  pollMs: z.number().int().positive().default(5000).describe('Pause between two tries while waiting.'),
});
type Params = z.infer<typeof Params>;

type Facts = { none: true } | { file: string; publicKey?: string; accepted: boolean };

/** Read the branch with `keyFile` alone: resolves, or throws git's reason. */
async function readWith(ctx: TaskContext, keyFile: string, knownHostsFile: string): Promise<void> {
  const { url, branch } = ctx.cluster.git;
  if (url === undefined) throw new FluxstrapError('E_USAGE', `no Git URL for cluster "${ctx.cluster.name}"`, { hint: 'set git.url in fluxstrap.yaml' });
  const { remoteBranchHead } = await import('../adapters/git.ts');
  await remoteBranchHead({ url, auth: { kind: 'ssh', identityFile: keyFile, knownHostsFile } }, branch);
}

/**
 * Refused is the answer awaited. When the key Flux uses now is refused too, the cause is not the
 * new key (server down, repository moved, host key changed): that error is shown instead of a wait.
 */
async function accepted(ctx: TaskContext, keyFile: string): Promise<boolean> {
  const auth = ctx.cluster.git.auth;
  if (auth.type !== 'ssh') return false;
  try {
    await readWith(ctx, keyFile, auth.knownHostsFile);
    return true;
  } catch (e) {
    if (!(e instanceof FluxstrapError && e.code === 'E_GIT')) throw e;
  }
  await readWith(ctx, auth.keyFile, auth.knownHostsFile);
  return false;
}

const added = (facts: Extract<Facts, { file: string }>) =>
  `${facts.publicKey ?? `${facts.file}.pub`} (${sshPublicKeyOf(facts.publicKey ?? '')?.fingerprint ?? ''})`;

export const deployKeyAccessKind: TaskKind<Params, Facts, TaskContext> = {
  kind: 'deploy-key-access',
  params: Params,
  async observe(p, ctx) {
    // GitHub and Gitea are told of the key through their APIs (deploy-key-rotation).
    if (ctx.cluster.git.provider !== 'generic') return { none: true };
    const text = await readTextIfExists(p.keyFile, 'read the deploy key');
    // Under --check the key may not exist yet: the task that stages it comes first.
    if (text === undefined) return { file: p.keyFile, accepted: false };
    return { file: p.keyFile, publicKey: publicKeyOfPrivate(text, p.keyFile), accepted: await accepted(ctx, p.keyFile) };
  },
  plan(_p, facts): Change[] {
    if ('none' in facts || facts.accepted) return [];
    return [{ action: 'run', target: `deploy key ${facts.file}`, summary: `wait until the Git server accepts ${added(facts)}`, data: facts }];
  },
  async apply(change, p, ctx) {
    const facts = change.data as Extract<Facts, { file: string }>;
    const ask = `add the deploy key ${added(facts)} to ${ctx.cluster.git.url ?? 'the repository'} (read-only is enough)`;
    if (!p.wait) throw new FluxstrapError('E_PRECONDITION', `the Git server does not accept the new deploy key yet`, { hint: `${ask}, then run again` });
    ctx.log(`${ask}; waiting…`);
    const until = Date.now() + ctx.timeoutMs;
    while (!(await accepted(ctx, p.keyFile))) {
      if (Date.now() >= until) {
        throw new FluxstrapError('E_TIMEOUT', `the Git server did not accept the new deploy key within the timeout`, { hint: `${ask}, then run again` });
      }
      await sleep(p.pollMs);
    }
  },
  notes(_p, facts) {
    return 'none' in facts || facts.publicKey === undefined ? [] : [`the Git server accepts ${added(facts)}`];
  },
};
