import { join } from 'node:path';
import { readText } from '../adapters/files.ts';
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
}

/** Shown in a --check plan when the new identity does not exist yet: check mode writes no key. */
const PENDING = '<new age recipient>';

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
  if (cluster.pgpKey) {
    const fpr = await readPgpKeySource(cluster.pgpKey, g.env).then(
      (k) => k.fingerprint,
      () => 'FINGERPRINT',
    );
    // Rotation rewrites age stanzas and rules only: a PGP rule run through it would be left half-rotated.
    throw new FluxstrapError('E_USAGE', `the key of cluster "${opts.cluster}" is OpenPGP (sopsKey.pgp): keys rotate rotates age keys`, {
      location: { field: 'sopsKey.pgp' },
      hint: `add the new fingerprint next to ${fpr} in the .sops.yaml rule and run \`fluxstrap updatekeys --cluster ${opts.cluster}\` (files open with either key), point sopsKey.pgp at the new key and run \`fluxstrap bootstrap --cluster ${opts.cluster} --rotate-secrets\`, then remove ${fpr} from the rule, run \`fluxstrap updatekeys --cluster ${opts.cluster}\` again and \`fluxstrap rotate\` on the files (a new data key)`,
    });
  }
  if (cluster.ageKey.type !== 'file') {
    throw usageError(
      `the key of cluster "${opts.cluster}" comes from ${cluster.ageKey.type === 'env' ? `$${cluster.ageKey.env}` : cluster.ageKey.type === 'cmd' ? 'a command (ageKey.cmd)' : 'an Ansible vault'}: keys rotate appends the new identity to a key file`,
      'pass --age-key-file FILE',
    );
  }
  const keyFile = cluster.ageKey.file;
  const sopsFile = '.sops.yaml';
  const check = opts.check === true;
  const sopsText = await readText(join(repo, sopsFile));
  // The files the cluster's Kustomizations apply, wherever they are, and the rules governing them.
  const reached = (await clusterKeyedFiles(repo, clusterPath)).map((f) => f.name);
  const rule = ruleRecipients(sopsText, sopsFile, clusterPath, reached);
  if (rule === undefined) throw configError(`no creation rule for ${clusterPath}`, { file: sopsFile }, `run fluxstrap init --cluster ${opts.cluster} first`);
  const config = parseConfig(sopsText, sopsFile);
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
  const change = { add: old.map((besides) => ({ recipient: added, besides })), remove: opts.finish ? old : [] };
  // An identity another rule lists is another cluster's key kept in the same file: never stale.
  const kept = new Set([...rule.filter((r) => !change.remove.includes(r)), ...otherRulesRecipients]);
  const stale = opts.finish ? identities.filter((i) => i !== newest && !kept.has(i.recipient)) : [];

  // A file with key groups opens only with keys of a threshold of them; the other groups' keys are
  // looked for where sops looks (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, …), after the key file's own.
  let opening: Promise<AgeIdentity[]> | undefined;
  const ageIdentities = () => (opening ??= loadAgeIdentities({ keyFiles: [keyFile], env: g.env }));
  const ctx: RekeyContext = { paths: { repo }, ageIdentities };
  const task = <P, O, D>(name: string, kind: TaskKind<P, O, RekeyContext, D>, params: P): TaskInstance<RekeyContext> => ({ name, kind, params });
  const again = keyFlag === undefined ? '' : ` --age-key-file ${keyFlag}`;
  // The whole rotation is one plan: --check shows every step, the key file's too, and changes nothing.
  const tasks = [
    ...(appended ? [task(`a new age identity in ${keyFile}`, ageKeyAppendedKind, { file: keyFile, identity: appended })] : []),
    task(`recipients of the ${sopsFile} creation rule(s) for ${clusterPath}`, sopsRecipientsKind, { file: sopsFile, clusterPath, reached, ...change }),
    task(`SOPS files ${clusterPath} reaches encrypted for the rule's recipients`, sopsFilesRekeyedKind, { clusterPath, ...change }),
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
  const reporter = await g.reporter({ diff: opts.diff === true || check });
  const { recap, success, results } = await runTasks({ title: `keys rotate ${clusterPath}${opts.finish ? ' --finish' : ''}`, tasks, ctx, reporter, check });
  if (!success) return exitCodeOf({ failed: true });
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
