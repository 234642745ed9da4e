import { bech32Decode, bech32Encode } from './bech32.ts';
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';

/**
 * The age v1 format for X25519 recipients, on Node's own crypto. Loading `age-encryption` (with
 * its post-quantum dependencies) costs more than a whole sops run, and sops data keys are almost
 * always X25519, so this path keeps `fluxstrap encrypt`/`decrypt` start-up small; hybrid and
 * other stanzas go through `age-encryption`. Interoperability is tested against the real `age`
 * CLI and `age-encryption` both ways.
 */

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

function privateKey(raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

function publicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

// Building key objects costs more than the X25519 itself; a batch reuses the same few keys.
const identityCache = new Map<string, { priv: KeyObject; pub: Buffer }>();
const recipientCache = new Map<string, KeyObject>();

function identityKeys(secret: Uint8Array): { priv: KeyObject; pub: Buffer } {
  const id = Buffer.from(secret).toString('hex');
  let keys = identityCache.get(id);
  if (!keys) {
    const priv = privateKey(secret);
    keys = { priv, pub: rawPublic(priv) };
    identityCache.set(id, keys);
  }
  return keys;
}

function recipientKey(raw: Buffer): KeyObject {
  const id = raw.toString('hex');
  let key = recipientCache.get(id);
  if (!key) {
    key = publicKey(raw);
    recipientCache.set(id, key);
  }
  return key;
}

function rawPublic(priv: KeyObject): Buffer {
  return createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
}

/** The X25519 scalar of an `AGE-SECRET-KEY-1…` identity, or undefined for other identity types. */
export function x25519Secret(identity: string): Buffer | undefined {
  const d = bech32Decode(identity);
  return d && d.hrp === 'age-secret-key-' && d.data.length === 32 ? d.data : undefined;
}

export function x25519Public(recipient: string): Buffer | undefined {
  const d = bech32Decode(recipient);
  return d && d.hrp === 'age' && d.data.length === 32 ? d.data : undefined;
}

/** `age1…` for an `AGE-SECRET-KEY-1…`, without loading age-encryption. */
export function x25519RecipientOf(identity: string): string {
  const secret = x25519Secret(identity);
  if (!secret) throw new Error('not an X25519 age identity');
  return bech32Encode('age', rawPublic(privateKey(secret)));
}

export const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64').replace(/=+$/, '');
export const unb64 = (s: string): Buffer => Buffer.from(s, 'base64');
export const hkdf = (ikm: Uint8Array, salt: Uint8Array, info: string): Buffer => Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));

function seal(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

function open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): Buffer | undefined {
  if (sealed.length < 16) return undefined;
  try {
    const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
  } catch {
    return undefined;
  }
}

const X25519_INFO = 'age-encryption.org/v1/X25519';
const CHUNK = 64 * 1024;

function wrapLines(s: string): string {
  const lines: string[] = [];
  for (let i = 0; i <= s.length; i += 64) lines.push(s.slice(i, i + 64));
  return lines.join('\n');
}

/** One recipient stanza of an age header: `-> type args…` and its wrapped file key. */
export interface Stanza {
  type: string;
  args: string[];
  body: Buffer;
}

/** Encrypt `plain` (here: a data key, so one STREAM chunk) under a fresh file key that `wrap` seals for one recipient. */
export function encryptAgeFile(wrap: (fileKey: Buffer) => Stanza, plain: Uint8Array): Uint8Array {
  if (plain.length > CHUNK) throw new Error('payload too large for a single age chunk');
  const fileKey = randomBytes(16);
  const s = wrap(fileKey);
  const header = `age-encryption.org/v1\n-> ${[s.type, ...s.args].join(' ')}\n${wrapLines(b64(s.body))}\n---`;
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
    .update(header)
    .digest();
  const nonce = randomBytes(16);
  const payloadKey = hkdf(fileKey, nonce, 'payload');
  const chunkNonce = Buffer.alloc(12);
  chunkNonce[11] = 1;
  return Buffer.concat([Buffer.from(`${header} ${b64(mac)}\n`), nonce, seal(payloadKey, chunkNonce, plain)]);
}

/** X25519(scalar, point), both raw 32 bytes (the scalar is clamped, as age and RFC 7748 do). */
export function x25519(scalar: Uint8Array, point: Uint8Array): Buffer {
  return diffieHellman({ privateKey: privateKey(scalar), publicKey: publicKey(point) });
}

/** The file key sealed under `key` with the all-zero nonce, as every age stanza body is. */
export const sealFileKey = (key: Uint8Array, fileKey: Uint8Array): Buffer => seal(key, Buffer.alloc(12), fileKey);
/** The file key out of a stanza body; undefined when `key` does not open it. */
export const openFileKey = (key: Uint8Array, body: Uint8Array): Buffer | undefined => {
  const k = open(key, Buffer.alloc(12), body);
  return k?.length === 16 ? k : undefined;
};

/** Encrypt `plain` to one X25519 recipient. */
export function encryptX25519(recipient: string, plain: Uint8Array): Uint8Array {
  const theirs = x25519Public(recipient);
  if (!theirs) throw new Error('not an X25519 age recipient');
  return encryptAgeFile((fileKey) => {
    const eph = generateKeyPairSync('x25519');
    const ephPub = eph.publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
    const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: recipientKey(theirs) });
    const wrapKey = hkdf(shared, Buffer.concat([ephPub, theirs]), X25519_INFO);
    return { type: 'X25519', args: [b64(ephPub)], body: sealFileKey(wrapKey, fileKey) };
  }, plain);
}

interface Header {
  stanzas: Stanza[];
  /** The header text up to and including `---`, which the MAC covers. */
  macInput: string;
  mac: Buffer;
  payload: Buffer;
}

function parseHeader(file: Uint8Array): Header | undefined {
  const buf = Buffer.from(file);
  const end = buf.indexOf('\n---');
  if (end < 0) return undefined;
  const eol = buf.indexOf('\n', end + 4);
  if (eol < 0) return undefined;
  const text = buf.subarray(0, end).toString('latin1');
  const lines = text.split('\n');
  if (lines.shift() !== 'age-encryption.org/v1') return undefined;
  const stanzas: Header['stanzas'] = [];
  let current: Header['stanzas'][number] | undefined;
  let bodyText = '';
  for (const line of lines) {
    if (line.startsWith('-> ')) {
      if (current) current.body = unb64(bodyText);
      const [type = '', ...args] = line.slice(3).split(' ');
      current = { type, args, body: Buffer.alloc(0) };
      stanzas.push(current);
      bodyText = '';
    } else bodyText += line;
  }
  if (current) current.body = unb64(bodyText);
  const macLine = buf.subarray(end + 1, eol).toString('latin1');
  return { stanzas, macInput: `${text}\n---`, mac: unb64(macLine.slice(4)), payload: buf.subarray(eol + 1) };
}

/** The stanza types in an age file's header (`X25519`, `mlkem768x25519`, `scrypt`, …). */
export function stanzaTypes(file: Uint8Array): string[] {
  return parseHeader(file)?.stanzas.map((s) => s.type) ?? [];
}

/**
 * Decrypt with X25519 identities (raw scalars). Returns undefined when no identity matches a
 * stanza; throws when a stanza matched but the file is corrupt.
 */
export function decryptX25519(file: Uint8Array, secrets: Uint8Array[]): Buffer | undefined {
  return decryptAgeFile(file, (stanzas) => {
    for (const secret of secrets) {
      const { priv, pub: ours } = identityKeys(secret);
      for (const s of stanzas) {
        if (s.type !== 'X25519' || s.args.length !== 1) continue;
        const ephPub = unb64(s.args[0] ?? '');
        if (ephPub.length !== 32) continue;
        const shared = diffieHellman({ privateKey: priv, publicKey: publicKey(ephPub) });
        const fileKey = openFileKey(hkdf(shared, Buffer.concat([ephPub, ours]), X25519_INFO), s.body);
        if (fileKey) return fileKey;
      }
    }
    return undefined;
  });
}

/**
 * Decrypt an age file whose file key `unwrap` finds among the stanzas. Returns undefined when it
 * finds none; throws when one matched but the file is corrupt.
 */
export function decryptAgeFile(file: Uint8Array, unwrap: (stanzas: readonly Stanza[]) => Buffer | undefined): Buffer | undefined {
  const h = parseHeader(file);
  if (!h) throw new Error('not an age file');
  const fileKey = unwrap(h.stanzas);
  if (!fileKey) return undefined;
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
    .update(h.macInput)
    .digest();
  if (h.mac.length !== mac.length || !timingSafeEqual(h.mac, mac)) throw new Error('age header MAC mismatch');
  const nonce = h.payload.subarray(0, 16);
  const payloadKey = hkdf(fileKey, nonce, 'payload');
  const chunks: Buffer[] = [];
  const body = h.payload.subarray(16);
  for (let at = 0, i = 0; at < body.length || i === 0; i++) {
    const sealed = body.subarray(at, at + CHUNK + 16);
    at += sealed.length;
    const chunkNonce = Buffer.alloc(12);
    chunkNonce.writeUIntBE(i, 5, 6);
    chunkNonce[11] = at >= body.length ? 1 : 0;
    const plain = open(payloadKey, chunkNonce, sealed);
    if (!plain) throw new Error('age payload does not authenticate');
    chunks.push(plain);
  }
  return Buffer.concat(chunks);
}
