import { link, rename, rm } from 'node:fs/promises';
import { z } from 'zod';
import { readTextIfExists, writeAtomic } from '../adapters/files.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { TaskKind } from '../core/task.ts';
import { KEY_DIR_MODE } from '../keys/generate.ts';
import { publicKeyOfPrivate } from '../keys/ssh.ts';

/**
 * The end of a deploy key rotation on disk: the staged key (`<keyFile>.next`) becomes the key file
 * and the old key is kept as `<keyFile>.old`, never destroyed. The old key is hard-linked there
 * first (link fails rather than replace a file), then the new one renamed over the key file, so
 * at every instant both keys exist under some name, and the staged file, moved last, tells a
 * later run that this rotation is not over.
 */
const Params = z.strictObject({
  keyFile: z.string().min(1).describe('The deploy key file; the new key is staged at <keyFile>.next.'),
});
type Params = z.infer<typeof Params>;

export const stagedKeyFile = (keyFile: string) => `${keyFile}.next`;
export const retiredKeyFile = (keyFile: string) => `${keyFile}.old`;

interface Facts {
  /** Public key lines of the three files, when they exist. */
  current?: string;
  next?: string;
  old?: string;
  /** --check, before the new key is staged: the run would promote the key it stages. */
  pending?: boolean;
}

async function publicOf(file: string): Promise<string | undefined> {
  const text = await readTextIfExists(file, 'read the deploy key');
  return text === undefined ? undefined : publicKeyOfPrivate(text, file);
}

/** The `.pub` line beside a key when it is that key's (its comment kept), else the bare public key. */
async function pubLine(file: string, publicKey: string): Promise<string> {
  const line = (await readTextIfExists(file, 'read the public key'))?.trim();
  return line?.split(' ')[1] === publicKey.split(' ')[1] && line !== undefined ? `${line}\n` : `${publicKey}\n`;
}

/** The refusal when `<keyFile>.old` holds a key other than the one being retired (an earlier rotation's). */
export function oldKeyClash(keyFile: string): FluxstrapError {
  return new FluxstrapError('E_PRECONDITION', `${retiredKeyFile(keyFile)} holds another key (an earlier rotation's); keys are never overwritten`, {
    hint: `move ${retiredKeyFile(keyFile)} (and its .pub) somewhere safe, or delete it if that key is revoked everywhere, then run again`,
  });
}

export const deployKeyPromotedKind: TaskKind<Params, Facts> = {
  kind: 'deploy-key-promoted',
  params: Params,
  async observe(p, _ctx, run) {
    const [current, next, old] = await Promise.all([publicOf(p.keyFile), publicOf(stagedKeyFile(p.keyFile)), publicOf(retiredKeyFile(p.keyFile))]);
    return { ...(current ? { current } : {}), ...(next ? { next } : {}), ...(old ? { old } : {}), ...(run.check && !next ? { pending: true } : {}) };
  },
  plan(p, facts): Change[] {
    // Nothing staged (and nothing about to be): the rotation is over.
    if (facts.next === undefined && facts.pending !== true) return [];
    if (facts.old !== undefined && facts.old !== facts.current) throw oldKeyClash(p.keyFile);
    return [
      {
        action: 'update',
        target: `deploy key ${p.keyFile}`,
        summary: `the new key in place (${stagedKeyFile(p.keyFile)}), the old kept as ${retiredKeyFile(p.keyFile)}`,
      },
    ];
  },
  async apply(_change, p) {
    const next = stagedKeyFile(p.keyFile);
    const old = retiredKeyFile(p.keyFile);
    const facts = await this.observe(p, undefined, { check: false });
    if (facts.next === undefined) throw new FluxstrapError('E_NOT_FOUND', `no new deploy key at ${next}`, { hint: 'run fluxstrap git rotate-key again' });
    if (facts.current !== undefined && facts.old === undefined) {
      await link(p.keyFile, old);
      await writeAtomic(`${old}.pub`, await pubLine(`${p.keyFile}.pub`, facts.current), { mode: 0o644, dirMode: KEY_DIR_MODE });
    }
    await writeAtomic(`${p.keyFile}.pub`, await pubLine(`${next}.pub`, facts.next), { mode: 0o644, dirMode: KEY_DIR_MODE });
    await rm(`${next}.pub`, { force: true });
    await rename(next, p.keyFile);
  },
  notes(p, facts) {
    return facts.old === undefined ? [] : [`the old deploy key is kept in ${retiredKeyFile(p.keyFile)}: remove it once nothing uses it`];
  },
};
