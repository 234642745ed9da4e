import { FluxstrapError } from '../core/errors.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { decryptAgeFile, decryptX25519, encryptAgeFile, encryptX25519, stanzaTypes, x25519Public, x25519Secret } from '../keys/age-x25519.ts';

/**
 * The age master key: sops stores the data key as an ASCII-armored age file encrypted to one
 * recipient (`enc`, with a trailing newline). X25519 and SSH (`ssh-ed25519`, `ssh-rsa`) run
 * natively; hybrid post-quantum (`age1pq1…`) and tag recipients go through `age-encryption`,
 * imported only then.
 */

const BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';
const END = '-----END AGE ENCRYPTED FILE-----';

export function armor(file: Uint8Array): string {
  const b64 = Buffer.from(file).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `${BEGIN}\n${lines.join('\n')}\n${END}\n`;
}

export function dearmor(text: string): Buffer {
  const t = text.trim().replaceAll('\r\n', '\n');
  if (!t.startsWith(BEGIN) || !t.endsWith(END)) throw new Error('not an armored age file');
  return Buffer.from(t.slice(BEGIN.length, -END.length).replace(/\s+/g, ''), 'base64');
}

export async function ageEncrypt(recipient: string, dataKey: Uint8Array): Promise<string> {
  if (x25519Public(recipient)) return armor(encryptX25519(recipient, dataKey));
  if (recipient.startsWith('ssh-')) {
    const { parseSshRecipient, wrapSsh } = await import('../keys/age-ssh.ts');
    const r = parseSshRecipient(recipient);
    if (r === undefined)
      throw new FluxstrapError(
        'E_CONFIG',
        `cannot encrypt to the SSH recipient ${recipient.slice(0, 80)}: age takes ssh-ed25519 and ssh-rsa keys of 2048 bits or more`,
      );
    return armor(encryptAgeFile((fileKey) => wrapSsh(r, fileKey), dataKey));
  }
  const { Encrypter } = await import('age-encryption');
  const e = new Encrypter();
  try {
    e.addRecipient(recipient);
  } catch (err) {
    // Well-formed bech32 of a type age-encryption does not know (a plugin's, say).
    throw new FluxstrapError('E_CONFIG', `cannot encrypt to the age recipient ${recipient}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return armor(await e.encrypt(dataKey));
}

/** The data key, or undefined when none of the identities is a recipient of `enc`. */
export async function ageDecrypt(enc: string, identities: readonly AgeIdentity[]): Promise<Uint8Array | undefined> {
  const file = dearmor(enc);
  const x25519 = identities.map((i) => x25519Secret(i.secret)).filter((s): s is Buffer => s !== undefined);
  const types = stanzaTypes(file);
  if (types.includes('X25519') && x25519.length > 0) {
    const key = decryptX25519(file, x25519);
    if (key) return key;
  }
  const ssh = identities.flatMap((i) => (i.ssh ? [i.ssh] : []));
  if (ssh.length > 0 && types.some((t) => t.startsWith('ssh-'))) {
    const { unwrapSsh } = await import('../keys/age-ssh.ts');
    const key = decryptAgeFile(file, (stanzas) => unwrapSsh(stanzas, ssh));
    if (key) return key;
  }
  const others = identities.filter((i) => !i.ssh && !x25519Secret(i.secret));
  if (others.length === 0 || types.every((t) => t === 'X25519')) return undefined;
  const { Decrypter } = await import('age-encryption');
  const d = new Decrypter();
  for (const i of others) d.addIdentity(i.secret);
  try {
    return await d.decrypt(file);
  } catch (e) {
    if (e instanceof Error && /no identity matched/i.test(e.message)) return undefined;
    throw e;
  }
}
