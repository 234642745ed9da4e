import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Comment } from './tree.ts';
import { parseGoBool, parseGoFloat, parseYamlTimestamp, scalarText, scalarType, type TextScalar } from './scalars.ts';

/**
 * One value as sops stores it: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, AES-256-GCM under the
 * file's data key with a 32-byte IV (sops' choice, not GCM's usual 12) and the AAD given by the
 * caller (the key path joined with `:` plus a trailing `:`, or the lastmodified stamp for the MAC).
 */

// sops' `^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]` backtracks for minutes on a
// crafted value of a few kilobytes in JavaScript. Base64 and type names hold no comma, and sops'
// greedy type runs to the line's last `]`: so this one takes the same parts from every value sops
// can open and refuses the others, in linear time.
const ENC_RE = /^ENC\[AES256_GCM,data:([^,\n]+),iv:([^,\n]+),tag:([^,\n]+),type:([^,\n\]]+)\](?![^\n]*\])/;

export type Plain = TextScalar | Uint8Array | Comment;

/** Why a value did not open; never carries plaintext. */
export class CipherError extends Error {}

/** The `type:` and the bytes sops encrypts for a value. */
function serialize(value: Plain): { type: string; bytes: Buffer } {
  if (value instanceof Comment) return { type: 'comment', bytes: Buffer.from(value.text, 'utf8') };
  const text = value instanceof Uint8Array ? value : scalarText(value);
  return { type: scalarType(value), bytes: typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text) };
}

/**
 * What identifies a value for IV reuse: sops re-encrypts an unchanged value (same AAD, type and
 * bytes) under the same data key with its old IV, so the `ENC[…]` text and the git diff stay put.
 */
export function stashKey(value: Plain, aad: string): string {
  const { type, bytes } = serialize(value);
  return stashKeyOf(aad, type, bytes);
}

const stashKeyOf = (aad: string, type: string, bytes: Buffer): string => `${aad}\0${type}\0${bytes.toString('base64')}`;

export function encryptValue(value: Plain, key: Uint8Array, aad: string, iv: Uint8Array = randomBytes(32)): string {
  const { type, bytes } = serialize(value);
  // sops leaves empty strings and comments as they are: there is nothing to hide.
  if (bytes.length === 0) return '';
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([cipher.update(bytes), cipher.final()]);
  const tag = cipher.getAuthTag();
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${Buffer.from(iv).toString('base64')},tag:${tag.toString('base64')},type:${type}]`;
}

export interface Opened {
  type: string;
  bytes: Buffer;
  iv: Buffer;
  /** For the IV stash: see stashKey. */
  stashKey: string;
}

/** The base64 parts and the type of an `ENC[…]` value, as sops reads them; undefined when it is not one. */
export function encParts(enc: string): { data: string; iv: string; tag: string; type: string } | undefined {
  const m = ENC_RE.exec(enc);
  if (!m) return undefined;
  const [, data = '', iv = '', tag = '', type = ''] = m;
  return { data, iv, tag, type };
}

/** Decrypt to bytes and the recorded type; throws CipherError on a wrong key, AAD or tampering. */
export function openValue(enc: string, key: Uint8Array, aad: string): Opened {
  const parts = encParts(enc);
  if (!parts) throw new CipherError('not a sops encrypted value');
  const { data, iv, tag, type } = parts;
  const ivBytes = Buffer.from(iv, 'base64');
  const tagBytes = Buffer.from(tag, 'base64');
  if (ivBytes.length === 0 || tagBytes.length !== 16) throw new CipherError('malformed encrypted value');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, ivBytes);
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tagBytes);
    const bytes = Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]);
    return { type, bytes, iv: ivBytes, stashKey: stashKeyOf(aad, type, bytes) };
  } catch {
    throw new CipherError('authentication failed');
  }
}

/** Decrypt and type the value as sops does (`strconv` parsing of int/float/bool). */
export function decryptValue(enc: string, key: Uint8Array, aad: string, rawStrings = false): Plain {
  if (enc === '') return '';
  const { type, bytes } = openValue(enc, key, aad);
  const text = bytes.toString('utf8');
  switch (type) {
    case 'str':
      return rawStrings ? new Uint8Array(bytes) : text;
    case 'bytes':
      return new Uint8Array(bytes);
    case 'comment':
      return new Comment(text);
    case 'int': {
      // strconv.Atoi: decimal only, so a stored "010" is ten, not octal.
      if (!/^[+-]?\d+$/.test(text)) throw new CipherError('encrypted int does not parse');
      return BigInt(text);
    }
    case 'float': {
      const f = parseGoFloat(text);
      if (f === undefined) throw new CipherError('encrypted float does not parse');
      return f;
    }
    case 'bool': {
      const b = parseGoBool(text);
      if (b === undefined) throw new CipherError('encrypted bool does not parse');
      return b;
    }
    case 'time': {
      const t = parseYamlTimestamp(text);
      if (!t) throw new CipherError('encrypted time does not parse');
      return t;
    }
    default:
      throw new CipherError(`unknown value type ${JSON.stringify(type)}`);
  }
}
