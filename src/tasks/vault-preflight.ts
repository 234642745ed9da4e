import { FluxstrapError, isFluxstrapError, type ErrorCode } from '../core/errors.ts';
import type { TaskContext } from './context.ts';
import { decryptSopsFile, findSopsFiles } from './sops-files.ts';
import { vaultToken } from './sops-hcvault-secret.ts';
import type { BootstrapSource } from './source.ts';

/** A preflight problem (preflight.ts's `Problem`, which imports this module). */
interface Problem {
  what: string;
  fix: string;
  code?: ErrorCode;
}

/**
 * With `sopsKey.vault`, what kustomize-controller will decrypt with is the token, not an age key:
 * proven by opening, with that token alone, a file under the cluster path that names a Vault
 * transit key. Files with no Vault key are not the token's to open.
 */
export async function vaultKeyProblems(ctx: TaskContext, src: BootstrapSource, notes: string[]): Promise<Problem[]> {
  const vault = ctx.cluster.vault;
  if (!vault) return [];
  let token: string;
  try {
    token = vaultToken(ctx);
  } catch (e) {
    if (!isFluxstrapError(e)) throw e;
    return [{ what: e.message, fix: e.hint ?? '', code: e.code }];
  }
  const files = (await findSopsFiles(src.clusterDir, src.dir, [src.fluxSystemDir])).filter((f) => /^\s*(- )?vault_address:/m.test(f.text));
  const [first] = files;
  if (!first) {
    notes.push(`no SOPS file under ${ctx.cluster.path} names a Vault transit key yet`);
    return [];
  }
  // The token alone: not the user's own VAULT_TOKEN or ~/.vault-token, which the cluster lacks.
  const serviceEnv: NodeJS.ProcessEnv = { VAULT_TOKEN: token, HOME: '/nonexistent', ...(ctx.env.VAULT_NAMESPACE ? { VAULT_NAMESPACE: ctx.env.VAULT_NAMESPACE } : {}) };
  try {
    await decryptSopsFile(first, [], serviceEnv);
    notes.push(`the Vault token in ${vault.tokenEnv} opens ${first.name}`);
    return [];
  } catch (e) {
    if (!(e instanceof FluxstrapError) || e.code !== 'E_DECRYPT') throw e;
    return [{
      what: `the Vault token in ${vault.tokenEnv} does not open ${first.name}: ${e.message}`,
      fix: `give ${vault.tokenEnv} a token whose policy allows update on <engine>/decrypt/<key> for the key the file names`,
      code: 'E_KEY_SERVICE',
    }];
  }
}
