import type { Condition, ServerVersion, WaitState } from '../adapters/kube/port.ts';
import type { KeyCheck } from '../tasks/cloud-key.ts';
import type { Problem } from '../tasks/preflight.ts';

/**
 * What `status` saw, as plain data: the only input of `diagnose`. Public facts only — recipients,
 * key names, conditions — never a secret value, so the whole thing may be logged or printed.
 */
export interface Observed {
  cluster: { name: string; path: string };
  api: { server: string; context: string; version: ServerVersion } | { error: Problem };
  /** What the cluster holds; absent when the API could not be asked, an error when it refused. */
  live?: LiveState | { error: Problem };
  /** Which kind of key the cluster decrypts with: what rules, files and Secrets are weighed against. */
  keyType: 'age' | 'pgp';
  /** Recipients (or PGP fingerprints) of the `.sops.yaml` creation rule for files under the cluster path. */
  sopsRule: { recipients: string[] } | { error: Problem };
  /** The key this machine is configured with (age recipients, or the PGP fingerprint); absent when none is configured here. */
  localKey?: { recipients: string[] } | { error: Problem };
  /**
   * SOPS-encrypted files the cluster reaches (the cluster folder and the Kustomizations it
   * applies), repository-relative, with the Kustomizations that apply each and the age
   * recipients of the `.sops.yaml` rule that matches it (absent: no rule does).
   */
  files: { name: string; recipients: string[]; by: string[]; rule?: string[] }[];
  /** What the walk of the repository found; an error when it could not be made. */
  reach: ReachState | { error: Problem };
  /** The checkout's flux-system folder does not build (kustomize's error): Flux cannot apply it either. */
  build?: { error: Problem };
  /** fluxstrap.yaml `sopsKey`: the key service the cluster decrypts through, and its checks (tasks/cloud-key.ts). */
  cloudKey?: { name: string } & (KeyCheck | { error: Problem });
  /** false: the cluster decrypts through its cloud identity alone, no age key Secret (absent: it uses one). */
  ageSecretInUse?: boolean;
}

export interface ReachState {
  /** Per Kustomization (the cluster folder's first): where it is, its path, its SOPS files. */
  kustomizations: { ref: string; path: string; sops: string[] }[];
  notChecked: string[];
  issues: string[];
  /** Kustomizations that apply SOPS files without decrypting them. */
  undecrypted: Problem[];
}

export interface LiveState {
  /** The Flux CRDs that must be served, and any other one labelled part of Flux. */
  crds: { name: string; state: WaitState }[];
  controllers: { namespace: string; name: string; state: WaitState; conditions: string }[];
  gitRepository?: FluxObjectState & { url?: string; branch?: string };
  /** The branch head on the Git server, asked with this machine's credentials. */
  remote: { head: string } | { skipped: Problem } | { error: Problem };
  kustomization?: FluxObjectState & { namespace: string; decryption?: { provider?: string; secretRef?: { name?: string } } };
  /** The decryption secretRef the repository's flux-system build asks for, when it builds. */
  expectedSecretName?: string;
  /** The Secret kustomize-controller's `--sops-age-secret` names (controller-level decryption). */
  controllerSecret?: string;
  /** The age key Secret (sops-age), for a cluster whose key is age. */
  ageSecret?: AgeSecretState;
  /** The OpenPGP key Secret (sops-gpg), for a cluster whose key is PGP (`sopsKey.pgp`). */
  gpgSecret?: GpgSecretState;
  /** With fluxstrap.yaml `sopsKey.vault`: the Secret holding kustomize-controller's Vault token. */
  vaultSecret?: VaultSecretState;
  /** Every Kustomization of the cluster that has `spec.decryption`. */
  decrypting: FluxObjectState[];
}

export interface FluxObjectState {
  /** `Kustomization flux-system/flux-system`. */
  ref: string;
  suspended: boolean;
  /** Absent when the controller has not reported readiness yet. */
  ready?: Condition;
  /** Artifact revision of a source, last applied revision of a Kustomization. */
  revision?: string;
}

export interface VaultSecretState {
  ref: string;
  exists: boolean;
  hasToken: boolean;
  /** What the token in the Secret opens: a Vault-encrypted file under the cluster path, or why not. */
  proof?: { opened: string } | { none: true } | { problem: Problem };
}

export interface AgeSecretState {
  ref: string;
  exists: boolean;
  /** Keys ending in `.agekey` (the only ones kustomize-controller imports) and the rest. */
  ageKeys: string[];
  otherKeys: string[];
  /** Recipients derived in memory from the identities under the `.agekey` keys. */
  recipients: string[];
  /** `.agekey` keys whose value is not an age identity, with why. */
  unreadable: string[];
}

export interface GpgSecretState {
  ref: string;
  exists: boolean;
  /** Keys ending in `.asc` (the only ones kustomize-controller imports into its keyring) and the rest. */
  ascKeys: string[];
  otherKeys: string[];
  /** Fingerprints of the private keys under the `.asc` keys, read in memory. */
  fingerprints: string[];
  /** `.asc` keys kustomize-controller cannot use (not a private key, locked by a passphrase), with why. */
  unreadable: string[];
  /** The SOPS files the cluster reaches that the Secret's keys were tried on, and those they do not open. */
  tried: number;
  closed: string[];
}
