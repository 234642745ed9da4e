import { z } from 'zod';
import { readText } from '../adapters/files.ts';
import { dataOf } from '../core/change.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind, TaskRun } from '../core/task.ts';
import { parseAgeKeyFile, recipientOf } from '../keys/age.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { newAgeKey, withKeyFileLock, writeKeyFile } from '../keys/generate.ts';
import type { RepoContext } from './file-content.ts';
import { keyGroupsOf } from './sops-files-rekeyed.ts';
import { clusterKeyedFiles } from './sops-files.ts';

/**
 * The key file's side of `keys rotate`: the new identity appended to it, and at the end the old
 * ones taken out of it. Private keys: never in a change's view, only in the data apply uses.
 */

export async function readIdentities(file: string): Promise<AgeIdentity[]> {
  return parseAgeKeyFile(await readText(file), file, recipientOf);
}

/** A new identity for the key file: its recipient is planned with; `secret` is absent under --check, where none is made. */
export interface PlannedIdentity {
  recipient: string;
  secret?: string;
  postQuantum: boolean;
}

export interface AgeKeyAppendedParams {
  file: string;
  identity: PlannedIdentity;
}

/** The key file holds `identity` (appended, under the lock `keys new --append` takes). */
export const ageKeyAppendedKind: TaskKind<AgeKeyAppendedParams, AgeIdentity[], RepoContext, PlannedIdentity> = {
  kind: 'age-key-appended',
  params: z.custom<AgeKeyAppendedParams>(),
  observe: (p) => readIdentities(p.file),
  plan(p, held): Change<PlannedIdentity>[] {
    if (held.some((i) => i.recipient === p.identity.recipient)) return [];
    return [{ action: 'update', target: `key file ${p.file}`, summary: `append a new age identity: ${p.identity.recipient}`, data: p.identity }];
  },
  async apply(change, p) {
    const { secret, recipient, postQuantum } = dataOf(change);
    if (secret === undefined) throw new Error('a new identity without its private key reached apply');
    await newAgeKey({ file: p.file, postQuantum, append: true, identity: { secret, recipient } });
  },
};

export interface AgeIdentitiesRetiredParams {
  file: string;
  /** Recipients whose identities leave the key file. */
  recipients: string[];
  /** The cluster folder, relative to the repository: no file it reaches or holds may still be encrypted to one of them. */
  clusterPath: string;
  /** How to run again, for the refusal's hint. */
  again: string;
}

interface Retiring {
  stale: { recipient: string; line: number }[];
  /** A file still encrypted to a retiring identity: removing it would leave that file for nobody. */
  held?: { file: string; recipient: string };
  check: boolean;
}

/** The key file without the old identities (and their `# created` / `# public key` lines). */
export const ageIdentitiesRetiredKind: TaskKind<AgeIdentitiesRetiredParams, Retiring, RepoContext, string[]> = {
  kind: 'age-identities-retired',
  params: z.custom<AgeIdentitiesRetiredParams>(),
  async observe(p, ctx, run: TaskRun) {
    const stale = (await readIdentities(p.file)).filter((i) => p.recipients.includes(i.recipient)).map(({ recipient, line }) => ({ recipient, line }));
    const keys = new Set(stale.map((i) => `age:${i.recipient}`));
    if (keys.size > 0) {
      for (const f of await clusterKeyedFiles(ctx.paths.repo, p.clusterPath)) {
        // Every key group's keys: a Shamir file needs the old key as much as a plain one.
        const held = keyGroupsOf(f.text, f.name)
          .flat()
          .find((k) => keys.has(k));
        if (held !== undefined) return { stale, held: { file: f.name, recipient: held.slice('age:'.length) }, check: run.check };
      }
    }
    return { stale, check: run.check };
  },
  plan(p, r): Change<string[]>[] {
    if (r.stale.length === 0) return [];
    if (r.held) {
      throw new FluxstrapError('E_PRECONDITION', `refusing to remove the old identity ${r.held.recipient}: this file is still encrypted to it`, {
        location: { file: r.held.file },
        hint: r.check ? 'run without --check first, so that the files get a new data key' : `run ${p.again} again`,
      });
    }
    return r.stale.map((i) => ({
      action: 'delete',
      target: `key file ${p.file}`,
      summary: `remove the old identity at line ${i.line} (${i.recipient})`,
      data: [i.recipient],
    }));
  },
  async apply(change, p) {
    const retiring = new Set(dataOf(change));
    // Under the lock `keys new --append` takes, so an identity appended meanwhile is not lost;
    // the file is read again under it, so lines are those of the file as it is now.
    await withKeyFileLock(p.file, async () => {
      const text = await readText(p.file);
      const lines = text.split('\n');
      const drop = new Set<number>();
      for (const i of await parseAgeKeyFile(text, p.file, recipientOf)) {
        if (!retiring.has(i.recipient)) continue;
        drop.add(i.line - 1);
        // The `# created:` / `# public key:` lines written above it belong to it.
        for (let n = i.line - 2; n >= 0 && /^#\s*(created|public key):/i.test(lines[n] ?? ''); n--) drop.add(n);
      }
      await writeKeyFile(p.file, lines.filter((_, n) => !drop.has(n)).join('\n'), false);
    });
  },
};
