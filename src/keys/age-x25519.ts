import { bech32Decode, bech32Encode } from './bech32.ts';
import { createCipheriv, createDecipheriv, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

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

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64').replace(/=+$/, '');
const unb64 = (s: string): Buffer => Buffer.from(s, 'base64');
const hkdf = (ikm: Uint8Array, salt: Uint8Array, info: string): Buffer => Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));

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

/** Encrypt `plain` (here: a data key, so one STREAM chunk) to one X25519 recipient. */
export function encryptX25519(recipient: string, plain: Uint8Array): Uint8Array {
  const theirs = x25519Public(recipient);
  if (!theirs) throw new Error('not an X25519 age recipient');
  if (plain.length > CHUNK) throw new Error('payload too large for a single age chunk');
  const fileKey = randomBytes(16);
  const eph = generateKeyPairSync('x25519');
  const ephPub = eph.publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: recipientKey(theirs) });
  const wrapKey = hkdf(shared, Buffer.concat([ephPub, theirs]), X25519_INFO);
  const body = seal(wrapKey, Buffer.alloc(12), fileKey);
  const header = `age-encryption.org/v1\n-> X25519 ${b64(ephPub)}\n${wrapLines(b64(body))}\n---`;
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header')).update(header).digest();
  const nonce = randomBytes(16);
  const payloadKey = hkdf(fileKey, nonce, 'payload');
  const chunkNonce = Buffer.alloc(12);
  chunkNonce[11] = 1;
  return Buffer.concat([Buffer.from(`${header} ${b64(mac)}\n`), nonce, seal(payloadKey, chunkNonce, plain)]);
}

interface Header {
  stanzas: { type: string; args: string[]; body: Buffer }[];
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
  const h = parseHeader(file);
  if (!h) throw new Error('not an age file');
  let fileKey: Buffer | undefined;
  for (const secret of secrets) {
    const { priv, pub: ours } = identityKeys(secret);
    for (const s of h.stanzas) {
      if (s.type !== 'X25519' || s.args.length !== 1) continue;
      const ephPub = unb64(s.args[0] ?? '');
      if (ephPub.length !== 32) continue;
      const shared = diffieHellman({ privateKey: priv, publicKey: publicKey(ephPub) });
      fileKey = open(hkdf(shared, Buffer.concat([ephPub, ours]), X25519_INFO), Buffer.alloc(12), s.body);
      if (fileKey) break;
    }
    if (fileKey) break;
  }
  if (!fileKey) return undefined;
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header')).update(h.macInput).digest();
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
