import { join } from 'node:path';
import { z } from 'zod';
import { readText, writeAtomic } from '../adapters/files.ts';
import { dataOf } from '../core/change.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { ageDecrypt } from '../sops/age.ts';
import { keyFileDecrypt } from '../sops/pgp.ts';
import type { PgpKeyFile } from '../sops/pgp.ts';
import { encryptDataKey, newStanza } from '../sops/datakey.ts';
import { parseEncrypted, rotate } from '../sops/engine.ts';
import { stanzaField, stanzaName } from '../sops/metadata.ts';
import type { Stanza } from '../sops/metadata.ts';
import { emitEncrypted } from '../sops/stores.ts';
import type { TaskContext } from './context.ts';
import type { RepoContext } from './file-content.ts';
import { clusterKeyedFiles } from './sops-files.ts';
import { changedRecipients, keyName, recipientChange } from './sops-recipients.ts';
import type { RecipientType } from './sops-recipients.ts';

/**
 * Every SOPS file a cluster reaches (its folder and the Kustomizations it applies, see
 * clusterKeyedFiles) has its age (or PGP) recipients changed as a rotation step says:
 * the new recipient joins each key group that holds the old one, and a removed recipient leaves
 * every group (other key types stay as they are). Joining re-encrypts the group's part of the
 * same data key (values and MAC untouched, so the diff is the metadata only); removing gives the
 * file a new data key (sops rotate, split again over the groups with the file's threshold),
 * because whoever held the removed key may have kept the old data key, and only a new one shuts
 * them out.
 */

export const sopsFilesRekeyedParams = recipientChange.extend({
  /** The cluster folder, relative to the repository, e.g. `clusters/prod`. */
  clusterPath: z.string(),
});
export type SopsFilesRekeyedParams = z.infer<typeof sopsFilesRekeyedParams>;

/** The run's repository and the keys that open the files as they are now (TaskContext satisfies it). */
export interface RekeyContext extends RepoContext, Pick<TaskContext, 'ageIdentities' | 'pgpKey'> {}

interface KeyedFile {
  /** Relative to the repository. */
  name: string;
  /** Per key group, `type:name` of every key its part of the data key is encrypted for. */
  groups: string[][];
}

interface Rekey {
  name: string;
  type: RecipientType;
  /** Per key group, the recipients (of `type`) that join it. */
  add: string[][];
  remove: string[];
}

/** Per key group, `type:name` of its keys: what a file is encrypted for, as the plan shows it. */
export function keyGroupsOf(text: string, name: string): string[][] {
  return parseEncrypted(Buffer.from(text, 'utf8'), 'yaml', name).metadata.keyGroups.map((g) => g.map((s) => `${s.type}:${stanzaName(s)}`));
}

/** A group per line prefix only when there are several, so that single-group plans read as they always did. */
const listing = (groups: string[][]) => groups.flatMap((g, i) => g.map((k) => `${groups.length > 1 ? `group ${i + 1}: ` : ''}${k}\n`)).join('');

export const sopsFilesRekeyedKind: TaskKind<SopsFilesRekeyedParams, KeyedFile[], RekeyContext, Rekey> = {
  kind: 'sops-files-rekeyed',
  params: sopsFilesRekeyedParams,
  async observe(p, ctx) {
    const files = await clusterKeyedFiles(ctx.paths.repo, p.clusterPath);
    return files.map((f) => ({ name: f.name, groups: keyGroupsOf(f.text, f.name) }));
  },
  plan(p, files): Change<Rekey>[] {
    const prefix = `${p.type}:`;
    const ofType = (k: string) => k.startsWith(prefix);
    const nameOf = (k: string) => keyName(p.type, k.slice(prefix.length));
    return files.flatMap((f) => {
      const multi = f.groups.length > 1;
      const add: string[][] = [];
      const remove = new Set<string>();
      const after = f.groups.map((g, i) => {
        const names = g.filter(ofType).map(nameOf);
        const wanted = changedRecipients(names, p);
        add.push(wanted.filter((r) => !names.includes(r)));
        for (const r of names) if (!wanted.includes(r)) remove.add(r);
        const keys = [...g.filter((k) => !ofType(k) || wanted.includes(nameOf(k))), ...(add[i] ?? []).map((r) => prefix + r)];
        if (keys.length === 0) {
          // Its part of the data key would be encrypted for nobody: with Shamir, the file might never open again.
          throw new FluxstrapError(
            'E_PRECONDITION',
            `removing ${p.remove.join(', ')} would leave ${multi ? `key group ${i + 1} of this file` : 'this file'} without a key`,
            {
              location: { file: f.name },
              hint: 'add the recipient that replaces it to the same group first',
            },
          );
        }
        return keys;
      });
      const added = add.flatMap((rs, i) => rs.map((r) => (multi ? `${r} (group ${i + 1})` : r)));
      if (added.length === 0 && remove.size === 0) return [];
      const nowFor = [...new Set(after.flat().filter(ofType).map(nameOf))];
      return [
        {
          action: 'update',
          target: `file ${f.name}`,
          summary:
            remove.size > 0 ? `new data key for ${nowFor.join(', ')} (drops ${[...remove].join(', ')})` : `data key re-encrypted for ${added.join(', ')} too`,
          before: listing(f.groups),
          after: listing(after),
          data: { name: f.name, type: p.type, add, remove: [...remove] },
        },
      ];
    });
  },
  async apply(change, _p, ctx) {
    const { name, type, add, remove } = dataOf(change);
    const file = join(ctx.paths.repo, name);
    let text = await readText(file);
    const keys = await rekeyKeys(ctx, type);
    // A recipient joins first, so that removing the one it replaces leaves its group a key.
    if (add.some((rs) => rs.length > 0)) text = await joinGroups(text, name, type, add, keys);
    // No gpg: a rekey must not stop at a passphrase prompt; the keys are the run's own.
    if (remove.length > 0) {
      const rm = type === 'pgp' ? { rmPgp: remove } : { rmAge: remove };
      text = (await rotate(Buffer.from(text, 'utf8'), 'yaml', name, { ...keys, gpg: false }, rm)).output;
    }
    await writeAtomic(file, text, { within: ctx.paths.repo });
  },
};

interface RekeyKeys {
  age: AgeIdentity[];
  /** The cluster's PGP key (and the one it replaces), armored: a new recipient is encrypted for with its public part. */
  pgpFiles: PgpKeyFile[];
}

async function rekeyKeys(ctx: RekeyContext, type: RecipientType): Promise<RekeyKeys> {
  if (type === 'age') return { age: await ctx.ageIdentities(), pgpFiles: [] };
  const key = await ctx.pgpKey();
  const keys = key ? [key, ...(key.retiring ? [key.retiring] : [])] : [];
  return { age: [], pgpFiles: keys.map((k) => ({ armored: k.armored, source: k.source })) };
}

/**
 * sops updatekeys for the groups that change only: the group's part of the data key (the key
 * itself with one group, else its Shamir share) encrypted for the recipients that join it. The
 * engine's updateKeys splits the data key anew, which takes keys of a threshold of groups and
 * re-encrypts every stanza; here one key of each changing group is enough, and every other
 * stanza stays as it is, byte for byte.
 */
async function joinGroups(text: string, name: string, type: RecipientType, add: string[][], keys: RekeyKeys): Promise<string> {
  const { branches, metadata } = parseEncrypted(Buffer.from(text, 'utf8'), 'yaml', name);
  const multi = metadata.keyGroups.length > 1;
  const keyGroups: Stanza[][] = [];
  for (const [i, group] of metadata.keyGroups.entries()) {
    const joining = add[i] ?? [];
    if (joining.length === 0) {
      keyGroups.push(group);
      continue;
    }
    const part = await openGroup(group, type, keys);
    if (part === undefined) {
      const listed = group.filter((s) => s.type === type).map(stanzaName);
      const tried = type === 'age' ? keys.age.map((id) => id.recipient) : keys.pgpFiles.map((f) => f.source);
      throw new FluxstrapError('E_DECRYPT', `no key at hand opens ${multi ? `key group ${i + 1} of this file` : 'this file'}`, {
        location: { file: name },
        hint: `its ${type} recipients: ${listed.join(', ') || 'none'}; tried ${tried.join(', ') || 'none'}. Give a matching key with ${type === 'age' ? '--age-key-file' : 'sopsKey.pgp in fluxstrap.yaml'}`,
      });
    }
    // One group of the part itself: encrypted as the engine encrypts any data key (pgp entries get their created_at).
    const { groups } = await encryptDataKey(part, [joining.map((r) => newStanza(type, r))], 1, { ...keys, gpg: false });
    keyGroups.push([...group, ...(groups[0] ?? [])]);
  }
  return emitEncrypted('yaml', branches, { ...metadata, keyGroups });
}

async function openGroup(group: Stanza[], type: RecipientType, keys: RekeyKeys): Promise<Uint8Array | undefined> {
  for (const s of group) {
    if (s.type !== type) continue;
    // A stanza that is not ours (or not well formed) is one this group cannot be opened with; another may be.
    const enc = stanzaField(s, 'enc');
    const part = await (type === 'age' ? ageDecrypt(enc, keys.age) : keyFileDecrypt(enc, keys.pgpFiles)).catch(() => undefined);
    if (part !== undefined) return part;
  }
  return undefined;
}
