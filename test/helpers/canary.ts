import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after } from 'node:test';
import { describePrivateKey, redactPrivateKeys } from '../../src/core/redact.ts';
import { tempDirsMade } from './tmp.ts';

/**
 * The leak guard of a test process: every CLI run's output (recorded by runCli) and every file
 * under the process's temp folders is scanned, once the file's tests are done, for the canary
 * values tests registered and for private keys. A hit fails the test file. Exempt, because a test
 * put them there on purpose: stdout of runs that declare `revealsSecrets` (decrypt prints values),
 * files registered with `allowSecretsIn` (plaintext inputs, decrypted outputs), and key files
 * (nothing in them but keys and comments) for private keys.
 */

const canaries = new Set<string>();
/** Pieces of registered age keys, upper case: a key cut short, or run together, is still found. */
const keyPieces = new Set<string>();
const PIECE = 20;
const secretFiles = new Set<string>();

export interface RecordedRun {
  args: string[];
  stdout: string;
  stderr: string;
  /** Stdout carries secrets by design (decrypt, --extract); stderr never does. */
  revealsSecrets: boolean;
}
const runs: RecordedRun[] = [];

/** A fresh secret value, unique to this run, that must never show up where secrets do not belong. */
export function canary(label = 'secret'): string {
  const value = `canary-${label}-${randomBytes(9).toString('hex')}`;
  canaries.add(value);
  return value;
}

/** Declare a value (a password, a token) the test uses as a secret; private keys need no declaring: any is caught. */
export function registerCanary(value: string): void {
  if (value.length < 8) throw new Error('a canary shorter than 8 characters would match by chance');
  if (describePrivateKey(value) !== undefined) throw new Error('private keys need no registering: the scan finds every one');
  canaries.add(value);
}

/**
 * Declare an age private key the test uses: besides the whole key (any private key is found by
 * its shape), every 20-character piece of its secret part is then a leak too, so that a message
 * quoting the first 80 characters of a mangled key cannot slip through. age keys only: an OpenPGP
 * or SSH private key embeds its public key, which may be printed.
 */
export function registerPrivateKey(key: string): void {
  const body = /^AGE-SECRET-KEY-(?:PQ-)?1(.+)$/i.exec(key.trim())?.[1];
  if (body === undefined) throw new Error('registerPrivateKey takes an age private key');
  for (let i = 0; i + PIECE <= body.length; i += PIECE / 2) keyPieces.add(body.slice(i, i + PIECE).toUpperCase());
}

/** A file this test wrote, or had the CLI write, with secrets in it on purpose. */
export function allowSecretsIn(file: string): void {
  secretFiles.add(resolve(file));
}

export function recordRun(run: RecordedRun): void {
  runs.push(run);
}

export interface Leak {
  where: string;
  what: string;
}

/** The canaries and private keys in `text`, each named without printing it (a test report is output too). */
export function leaksIn(text: string): string[] {
  const found: string[] = [];
  for (const c of canaries) if (text.includes(c)) found.push(`canary ${c.slice(0, c.lastIndexOf('-'))}-…`);
  const key = describePrivateKey(text);
  if (key !== undefined) found.push(key);
  else if (keyPieces.size > 0) {
    const flat = text.replace(/\s+/g, '').toUpperCase();
    for (const piece of keyPieces) {
      if (flat.includes(piece)) {
        found.push('a piece of a registered age private key');
        break;
      }
    }
  }
  return found;
}

/** A key file holds keys and comments only: its private keys are where they belong. */
function isKeyFile(text: string): boolean {
  if (describePrivateKey(text) === undefined) return false;
  return redactPrivateKeys(text)
    .split('\n')
    .every((line) => line.trim() === '' || line.trim().startsWith('#') || /^<[^>]+, not shown>$/.test(line.trim()));
}

const MAX_SCANNED = 8 << 20;

function scanFiles(dir: string, leaks: Leak[]): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(dir, name);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st || st.isSymbolicLink()) continue;
    if (st.isDirectory()) {
      if (name !== '.git') scanFiles(path, leaks);
      continue;
    }
    if (!st.isFile() || st.size > MAX_SCANNED || secretFiles.has(resolve(path))) continue;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      continue; // unreadable on purpose (a test's mode 000 file)
    }
    const found = leaksIn(text).filter((what) => what.startsWith('canary') || !isKeyFile(text));
    for (const what of found) leaks.push({ where: `file ${path}`, what });
  }
}

/** Every leak in the recorded runs and under `roots` (this process's temp folders by default). */
export function findLeaks(roots: readonly string[] = tempDirsMade()): Leak[] {
  const leaks: Leak[] = [];
  for (const run of runs) {
    const name = `fluxstrap ${run.args.join(' ').slice(0, 120)}`;
    for (const what of leaksIn(run.stderr)) leaks.push({ where: `stderr of ${redactPrivateKeys(name)}`, what });
    if (!run.revealsSecrets) for (const what of leaksIn(run.stdout)) leaks.push({ where: `stdout of ${redactPrivateKeys(name)}`, what });
  }
  for (const root of roots) scanFiles(root, leaks);
  return leaks;
}

let installed = false;

/** Install the scan as a root `after` hook of the importing test file: a leak fails the file. */
export function installLeakGuard(): void {
  if (installed) return;
  installed = true;
  after(() => assertNoLeaks());
}

/** Fails naming every leak (never the secret) in the recorded runs and under `roots`. */
export function assertNoLeaks(roots?: readonly string[]): void {
  const leaks = findLeaks(roots);
  if (leaks.length > 0) {
    throw new Error(
      `secrets leaked (${leaks.length}):\n${leaks
        .slice(0, 20)
        .map((l) => `  ${l.what} in ${l.where}`)
        .join('\n')}`,
    );
  }
}
