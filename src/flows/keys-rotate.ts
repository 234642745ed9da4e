import { join } from 'node:path';
import { readText } from '../adapters/files.ts';
import { resolveClusterFlags } from '../cluster/resolve.ts';
import { runTasks } from '../core/engine.ts';
import { configError, ExitCode, FluxstrapError, usageError } from '../core/errors.ts';
import type { TaskInstance, TaskKind } from '../core/task.ts';
import { parseConfig, ruleMatches } from '../sops/config.ts';
import { stanzaName } from '../sops/metadata.ts';
import { pathRegexFor } from '../tasks/sops-config.ts';
import { keyGroupsOf, sopsFilesRekeyedKind } from '../tasks/sops-files-rekeyed.ts';
import type { RekeyContext } from '../tasks/sops-files-rekeyed.ts';
import { clusterKeyedFiles } from '../tasks/sops-files.ts';
import { ruleRecipients, sopsRecipientsKind } from '../tasks/sops-recipients.ts';
import { parseAgeKeyFile, recipientOf } from '../keys/age.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { loadAgeIdentities } from '../keys/identities.ts';
import { newAgeKey, withKeyFileLock, writeKeyFile } from '../keys/generate.ts';
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
  if (opts.dropOldIdentity && !opts.finish) throw usageError('--drop-old-identity goes with --finish', 'the old identity is needed until the files no longer use it');
  const keyFlag = opts.ageKeyFile ?? opts.keyFile;
  // The cluster as every cluster command resolves it: --repo (or walking up to fluxstrap.yaml),
  // its path, and its key from the flag, FLUXSTRAP_AGE_KEY_FILE, fluxstrap.yaml, then as sops looks.
  const cluster = await resolveClusterFlags({ cluster: opts.cluster, ...(opts.repo !== undefined ? { repo: opts.repo } : {}), ...(keyFlag !== undefined ? { ageKeyFile: keyFlag } : {}) }, g.env, g.cwd);
  const { repoDir: repo, path: clusterPath } = cluster;
  if (cluster.ageKey.type !== 'file') {
    throw usageError(`the key of cluster "${opts.cluster}" comes from ${cluster.ageKey.type === 'env' ? `$${cluster.ageKey.env}` : 'an Ansible vault'}: keys rotate appends the new identity to a key file`, 'pass --age-key-file FILE');
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
  const otherRulesRecipients = config
    .creationRules.filter((r) => r.pathRegex !== pathRegexFor(clusterPath) && !mine.has(r))
    .flatMap((r) => r.keyGroups.flat().filter((s) => s.type === 'age').map(stanzaName));
  let identities = await parseAgeKeyFile(await readText(keyFile), keyFile, recipientOf);
  const newest = identities.at(-1) as AgeIdentity;
  const listed = identities.filter((i) => rule.includes(i.recipient));

  let added = newest.recipient;
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
    // one that another rule lists is another cluster's key, never to be taken over.
    if ((listed.length === 1 && listed[0] === newest) || otherRulesRecipients.includes(newest.recipient)) {
      if (check) {
        added = PENDING;
        info(g, `would add a new age identity to ${keyFile}`);
      } else {
        added = (await newAgeKey({ file: keyFile, postQuantum: newest.postQuantum, append: true })).recipient;
        info(g, `added a new age identity to ${keyFile}: ${added}`);
        identities = await parseAgeKeyFile(await readText(keyFile), keyFile, recipientOf);
      }
    }
  }
  // Phase 2 also takes out of the files the key file's identities the rule no longer lists (a run
  // that stopped half-way, a key left from an earlier rotation); only another cluster's key stays.
  const retiring = opts.finish ? identities.filter((i) => rule.includes(i.recipient) || !otherRulesRecipients.includes(i.recipient)) : listed;
  const old = retiring.filter((i) => i.recipient !== added).map((i) => i.recipient);
  // With key groups (Shamir), the new recipient goes wherever an old one is, so each group keeps its share.
  const change = { add: old.map((besides) => ({ recipient: added, besides })), remove: opts.finish ? old : [] };

  // A file with key groups opens only with keys of a threshold of them; the other groups' keys are
  // looked for where sops looks (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, …), after the key file's own.
  let opening: Promise<AgeIdentity[]> | undefined;
  const ageIdentities = () => (opening ??= loadAgeIdentities({ keyFiles: [keyFile], env: g.env }));
  const ctx: RekeyContext = { paths: { repo }, ageIdentities };
  const task = <P, O>(name: string, kind: TaskKind<P, O, RekeyContext>, params: P): TaskInstance<RekeyContext> => ({ name, kind, params });
  const tasks = [
    task(`recipients of the ${sopsFile} creation rule(s) for ${clusterPath}`, sopsRecipientsKind, { file: sopsFile, clusterPath, reached, ...change }),
    task(`SOPS files ${clusterPath} reaches encrypted for the rule's recipients`, sopsFilesRekeyedKind, { clusterPath, ...change }),
  ];
  const reporter = await g.reporter({ diff: opts.diff === true || check });
  const { recap, success } = await runTasks({ title: `keys rotate ${clusterPath}${opts.finish ? ' --finish' : ''}`, tasks, ctx, reporter, check });
  if (!success) return ExitCode.failed;
  const done = recap.changed === 0 && recap.wouldChange === 0;
  // Under --check with changes pending, the files are not yet what the state line would claim.
  const state = (line: string) => {
    if (!check || done) info(g, `${done ? 'nothing to do: ' : ''}${line}`);
  };
  const again = keyFlag === undefined ? '' : ` --age-key-file ${keyFlag}`;
  const bootstrap = `fluxstrap bootstrap --cluster ${opts.cluster} --rotate-secrets`;
  if (!opts.finish) {
    state(`every SOPS file ${clusterPath} reaches opens with the old and the new key`);
    info(g, `next: ${bootstrap} (the sops-age Secret then holds both identities), then fluxstrap keys rotate --cluster ${opts.cluster}${again} --finish`);
  } else {
    state(`only the new key (${newest.recipient}) opens the SOPS files ${clusterPath} reaches`);
    info(g, `next: ${bootstrap}, so the cluster holds the key file as it is now`);
    // An identity another rule lists is another cluster's key kept in the same file: never stale.
    const kept = new Set([...rule.filter((r) => !change.remove.includes(r)), ...otherRulesRecipients]);
    const stale = identities.filter((i) => i !== newest && !kept.has(i.recipient));
    if (opts.dropOldIdentity) await dropIdentities(keyFile, stale, { repo, clusterPath, cluster: opts.cluster }, check, g);
    else for (const i of stale) info(g, `then you may remove the old identity at ${keyFile}:${i.line} (${i.recipient}), or run again with --finish --drop-old-identity`);
  }
  return check && recap.wouldChange > 0 ? ExitCode.changesPending : ExitCode.ok;
}

/**
 * Remove old identities from the key file, refusing while a file under the cluster folder is still
 * encrypted to one of them: that file would open for nobody. The file is rewritten atomically,
 * the identity's own comment lines with it.
 */
async function dropIdentities(keyFile: string, stale: AgeIdentity[], at: { repo: string; clusterPath: string; cluster: string }, check: boolean, g: CommandIo): Promise<void> {
  const { repo, clusterPath } = at;
  if (stale.length === 0) return;
  const keys = new Set(stale.map((i) => `age:${i.recipient}`));
  for (const f of await clusterKeyedFiles(repo, clusterPath)) {
    // Every key group's keys: a Shamir file needs the old key as much as a plain one.
    const held = keyGroupsOf(f.text, f.name).flat().find((k) => keys.has(k));
    if (held !== undefined) {
      throw new FluxstrapError('E_PRECONDITION', `refusing to remove the old identity ${held.slice('age:'.length)}: this file is still encrypted to it`, {
        location: { file: f.name },
        hint: check ? 'run without --check first, so that the files get a new data key' : `run fluxstrap keys rotate --cluster ${at.cluster} --finish again`,
      });
    }
  }
  if (check) {
    for (const i of stale) info(g, `would remove the old identity at ${keyFile}:${i.line} (${i.recipient})`);
    return;
  }
  // Under the lock `keys new --append` takes, so an identity appended meanwhile is not lost.
  await withKeyFileLock(keyFile, async () => {
    const lines = (await readText(keyFile)).split('\n');
    const drop = new Set<number>();
    for (const i of stale) {
      // Line numbers come from the earlier read: a file changed since then is not edited blindly.
      if (lines[i.line - 1]?.trim().toUpperCase() !== i.secret) {
        throw new FluxstrapError('E_PRECONDITION', 'the key file changed during the rotation', { location: { file: keyFile }, hint: 'run the command again' });
      }
      drop.add(i.line - 1);
      // The `# created:` / `# public key:` lines written above it belong to it.
      for (let n = i.line - 2; n >= 0 && /^#\s*(created|public key):/i.test(lines[n] ?? ''); n--) drop.add(n);
    }
    await writeKeyFile(keyFile, lines.filter((_, n) => !drop.has(n)).join('\n'), false);
  });
  for (const i of stale) info(g, `removed the old identity ${i.recipient} from ${keyFile}`);
}
