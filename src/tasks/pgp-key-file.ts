import { z } from 'zod';
import { readTextIfExists } from '../adapters/files.ts';
import { dataOf } from '../core/change.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { writeKeyFile } from '../keys/generate.ts';
import type { RepoContext } from './file-content.ts';

/**
 * A new OpenPGP private key file (`keys rotate --generate`): written once, 0600, never over
 * another file. The key is only in the data apply uses, never in the change's view; under
 * --check it is absent and nothing is written.
 */

export interface PgpKeyFileParams {
  file: string;
  fingerprint: string;
  /** Armored private key; absent under --check. Secret. */
  armored?: string;
}

/** The fingerprint of the key the file holds, null when it holds none readable; undefined when there is no file. */
type Held = { fingerprint: string | null | undefined };

export const pgpKeyFileKind: TaskKind<PgpKeyFileParams, Held, RepoContext, string | undefined> = {
  kind: 'pgp-key-file',
  params: z.custom<PgpKeyFileParams>(),
  async observe(p) {
    const text = await readTextIfExists(p.file);
    if (text === undefined) return { fingerprint: undefined };
    const { readPgpKey } = await import('../keys/pgp.ts');
    return {
      fingerprint: await readPgpKey(text, p.file).then(
        (k) => k.fingerprint,
        () => null,
      ),
    };
  },
  plan(p, { fingerprint }): Change<string | undefined>[] {
    // The file this run wrote (the engine looks again after apply): done.
    if (fingerprint === p.fingerprint) return [];
    if (fingerprint !== undefined) {
      throw new FluxstrapError('E_PRECONDITION', 'refusing to overwrite an existing key file', {
        location: { file: p.file },
        hint: 'to rotate to the key it holds, pass it with --pgp-key-file and without --generate; else choose another --pgp-key-file',
      });
    }
    return [{ action: 'create', target: `key file ${p.file}`, summary: `new OpenPGP key ${p.fingerprint} (no passphrase, mode 0600)`, data: p.armored }];
  },
  async apply(change, p) {
    const armored = dataOf(change);
    if (armored === undefined) throw new Error('a new OpenPGP key without its private key reached apply');
    await writeKeyFile(p.file, armored, true);
  },
};
