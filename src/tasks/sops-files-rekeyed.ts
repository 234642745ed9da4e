import { join } from 'node:path';
import { z } from 'zod';
import { readText, writeAtomic } from '../adapters/files.ts';
import type { Change } from '../core/change.ts';
import { configError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { newStanza } from '../sops/datakey.ts';
import { parseEncrypted, rotate, updateKeys } from '../sops/engine.ts';
import { stanzaName } from '../sops/metadata.ts';
import type { RepoContext } from './file-content.ts';
import { findSopsFiles } from './sops-files.ts';

/**
 * Every SOPS file under a cluster folder has its data key encrypted for exactly the given age
 * recipients (other key types stay as they are). Adding recipients re-encrypts the same data key
 * (sops updatekeys: values and MAC untouched, so the diff is the metadata only); removing one
 * rotates the data key (sops rotate), because whoever held the removed key may have kept the old
 * data key, and only a new one shuts them out.
 */

export const sopsFilesRekeyedParams = z.object({
  /** The cluster folder, relative to the repository, e.g. `clusters/prod`. */
  clusterPath: z.string(),
  age: z.array(z.string()).min(1),
});
export type SopsFilesRekeyedParams = z.infer<typeof sopsFilesRekeyedParams>;

/** The run's repository and the identities that open the files as they are now (TaskContext satisfies it). */
export interface RekeyContext extends RepoContext {
  ageIdentities(): Promise<AgeIdentity[]>;
}

interface KeyedFile {
  /** Relative to the repository. */
  name: string;
  /** `type:name` of every key the data key is encrypted for. */
  keys: string[];
}

interface Rekey {
  name: string;
  addAge: string[];
  rmAge: string[];
}

const ageKey = (r: string) => `age:${r}`;

async function observeFiles(p: SopsFilesRekeyedParams, ctx: RekeyContext): Promise<KeyedFile[]> {
  const files = await findSopsFiles(join(ctx.paths.repo, p.clusterPath), ctx.paths.repo);
  return files.map((f) => {
    const { keyGroups } = parseEncrypted(Buffer.from(f.text, 'utf8'), 'yaml', f.name).metadata;
    // Shamir key groups split the data key; which group a new recipient joins is the owner's call.
    if (keyGroups.length > 1) throw configError('the file uses several key groups (Shamir): rekey it with fluxstrap sops updatekeys', { file: f.name });
    return { name: f.name, keys: keyGroups.flat().map((s) => `${s.type}:${stanzaName(s)}`) };
  });
}

export const sopsFilesRekeyedKind: TaskKind<SopsFilesRekeyedParams, KeyedFile[], RekeyContext> = {
  kind: 'sops-files-rekeyed',
  params: sopsFilesRekeyedParams,
  observe: observeFiles,
  plan(p, files): Change<Rekey>[] {
    return files.flatMap((f) => {
      const wanted = [...p.age.map(ageKey), ...f.keys.filter((k) => !k.startsWith('age:'))];
      const added = wanted.filter((k) => !f.keys.includes(k));
      const removed = f.keys.filter((k) => !wanted.includes(k));
      if (added.length === 0 && removed.length === 0) return [];
      const recipient = (k: string) => k.slice('age:'.length);
      return [
        {
          action: 'update',
          target: `file ${f.name}`,
          summary: removed.length > 0 ? `new data key for ${p.age.join(', ')} (drops ${removed.map(recipient).join(', ')})` : `data key re-encrypted for ${added.map(recipient).join(', ')} too`,
          before: f.keys.map((k) => `${k}\n`).join(''),
          after: wanted.map((k) => `${k}\n`).join(''),
          data: { name: f.name, addAge: added.map(recipient), rmAge: removed.map(recipient) },
        },
      ];
    });
  },
  async apply(change, _p, ctx) {
    const { name, addAge, rmAge } = change.data as Rekey;
    const file = join(ctx.paths.repo, name);
    const bytes = Buffer.from(await readText(file), 'utf8');
    // No gpg: a rekey must not stop at a passphrase prompt, and only age keys change here.
    const sources = { age: await ctx.ageIdentities(), pgpFiles: [], gpg: false };
    let output: string;
    if (rmAge.length > 0) {
      output = (await rotate(bytes, 'yaml', name, sources, { addAge, rmAge })).output;
    } else {
      const [group = []] = parseEncrypted(bytes, 'yaml', name).metadata.keyGroups;
      output = (await updateKeys(bytes, 'yaml', name, [[...group, ...addAge.map((r) => newStanza('age', r))]], 0, sources)).output;
    }
    await writeAtomic(file, output);
  },
};
