import { dirname, join, resolve } from 'node:path';
import { exists, readText } from '../adapters/files.ts';
import { resolveClusterFlags } from '../cluster/resolve.ts';
import { runTasks } from '../core/engine.ts';
import { configError, exitCodeOf, FluxstrapError, usageError } from '../core/errors.ts';
import type { TaskInstance, TaskKind } from '../core/task.ts';
import { parseConfig, ruleMatches } from '../sops/config.ts';
import { stanzaName } from '../sops/metadata.ts';
import { pathRegexFor } from '../tasks/sops-config.ts';
import { sopsFilesRekeyedKind } from '../tasks/sops-files-rekeyed.ts';
import type { RekeyContext } from '../tasks/sops-files-rekeyed.ts';
import { ageIdentitiesRetiredKind, ageKeyAppendedKind, readIdentities } from '../tasks/age-key-file.ts';
import type { PlannedIdentity } from '../tasks/age-key-file.ts';
import { clusterKeyedFiles } from '../tasks/sops-files.ts';
import { ruleRecipients, sopsRecipientsKind } from '../tasks/sops-recipients.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { loadAgeIdentities } from '../keys/identities.ts';
import { generateAgeIdentity } from '../keys/generate.ts';
import { readPgpKeySource } from '../tasks/context.ts';
import type { ClusterPgpKey } from '../tasks/context.ts';
import { configPath, configuredEntry } from '../tasks/fluxstrap-config.ts';
import { pgpKeyConfigKind } from '../tasks/pgp-key-config.ts';
import type { PgpKeyConfigParams } from '../tasks/pgp-key-config.ts';
import { pgpKeyFileKind } from '../tasks/pgp-key-file.ts';
import type { RecipientChange, RecipientType } from '../tasks/sops-recipients.ts';
import { CONFIG_FILE } from '../cluster/config.ts';
import type { PgpKeySource, ResolvedCluster } from '../cluster/config.ts';
import type { PgpPrivateKey } from '../keys/pgp.ts';
import { info } from './io.ts';
import type { CommandIo } from './io.ts';

/**
 * `fluxstrap keys rotate`: a cluster's age key rotated in two phases, so that Flux can decrypt
 * every file at every step. Phase 1 adds the new recipient next to the old one (files keep their
 * data key); phase 2 removes the old one (files get a new data key). Between them, and after
 * phase 2, `bootstrap --rotate-secrets` puts the key file into the cluster. Only files change here.
 *
 * The new identity is the key file's last one (`keys new --append` puts it there); the old ones
 * are the key file's other identities that the cluster's rule lists. Recipients of keys held
 * elsewhere (a colleague's) are never touched.
 */

export interface KeysRotateOptions {
  cluster: string;
  repo?: string;
  /** `--age-key-file`; `--key-file` is its old, hidden name. */
  ageKeyFile?: string;
  keyFile?: string;
  check?: boolean;
  diff?: boolean;
  finish?: boolean;
  dropOldIdentity?: boolean;
  /** An OpenPGP cluster key's replacement: an armored private key file, or where `--generate` writes one. */
  pgpKeyFile?: string;
  generate?: boolean;
}

/** Shown in a --check plan when the new identity does not exist yet: check mode writes no key. */
const PENDING = '<new age recipient>';
const PENDING_PGP = '<NEW_PGP_FINGERPRINT>';
const SOPS_FILE = '.sops.yaml';

export async function keysRotate(opts: KeysRotateOptions, g: CommandIo): Promise<number> {
  if (opts.dropOldIdentity && !opts.finish)
    throw usageError('--drop-old-identity goes with --finish', 'the old identity is needed until the files no longer use it');
  const keyFlag = opts.ageKeyFile ?? opts.keyFile;
  // The cluster as every cluster command resolves it: --repo (or walking up to fluxstrap.yaml),
  // its path, and its key from the flag, FLUXSTRAP_AGE_KEY_FILE, fluxstrap.yaml, then as sops looks.
  const cluster = await resolveClusterFlags(
    { cluster: opts.cluster, ...(opts.repo !== undefined ? { repo: opts.repo } : {}), ...(keyFlag !== undefined ? { ageKeyFile: keyFlag } : {}) },
    g.env,
    g.cwd,
  );
  const { repoDir: repo, path: clusterPath } = cluster;
  if (cluster.pgpKey) return keysRotatePgp(opts, cluster, cluster.pgpKey, g);
  if (opts.pgpKeyFile !== undefined || opts.generate) {
    const flag = opts.generate ? '--generate' : '--pgp-key-file';
    throw flagError(`${flag} rotates an OpenPGP cluster key: cluster "${opts.cluster}" has an age key`, flag, 'give the age key file with --age-key-file');
  }
  if (cluster.ageKey.type !== 'file') {
    throw usageError(
      `the key of cluster "${opts.cluster}" comes from ${cluster.ageKey.type === 'env' ? `$${cluster.ageKey.env}` : cluster.ageKey.type === 'cmd' ? 'a command (ageKey.cmd)' : 'an Ansible vault'}: keys rotate appends the new identity to a key file`,
      'pass --age-key-file FILE',
    );
  }
  const keyFile = cluster.ageKey.file;
  const check = opts.check === true;
  const { sopsText, reached, rule } = await clusterRule(repo, clusterPath, opts.cluster, 'age');
  const config = parseConfig(sopsText, SOPS_FILE);
  const mine = new Set(reached.map((f) => config.creationRules.find((r) => ruleMatches(r, f))));
  const otherRulesRecipients = config.creationRules
    .filter((r) => r.pathRegex !== pathRegexFor(clusterPath) && !mine.has(r))
    .flatMap((r) =>
      r.keyGroups
        .flat()
        .filter((s) => s.type === 'age')
        .map(stanzaName),
    );
  const identities = await readIdentities(keyFile);
  const newest = identities.at(-1) as AgeIdentity;
  const listed = identities.filter((i) => rule.includes(i.recipient));

  let appended: PlannedIdentity | undefined;
  if (opts.finish) {
    if (!rule.includes(newest.recipient)) {
      throw new FluxstrapError('E_PRECONDITION', `the newest identity of the key file (line ${newest.line}) is not in the creation rule for ${clusterPath}`, {
        location: { file: keyFile },
        hint: `run phase 1 first: fluxstrap keys rotate --cluster ${opts.cluster}`,
      });
    }
  } else {
    // Without an old key there is nothing to rotate, and no group to put the new recipient in.
    if (listed.length === 0) {
      throw new FluxstrapError('E_PRECONDITION', `no identity of the key file is in the creation rule for ${clusterPath}`, {
        location: { file: keyFile },
        hint: `pass the cluster's key file with --key-file`,
      });
    }
    // The rotation has not begun when the newest identity is the rule's only one of this key file;
    // one that another rule lists is another cluster's key, never to be taken over. The new
    // identity is made now, so the plan names its recipient; --check makes none and shows a placeholder.
    if ((listed.length === 1 && listed[0] === newest) || otherRulesRecipients.includes(newest.recipient)) {
      const postQuantum = newest.postQuantum;
      appended = check ? { recipient: PENDING, postQuantum } : { ...(await generateAgeIdentity(postQuantum)), postQuantum };
    }
  }
  const added = appended?.recipient ?? newest.recipient;
  // Phase 2 also takes out of the files the key file's identities the rule no longer lists (a run
  // that stopped half-way, a key left from an earlier rotation); only another cluster's key stays.
  const retiring = opts.finish ? identities.filter((i) => rule.includes(i.recipient) || !otherRulesRecipients.includes(i.recipient)) : listed;
  const old = retiring.filter((i) => i.recipient !== added).map((i) => i.recipient);
  // With key groups (Shamir), the new recipient goes wherever an old one is, so each group keeps its share.
  const change = { type: 'age' as const, add: old.map((besides) => ({ recipient: added, besides })), remove: opts.finish ? old : [] };
  // An identity another rule lists is another cluster's key kept in the same file: never stale.
  const kept = new Set([...rule.filter((r) => !change.remove.includes(r)), ...otherRulesRecipients]);
  const stale = opts.finish ? identities.filter((i) => i !== newest && !kept.has(i.recipient)) : [];

  // A file with key groups opens only with keys of a threshold of them; the other groups' keys are
  // looked for where sops looks (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, …), after the key file's own.
  let opening: Promise<AgeIdentity[]> | undefined;
  const ageIdentities = () => (opening ??= loadAgeIdentities({ keyFiles: [keyFile], env: g.env }));
  const ctx: RekeyContext = { paths: { repo }, ageIdentities, pgpKey: () => Promise.resolve(undefined) };
  const again = keyFlag === undefined ? '' : ` --age-key-file ${keyFlag}`;
  // The whole rotation is one plan: --check shows every step, the key file's too, and changes nothing.
  const tasks = [
    ...(appended ? [task(`a new age identity in ${keyFile}`, ageKeyAppendedKind, { file: keyFile, identity: appended })] : []),
    ...rekeyTasks(clusterPath, reached, change),
    ...(opts.dropOldIdentity && stale.length > 0
      ? [
          task(`old identities out of ${keyFile}`, ageIdentitiesRetiredKind, {
            file: keyFile,
            recipients: stale.map((i) => i.recipient),
            clusterPath,
            again: `fluxstrap keys rotate --cluster ${opts.cluster}${again} --finish`,
          }),
        ]
      : []),
  ];
  const run = await runRotation(opts, clusterPath, tasks, ctx, g);
  if (run === undefined) return exitCodeOf({ failed: true });
  const { recap, results } = run;
  const outcome = (kind: string) => results.find((r) => r.kind === kind)?.outcome;
  if (outcome(ageKeyAppendedKind.kind) === 'would-change') info(g, `would add a new age identity to ${keyFile}`);
  if (outcome(ageKeyAppendedKind.kind) === 'changed') info(g, `added a new age identity to ${keyFile}: ${added}`);
  const done = recap.changed === 0 && recap.wouldChange === 0;
  // Under --check with changes pending, the files are not yet what the state line would claim.
  const state = (line: string) => {
    if (!check || done) info(g, `${done ? 'nothing to do: ' : ''}${line}`);
  };
  const bootstrap = `fluxstrap bootstrap --cluster ${opts.cluster} --rotate-secrets`;
  if (!opts.finish) {
    state(`every SOPS file ${clusterPath} reaches opens with the old and the new key`);
    info(g, `next: ${bootstrap} (the sops-age Secret then holds both identities), then fluxstrap keys rotate --cluster ${opts.cluster}${again} --finish`);
  } else {
    state(`only the new key (${newest.recipient}) opens the SOPS files ${clusterPath} reaches`);
    info(g, `next: ${bootstrap}, so the cluster holds the key file as it is now`);
    if (outcome(ageIdentitiesRetiredKind.kind) === 'changed') for (const i of stale) info(g, `removed the old identity ${i.recipient} from ${keyFile}`);
    if (!opts.dropOldIdentity)
      for (const i of stale)
        info(g, `then you may remove the old identity at ${keyFile}:${i.line} (${i.recipient}), or run again with --finish --drop-old-identity`);
  }
  return exitCodeOf({ failed: false, changesPending: check && recap.wouldChange > 0 });
}

/** The cluster's creation rule(s) and their recipients of `type`, for the files the cluster's Kustomizations apply, wherever they are. */
async function clusterRule(repo: string, clusterPath: string, cluster: string, type: RecipientType) {
  const sopsText = await readText(join(repo, SOPS_FILE));
  const reached = (await clusterKeyedFiles(repo, clusterPath)).map((f) => f.name);
  const rule = ruleRecipients(sopsText, SOPS_FILE, clusterPath, reached, type);
  if (rule === undefined) throw configError(`no creation rule for ${clusterPath}`, { file: SOPS_FILE }, `run fluxstrap init --cluster ${cluster} first`);
  return { sopsText, reached, rule };
}

const task = <P, O, D>(name: string, kind: TaskKind<P, O, RekeyContext, D>, params: P): TaskInstance<RekeyContext> => ({ name, kind, params });

/** The rule, then the files: a file is never encrypted for a key the rule does not list yet. */
function rekeyTasks(clusterPath: string, reached: string[], change: RecipientChange): TaskInstance<RekeyContext>[] {
  return [
    task(`recipients of the ${SOPS_FILE} creation rule(s) for ${clusterPath}`, sopsRecipientsKind, { file: SOPS_FILE, clusterPath, reached, ...change }),
    task(`SOPS files ${clusterPath} reaches encrypted for the rule's recipients`, sopsFilesRekeyedKind, { clusterPath, ...change }),
  ];
}

/** The whole rotation is one plan: --check shows every step, the key's too, and changes nothing. Undefined when it failed. */
async function runRotation(opts: KeysRotateOptions, clusterPath: string, tasks: TaskInstance<RekeyContext>[], ctx: RekeyContext, g: CommandIo) {
  const check = opts.check === true;
  const reporter = await g.reporter({ diff: opts.diff === true || check });
  const run = await runTasks({ title: `keys rotate ${clusterPath}${opts.finish ? ' --finish' : ''}`, tasks, ctx, reporter, check });
  return run.success ? run : undefined;
}

/**
 * An OpenPGP cluster key (`sopsKey.pgp`), in the same two phases. Phase 1 points sopsKey.pgp at the
 * new key and keeps the old one as `sopsKey.pgp.retiring` (so bootstrap puts both into the sops-gpg
 * Secret), then adds the new fingerprint next to the old one in the rule and the files. --finish
 * removes the old fingerprint (files get a new data key), then drops `retiring`. fluxstrap.yaml
 * records the rotation first and forgets it last, so a run that stopped resumes from it.
 */
async function keysRotatePgp(opts: KeysRotateOptions, cluster: ResolvedCluster, source: PgpKeySource, g: CommandIo): Promise<number> {
  if (opts.dropOldIdentity)
    throw flagError(
      '--drop-old-identity applies to age key files',
      '--drop-old-identity',
      'remove the old OpenPGP key from your keyring or key folder yourself after --finish',
    );
  if (opts.finish && (opts.pgpKeyFile !== undefined || opts.generate)) {
    const flag = opts.generate ? '--generate' : '--pgp-key-file';
    throw flagError(
      `${flag} starts a rotation (phase 1): --finish takes the key fluxstrap.yaml names`,
      flag,
      `run fluxstrap keys rotate --cluster ${opts.cluster} --finish`,
    );
  }
  const { repoDir: repo, path: clusterPath } = cluster;
  const check = opts.check === true;
  const entry = (await configuredEntry(repo, cluster.name))?.sopsKey?.pgp;
  if (entry === undefined)
    throw configError(`cluster "${cluster.name}" has no sopsKey.pgp`, { file: CONFIG_FILE, field: `clusters.${cluster.name}.sopsKey.pgp` });
  const asWritten = (s: { file: string } | { fingerprint: string }) => ('file' in s ? { file: s.file } : { fingerprint: s.fingerprint });
  const current = await readPgpKeySource(source, g.env);
  const { reached, rule } = await clusterRule(repo, clusterPath, opts.cluster, 'pgp');
  const retiring = cluster.pgpRetiring ? await readPgpKeySource(cluster.pgpRetiring, g.env, 'sopsKey.pgp.retiring') : undefined;

  // The key the files move to, the one they leave, and fluxstrap.yaml's sopsKey.pgp after this phase.
  let next: { fingerprint: string; armored?: string; source: string };
  let old: PgpPrivateKey | undefined;
  let generated: { file: string; armored?: string } | undefined;
  let pgp: PgpKeyConfigParams['pgp'];
  if (opts.finish || entry.retiring) {
    // A rotation under way (or done): the key fluxstrap.yaml names is the new one.
    next = current;
    old = retiring;
    if (!opts.finish && opts.pgpKeyFile !== undefined && !opts.generate) {
      const given = await readNewPgpKey(resolve(g.cwd, opts.pgpKeyFile));
      if (given.fingerprint !== current.fingerprint) {
        throw new FluxstrapError(
          'E_PRECONDITION',
          `a rotation to OpenPGP key ${current.fingerprint} is under way (sopsKey.pgp.retiring is set), not to ${given.fingerprint}`,
          {
            location: { field: '--pgp-key-file' },
            hint: `finish it first: fluxstrap keys rotate --cluster ${opts.cluster} --finish`,
          },
        );
      }
    }
    if (!opts.finish)
      info(
        g,
        `resuming the rotation to OpenPGP key ${current.fingerprint} (sopsKey.pgp.retiring is set)${opts.generate ? ': --generate makes no other key' : ''}`,
      );
    pgp = opts.finish ? asWritten(entry) : { ...asWritten(entry), ...(entry.retiring ? { retiring: asWritten(entry.retiring) } : {}) };
  } else {
    const given = opts.pgpKeyFile;
    if (!opts.generate) {
      if (given === undefined) {
        throw flagError(
          `the key of cluster "${opts.cluster}" is OpenPGP (sopsKey.pgp): give the new key`,
          '--pgp-key-file',
          'pass --pgp-key-file FILE (an armored private key without passphrase), or --generate to make one',
        );
      }
      next = await readNewPgpKey(resolve(g.cwd, given));
    } else {
      const file = resolve(g.cwd, given ?? defaultNewKeyFile(source, cluster.name));
      await checkNewKeyFile(file);
      // gpg keeps what it makes in the user's keyring: nothing is made for a rotation that cannot start.
      if (!rule.includes(current.fingerprint)) throw notInRule([current.fingerprint], clusterPath);
      if (check) next = { fingerprint: PENDING_PGP, source: file };
      else {
        const { generateGpgKey } = await import('../keys/pgp.ts');
        info(g, 'generating an RSA-4096 OpenPGP key with gpg, in your keyring (this takes a few seconds)…');
        // The date keeps the user ID apart from an earlier rotation's: gpg refuses a user ID it already holds.
        const key = await generateGpgKey(`fluxstrap ${cluster.name} (flux secrets, ${new Date().toISOString()})`, g.env, '--generate');
        next = { fingerprint: key.fingerprint, armored: key.armored, source: file };
      }
      generated = { file, ...(next.armored !== undefined ? { armored: next.armored } : {}) };
    }
    if (next.fingerprint === current.fingerprint) {
      throw flagError(
        `OpenPGP key ${next.fingerprint} is the cluster's key already`,
        '--pgp-key-file',
        'give the new key: another --pgp-key-file, or --generate',
      );
    }
    old = current;
    pgp = { file: configPath(next.source, repo, g.cwd), retiring: asWritten(entry) };
  }

  if (old !== undefined && !rule.includes(old.fingerprint) && !rule.includes(next.fingerprint))
    throw notInRule([old.fingerprint, next.fingerprint], clusterPath);
  const change: RecipientChange = {
    type: 'pgp',
    add: old ? [{ recipient: next.fingerprint, besides: old.fingerprint }] : [],
    remove: opts.finish && old ? [old.fingerprint] : [],
  };
  // Under --check with --generate there is no key yet, and no apply asks for one.
  const keys = (): Promise<ClusterPgpKey> =>
    next.armored === undefined
      ? Promise.reject(new Error('a planned OpenPGP key without its private key reached apply'))
      : Promise.resolve({ fingerprint: next.fingerprint, armored: next.armored, source: next.source, ...(old ? { retiring: old } : {}) });
  const ctx: RekeyContext = { paths: { repo }, ageIdentities: () => Promise.resolve([]), pgpKey: keys };
  const record = task(`sopsKey.pgp of cluster ${cluster.name} in ${CONFIG_FILE}`, pgpKeyConfigKind, { cluster: cluster.name, pgp });
  const tasks = [
    ...(generated ? [task(`a new OpenPGP key in ${generated.file}`, pgpKeyFileKind, { ...generated, fingerprint: next.fingerprint })] : []),
    // Recorded first and forgotten last: whatever stopped in between, fluxstrap.yaml still names both keys.
    ...(opts.finish ? [] : [record]),
    ...rekeyTasks(clusterPath, reached, change),
    ...(opts.finish ? [record] : []),
  ];
  const run = await runRotation(opts, clusterPath, tasks, ctx, g);
  if (run === undefined) return exitCodeOf({ failed: true });
  const done = run.recap.changed === 0 && run.recap.wouldChange === 0;
  const state = (line: string) => {
    if (!check || done) info(g, `${done ? 'nothing to do: ' : ''}${line}`);
  };
  const bootstrap = `fluxstrap bootstrap --cluster ${opts.cluster} --rotate-secrets`;
  if (!opts.finish) {
    if (generated && !check)
      info(g, `wrote the new OpenPGP key ${next.fingerprint} to ${generated.file} (it is in your gpg keyring too, where sops looks for it)`);
    state(`every SOPS file ${clusterPath} reaches opens with ${old?.fingerprint ?? 'the old key'} and ${next.fingerprint}`);
    info(g, `next: ${bootstrap} (the sops-gpg Secret then holds both keys), then fluxstrap keys rotate --cluster ${opts.cluster} --finish`);
  } else {
    state(`only the OpenPGP key ${next.fingerprint} opens the SOPS files ${clusterPath} reaches`);
    info(g, `next: ${bootstrap}, so that the sops-gpg Secret holds ${next.fingerprint} only`);
    if (old && !check) info(g, `then you may delete the old key ${old.fingerprint} (${old.source})`);
  }
  return exitCodeOf({ failed: false, changesPending: check && run.recap.wouldChange > 0 });
}

/** The cluster key the rotation starts from (or, resuming, either key) must be a recipient of the rule. */
const notInRule = ([key, other]: string[], clusterPath: string) =>
  new FluxstrapError(
    'E_PRECONDITION',
    `${other === undefined ? `OpenPGP key ${key} is not` : `neither OpenPGP key ${key} nor ${other} is`} in the creation rule for ${clusterPath}`,
    { location: { file: SOPS_FILE }, hint: `the cluster key (sopsKey.pgp in ${CONFIG_FILE}) must be the one the rule lists` },
  );

const flagError = (message: string, flag: string, hint: string) => new FluxstrapError('E_USAGE', message, { location: { field: flag }, hint });

/** Where --generate writes without --pgp-key-file: next to the current key file, named for the cluster and the day. */
function defaultNewKeyFile(source: PgpKeySource, cluster: string): string {
  if (source.type !== 'file')
    throw flagError(
      '--generate needs --pgp-key-file FILE for a key of the gpg keyring: where to write the new private key',
      '--pgp-key-file',
      'keep it outside the Git repository, e.g. ~/.config/sops/pgp/NAME.asc',
    );
  return join(dirname(source.file), `${cluster}-${new Date().toISOString().slice(0, 10)}.asc`);
}

async function checkNewKeyFile(file: string): Promise<void> {
  if (await exists(file)) {
    throw new FluxstrapError('E_PRECONDITION', 'refusing to overwrite an existing key file', {
      location: { file },
      hint: 'to rotate to the key it holds, pass it with --pgp-key-file and without --generate; else choose another --pgp-key-file',
    });
  }
}

/** The new key as kustomize-controller can use it: one private key, not locked by a passphrase. */
async function readNewPgpKey(file: string): Promise<PgpPrivateKey> {
  const { readPgpPrivateKey } = await import('../keys/pgp.ts');
  return readPgpPrivateKey(await readText(file, 'read --pgp-key-file'), file, '--pgp-key-file');
}
