import type { Key, PrivateKey } from 'openpgp';

/**
 * The PGP master key. Like sops, the data key goes through the local `gpg` (keyring, agent,
 * smartcards), the data always on stdin, never in argv. Armored keys named with `--key-file`
 * are used through openpgp.js, which is imported only when such a key is involved.
 */

export interface PgpKeyFile {
  armored: string;
  source: string;
}

interface Ran {
  code: number | null;
  stdout: Buffer;
}

async function gpg(args: string[], input: Uint8Array, exec = 'gpg'): Promise<Ran> {
  // Loaded here: most files have no PGP key, and child_process is a cost on every start.
  const { spawn } = await import('node:child_process');
  return new Promise((resolve) => {
    const child = spawn(exec, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.on('error', () => resolve({ code: null, stdout: Buffer.alloc(0) }));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out) }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

export function normalizeFingerprint(fp: string): string {
  return fp.replace(/\s+/g, '').toUpperCase();
}

/** The data key through the gpg keyring, or undefined when gpg cannot open it. */
export async function gpgDecrypt(enc: string, exec?: string): Promise<Uint8Array | undefined> {
  const r = await gpg(['--batch', '--no-tty', '--quiet', '--use-agent', '-d'], Buffer.from(enc), exec);
  return r.code === 0 && r.stdout.length > 0 ? r.stdout : undefined;
}

/** `gpg --encrypt` to one fingerprint, as sops' fallback does; output trimmed like sops'. */
export async function gpgEncrypt(fp: string, dataKey: Uint8Array, exec?: string): Promise<string | undefined> {
  const r = await gpg(
    ['--batch', '--no-tty', '--quiet', '--encrypt', '--armor', '--trust-model', 'always', '--no-encrypt-to', '-r', normalizeFingerprint(fp)],
    dataKey,
    exec,
  );
  return r.code === 0 && r.stdout.length > 0 ? r.stdout.toString('utf8').trim() : undefined;
}

async function readKeys(files: readonly PgpKeyFile[]): Promise<Key[]> {
  const openpgp = await import('openpgp');
  const keys: Key[] = [];
  for (const f of files) keys.push(...(await openpgp.readKeys({ armoredKeys: f.armored })));
  return keys;
}

/** The data key through armored private keys (without passphrase) from key files. */
export async function keyFileDecrypt(enc: string, files: readonly PgpKeyFile[]): Promise<Uint8Array | undefined> {
  const secret = files.filter((f) => f.armored.includes('PRIVATE KEY BLOCK'));
  if (secret.length === 0) return undefined;
  const openpgp = await import('openpgp');
  const keys = (await readKeys(secret)).filter((k): k is PrivateKey => k.isPrivate());
  try {
    const message = await openpgp.readMessage({ armoredMessage: enc });
    // openpgp's declared types lean on DOM stream types this project does not load; state the shape.
    const { data } = (await openpgp.decrypt({ message, decryptionKeys: keys, format: 'binary' })) as unknown as { data: Uint8Array };
    return data;
  } catch {
    return undefined;
  }
}

/** Encrypt to `fp` with a key from the key files, if one of them holds it. */
export async function keyFileEncrypt(fp: string, dataKey: Uint8Array, files: readonly PgpKeyFile[]): Promise<string | undefined> {
  if (files.length === 0) return undefined;
  const want = normalizeFingerprint(fp);
  const key = (await readKeys(files)).find((k) => k.getFingerprint().toUpperCase() === want);
  if (!key) return undefined;
  const openpgp = await import('openpgp');
  const message = await openpgp.createMessage({ binary: dataKey, format: 'binary' });
  const armored = (await openpgp.encrypt({ message, encryptionKeys: key.toPublic(), format: 'armored' })) as unknown as string;
  return armored.trim();
}

/** Fingerprints of the keys in armored key files: what `--key-file` offers, for messages. */
export async function keyFileFingerprints(files: readonly PgpKeyFile[]): Promise<string[]> {
  if (files.length === 0) return [];
  return (await readKeys(files)).map((k) => k.getFingerprint().toUpperCase());
}
