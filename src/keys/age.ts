import { homedir, platform } from 'node:os';
import { posix, win32 } from 'node:path';
import { configError, FluxstrapError } from '../core/errors.ts';
import type { SshIdentity } from './age-ssh.ts';
import { bech32Decode } from './bech32.ts';

/**
 * age identities as sops and age-keygen write them. This module only parses and locates; it
 * imports no crypto so that `--help` stays cheap. The secret line is kept in memory only and is
 * never part of an error message.
 */

export interface AgeIdentity {
  /** `AGE-SECRET-KEY-1…` or `AGE-SECRET-KEY-PQ-1…`. Secret: never print. */
  secret: string;
  /** The recipient (`age1…` / `age1pq1…`) derived from the secret, or read from the comment. */
  recipient: string;
  /** Where it came from, for messages: a file path or an environment variable name. */
  source: string;
  line: number;
  createdAt?: string;
  postQuantum: boolean;
  /** An SSH key sops decrypts with (then `secret` is empty and `recipient` its `ssh-…` public key): never a cluster key. */
  ssh?: SshIdentity;
}

const SECRET_RE = /^AGE-SECRET-KEY-(PQ-)?1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]+$/;

/**
 * Parse the age-keygen file format: `# created:`, `# public key:` comments and one secret per
 * line; blank lines and other comments are ignored, anything else is an error with its line.
 * `deriveRecipient` is injected so the caller decides when to pay for the crypto import.
 */
export async function parseAgeKeyFile(text: string, source: string, deriveRecipient: (secret: string) => Promise<string>): Promise<AgeIdentity[]> {
  const out: AgeIdentity[] = [];
  let createdAt: string | undefined;
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s*created:\s*(.+)$/i.exec(line);
      if (m) createdAt = m[1];
      continue;
    }
    const upper = line.toUpperCase();
    if (line === '-----BEGIN AGE ENCRYPTED FILE-----' || line === 'age-encryption.org/v1') {
      throw configError(
        'this age identity file is encrypted (age -p): it must be opened with its passphrase first',
        { file: source, line: i + 1 },
        'as the cluster key, name it with --age-key-backup (its passphrase from --passphrase-file, $FLUXSTRAP_BACKUP_PASSPHRASE or a terminal); for decrypting, SOPS_AGE_KEY_FILE or --key-file with $FLUXSTRAP_AGE_PASSPHRASE or a terminal',
      );
    }
    if (/^-----BEGIN (OPENSSH|RSA|EC|DSA) PRIVATE KEY-----$/.test(line)) {
      // Never echo a line of it: only what it is and where.
      throw configError(
        'an SSH private key is not an age identity: kustomize-controller imports only age X25519 identities into sops-age',
        { file: source, line: i + 1 },
        'make an age key (`fluxstrap keys new`), add its recipient to .sops.yaml and re-encrypt (`fluxstrap updatekeys`); for decrypting locally with an SSH key, sops reads SOPS_AGE_SSH_PRIVATE_KEY_FILE',
      );
    }
    if (upper.startsWith('AGE-PLUGIN-')) {
      throw configError(
        'an age plugin identity is not a native age identity: kustomize-controller cannot run the plugin',
        { file: source, line: i + 1 },
        "use an age X25519 identity (`fluxstrap keys new`) for the cluster, and add its recipient to .sops.yaml next to the plugin's",
      );
    }
    if (!SECRET_RE.test(upper)) {
      throw configError(
        line.startsWith('age1') ? 'this is a public key (recipient), not an age identity' : 'not an age identity line',
        { file: source, line: i + 1 },
        'an age key file holds lines starting with AGE-SECRET-KEY-1 (see `fluxstrap keys new`)',
      );
    }
    let recipient: string;
    try {
      recipient = await deriveRecipient(upper);
    } catch {
      throw configError('malformed age identity (bad checksum or length)', { file: source, line: i + 1 });
    }
    out.push({
      secret: upper,
      recipient,
      source,
      line: i + 1,
      postQuantum: upper.startsWith('AGE-SECRET-KEY-PQ-'),
      ...(createdAt !== undefined ? { createdAt } : {}),
    });
    createdAt = undefined;
  }
  if (out.length === 0) {
    throw configError('no age identity found', { file: source }, 'an age key file holds lines starting with AGE-SECRET-KEY-1');
  }
  return out;
}

/**
 * The age key file sops reads by default, `sops/age/keys.txt` in Go's `os.UserConfigDir()` as
 * sops asks for it (age/keysource.go, getUserConfigDir): macOS `$XDG_CONFIG_HOME` when set, else
 * `~/Library/Application Support`; Windows `%AppData%` (XDG_CONFIG_HOME plays no part there);
 * other systems `$XDG_CONFIG_HOME` when set, else `~/.config`. Undefined where sops has none: Go
 * refuses a relative `$XDG_CONFIG_HOME` on Linux, and an unset `%AppData%` or home. `home` is
 * os.homedir(), which is `$HOME` when set, as Go reads it.
 */
export function sopsAgeKeyFile(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, home: string): string | undefined {
  if (platform === 'win32') {
    // Windows environment names ignore case; a copied env object does not.
    const appData = Object.entries(env).find(([k, v]) => k.toUpperCase() === 'APPDATA' && v !== undefined && v !== '')?.[1];
    return appData === undefined ? undefined : win32.join(appData, 'sops', 'age', 'keys.txt');
  }
  const xdg = env.XDG_CONFIG_HOME === '' ? undefined : env.XDG_CONFIG_HOME;
  if (xdg !== undefined && (platform === 'darwin' || posix.isAbsolute(xdg))) return posix.join(xdg, 'sops', 'age', 'keys.txt');
  if (xdg !== undefined || home === '') return undefined;
  return posix.join(home, platform === 'darwin' ? 'Library/Application Support' : '.config', 'sops', 'age', 'keys.txt');
}

/** sops' default age key file on this machine; undefined where sops has none. */
export function defaultAgeKeyFile(env: NodeJS.ProcessEnv): string | undefined {
  return sopsAgeKeyFile(platform(), env, homedir());
}

/** The key file fluxstrap writes to and reads from when none is named: `$SOPS_AGE_KEY_FILE`, else sops' default. */
export function ageKeyFilePath(env: NodeJS.ProcessEnv): string {
  const file = env.SOPS_AGE_KEY_FILE && env.SOPS_AGE_KEY_FILE !== '' ? env.SOPS_AGE_KEY_FILE : defaultAgeKeyFile(env);
  if (file === undefined) {
    const [what, variable] =
      platform() === 'win32' ? ['is not set', 'AppData'] : env.XDG_CONFIG_HOME ? ['is not an absolute path', 'XDG_CONFIG_HOME'] : ['is not set', 'HOME'];
    throw new FluxstrapError('E_USAGE', `no default age key file: ${variable} ${what}`, {
      location: { field: variable },
      hint: 'name the key file: set SOPS_AGE_KEY_FILE (sops reads it too) or pass it as a flag',
    });
  }
  return file;
}

/** An age-encrypted file, binary or armored (`age -p` output, say), rather than a key file. */
export function isAgeFile(bytes: Uint8Array): boolean {
  const head = Buffer.from(bytes.subarray(0, 64)).toString('latin1').trimStart();
  return head.startsWith('age-encryption.org/v1\n') || head.startsWith('-----BEGIN AGE ENCRYPTED FILE-----');
}

/** Lazily import the crypto to derive a recipient; only commands that need it pay the load. */
export async function recipientOf(secret: string): Promise<string> {
  const { identityToRecipient } = await import('age-encryption');
  return identityToRecipient(secret);
}

/** Format the file `age-keygen` writes (so the real `age -i` and sops read it). */
export function formatAgeKeyFile(identity: { secret: string; recipient: string }, created: Date): string {
  return `# created: ${created.toISOString().replace(/\.\d{3}Z$/, 'Z')}\n# public key: ${identity.recipient}\n${identity.secret}\n`;
}

/**
 * An X25519 recipient (`age1…`, 32 bytes) or a typed one (`age1pq1…` and others age-encryption
 * knows), with a valid checksum: a typo is caught before any file is written, not mid-batch.
 */
export function isAgeRecipient(s: string): boolean {
  const d = bech32Decode(s);
  return d !== undefined && s === s.toLowerCase() && ((d.hrp === 'age' && d.data.length === 32) || d.hrp.startsWith('age1'));
}
