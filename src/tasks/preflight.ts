import { join } from 'node:path';
import { yamlValues } from '../core/bounded-yaml.ts';
import { z } from 'zod';
import { exists, readTextIfExists } from '../adapters/files.ts';
import type { AccessCheck, KubeAdapter, KubeObject } from '../adapters/kube/port.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError, formatLocation, isFluxstrapError } from '../core/errors.ts';
import type { ErrorCode } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import type { AgeIdentity } from '../keys/age.ts';
import type { TaskContext } from './context.ts';
import { childDecryptionCommand, decryptionFindings, describeKustomization, reachersOf } from '../flux/reach.ts';
import type { DecryptionFinding, Reach } from '../flux/reach.ts';
import { clusterRuleRecipients, loadConfig, matchRule } from '../sops/config.ts';
import { stanzaName } from '../sops/metadata.ts';
import { cloudKeyCheck, usesAgeSecret } from './cloud-key.ts';
import type { Stanza } from '../sops/metadata.ts';
import { normalizeFingerprint } from '../sops/pgp.ts';
import { clusterSops, decryptSopsFile, findSopsFiles, readClusterKey } from './sops-files.ts';
import type { ClusterKey, SopsFile } from './sops-files.ts';
import { reachRoot } from './source.ts';
import { HC_VAULT_SECRET } from './sops-hcvault-secret.ts';
import { vaultKeyProblems } from './vault-preflight.ts';
import type { BootstrapSource, FluxBuild } from './source.ts';

const Params = z.strictObject({
  minKubernetes: z
    .string()
    .regex(/^\d+\.\d+$/)
    .default('1.32')
    .describe('Oldest Kubernetes minor version accepted (Flux v2.7 supports 1.32 and newer).'),
  scope: z
    .enum(['all', 'repository'])
    .default('all')
    .describe(
      '`all`: the API, its version, permissions, the SOPS key, and the repository at the commit bootstrapped; `repository`: only the repository (layout, sync objects, permissions for its build, the key against the SOPS files, Git access), and only when no earlier preflight of the run read it.',
    ),
  deferRead: z
    .boolean()
    .default(false)
    .describe(
      "When the repository cannot be read yet with a deploy key that the forge's deploy-key task, later in the playbook, would generate or register (SSH auth, git.provider github or gitea): check the rest and leave the repository to a later `preflight: { scope: repository }`.",
    ),
});
type Params = z.infer<typeof Params>;

/** What is wrong and how to fix it. */
export interface Problem {
  what: string;
  fix: string;
  /** The code of the failure behind it, when it came from one (E_GIT, E_KUBE...). */
  code?: ErrorCode;
}

interface PreflightFacts {
  problems: Problem[];
  notes: string[];
  /** --check, repository scope: the repository is read with a deploy key an earlier task would generate or register. */
  pending?: string;
}

export const problemOf = (e: unknown, fallbackFix: string): Problem => {
  if (!isFluxstrapError(e)) return { what: e instanceof Error ? e.message : String(e), fix: fallbackFix };
  const where = formatLocation(e.location);
  return { what: `${e.message}${where ? ` (${where})` : ''}`, fix: e.hint ?? fallbackFix, code: e.code };
};

/** Plural resource names of the kinds a Flux install holds (all regular English plurals). */
export function pluralOf(kind: string): string {
  const k = kind.toLowerCase();
  if (k.endsWith('y')) return `${k.slice(0, -1)}ies`;
  if (k.endsWith('s')) return `${k}es`;
  return `${k}s`;
}

/** The access a bootstrap needs: apply (create + patch) every kind it applies, and the Secrets. */
export function accessChecks(objects: readonly KubeObject[], namespace: string): AccessCheck[] {
  const seen = new Set<string>();
  const out: AccessCheck[] = [];
  const add = (c: AccessCheck) => {
    const key = `${c.verb} ${c.group} ${c.resource} ${c.namespace ?? ''}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(c);
    }
  };
  for (const o of [...objects, { apiVersion: 'v1', kind: 'Secret', metadata: { name: '', namespace } }]) {
    const group = o.apiVersion.includes('/') ? (o.apiVersion.split('/')[0] ?? '') : '';
    for (const verb of ['create', 'patch']) {
      add({ verb, group, resource: pluralOf(o.kind), ...(o.metadata.namespace !== undefined ? { namespace: o.metadata.namespace } : {}) });
    }
  }
  return out;
}

/** A preflight's verdict: no change when nothing is wrong, else one error listing every problem and its fix. */
export function failOnProblems(problems: readonly Problem[], what = 'preflight'): Change[] {
  if (problems.length === 0) return [];
  const [first] = problems;
  if (problems.length === 1 && first) throw new FluxstrapError(first.code ?? 'E_PRECONDITION', `${what}: ${first.what}`, { hint: first.fix });
  throw new FluxstrapError('E_PRECONDITION', `${what} found ${problems.length} problems: ${problems.map((q, i) => `(${i + 1}) ${q.what}`).join('; ')}`, {
    hint: problems.map((q, i) => `(${i + 1}) ${q.fix}`).join('; '),
  });
}

export function versionProblem(gitVersion: string, major: number, minor: number, min: string): Problem | undefined {
  const [wantMajor = 1, wantMinor = 0] = min.split('.').map(Number);
  if (Number.isNaN(major) || Number.isNaN(minor)) {
    return { what: `the API server reports no usable version (${gitVersion})`, fix: 'build kube-apiserver with version ldflags, or use a released Kubernetes' };
  }
  if (major < wantMajor || (major === wantMajor && minor < wantMinor)) {
    return { what: `Kubernetes ${gitVersion} is older than ${min}, the oldest this Flux supports`, fix: `upgrade the cluster to ${min} or newer` };
  }
  return undefined;
}

/** What every Flux install applies, whatever its build: the access checked while the build cannot be read yet. */
export const BASE_OBJECTS: readonly KubeObject[] = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'flux-system' } },
  { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: '' } },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: '' } },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: '' } },
  { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: '', namespace: 'flux-system' } },
];

/** The API and its version (unless `version` is undefined), and access to apply `objects`. */
async function kubeProblems(kube: KubeAdapter, objects: readonly KubeObject[], version: string | undefined, notes: string[]): Promise<Problem[]> {
  const problems: Problem[] = [];
  if (version !== undefined) {
    let server;
    try {
      server = await kube.serverVersion();
    } catch (e) {
      // Nothing else about the cluster can be learned.
      return [problemOf(e, 'check that the cluster is running and that --context/--kubeconfig point at it')];
    }
    notes.push(`Kubernetes ${server.gitVersion} at ${kube.server}`);
    const v = versionProblem(server.gitVersion, server.major, server.minor, version);
    if (v) problems.push(v);
  }
  try {
    const denied = (await kube.accessReview(accessChecks(objects, 'flux-system'))).filter((r) => !r.allowed);
    if (denied.length > 0) {
      const list = denied.map((d) => `${d.verb} ${d.group ? `${d.resource}.${d.group}` : d.resource}${d.namespace ? ` in ${d.namespace}` : ''}`);
      problems.push({
        what: `the kube context (${kube.context}) may not ${list.slice(0, 6).join(', ')}${list.length > 6 ? ` and ${list.length - 6} more` : ''}`,
        fix: 'bootstrap installs CRDs and cluster roles: use a context with cluster-admin rights',
      });
    }
  } catch (e) {
    problems.push(problemOf(e, 'use a context allowed to create SelfSubjectAccessReviews'));
  }
  return problems;
}

async function layoutProblems(ctx: TaskContext, src: BootstrapSource, build: FluxBuild): Promise<Problem[]> {
  const problems: Problem[] = [];
  const rel = (...parts: string[]) => join(ctx.cluster.path, ...parts);

  const rootFile = join(src.clusterDir, 'kustomization.yaml');
  const root = await readTextIfExists(rootFile);
  if (root !== undefined) {
    const resources = (yamlValues(root, rootFile)[0] as { resources?: unknown[] } | null)?.resources ?? [];
    const includes = resources.some((r) => typeof r === 'string' && r.replace(/^\.\//, '').replace(/\/$/, '') === 'flux-system');
    if (!includes) {
      problems.push({
        what: `${rel('kustomization.yaml')} does not list flux-system/: Flux would never apply its own manifests (upgrades and the decryption patch would not reach the cluster)`,
        fix: `add \`- flux-system\` under resources in ${rel('kustomization.yaml')}`,
      });
    }
  }

  const syncFile = join(src.fluxSystemDir, 'gotk-sync.yaml');
  const syncText = await readTextIfExists(syncFile);
  const handEdited =
    syncText !== undefined &&
    yamlValues(syncText, syncFile).some((d) => {
      const o = d as { kind?: string; spec?: { decryption?: unknown } } | null;
      return o?.kind === 'Kustomization' && o.spec?.decryption !== undefined;
    });
  if (handEdited) {
    problems.push({
      what: `${rel('flux-system', 'gotk-sync.yaml')} was edited by hand (spec.decryption): the file is generated, and regenerating it drops the decryption settings`,
      fix: `restore the generated gotk-sync.yaml and put decryption in a patch in ${rel('flux-system', 'kustomization.yaml')} (\`fluxstrap init\` writes it)`,
    });
  }

  const ksSpec = build.sync.kustomization.spec as { decryption?: { provider?: string }; path?: string } | undefined;
  // kustomize-controller's --sops-age-secret supplies a key, not decryption: the Kustomization still needs provider sops.
  if (ksSpec?.decryption?.provider !== 'sops' && !handEdited) {
    problems.push({
      what: `the flux-system build has no decryption: Kustomization flux-system lacks spec.decryption (provider sops)`,
      fix: `add to ${rel('flux-system', 'kustomization.yaml')} a patch \`op: add, path: /spec/decryption, value: {provider: sops, secretRef: {name: ${ctx.cluster.pgpKey ? 'sops-gpg' : ctx.cluster.vault ? HC_VAULT_SECRET : 'sops-age'}}}\` targeting kind Kustomization, name flux-system`,
    });
  }

  const inside = await findSopsFiles(src.fluxSystemDir, src.dir);
  if (inside.length > 0) {
    problems.push({
      what: `SOPS-encrypted files inside flux-system/ (${inside.map((f) => f.name).join(', ')}): bootstrap applies that folder before any decryption exists`,
      fix: 'move them to another folder of the cluster path (Flux decrypts them there)',
    });
  }

  const repo = build.sync.gitRepository.spec as { url?: string; ref?: { branch?: string } } | undefined;
  if (repo?.url !== src.remote.url) {
    problems.push({
      what: `GitRepository flux-system in ${rel('flux-system', 'gotk-sync.yaml')} pulls from ${repo?.url ?? 'nowhere'}, not from ${src.remote.url}`,
      fix: 'make fluxstrap.yaml (git.url) and gotk-sync.yaml agree (`fluxstrap init` regenerates gotk-sync.yaml)',
    });
  }
  if (repo?.ref?.branch !== src.branch) {
    problems.push({
      what: `GitRepository flux-system follows branch ${repo?.ref?.branch ?? '(none)'}, not ${src.branch}`,
      fix: 'make fluxstrap.yaml (git.branch) and gotk-sync.yaml agree',
    });
  }
  if ((ksSpec?.path ?? '').replace(/^\.\//, '').replace(/\/$/, '') !== ctx.cluster.path) {
    problems.push({
      what: `Kustomization flux-system reconciles ${ksSpec?.path ?? '(no path)'}, not ./${ctx.cluster.path}`,
      fix: 'make fluxstrap.yaml (path) and gotk-sync.yaml agree',
    });
  }
  return problems;
}

/**
 * Post-quantum age identities (age1pq…) decrypt only with kustomize-controller v1.9+ (Flux
 * v2.9+); older controllers fail every decryption with "no identity matched".
 */
export function postQuantumProblem(identities: Pick<AgeIdentity, 'postQuantum' | 'recipient'>[], components: KubeObject[]): Problem | undefined {
  if (!identities.some((i) => i.postQuantum)) return undefined;
  const controller = components.find((o) => o.kind === 'Deployment' && o.metadata.name === 'kustomize-controller');
  const image = /kustomize-controller:v(\d+)\.(\d+)/.exec(JSON.stringify(controller?.spec ?? {}));
  if (!image) return undefined;
  const [major, minor] = [Number(image[1]), Number(image[2])];
  if (major > 1 || (major === 1 && minor >= 9)) return undefined;
  return {
    what: `the age key is post-quantum (age1pq…) but the flux-system build runs kustomize-controller v${major}.${minor}, which cannot decrypt with it (v1.9, Flux v2.9, is the first that can)`,
    fix: 'upgrade Flux to v2.9 or newer in gotk-components.yaml, or use a classic X25519 key (`fluxstrap keys new` without --pq)',
  };
}

/** `file (Kustomization a, Kustomization b; encrypted for r1, r2)`: a file as an operator looks for it. */
function describeFile(reach: Reach, f: SopsFile): string {
  const by = reachersOf(reach, f.name)
    .map((k) => describeKustomization(k))
    .join(', ');
  return `${f.name} (reached by ${by || 'the cluster folder'}; encrypted for ${f.recipients.join(', ') || 'no age recipient'})`;
}

/**
 * The cluster key against what the cluster reaches: every SOPS file must open with it (one it
 * cannot open is a Kustomization Flux fails on), the .sops.yaml rule of each file must list it (else
 * the next `encrypt` locks the cluster out), and each Kustomization applying SOPS files must decrypt.
 */
export async function keyProblems(
  ctx: { cluster: { name: string; path: string } },
  src: Pick<BootstrapSource, 'dir' | 'clusterDir'>,
  build: FluxBuild | undefined,
  key: ClusterKey,
  notes: string[],
): Promise<Problem[]> {
  const problems: Problem[] = [];
  const ours = key.names;
  const { reach, files } = await clusterSops(src.dir, reachRoot(ctx.cluster.path, build));
  for (const u of [...reach.notChecked, ...reach.issues]) notes.push(`warning: ${u.what} (${formatLocation(u.at)})`);
  const flag = key.type === 'pgp' ? 'sopsKey.pgp in fluxstrap.yaml' : '--age-key-file';

  const sopsConfig = join(src.dir, '.sops.yaml');
  if (!(await exists(sopsConfig))) {
    problems.push({
      what: 'the repository has no .sops.yaml',
      fix: `run \`fluxstrap init\` (it writes .sops.yaml with your ${key.type === 'pgp' ? 'PGP fingerprint' : 'age recipient'})`,
    });
  } else if (files.length === 0) {
    // Nothing encrypted yet: the rule the next file in the cluster folder would get must list the key.
    const listed = await clusterRuleRecipients(sopsConfig, src.clusterDir, ctx.cluster, key.type);
    if (!ours.some((r) => listed.includes(r))) {
      problems.push({
        what: `${key.label} is not a recipient of the .sops.yaml rule for ${ctx.cluster.path} (it names ${listed.join(', ') || `no ${key.type} key`})`,
        fix: `use the key .sops.yaml names (${flag}), or add this public key there and re-encrypt with \`fluxstrap updatekeys\``,
      });
    }
  } else {
    // The rule of each reached file, not any rule: a key listed for another cluster would pass a
    // looser check and still be left out the next time one of these files is encrypted.
    const config = await loadConfig(sopsConfig);
    const missing = new Map<string, string[]>();
    for (const f of files) {
      const rule = matchRule(config, f.file, src.dir);
      const where = rule ? `.sops.yaml:${rule.line}` : 'no rule';
      if (rule && ours.some((r) => rule.keyGroups.flat().some((s) => s.type === key.type && normalizedName(s) === r))) continue;
      missing.set(where, [...(missing.get(where) ?? []), f.name]);
    }
    for (const [where, names] of missing) {
      problems.push({
        what:
          where === 'no rule'
            ? `no .sops.yaml creation rule matches ${names.join(', ')}`
            : `the .sops.yaml rule at ${where} (for ${names.join(', ')}) does not list ${key.label}`,
        fix: `add the key to that rule (\`fluxstrap init --cluster ${ctx.cluster.name}\` does), then re-encrypt with \`fluxstrap updatekeys\``,
      });
    }
  }

  const lint = decryptionFindings(reach)
    // The sync Kustomization's decryption is the layout check's (it knows the patch and gotk-sync.yaml).
    .filter((d) => d.kustomization !== reach.kustomizations[0]);
  for (const d of lint) problems.push(decryptionProblem(d, ctx.cluster.name));

  if (files.length === 0) {
    notes.push(
      `warning: the cluster reaches no SOPS-encrypted file (${reach.kustomizations.length} Kustomization(s) from ${ctx.cluster.path}): ${key.type === 'pgp' ? 'the PGP' : 'the age'} key was not tried on any`,
    );
    return problems;
  }
  const closed: SopsFile[] = [];
  for (const f of files) {
    try {
      await decryptSopsFile(f, key);
    } catch (e) {
      if (!isFluxstrapError(e) || e.code !== 'E_DECRYPT') throw e;
      closed.push(f);
    }
  }
  if (closed.length > 0) {
    problems.push({
      what: `${key.label} cannot open ${closed.length} of the ${files.length} SOPS file(s) the cluster reaches: ${closed.map((f) => describeFile(reach, f)).join('; ')}`,
      fix: `pass the key these files were encrypted for (${key.type === 'pgp' ? 'sopsKey.pgp in fluxstrap.yaml' : '--age-key-file or SOPS_AGE_KEY'}), or re-encrypt them for this key with \`fluxstrap updatekeys\``,
    });
  } else {
    const per = reach.kustomizations.filter((k) => k.sops.length > 0).map((k) => `${k.name}: ${k.sops.length}`);
    notes.push(`${key.type === 'pgp' ? key.label : 'the age key'} opens all ${files.length} SOPS file(s) the cluster reaches (${per.join(', ')})`);
  }
  return problems;
}

/** A stanza's name as rules and keys compare it: PGP fingerprints are written with any case and spacing. */
const normalizedName = (s: Stanza): string => (s.type === 'pgp' ? normalizeFingerprint(stanzaName(s)) : stanzaName(s));

/** The child-decryption lint as a problem: where the Kustomization is, which files, the fix. */
export function decryptionProblem(d: DecryptionFinding, cluster: string): Problem {
  const k = d.kustomization;
  return {
    what: `${describeKustomization(k)} applies SOPS-encrypted ${d.files.join(', ')} but ${k.decryption === undefined ? 'has no spec.decryption' : `decrypts with ${k.decryption}, not sops`}: Flux would apply them still encrypted`,
    fix: `run \`${childDecryptionCommand(cluster)}\` (it writes spec.decryption provider sops${k.at?.file ? ` into ${k.at.file}` : ''}, in place)`,
  };
}

/**
 * Why the repository cannot be read yet: the deploy key it is read with is one the forge's
 * deploy-key task of the playbook would generate or register. Undefined when nothing would (the
 * read failed for another reason, which stands); a key-title clash throws, as that task would.
 */
export async function pendingDeployKey(ctx: TaskContext): Promise<string | undefined> {
  const { auth, provider } = ctx.cluster.git;
  if (auth.type !== 'ssh' || provider === 'generic') return undefined;
  const kind =
    provider === 'github' ? (await import('./github-deploy-key.ts')).githubDeployKeyKind : (await import('./gitea-deploy-key.ts')).giteaDeployKeyKind;
  const params = kind.params.parse({});
  const facts = await kind.observe(params, ctx, { check: true });
  const [change] = kind.plan(params, facts, ctx);
  if (change === undefined) return undefined;
  return `${'key' in facts ? '' : `the deploy key ${auth.keyFile} would be generated, then `}${change.summary} (${change.target})`;
}

/** The read of the repository a run under --check cannot make before the deploy key is registered. */
export function pendingRead(url: string | undefined, why: string): Change {
  return {
    action: 'run',
    target: `repository ${url ?? ''}`.trim(),
    summary: `read it with the deploy key once registered (${why}): its layout, sync objects and SOPS files are checked then, before anything else changes`,
    checkHorizon: true,
  };
}

/** The runs (task contexts) whose repository a preflight has checked: a later `scope: repository` has nothing left to do. */
const checkedRepository = new WeakSet<object>();

/**
 * Everything that can be known before changing anything: the API and its version, the caller's
 * permissions, the repository layout at the commit being bootstrapped, the age key against
 * .sops.yaml and the encrypted files, and Git read access. Every problem is collected, then the
 * task fails with all of them; it never changes anything. With SSH auth on GitHub or Gitea the
 * repository is read with a deploy key the playbook may register only later (`deferRead`): the
 * repository's checks then wait for a second preflight (`scope: repository`) after that step.
 */
export const preflightKind: TaskKind<Params, PreflightFacts, TaskContext> = {
  kind: 'preflight',
  params: Params,
  async observe(p, ctx, run) {
    if (p.scope === 'repository' && checkedRepository.has(ctx)) return { problems: [], notes: [] };
    const notes: string[] = [];
    const problems: Problem[] = [];
    const attempt = async <T>(fn: () => Promise<T>, fix: string): Promise<T | undefined> => {
      try {
        return await fn();
      } catch (e) {
        problems.push(problemOf(e, fix));
        return undefined;
      }
    };
    const version = p.scope === 'all' ? p.minKubernetes : undefined;
    // Git and the API are independent: ask both at once.
    const [src, kube] = await Promise.all([
      ctx.source().catch(async (e: unknown) => {
        // Reading over HTTPS with the forge token would need a second way in; the key is registered first instead.
        const pending =
          p.deferRead || (p.scope === 'repository' && run.check) ? await attempt(() => pendingDeployKey(ctx), 'check the forge token') : undefined;
        if (pending === undefined) problems.push(problemOf(e, 'check the Git URL, branch and credentials in fluxstrap.yaml'));
        return pending;
      }),
      attempt(() => ctx.kube(), 'check --kubeconfig and --context'),
    ]);
    if (typeof src === 'string') {
      if (p.scope === 'repository') return { problems: [], notes: [], pending: src };
      // Before the deploy key is registered: what needs no repository, so a bad cluster or key stops the run first.
      const [fromKube, key] = await Promise.all([
        kube ? kubeProblems(kube, BASE_OBJECTS, version, notes) : [],
        // A key service (sopsKey.vault, a cloud key) may stand in for a local key: the repository tells.
        ctx.cluster.vault || ctx.cluster.cloudKey ? undefined : attempt(() => readClusterKey(ctx), keyFix(ctx)),
      ]);
      if (key) notes.push(`the SOPS key on this machine: ${key.label}`);
      notes.push(`the repository is read once the deploy key is there (${src})`);
      return { problems: [...fromKube, ...problems], notes };
    }
    if (src) checkedRepository.add(ctx);
    const build = src ? await attempt(() => ctx.fluxBuild(), `run \`fluxstrap init\` to write ${join(ctx.cluster.path, 'flux-system')}`) : undefined;
    if (src) notes.push(`bootstrapping ${src.revision} (${src.origin})`);
    const objects = build ? [...build.components, build.sync.gitRepository, build.sync.kustomization] : BASE_OBJECTS;
    const [fromKube, fromLayout, fromKeys] = await Promise.all([
      kube ? kubeProblems(kube, objects, version, notes) : [],
      src && build ? attempt(() => layoutProblems(ctx, src, build), 'fix the repository layout') : [],
      src && ctx.cluster.vault
        ? attempt(
            () => vaultKeyProblems(ctx, { repoDir: src.dir, clusterDir: src.clusterDir, fluxSystemDir: src.fluxSystemDir }, notes),
            'check sopsKey.vault in fluxstrap.yaml',
          )
        : src
          ? attempt(async () => {
              const cloud = ctx.cluster.cloudKey ? await cloudKeyCheck(ctx.cluster, ctx.cluster.cloudKey, src.dir, build, ctx.env) : undefined;
              if (cloud) notes.push(...cloud.passed, ...cloud.notes);
              // A cluster decrypting through its cloud identity alone needs no age key on this machine.
              if (!usesAgeSecret(ctx.cluster, build)) return cloud?.problems ?? [];
              const key = await readClusterKey(ctx);
              const pq = build ? postQuantumProblem(key.age, build.components) : undefined;
              return [...(cloud?.problems ?? []), ...(pq ? [pq] : []), ...(await keyProblems(ctx, src, build, key, notes))];
            }, keyFix(ctx))
          : [],
    ]);
    problems.push(...fromKube, ...(fromLayout ?? []), ...(fromKeys ?? []));
    return { problems, notes };
  },
  plan(_p, facts, ctx): Change[] {
    if (facts.pending !== undefined) return [pendingRead(ctx.cluster.git.url, facts.pending)];
    return failOnProblems(facts.problems);
  },
  apply() {
    return Promise.reject(new FluxstrapError('E_INTERNAL', 'preflight never plans a change to apply'));
  },
  notes(_p, facts) {
    return facts.pending === undefined ? facts.notes : ['--check stops here: the tasks after this one read the repository'];
  },
};

const keyFix = (ctx: TaskContext) =>
  ctx.cluster.pgpKey ? 'check sopsKey.pgp in fluxstrap.yaml' : 'check where the age key comes from (fluxstrap.yaml ageKey, --age-key-file, SOPS_AGE_KEY)';
