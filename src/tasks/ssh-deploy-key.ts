import { z } from 'zod';
import { exists, readTextIfExists, writeAtomic } from '../adapters/files.ts';
import type { ResolvedCluster } from '../cluster/config.ts';
import type { Change } from '../core/change.ts';
import type { TaskKind } from '../core/task.ts';
import { KEY_DIR_MODE, KEY_FILE_MODE } from '../keys/generate.ts';
import { generateSshKey, publicKeyOfPrivate, SSH_KEY_ALGORITHMS, sshPublicKeyOf } from '../keys/ssh.ts';
import type { SshKeyAlgorithm } from '../keys/ssh.ts';
import { deployKeyFile } from './deploy-key.ts';

/**
 * The SSH deploy key Flux pulls with, generated when the configured key file does not exist yet
 * (as `flux bootstrap` does), never replaced. The private key goes to its file only (0600); the
 * public key is written beside it (`<file>.pub`) and shown, for the Git server.
 */
const Params = z.strictObject({
  keyFile: z.string().min(1).optional().describe("Private key file; default the cluster's git.auth.ssh.keyFile."),
  algorithm: z.enum(SSH_KEY_ALGORITHMS).optional().describe('Key type of a new key; default git.auth.ssh.keyAlgorithm, else ed25519.'),
  comment: z.string().optional().describe('Comment of the public key; default fluxstrap-<cluster>.'),
});
type Params = z.infer<typeof Params>;

export interface DeployKeyContext {
  readonly cluster?: ResolvedCluster;
}

type Facts = { none: true } | { file: string; algorithm: SshKeyAlgorithm; comment: string; publicKey?: string };

export const sshDeployKeyKind: TaskKind<Params, Facts, DeployKeyContext> = {
  kind: 'ssh-deploy-key',
  params: Params,
  async observe(p, ctx) {
    const file = deployKeyFile(p.keyFile, ctx.cluster);
    if (file === undefined) return { none: true };
    const auth = ctx.cluster?.git.auth;
    // The key kept encrypted in the repository is the registered one: a new key here would replace it.
    if (p.keyFile === undefined && auth?.sopsFile !== undefined && !(await exists(file))) return { none: true };
    const algorithm = p.algorithm ?? (auth?.type === 'ssh' ? auth.keyAlgorithm : undefined) ?? 'ed25519';
    const comment = p.comment ?? `fluxstrap-${ctx.cluster?.name ?? 'deploy-key'}`;
    const text = await readTextIfExists(file, 'read the deploy key');
    return { file, algorithm, comment, ...(text === undefined ? {} : { publicKey: publicKeyOfPrivate(text, file) }) };
  },
  plan(_p, facts): Change[] {
    if ('none' in facts || facts.publicKey !== undefined) return [];
    return [
      {
        action: 'create',
        target: `deploy key ${facts.file}`,
        summary: `generate an ${facts.algorithm} SSH deploy key (private key 0600, public key in ${facts.file}.pub)`,
        data: facts,
      },
    ];
  },
  async apply(change) {
    const facts = change.data as Extract<Facts, { file: string }>;
    const key = generateSshKey(facts.algorithm, facts.comment);
    await writeAtomic(facts.file, key.privateKey, { exclusive: true, mode: KEY_FILE_MODE, dirMode: KEY_DIR_MODE });
    await writeAtomic(`${facts.file}.pub`, `${key.publicKey}\n`, { mode: 0o644, dirMode: KEY_DIR_MODE });
  },
  notes(_p, facts) {
    if ('none' in facts || facts.publicKey === undefined) return [];
    return [`deploy key ${facts.file}: ${facts.publicKey} (${sshPublicKeyOf(facts.publicKey)?.fingerprint ?? ''})`];
  },
};
