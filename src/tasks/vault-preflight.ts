import { FluxstrapError, isFluxstrapError, type ErrorCode } from '../core/errors.ts';
import type { TaskContext } from './context.ts';
import { decryptSopsFile, findSopsFiles } from './sops-files.ts';
import { vaultToken } from './sops-hcvault-secret.ts';

/** A preflight problem (preflight.ts's `Problem`, which imports this module). */
interface Problem {
  what: string;
  fix: string;
  code?: ErrorCode;
}

export interface ClusterFolders {
  repoDir: string;
  clusterDir: string;
  fluxSystemDir: string;
}

export type TokenProof = { opened: string } | { none: true } | { problem: Problem };

/** The key-service environment of kustomize-controller: this token and nothing of the user's (no ~/.vault-token). */
export function tokenOnlyEnv(ctx: Pick<TaskContext, 'env'>, token: string): NodeJS.ProcessEnv {
  return { VAULT_TOKEN: token, HOME: '/nonexistent', ...(ctx.env.VAULT_NAMESPACE ? { VAULT_NAMESPACE: ctx.env.VAULT_NAMESPACE } : {}) };
}

/**
 * Whether `token` alone opens a file under the cluster folder that names a Vault transit key, as
 * kustomize-controller will have to: not with the user's own VAULT_TOKEN or ~/.vault-token, which
 * the cluster lacks. Files without a Vault key are not the token's to open. The token is never
 * part of the result.
 */
export async function tokenOpensClusterFile(ctx: Pick<TaskContext, 'env'>, token: string, tokenName: string, at: ClusterFolders): Promise<TokenProof> {
  const files = (await findSopsFiles(at.clusterDir, at.repoDir, [at.fluxSystemDir])).filter((f) => /^\s*(- )?vault_address:/m.test(f.text));
  const [first] = files;
  if (!first) return { none: true };
  const env = tokenOnlyEnv(ctx, token);
  try {
    await decryptSopsFile(first, { age: [], pgpFiles: [] }, env);
    return { opened: first.name };
  } catch (e) {
    // Vault's own refusal comes through as it is (E_PRECONDITION, E_NOT_FOUND, E_DECRYPT): each is this proof failing.
    if (!(e instanceof FluxstrapError)) throw e;
    const unreachable = /^cannot reach Vault/.test(e.message);
    return {
      problem: {
        what: `the Vault token in ${tokenName} does not open ${first.name}: ${e.message}`,
        fix: unreachable && e.hint ? e.hint : `give ${tokenName} a token whose policy allows update on <engine>/decrypt/<key> for the key the file names`,
        code: e.code,
      },
    };
  }
}

/** Preflight with `sopsKey.vault`: the token from `tokenEnv` is what kustomize-controller decrypts with. */
export async function vaultKeyProblems(ctx: TaskContext, at: ClusterFolders, notes: string[]): Promise<Problem[]> {
  const vault = ctx.cluster.vault;
  if (!vault) return [];
  let token: string;
  try {
    token = vaultToken(ctx);
  } catch (e) {
    if (!isFluxstrapError(e)) throw e;
    return [{ what: e.message, fix: e.hint ?? '', code: e.code }];
  }
  const proof = await tokenOpensClusterFile(ctx, token, vault.tokenEnv, at);
  if ('problem' in proof) return [proof.problem];
  notes.push(
    'opened' in proof ? `the Vault token in ${vault.tokenEnv} opens ${proof.opened}` : `no SOPS file under ${ctx.cluster.path} names a Vault transit key yet`,
  );
  return [];
}
