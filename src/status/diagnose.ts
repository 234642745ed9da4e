import type { Condition } from '../adapters/kube/port.ts';
import { versionProblem } from '../tasks/preflight.ts';
import type { AgeSecretState, FluxObjectState, GpgSecretState, LiveState, Observed, VaultSecretState } from './observed.ts';

export type Status = 'ok' | 'warn' | 'fail';

export interface Finding {
  /** Stable name of the check, for scripts: `api`, `controller`, `sops-age-secret`… */
  check: string;
  status: Status;
  message: string;
  /** How to fix it; absent on ok findings. */
  hint?: string;
}

/** Flux reports Kubernetes versions older than this as unsupported (as preflight does). */
const MIN_KUBERNETES = '1.32';
/** How kustomize-controller words a failed decryption in its Ready condition. */
const DECRYPTION_ERROR = /decrypt|sops|age identit|no identity matched/i;

const ok = (check: string, message: string): Finding => ({ check, status: 'ok', message });
const bad = (check: string, status: Exclude<Status, 'ok'>, message: string, hint: string): Finding => ({ check, status, message, hint });
const short = (revision: string | undefined) => revision?.replace(/(sha1:[0-9a-f]{12})[0-9a-f]+/, '$1') ?? 'no revision';
const why = (c: Condition | undefined) => (c ? `${c.reason ?? c.status}${c.message ? `: ${c.message}` : ''}` : 'no Ready condition yet');
const list = (xs: string[]) => (xs.length > 0 ? xs.join(', ') : 'none');

/**
 * Pure: every finding about the cluster's Flux + SOPS setup, in the order an operator fixes them
 * (API, install, sync, decryption key, files). A finding whose cause another finding already
 * names (e.g. the Kustomization when the API is down) is left out rather than repeated.
 */
export function diagnose(o: Observed): Finding[] {
  const out: Finding[] = [];
  if ('error' in o.api) {
    out.push(bad('api', 'fail', `Kubernetes API unreachable: ${o.api.error.what}`, o.api.error.fix));
  } else {
    const { version, server } = o.api;
    const old = versionProblem(version.gitVersion, version.major, version.minor, MIN_KUBERNETES);
    out.push(old ? bad('api', 'warn', old.what, old.fix) : ok('api', `Kubernetes ${version.gitVersion} at ${server} (context ${o.api.context})`));
  }
  if (o.live && 'error' in o.live) out.push(bad('cluster', 'fail', `cannot read the cluster: ${o.live.error.what}`, o.live.error.fix));
  const live = o.live && !('error' in o.live) ? o.live : undefined;
  if (live)
    out.push(
      ...installFindings(live),
      ...syncFindings(live, o.ageSecretInUse !== false),
      ...(live.gpgSecret
        ? gpgSecretFindings(live.gpgSecret)
        : live.vaultSecret
          ? vaultSecretFindings(live.vaultSecret)
          : live.ageSecret && (o.ageSecretInUse !== false || live.ageSecret.exists)
            ? ageSecretFindings(live.ageSecret)
            : []),
    );
  if (o.cloudKey) out.push(...cloudKeyFindings(o.cloudKey));
  if (o.build) out.push(bad('flux-system-build', 'fail', `${o.cluster.path}/flux-system does not build: ${o.build.error.what}`, o.build.error.fix));
  out.push(...reachFindings(o));
  // With Vault transit the cluster holds no key to compare with .sops.yaml and the local one.
  if (!live?.vaultSecret) out.push(...keyFindings(o, live));
  if (live) out.push(...decryptingFindings(live.decrypting));
  return out;
}

/** What the cluster reaches, per Kustomization, and what could not be followed. */
function reachFindings(o: Observed): Finding[] {
  if ('error' in o.reach) return [bad('sops-reach', 'warn', `cannot tell which files the cluster reaches: ${o.reach.error.what}`, o.reach.error.fix)];
  const r = o.reach;
  const out: Finding[] = [];
  const reaching = r.kustomizations.filter((k) => k.sops.length > 0);
  out.push(
    reaching.length === 0
      ? bad(
          'sops-reach',
          'warn',
          `the cluster reaches no SOPS-encrypted file (${r.kustomizations.map((k) => `${k.ref} → ${k.path}`).join(', ')})`,
          'nothing decrypts yet; encrypt Secrets with `fluxstrap encrypt` in a folder a Kustomization applies',
        )
      : ok('sops-reach', reaching.map((k) => `${k.ref} → ${k.path}: ${k.sops.join(', ')}`).join('; ')),
  );
  for (const u of r.notChecked)
    out.push(bad('sops-reach', 'warn', `not checked: ${u}`, "check that source's encrypted files by hand (fluxstrap check --key-file)"));
  for (const u of r.issues) out.push(bad('sops-reach', 'warn', u, 'Flux fails to build what this refers to as well: fix the reference'));
  for (const p of r.undecrypted) out.push(bad('kustomization-decryption', 'fail', p.what, p.fix));
  return out;
}

function installFindings(l: LiveState): Finding[] {
  const out: Finding[] = [];
  const notEstablished = l.crds.filter((c) => !c.state.done);
  out.push(
    notEstablished.length > 0
      ? bad(
          'crds',
          'fail',
          `Flux CRDs not established: ${notEstablished.map((c) => `${c.name} (${c.state.reason})`).join(', ')}`,
          'run `fluxstrap bootstrap` to install the Flux components',
        )
      : ok('crds', `${l.crds.length} Flux CRDs established`),
  );
  for (const c of l.controllers) {
    const ref = `Deployment ${c.namespace}/${c.name}`;
    out.push(
      c.state.done
        ? ok('controller', `${ref} available`)
        : bad(
            'controller',
            'fail',
            `${ref} is not available: ${c.state.reason}; conditions: ${c.conditions}`,
            c.state.reason === 'does not exist'
              ? 'run `fluxstrap bootstrap` to install it'
              : `kubectl -n ${c.namespace} describe deployment ${c.name} and read its Pods' logs`,
          ),
    );
  }
  return out;
}

/** Ready, suspended or failing, the same way for the GitRepository and the Kustomization. */
function readiness(check: string, obj: FluxObjectState | undefined, kind: string, what: string): Finding {
  if (!obj) return bad(check, 'fail', `${kind} flux-system/flux-system does not exist`, 'run `fluxstrap bootstrap`');
  if (obj.suspended)
    return bad(check, 'warn', `${obj.ref} is suspended`, `flux resume ${kind === 'GitRepository' ? 'source git' : 'kustomization'} flux-system`);
  if (obj.ready?.status === 'True') return ok(check, `${obj.ref} Ready, ${what} ${short(obj.revision)}`);
  if (obj.ready?.status === 'False') {
    return bad(check, 'fail', `${obj.ref} not Ready: ${why(obj.ready)}`, `kubectl -n flux-system describe ${kind.toLowerCase()} flux-system for events`);
  }
  // Every interval brings a reconcile; one in progress is news only if none ever succeeded.
  if (obj.revision !== undefined) return ok(check, `${obj.ref} reconciling, ${what} ${short(obj.revision)} before`);
  return bad(check, 'warn', `${obj.ref} is reconciling for the first time (${why(obj.ready)})`, 'run status again in a minute');
}

/** fluxstrap.yaml `sopsKey`: what held, what failed, and what could not be checked (a service without a client). */
function cloudKeyFindings(c: NonNullable<Observed['cloudKey']>): Finding[] {
  if ('error' in c) return [bad('sops-key', 'fail', `cannot check the ${c.name}: ${c.error.what}`, c.error.fix)];
  return [
    ...c.passed.map((m) => ok('sops-key', m)),
    ...c.problems.map((p) => bad('sops-key', 'fail', p.what, p.fix)),
    ...c.notes.map((n) => bad('sops-key', 'warn', n.replace(/^warning: /, ''), 'check the key with sops or the cloud console where the service is reachable')),
  ];
}

function syncFindings(l: LiveState, ageSecretInUse = true): Finding[] {
  const out: Finding[] = [readiness('git-repository', l.gitRepository, 'GitRepository', 'revision')];
  const at = /@sha1:([0-9a-f]+)$/.exec(l.gitRepository?.revision ?? '')?.[1];
  const branch = l.gitRepository?.branch ?? 'the branch';
  if ('skipped' in l.remote) {
    out.push(bad('git-head', 'warn', `remote HEAD not checked: ${l.remote.skipped.what}`, l.remote.skipped.fix));
  } else if ('error' in l.remote) {
    out.push(bad('git-head', 'warn', `remote HEAD not checked: ${l.remote.error.what}`, l.remote.error.fix));
  } else if (at !== undefined && at !== l.remote.head) {
    out.push(
      bad(
        'git-head',
        'warn',
        `GitRepository is at ${at.slice(0, 12)}, ${branch} on the Git server is at ${l.remote.head.slice(0, 12)}`,
        'Flux fetches once per interval; `flux reconcile source git flux-system` fetches now',
      ),
    );
  } else if (at !== undefined) {
    out.push(ok('git-head', `GitRepository is at the head of ${branch} (${at.slice(0, 12)})`));
  }

  const ks = l.kustomization;
  out.push(readiness('kustomization', ks, 'Kustomization', 'applied'));
  if (!ks) return out;
  const d = ks.decryption;
  const want = l.expectedSecretName;
  if (d?.provider !== 'sops') {
    out.push(
      bad(
        'decryption',
        'fail',
        d ? `${ks.ref} decrypts with provider ${d.provider ?? '(none)'}, not sops` : `${ks.ref} has no spec.decryption`,
        'put `decryption: {provider: sops, secretRef: {name: sops-age}}` in the flux-system patch (`fluxstrap init`), push, then `fluxstrap bootstrap`',
      ),
    );
  } else if (d.secretRef?.name === undefined && l.controllerSecret !== undefined) {
    out.push(ok('decryption', `${ks.ref} decrypts with sops, the key Secret ${l.controllerSecret} from kustomize-controller --sops-age-secret`));
  } else if (d.secretRef?.name === undefined && !ageSecretInUse) {
    out.push(ok('decryption', `${ks.ref} decrypts with sops through kustomize-controller's cloud identity (fluxstrap.yaml sopsKey), no key Secret`));
  } else if (d.secretRef?.name === undefined) {
    out.push(
      bad(
        'decryption',
        'fail',
        `${ks.ref} decryption names no secretRef`,
        'add `secretRef: {name: sops-age}` to the decryption patch, or give kustomize-controller --sops-age-secret (`fluxstrap init --decryption controller`)',
      ),
    );
  } else if (want !== undefined && want !== d.secretRef.name) {
    out.push(
      bad(
        'decryption',
        'fail',
        `${ks.ref} decrypts with Secret ${d.secretRef.name}, the repository's decryption patch names ${want}`,
        'push the repository and let Flux apply it, or run `fluxstrap bootstrap`',
      ),
    );
  } else {
    out.push(ok('decryption', `${ks.ref} decrypts with sops, secretRef ${d.secretRef.name}`));
  }
  return out;
}

function vaultSecretFindings(s: VaultSecretState): Finding[] {
  const restore = 'run `fluxstrap bootstrap` to create it from the variable sopsKey.vault.tokenEnv names';
  if (!s.exists) return [bad('sops-hcvault-secret', 'fail', `${s.ref} does not exist: Flux cannot decrypt anything`, restore)];
  if (!s.hasToken)
    return [
      bad(
        'sops-hcvault-secret',
        'fail',
        `${s.ref} has no sops.vault-token: kustomize-controller has no Vault token`,
        `${restore.replace('create', 'replace')} with --rotate-secrets`,
      ),
    ];
  const p = s.proof;
  if (p && 'problem' in p) return [bad('sops-hcvault-secret', 'fail', p.problem.what, p.problem.fix)];
  if (p && 'opened' in p) return [ok('sops-hcvault-secret', `${s.ref} holds a Vault token that opens ${p.opened}`)];
  return [ok('sops-hcvault-secret', `${s.ref} holds a Vault token (no file under the cluster path names a Vault key yet)`)];
}

function ageSecretFindings(s: AgeSecretState): Finding[] {
  const restore = 'run `fluxstrap bootstrap` to create it from your age key';
  if (!s.exists) return [bad('sops-age-secret', 'fail', `${s.ref} does not exist: Flux cannot decrypt anything`, restore)];
  const out: Finding[] = [];
  if (s.ageKeys.length === 0) {
    out.push(
      bad(
        'sops-age-secret',
        'fail',
        `${s.ref} has no key ending in .agekey (it has ${list(s.otherKeys)}): kustomize-controller imports none of it`,
        `rename the key to age.agekey, or ${restore.replace('create', 'replace')} with --rotate-secrets`,
      ),
    );
  } else if (s.unreadable.length > 0) {
    out.push(
      bad(
        'sops-age-secret',
        'fail',
        `${s.ref} holds values that are not age identities (${s.unreadable.join('; ')})`,
        'replace it with `fluxstrap bootstrap --rotate-secrets`',
      ),
    );
  } else if (s.otherKeys.length > 0) {
    out.push(
      bad(
        'sops-age-secret',
        'warn',
        `${s.ref} has keys kustomize-controller ignores (${list(s.otherKeys)}): only *.agekey are imported`,
        'rename them to end in .agekey, or remove them',
      ),
    );
  } else {
    out.push(ok('sops-age-secret', `${s.ref} holds ${s.recipients.length} age identit${s.recipients.length === 1 ? 'y' : 'ies'} (${list(s.recipients)})`));
  }
  return out;
}

/** The sops-gpg Secret: present, an `.asc` key kustomize-controller imports, a key that opens the cluster's files. */
function gpgSecretFindings(s: GpgSecretState): Finding[] {
  const restore = 'run `fluxstrap bootstrap` to create it from sopsKey.pgp';
  if (!s.exists) return [bad('sops-gpg-secret', 'fail', `${s.ref} does not exist: Flux cannot decrypt anything`, restore)];
  if (s.ascKeys.length === 0) {
    return [
      bad(
        'sops-gpg-secret',
        'fail',
        `${s.ref} has no key ending in .asc (it has ${list(s.otherKeys)}): kustomize-controller imports none of it`,
        `${restore.replace('create', 'replace')} with --rotate-secrets`,
      ),
    ];
  }
  if (s.unreadable.length > 0) {
    return [
      bad(
        'sops-gpg-secret',
        'fail',
        `${s.ref} holds keys kustomize-controller cannot use (${s.unreadable.join('; ')})`,
        'replace it with `fluxstrap bootstrap --rotate-secrets` (an unprotected private key)',
      ),
    ];
  }
  if (s.tried > 0 && s.closed.length === s.tried) {
    return [
      bad(
        'sops-gpg-secret',
        'fail',
        `${s.ref} holds PGP key ${list(s.fingerprints)}, which opens none of the ${s.tried} SOPS file(s) the cluster reaches`,
        'put the key .sops.yaml names into the cluster (`fluxstrap bootstrap --rotate-secrets`), or re-encrypt the files for this key with `fluxstrap updatekeys`',
      ),
    ];
  }
  return [
    ok(
      'sops-gpg-secret',
      `${s.ref} holds PGP key ${list(s.fingerprints)}${s.tried > 0 ? `, which opens ${s.tried - s.closed.length} of the ${s.tried} SOPS file(s) the cluster reaches` : ''}`,
    ),
  ];
}

/** The cluster's key against `.sops.yaml`, the local key and the files: the classic mismatch. */
function keyFindings(o: Observed, live: LiveState | undefined): Finding[] {
  const out: Finding[] = [];
  const secret = o.keyType === 'pgp' ? live?.gpgSecret : live?.ageSecret;
  const names = secret === undefined ? [] : 'fingerprints' in secret ? secret.fingerprints : secret.recipients;
  const kind = o.keyType === 'pgp' ? 'PGP' : 'age';
  // Without keys in the cluster there is no cluster key to compare; its finding says why.
  const clusterKey = secret?.exists && names.length > 0 ? names : undefined;
  const ruled = o.files.filter((f) => f.rule !== undefined);
  if (clusterKey && o.files.length > 0) {
    // The rules that govern the files the cluster reaches, wherever they are.
    const outside = o.files.filter((f) => !f.rule?.some((r) => clusterKey.includes(r)));
    out.push(
      outside.length === 0
        ? ok('sops-config', `the cluster key is a recipient of the .sops.yaml rule of each of the ${ruled.length} SOPS file(s) the cluster reaches`)
        : bad(
            'sops-config',
            'fail',
            `cluster key does not match .sops.yaml recipients for ${outside.map((f) => `${f.name} (${f.rule ? `rule names ${list(f.rule)}` : 'no rule matches'})`).join(', ')} (cluster: ${list(clusterKey)})`,
            'put the key .sops.yaml names into the cluster (`fluxstrap bootstrap --rotate-secrets` with that key), or add the cluster key to .sops.yaml (`fluxstrap init`) and run `fluxstrap updatekeys`',
          ),
    );
  } else if ('error' in o.sopsRule) {
    out.push(bad('sops-config', 'fail', o.sopsRule.error.what, o.sopsRule.error.fix));
  } else if (clusterKey) {
    const rule = o.sopsRule.recipients;
    out.push(
      clusterKey.some((r) => rule.includes(r))
        ? ok('sops-config', `the cluster key is a recipient of the .sops.yaml rule for ${o.cluster.path}`)
        : bad(
            'sops-config',
            'fail',
            `cluster key does not match .sops.yaml recipients (cluster: ${list(clusterKey)}; .sops.yaml rule for ${o.cluster.path}: ${list(rule)})`,
            'put the key .sops.yaml names into the cluster (`fluxstrap bootstrap --rotate-secrets` with that key), or add the cluster key to .sops.yaml and run `fluxstrap updatekeys`',
          ),
    );
  }
  if (o.localKey && 'error' in o.localKey) {
    out.push(bad('local-key', 'warn', `cannot read the local ${kind} key: ${o.localKey.error.what}`, o.localKey.error.fix));
  } else if (o.localKey && clusterKey) {
    const local = o.localKey.recipients;
    const same = local.length === clusterKey.length && local.every((r) => clusterKey.includes(r));
    out.push(
      same
        ? ok('local-key', `the local ${kind} key is the cluster key`)
        : bad(
            'local-key',
            'warn',
            `the local ${kind} key (${list(local)}) differs from the cluster key (${list(clusterKey)})`,
            `use the key the cluster has (${o.keyType === 'pgp' ? 'sopsKey.pgp' : '--age-key-file'}), or rotate the cluster to yours with \`fluxstrap bootstrap --rotate-secrets\``,
          ),
    );
  }
  if (clusterKey) {
    // A PGP file's recipients are not in `recipients` (age only): the Secret's key was tried on each instead.
    const closed =
      secret && 'closed' in secret
        ? o.files.filter((f) => secret.closed.includes(f.name))
        : o.files.filter((f) => !f.recipients.some((r) => clusterKey.includes(r)));
    out.push(
      closed.length > 0
        ? bad(
            'sops-files',
            'fail',
            `the cluster key cannot open ${closed.length} of ${o.files.length} SOPS file(s) the cluster reaches: ${closed.map((f) => `${f.name} (${f.by.length > 0 ? `applied by ${f.by.join(', ')}; ` : ''}encrypted to ${list(f.recipients)})`).join(', ')}`,
            'add the cluster key to .sops.yaml and re-encrypt them with `fluxstrap updatekeys`',
          )
        : ok('sops-files', `the cluster key opens all ${o.files.length} SOPS file(s) the cluster reaches from ${o.cluster.path}`),
    );
  }
  return out;
}

function decryptingFindings(decrypting: FluxObjectState[]): Finding[] {
  const failing = decrypting.filter((k) => k.ready?.status === 'False' && DECRYPTION_ERROR.test(k.ready.message ?? ''));
  if (failing.length === 0) return [ok('kustomizations-decrypting', `${decrypting.length} Kustomization(s) with decryption, none failing to decrypt`)];
  return failing.map((k) =>
    bad(
      'kustomizations-decrypting',
      'fail',
      `${k.ref} fails to decrypt: ${why(k.ready)}`,
      'the Secret its decryption.secretRef names must hold an identity of a recipient the files are encrypted to',
    ),
  );
}
