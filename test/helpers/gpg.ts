// OpenPGP keys made by the real gpg, each in the keyring given as GNUPGHOME, for the tests of
// `sopsKey.pgp`.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool, type ToolResult } from './tools.ts';

export const gpgIn = (gnupg: string, args: string[], input?: string): Promise<ToolResult> =>
  runTool('gpg', ['--batch', '--no-tty', ...args], { env: { GNUPGHOME: gnupg }, ...(input !== undefined ? { input } : {}) });

const fingerprintOf = async (gnupg: string, who: string): Promise<string> => {
  const colons = (await gpgIn(gnupg, ['--with-colons', '--list-secret-keys', who])).stdout;
  return /^fpr:+([0-9A-F]{40}):/m.exec(colons)?.[1] ?? assert.fail(colons);
};

/** As the Flux guide makes a cluster key: RSA 4096 with an encryption subkey, no passphrase (the controller cannot type one); exported to file. */
export async function fluxGuideKey(gnupg: string, name: string, file: string): Promise<string> {
  await gpgIn(gnupg, ['--passphrase', '', '--quick-gen-key', `${name} (flux secrets)`, 'rsa4096', 'cert', 'never']);
  const fpr = await fingerprintOf(gnupg, name);
  await gpgIn(gnupg, ['--passphrase', '', '--quick-add-key', fpr, 'rsa4096', 'encr', 'never']);
  await writeFile(file, (await gpgIn(gnupg, ['--export-secret-keys', '--armor', fpr])).stdout, { mode: 0o600 });
  return fpr;
}

/** gpg's default key types, `<name>@example.org`, locked by passphrase unless it is empty; exported to <dir>/<name>.asc. */
export async function exportedKey(gnupg: string, dir: string, name: string, passphrase: string): Promise<{ fpr: string; file: string }> {
  const loopback = ['--pinentry-mode', 'loopback', '--passphrase', passphrase];
  await gpgIn(gnupg, [...loopback, '--quick-gen-key', `${name} <${name}@example.org>`, 'future-default', 'default', 'never']);
  const fpr = await fingerprintOf(gnupg, `${name}@example.org`);
  const file = join(dir, `${name}.asc`);
  await writeFile(file, (await gpgIn(gnupg, [...loopback, '--export-secret-keys', '--armor', fpr])).stdout, { mode: 0o600 });
  return { fpr, file };
}

/** exportedKey for each name → passphrase, one after another. */
export async function exportedKeys<N extends string>(
  gnupg: string,
  dir: string,
  passphrases: Record<N, string>,
): Promise<Record<N, { fpr: string; file: string }>> {
  const out = {} as Record<N, { fpr: string; file: string }>;
  for (const [name, passphrase] of Object.entries(passphrases) as [N, string][]) out[name] = await exportedKey(gnupg, dir, name, passphrase);
  return out;
}

/** The public half of key fpr alone, in <dir>/public.asc: what a cluster cannot decrypt with. */
export async function exportedPublicKey(gnupg: string, dir: string, fpr: string): Promise<{ fpr: string; file: string }> {
  const file = join(dir, 'public.asc');
  await writeFile(file, (await gpgIn(gnupg, ['--export', '--armor', fpr])).stdout);
  return { fpr, file };
}

/** The agent gpg started for this keyring, which would outlive the test. */
export const stopAgent = (gnupg: string): Promise<unknown> => runTool('gpgconf', ['--kill', 'gpg-agent'], { env: { GNUPGHOME: gnupg } }).catch(() => undefined);

/** The CLI's environment with gnupg as the user's keyring and no age key to fall back on. */
export const pgpCliEnv = (home: string, gnupg: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: home,
  GNUPGHOME: gnupg,
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: undefined,
  ...extra,
});

/** An empty keyring folder <parent>/gnupg, private as gpg wants it. */
export function newKeyring(parent: string): string {
  const gnupg = join(parent, 'gnupg');
  mkdirSync(gnupg, { mode: 0o700 });
  return gnupg;
}
