import { join } from 'node:path';
import { z } from 'zod';
import { readText, writeAtomic } from '../adapters/files.ts';
import { dataOf } from '../core/change.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { ageDecrypt, ageEncrypt } from '../sops/age.ts';
import { newStanza } from '../sops/datakey.ts';
import { parseEncrypted, rotate } from '../sops/engine.ts';
import { stanzaField, stanzaName } from '../sops/metadata.ts';
import type { Stanza } from '../sops/metadata.ts';
import { emitEncrypted } from '../sops/stores.ts';
import type { RepoContext } from './file-content.ts';
import { clusterKeyedFiles } from './sops-files.ts';
import { changedAges, recipientChange } from './sops-recipients.ts';

/**
 * Every SOPS file a cluster reaches (its folder and the Kustomizations it applies, see
 * clusterKeyedFiles) has its age recipients changed as a rotation step says:
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

/** The run's repository and the identities that open the files as they are now (TaskContext satisfies it). */
export interface RekeyContext extends RepoContext {
  ageIdentities(): Promise<AgeIdentity[]>;
}

interface KeyedFile {
  /** Relative to the repository. */
  name: string;
  /** Per key group, `type:name` of every key its part of the data key is encrypted for. */
  groups: string[][];
}

interface Rekey {
  name: string;
  /** Per key group, the age recipients that join it. */
  addAge: string[][];
  rmAge: string[];
}

const AGE = 'age:';

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
    return files.flatMap((f) => {
      const multi = f.groups.length > 1;
      const addAge: string[][] = [];
      const rmAge = new Set<string>();
      const after = f.groups.map((g, i) => {
        const ages = g.filter((k) => k.startsWith(AGE)).map((k) => k.slice(AGE.length));
        const wanted = changedAges(ages, p);
        addAge.push(wanted.filter((r) => !ages.includes(r)));
        for (const r of ages) if (!wanted.includes(r)) rmAge.add(r);
        const keys = [...g.filter((k) => !k.startsWith(AGE) || wanted.includes(k.slice(AGE.length))), ...(addAge[i] ?? []).map((r) => AGE + r)];
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
      const added = addAge.flatMap((rs, i) => rs.map((r) => (multi ? `${r} (group ${i + 1})` : r)));
      if (added.length === 0 && rmAge.size === 0) return [];
      const nowFor = [
        ...new Set(
          after
            .flat()
            .filter((k) => k.startsWith(AGE))
            .map((k) => k.slice(AGE.length)),
        ),
      ];
      return [
        {
          action: 'update',
          target: `file ${f.name}`,
          summary:
            rmAge.size > 0 ? `new data key for ${nowFor.join(', ')} (drops ${[...rmAge].join(', ')})` : `data key re-encrypted for ${added.join(', ')} too`,
          before: listing(f.groups),
          after: listing(after),
          data: { name: f.name, addAge, rmAge: [...rmAge] },
        },
      ];
    });
  },
  async apply(change, _p, ctx) {
    const { name, addAge, rmAge } = dataOf(change);
    const file = join(ctx.paths.repo, name);
    let text = await readText(file);
    const identities = await ctx.ageIdentities();
    // A recipient joins first, so that removing the one it replaces leaves its group a key.
    if (addAge.some((rs) => rs.length > 0)) text = await joinGroups(text, name, addAge, identities);
    // No gpg: a rekey must not stop at a passphrase prompt, and only age keys change here.
    if (rmAge.length > 0) text = (await rotate(Buffer.from(text, 'utf8'), 'yaml', name, { age: identities, pgpFiles: [], gpg: false }, { rmAge })).output;
    await writeAtomic(file, text, { within: ctx.paths.repo });
  },
};

/**
 * sops updatekeys for the groups that change only: the group's part of the data key (the key
 * itself with one group, else its Shamir share) encrypted for the recipients that join it. The
 * engine's updateKeys splits the data key anew, which takes keys of a threshold of groups and
 * re-encrypts every stanza; here one key of each changing group is enough, and every other
 * stanza stays as it is, byte for byte.
 */
async function joinGroups(text: string, name: string, addAge: string[][], identities: AgeIdentity[]): Promise<string> {
  const { branches, metadata } = parseEncrypted(Buffer.from(text, 'utf8'), 'yaml', name);
  const multi = metadata.keyGroups.length > 1;
  const keyGroups: Stanza[][] = [];
  for (const [i, group] of metadata.keyGroups.entries()) {
    const joining = addAge[i] ?? [];
    if (joining.length === 0) {
      keyGroups.push(group);
      continue;
    }
    const part = await openGroup(group, identities);
    if (part === undefined) {
      const ages = group.filter((s) => s.type === 'age').map(stanzaName);
      throw new FluxstrapError('E_DECRYPT', `no key at hand opens ${multi ? `key group ${i + 1} of this file` : 'this file'}`, {
        location: { file: name },
        hint: `its age recipients: ${ages.join(', ') || 'none'}; tried ${identities.map((id) => id.recipient).join(', ') || 'none'}. Give a matching key with --key-file`,
      });
    }
    const stanzas = [...group];
    for (const r of joining) {
      const s = newStanza('age', r);
      s.fields.set('enc', await ageEncrypt(r, part));
      stanzas.push(s);
    }
    keyGroups.push(stanzas);
  }
  return emitEncrypted('yaml', branches, { ...metadata, keyGroups });
}

async function openGroup(group: Stanza[], identities: AgeIdentity[]): Promise<Uint8Array | undefined> {
  for (const s of group) {
    if (s.type !== 'age') continue;
    // A stanza that is not ours (or not well formed) is one this group cannot be opened with; another may be.
    const part = await ageDecrypt(stanzaField(s, 'enc'), identities).catch(() => undefined);
    if (part !== undefined) return part;
  }
  return undefined;
}
