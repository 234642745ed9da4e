import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgeIdentity } from '../../../src/keys/age.ts';
import { loadAgeIdentities } from '../../../src/keys/identities.ts';
import { Comment, Timestamp, TreeMap, type Value } from '../../../src/sops/tree.ts';
import { ownedTempDir } from '../../helpers/tmp.ts';

/** Shared fixtures for the SOPS tests: where the vectors are, their keys, the real sops. */

export const repoRoot = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const vectorsDir = join(repoRoot, 'test', 'vectors', 'sops');
export const generatedDir = join(repoRoot, 'test', 'vectors', 'sops-generated');

const AGE_KEY_FILES = [
  'flux-key-age.txt',
  'flux-key-age-global.txt',
  'flux-key-age-pq.txt',
  'sopsage-key.txt',
  'sopsnix-age-keys.txt',
  'helmsecrets-key-age.txt',
];
const PGP_KEY_FILES = ['flux-key-pgp.asc', 'sopsnix-key.asc', 'helmsecrets-key-private.gpg', 'sops-functional-tests-key.asc'];

export function vector(name: string): Buffer {
  return readFileSync(join(vectorsDir, name));
}

/** Every age identity of the vectors, loaded the way `--key-file` loads them. */
export async function vectorAgeIdentities(): Promise<AgeIdentity[]> {
  return loadAgeIdentities({ keyFiles: AGE_KEY_FILES.map((f) => join(vectorsDir, f)), env: { HOME: '/nonexistent', XDG_CONFIG_HOME: '/nonexistent' } });
}

/**
 * A throwaway GNUPGHOME holding the vectors' PGP keys, set as the process's, so that the engine's
 * gpg path is exercised exactly as a user's keyring would be. Returns a cleanup function.
 */
export function useVectorKeyring(): () => void {
  // Named for this process: a run that dies before the cleanup leaves it for the next to remove.
  const home = ownedTempDir('gnupg');
  const before = process.env.GNUPGHOME;
  for (const f of PGP_KEY_FILES)
    execFileSync('gpg', ['--batch', '--quiet', '--import', join(vectorsDir, f)], { env: { ...process.env, GNUPGHOME: home }, stdio: 'ignore' });
  process.env.GNUPGHOME = home;
  return () => {
    try {
      execFileSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: home }, stdio: 'ignore' });
    } catch {
      // no agent was started
    }
    if (before === undefined) delete process.env.GNUPGHOME;
    else process.env.GNUPGHOME = before;
    rmSync(home, { recursive: true, force: true });
  };
}

/**
 * The tree in the `expected/` files' notation. Those list YAML comments apart (with their AAD),
 * and keep dotenv/INI comments in place as `{"#comment": text}` entries.
 */
export function toExpected(v: Value, comments = false): unknown {
  const conv = (x: Value): unknown => toExpected(x, comments);
  if (v instanceof TreeMap) {
    return {
      '#map': v.items
        .filter((i) => comments || !(i.key instanceof Comment))
        .map((i) => (i.key instanceof Comment ? { '#comment': i.key.text } : [i.key, conv(i.value)])),
    };
  }
  if (Array.isArray(v)) return { '#list': v.filter((e) => comments || !(e instanceof Comment)).map(conv) };
  if (v === null) return { null: null };
  if (typeof v === 'string') return { str: v };
  if (v instanceof Uint8Array) return { str: Buffer.from(v).toString('utf8') };
  if (v instanceof Timestamp) return { time: v.text };
  if (v instanceof Comment) return { '#comment': v.text };
  if (typeof v === 'bigint') return { int: v.toString() };
  if (typeof v === 'boolean') return { bool: v };
  if (Number.isNaN(v)) return { float: 'NaN' };
  if (!Number.isFinite(v)) return { float: v > 0 ? '+Inf' : '-Inf' };
  return { float: v };
}

/** Every comment of a tree, in document order. */
export function commentsOf(v: Value): string[] {
  if (v instanceof TreeMap) return v.items.flatMap((i) => (i.key instanceof Comment ? [i.key.text] : commentsOf(i.value)));
  if (Array.isArray(v)) return v.flatMap(commentsOf);
  return v instanceof Comment ? [v.text] : [];
}

/**
 * The real sops binary for interop tests: `FLUXSTRAP_SOPS`, then the cluster harness's cache,
 * then `sops` on PATH. Throws (the test fails, it is not skipped) saying how to get one.
 */
export function findSops(): string {
  const candidates = [process.env.FLUXSTRAP_SOPS];
  const cache = join(homedir(), '.cache', 'fluxstrap-test');
  if (existsSync(cache)) {
    for (const d of readdirSync(cache)) candidates.push(join(cache, d, 'sops'), join(cache, d, 'bin', 'sops'));
  }
  candidates.push('/tmp/sopsbin/sops');
  for (const c of candidates) if (c && existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', 'command -v sops'], { encoding: 'utf8' }).trim() || missing();
  } catch {
    return missing();
  }
}

function missing(): never {
  throw new Error(
    'the real sops CLI is needed for this test and was not found. Build it with:\n' +
      '  GOTOOLCHAIN=local GOBIN=/tmp/sopsbin go install github.com/getsops/sops/v3/cmd/sops@v3.13.2\n' +
      'or point FLUXSTRAP_SOPS at a sops binary',
  );
}

/** An age key file (mode 0600) in a fresh temp folder, as SOPS_AGE_KEY_FILE for a child sops. */
export function tempKeyFile(content: string): { file: string; dir: string; cleanup: () => void } {
  const dir = ownedTempDir('sops');
  const file = join(dir, 'keys.txt');
  writeFileSync(file, content, { mode: 0o600 });
  return { file, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
