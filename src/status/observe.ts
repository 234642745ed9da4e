import type { KubeAdapter, KubeObject } from '../adapters/kube/port.ts';
import { exists } from '../adapters/files.ts';
import { describeRef, refOf } from '../adapters/kube/port.ts';
import { artifactRevision, conditionOf, crdEstablished, deploymentAvailable, formatConditions, lastAppliedRevision } from '../adapters/kube/readiness.ts';
import { isFluxstrapError } from '../core/errors.ts';
import { parseAgeKeyFile, recipientOf } from '../keys/age.ts';
import { formatLocation } from '../core/errors.ts';
import { decryptionFindings, describeKustomization, reachersOf } from '../flux/reach.ts';
import { clusterRuleRecipients, loadConfig, matchRule } from '../sops/config.ts';
import { stanzaName } from '../sops/metadata.ts';
import { cloudKeyCheck, describeKey, usesAgeSecret } from '../tasks/cloud-key.ts';
import type { TaskContext } from '../tasks/context.ts';
import { decryptionProblem, problemOf } from '../tasks/preflight.ts';
import type { Problem } from '../tasks/preflight.ts';
import { clusterSops, decryptSopsFile, readClusterKey } from '../tasks/sops-files.ts';
import type { ClusterSops, SopsFile } from '../tasks/sops-files.ts';
import type { PgpPrivateKey } from '../keys/pgp.ts';
import { normalizeFingerprint } from '../sops/pgp.ts';
import { gitRemote, reachRoot, sopsAgeSecretFlag, splitBuild } from '../tasks/source.ts';
import type { FluxBuild } from '../tasks/source.ts';
import { HC_VAULT_SECRET, VAULT_TOKEN_KEY } from '../tasks/sops-hcvault-secret.ts';
import { tokenOpensClusterFile } from '../tasks/vault-preflight.ts';
import type { AgeSecretState, FluxObjectState, GpgSecretState, LiveState, Observed, VaultSecretState } from './observed.ts';

const FLUX_NAMESPACE = 'flux-system';
const SYNC_NAME = 'flux-system';
const FLUX_LABEL = 'app.kubernetes.io/part-of=flux';
const GIT_REPOSITORY = { apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'GitRepository' };
const KUSTOMIZATION = { apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization' };
const CRD = { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition' };
const DEPLOYMENT = { apiVersion: 'apps/v1', kind: 'Deployment' };
/** What the flux-system sync cannot do without, whatever else the install has. */
const REQUIRED_CRDS = ['gitrepositories.source.toolkit.fluxcd.io', 'kustomizations.kustomize.toolkit.fluxcd.io'];
const REQUIRED_CONTROLLERS = ['source-controller', 'kustomize-controller'];

/**
 * Everything `diagnose` needs, read and never written: only GETs and LISTs against the API (no
 * Lease, no access review, no reconcile request), `git ls-remote`, and files of the checkout.
 * The API, Git, the local key and .sops.yaml are each recorded as unobservable when they are, so one
 * of them failing does not end the whole report.
 */
export async function observe(ctx: TaskContext): Promise<Observed> {
  const keyType = ctx.cluster.pgpKey ? 'pgp' : 'age';
  const checkout = readCheckout(ctx);
  const [api, sopsRule, localKey, reached, build, cloudKey] = await Promise.all([
    observeApi(ctx),
    clusterRuleRecipients(ctx.paths.sopsConfig, ctx.paths.cluster, ctx.cluster, keyType).then(
      (recipients) => ({ recipients }),
      (e: unknown) => ({ error: problemOf(e, 'fix .sops.yaml (`fluxstrap init` writes the rule)') }),
    ),
    readClusterKey(ctx).then(
      (key) => ({ recipients: key.names }),
      // No key on this machine is normal for an operator who only looks: nothing to compare.
      (e: unknown) =>
        isFluxstrapError(e) && e.code === 'E_NOT_FOUND'
          ? undefined
          : {
              error: problemOf(
                e,
                keyType === 'pgp'
                  ? 'check sopsKey.pgp in fluxstrap.yaml'
                  : 'check where the age key comes from (fluxstrap.yaml ageKey, --age-key-file, SOPS_AGE_KEY)',
              ),
            },
    ),
    observeReach(ctx, checkout),
    checkout.build,
    observeCloudKey(ctx, checkout),
  ]);
  return {
    cluster: { name: ctx.cluster.name, path: ctx.cluster.path },
    keyType,
    api: 'error' in api ? { error: api.error } : { server: api.kube.server, context: api.kube.context, version: api.version },
    ...('kube' in api
      ? {
          live: await observeLive(ctx, api.kube, checkout).catch((e: unknown) => ({
            error: problemOf(e, 'use a kube context that may read Flux objects, CRDs, Deployments and Secrets'),
          })),
        }
      : {}),
    sopsRule,
    ...(localKey ? { localKey } : {}),
    ...reached,
    ...('error' in build ? { build } : {}),
    ...(cloudKey ? { cloudKey } : {}),
    ageSecretInUse: usesAgeSecret(ctx.cluster, built(build)),
  };
}

/** The cloud key of fluxstrap.yaml against the checkout (the same checks as preflight's). */
async function observeCloudKey(ctx: TaskContext, checkout: Checkout): Promise<Observed['cloudKey']> {
  const key = ctx.cluster.cloudKey;
  if (!key) return undefined;
  const name = describeKey(key);
  try {
    return { name, ...(await cloudKeyCheck(ctx.cluster, key, ctx.paths.repo, built(await checkout.build), ctx.env)) };
  } catch (e) {
    return { name, error: problemOf(e, 'fix .sops.yaml and the files the cluster reaches') };
  }
}

/** What the checkout's cluster reaches, with the rule of each SOPS file. */
async function observeReach(ctx: TaskContext, checkout: Checkout): Promise<Pick<Observed, 'files' | 'reach'>> {
  try {
    const { reach, files } = await checkout.sops();
    const keyType = ctx.cluster.pgpKey ? 'pgp' : 'age';
    const config = await loadConfig(ctx.paths.sopsConfig).catch(() => undefined);
    return {
      files: files.map((f) => {
        const rule = config ? matchRule(config, f.file, ctx.paths.repo) : undefined;
        return {
          name: f.name,
          recipients: f.recipients,
          by: reachersOf(reach, f.name).map((k) => describeKustomization(k)),
          ...(rule
            ? {
                rule: rule.keyGroups
                  .flat()
                  .filter((k) => k.type === keyType)
                  .map((k) => (keyType === 'pgp' ? normalizeFingerprint(stanzaName(k)) : stanzaName(k))),
              }
            : {}),
        };
      }),
      reach: {
        kustomizations: reach.kustomizations.map((k) => ({ ref: describeKustomization(k), path: k.path || '.', sops: k.sops.map((s) => s.file) })),
        notChecked: reach.notChecked.map((u) => `${u.what} (${formatLocation(u.at)})`),
        issues: reach.issues.map((u) => `${u.what} (${formatLocation(u.at)})`),
        // The sync Kustomization's own decryption is the `decryption` finding's, from the live object.
        undecrypted: decryptionFindings(reach)
          .filter((d) => d.kustomization !== reach.kustomizations[0])
          .map((d) => decryptionProblem(d, ctx.cluster.name)),
      },
    };
  } catch (e) {
    return { files: [], reach: { error: problemOf(e, 'fix the repository so that Flux can build the cluster folder') } };
  }
}

/**
 * The checkout's flux-system build and what its cluster reaches, with its SOPS files read: once
 * per report, handed to the observations that need them (no state kept between reports).
 */
interface Checkout {
  build: Promise<LocalBuild>;
  sops(): Promise<ClusterSops>;
}

function readCheckout(ctx: TaskContext): Checkout {
  // Always awaited by observe(), and it reports its own failures, so it starts at once.
  const build = buildFluxSystem(ctx);
  let sops: Promise<ClusterSops> | undefined;
  return {
    build,
    sops: () =>
      (sops ??= build.then((b) => {
        const local = built(b);
        return clusterSops(ctx.paths.repo, reachRoot(ctx.cluster.path, local));
      })),
  };
}

/** The checkout's flux-system build: absent without a flux-system folder; its error when it does not build. */
type LocalBuild = { build?: FluxBuild | undefined } | { error: Problem };

/** The checkout's flux-system build. A folder that does not build is reported, never taken for none. */
async function buildFluxSystem(ctx: TaskContext): Promise<LocalBuild> {
  if (!(await exists(ctx.paths.fluxSystem))) return {};
  try {
    const { kustomizeBuild } = await import('../adapters/kustomize.ts');
    return { build: splitBuild(await kustomizeBuild(ctx.paths.fluxSystem)) };
  } catch (e) {
    return { error: problemOf(e, `fix ${ctx.cluster.path}/flux-system so that it builds (kubectl kustomize): Flux applies its own sync from it`) };
  }
}

const built = (b: LocalBuild): FluxBuild | undefined => ('build' in b ? b.build : undefined);

async function observeApi(ctx: TaskContext) {
  try {
    const kube = await ctx.kube();
    return { kube, version: await kube.serverVersion() };
  } catch (e) {
    return { error: problemOf(e, 'check that the cluster is running and that --context/--kubeconfig point at it') };
  }
}

function fluxObjectState(obj: KubeObject, revisionOf: (o: KubeObject) => string | undefined): FluxObjectState {
  const ready = conditionOf(obj, 'Ready');
  const revision = revisionOf(obj);
  return {
    ref: describeRef(refOf(obj)),
    suspended: (obj.spec as { suspend?: boolean } | undefined)?.suspend === true,
    ...(ready ? { ready } : {}),
    ...(revision !== undefined ? { revision } : {}),
  };
}

async function observeLive(ctx: TaskContext, kube: KubeAdapter, checkout: Checkout): Promise<LiveState> {
  const sync = (type: typeof GIT_REPOSITORY) => kube.get({ ...type, namespace: FLUX_NAMESPACE, name: SYNC_NAME });
  const [crds, controllers, repo, ks, remote, expectedSecretName, decrypting, kustomizeController] = await Promise.all([
    observeCrds(kube),
    observeControllers(kube),
    sync(GIT_REPOSITORY),
    sync(KUSTOMIZATION),
    remoteHead(ctx),
    expectedDecryptionSecret(checkout.build),
    decryptingKustomizations(kube),
    kube.get({ ...DEPLOYMENT, namespace: FLUX_NAMESPACE, name: 'kustomize-controller' }),
  ]);
  const controllerSecret = sopsAgeSecretFlag(kustomizeController);
  const ksSpec = ks?.spec as { decryption?: { provider?: string; secretRef?: { name?: string } } } | undefined;
  const namespace = ks?.metadata.namespace ?? FLUX_NAMESPACE;
  const secretName = ksSpec?.decryption?.secretRef?.name ?? controllerSecret ?? expectedSecretName ?? 'sops-age';
  const repoSpec = repo?.spec as { url?: string; ref?: { branch?: string } } | undefined;
  return {
    crds,
    controllers,
    ...(repo
      ? {
          gitRepository: {
            ...fluxObjectState(repo, artifactRevision),
            ...(repoSpec?.url !== undefined ? { url: repoSpec.url } : {}),
            ...(repoSpec?.ref?.branch !== undefined ? { branch: repoSpec.ref.branch } : {}),
          },
        }
      : {}),
    remote,
    ...(ks
      ? {
          kustomization: {
            ...fluxObjectState(ks, lastAppliedRevision),
            namespace,
            ...(ksSpec?.decryption ? { decryption: ksSpec.decryption } : {}),
          },
        }
      : {}),
    ...(expectedSecretName !== undefined ? { expectedSecretName } : {}),
    ...(controllerSecret !== undefined ? { controllerSecret } : {}),
    ...(ctx.cluster.pgpKey
      ? {
          gpgSecret: await observeGpgSecret(
            kube,
            namespace,
            ksSpec?.decryption?.secretRef?.name ?? expectedSecretName ?? 'sops-gpg',
            await checkout.sops().then(
              (r) => r.files,
              () => [],
            ),
          ),
        }
      : ctx.cluster.vault
        ? { vaultSecret: await observeVaultSecret(ctx, kube, namespace, ksSpec?.decryption?.secretRef?.name ?? expectedSecretName ?? HC_VAULT_SECRET) }
        : { ageSecret: await observeAgeSecret(kube, namespace, secretName) }),
    decrypting,
  };
}

async function observeCrds(kube: KubeAdapter): Promise<LiveState['crds']> {
  const labelled = await kube.list(CRD.apiVersion, CRD.kind, { labelSelector: FLUX_LABEL });
  const names = [...new Set([...REQUIRED_CRDS, ...labelled.map((c) => c.metadata.name)])].sort();
  return names.map((name) => ({ name, state: crdEstablished(labelled.find((c) => c.metadata.name === name)) }));
}

async function observeControllers(kube: KubeAdapter): Promise<LiveState['controllers']> {
  const labelled = await kube.list(DEPLOYMENT.apiVersion, DEPLOYMENT.kind, { namespace: FLUX_NAMESPACE, labelSelector: FLUX_LABEL });
  const names = [...new Set([...REQUIRED_CONTROLLERS, ...labelled.map((d) => d.metadata.name)])].sort();
  return names.map((name) => {
    const d = labelled.find((o) => o.metadata.name === name);
    return { namespace: FLUX_NAMESPACE, name, state: deploymentAvailable(d), conditions: formatConditions(d) };
  });
}

async function remoteHead(ctx: TaskContext): Promise<LiveState['remote']> {
  if (ctx.cluster.git.auth.type === 'none' && ctx.cluster.git.auth.sopsFile === undefined) {
    return { skipped: { what: 'no Git credentials configured for this cluster', fix: `configure clusters.${ctx.cluster.name}.git.auth in fluxstrap.yaml` } };
  }
  let remote;
  try {
    remote = await gitRemote(ctx);
  } catch (e) {
    return { skipped: problemOf(e, 'configure the Git URL and credentials in fluxstrap.yaml') };
  }
  try {
    const { remoteBranchHead } = await import('../adapters/git.ts');
    return { head: await remoteBranchHead(remote, ctx.cluster.git.branch) };
  } catch (e) {
    return { error: problemOf(e, 'check the Git URL and credentials in fluxstrap.yaml') };
  }
}

/** The secretRef of the decryption patch in the checkout's flux-system folder. */
async function expectedDecryptionSecret(local: Promise<LocalBuild>): Promise<string | undefined> {
  // A checkout without flux-system/ (or one kustomize cannot build) leaves only the live object to judge.
  const ks = built(await local)?.sync.kustomization;
  return (ks?.spec as { decryption?: { secretRef?: { name?: string } } } | undefined)?.decryption?.secretRef?.name;
}

/** The Kustomizations in every namespace that decrypt (the adapter lists one namespace at a time). */
async function decryptingKustomizations(kube: KubeAdapter): Promise<FluxObjectState[]> {
  if (!(await kube.hasKind(KUSTOMIZATION.apiVersion, KUSTOMIZATION.kind))) return [];
  const namespaces = await kube.list('v1', 'Namespace');
  const lists = await Promise.all(namespaces.map((ns) => kube.list(KUSTOMIZATION.apiVersion, KUSTOMIZATION.kind, { namespace: ns.metadata.name })));
  return lists
    .flat()
    .filter((k) => (k.spec as { decryption?: unknown } | undefined)?.decryption !== undefined)
    .map((k) => fluxObjectState(k, lastAppliedRevision));
}

/** The cluster's own token, tried against the working tree's files; it never leaves this function. */
async function observeVaultSecret(ctx: TaskContext, kube: KubeAdapter, namespace: string, name: string): Promise<VaultSecretState> {
  const ref = { apiVersion: 'v1', kind: 'Secret', namespace, name };
  const secret = await kube.get(ref);
  const encoded = ((secret?.data ?? {}) as Record<string, string>)[VAULT_TOKEN_KEY];
  const token = encoded === undefined ? '' : Buffer.from(encoded, 'base64').toString('utf8').trim();
  const state: VaultSecretState = { ref: describeRef(ref), exists: secret !== undefined, hasToken: token !== '' };
  if (token === '') return state;
  const at = { repoDir: ctx.paths.repo, clusterDir: ctx.paths.cluster, fluxSystemDir: ctx.paths.fluxSystem };
  return { ...state, proof: await tokenOpensClusterFile(ctx, token, `${describeRef(ref)} (${VAULT_TOKEN_KEY})`, at) };
}

async function observeAgeSecret(kube: KubeAdapter, namespace: string, name: string): Promise<AgeSecretState> {
  const ref = { apiVersion: 'v1', kind: 'Secret', namespace, name };
  const secret = await kube.get(ref);
  const data = (secret?.data ?? {}) as Record<string, string>;
  const keys = Object.keys(data).sort();
  const ageKeys = keys.filter((k) => k.endsWith('.agekey'));
  const recipients: string[] = [];
  const unreadable: string[] = [];
  for (const k of ageKeys) {
    try {
      // The identities stay in this loop: only the recipients derived from them leave it.
      const ids = await parseAgeKeyFile(Buffer.from(data[k] ?? '', 'base64').toString('utf8'), k, recipientOf);
      recipients.push(...ids.map((i) => i.recipient));
    } catch (e) {
      unreadable.push(`${k}: ${problemOf(e, '').what}`);
    }
  }
  return { ref: describeRef(ref), exists: secret !== undefined, ageKeys, otherKeys: keys.filter((k) => !k.endsWith('.agekey')), recipients, unreadable };
}

/**
 * The sops-gpg Secret as kustomize-controller reads it: the `.asc` keys it imports, each a private
 * key it can use, and those keys tried on the SOPS files the cluster reaches. The private keys stay
 * in this function: only fingerprints and file names leave it.
 */
async function observeGpgSecret(kube: KubeAdapter, namespace: string, name: string, files: SopsFile[]): Promise<GpgSecretState> {
  const ref = { apiVersion: 'v1', kind: 'Secret', namespace, name };
  const secret = await kube.get(ref);
  const data = (secret?.data ?? {}) as Record<string, string>;
  const keys = Object.keys(data).sort();
  const ascKeys = keys.filter((k) => k.endsWith('.asc'));
  const { readPgpPrivateKey } = await import('../keys/pgp.ts');
  const opened: PgpPrivateKey[] = [];
  const unreadable: string[] = [];
  for (const k of ascKeys) {
    try {
      opened.push(await readPgpPrivateKey(Buffer.from(data[k] ?? '', 'base64').toString('utf8'), k));
    } catch (e) {
      unreadable.push(`${k}: ${problemOf(e, '').what}`);
    }
  }
  const closed: string[] = [];
  if (opened.length > 0) {
    const key = { age: [], pgpFiles: opened.map((k) => ({ armored: k.armored, source: k.source })) };
    for (const f of files) {
      try {
        await decryptSopsFile(f, key);
      } catch (e) {
        if (!isFluxstrapError(e) || e.code !== 'E_DECRYPT') throw e;
        closed.push(f.name);
      }
    }
  }
  return {
    ref: describeRef(ref),
    exists: secret !== undefined,
    ascKeys,
    otherKeys: keys.filter((k) => !k.endsWith('.asc')),
    fingerprints: opened.map((k) => k.fingerprint),
    unreadable,
    tried: opened.length > 0 ? files.length : 0,
    closed,
  };
}
