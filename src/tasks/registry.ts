import type { TaskKind } from '../core/task.ts';
import type { TaskContext } from './context.ts';

/**
 * Task kind names, as written in playbooks, mapped to their modules. Each entry imports its module
 * only when a playbook uses the kind, and kind modules take the Kubernetes client from the context
 * (`ctx.kube()`) rather than importing it, so loading and validating a playbook stays cheap.
 *
 * To add a kind: one line here, `name: () => import('./file.ts').then((m) => m.exportedKind)`.
 */
export type AnyTaskKind = TaskKind<unknown, unknown, TaskContext>;
export type KindLoader = () => Promise<AnyTaskKind>;
export type KindRegistry = Readonly<Record<string, KindLoader>>;

export const builtinKinds: KindRegistry = {
  preflight: () => import('./preflight.ts').then((m) => m.preflightKind),
  namespace: () => import('./namespace.ts').then((m) => m.namespaceKind),
  'ssh-deploy-key': () => import('./ssh-deploy-key.ts').then((m) => m.sshDeployKeyKind),
  'known-hosts': () => import('./known-hosts.ts').then((m) => m.knownHostsKind),
  'github-repository': () => import('./github-repository.ts').then((m) => m.githubRepositoryKind),
  'github-deploy-key': () => import('./github-deploy-key.ts').then((m) => m.githubDeployKeyKind),
  'gitea-deploy-key': () => import('./gitea-deploy-key.ts').then((m) => m.giteaDeployKeyKind),
  'git-credentials-file': () => import('./git-credentials-file.ts').then((m) => m.gitCredentialsFileKind),
  'git-credentials': () => import('./git-credentials.ts').then((m) => m.gitCredentialsKind),
  'sops-age-secret': () => import('./sops-age-secret.ts').then((m) => m.sopsAgeSecretKind),
  'sops-gpg-secret': () => import('./sops-gpg-secret.ts').then((m) => m.sopsGpgSecretKind),
  'sops-hcvault-secret': () => import('./sops-hcvault-secret.ts').then((m) => m.sopsHcVaultSecretKind),
  'azure-credentials-secret': () => import('./azure-credentials-secret.ts').then((m) => m.azureCredentialsSecretKind),
  'sops-secret': () => import('./sops-secret.ts').then((m) => m.sopsSecretKind),
  'flux-components': () => import('./flux-components.ts').then((m) => m.fluxComponentsKind),
  'wait-controllers': () => import('./wait-controllers.ts').then((m) => m.waitControllersKind),
  'flux-sync': () => import('./flux-sync.ts').then((m) => m.fluxSyncKind),
  reconcile: () => import('./reconcile.ts').then((m) => m.reconcileKind),
  'verify-decryption': () => import('./verify-decryption.ts').then((m) => m.verifyDecryptionKind),
  // Repository files (what `fluxstrap init` ensures), for playbooks that prepare a repository.
  'sops-config': () => import('./sops-config.ts').then((m) => m.sopsConfigKind),
  'public-key-file': () => import('./public-key-file.ts').then((m) => m.publicKeyFileKind),
  'decryption-patch': () => import('./decryption-patch.ts').then((m) => m.decryptionPatchKind),
  'child-decryption': () => import('./child-decryption.ts').then((m) => m.childDecryptionKind),
  'gotk-sync-restore': () => import('./gotk-sync.ts').then((m) => m.gotkSyncKind),
  'cluster-root': () => import('./cluster-root.ts').then((m) => m.clusterRootKind),
  makefile: () => import('./makefile.ts').then((m) => m.makefileKind),
  gitignore: () => import('./gitignore.ts').then((m) => m.gitignoreKind),
  'fluxstrap-config': () => import('./fluxstrap-config.ts').then((m) => m.fluxstrapConfigKind),
  'sops-recipients': () => import('./sops-recipients.ts').then((m) => m.sopsRecipientsKind),
  'sops-files-rekeyed': () => import('./sops-files-rekeyed.ts').then((m) => m.sopsFilesRekeyedKind),
};

/** Load a kind, checking that the module's `kind` matches the name it is registered under. */
export async function loadKind(registry: KindRegistry, name: string): Promise<AnyTaskKind | undefined> {
  const loader = Object.hasOwn(registry, name) ? registry[name] : undefined;
  if (!loader) return undefined;
  const kind = await loader();
  if (kind.kind !== name) throw new Error(`task kind registered as "${name}" calls itself "${kind.kind}"`);
  return kind;
}
