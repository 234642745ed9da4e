import { createHash, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import { FluxstrapError } from '../core/errors.ts';

/**
 * SSH deploy keys as `flux bootstrap` makes them (ed25519 by default, ECDSA P-384 or RSA on
 * request), generated with node:crypto and written in OpenSSH's own private key format, so the
 * same file works for source-controller (Go's x/crypto/ssh), `ssh`, `git` and `ssh-keygen -y`.
 */

export const SSH_KEY_ALGORITHMS = ['ed25519', 'ecdsa-p384', 'rsa'] as const;
export type SshKeyAlgorithm = (typeof SSH_KEY_ALGORITHMS)[number];

export interface SshKeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` text. Secret. */
  privateKey: string;
  /** One authorized_keys line: `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
  /** `SHA256:…`, as ssh-keygen -l and GitHub show it. */
  fingerprint: string;
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const sshString = (b: Buffer | string) => {
  const bytes = typeof b === 'string' ? Buffer.from(b) : b;
  return Buffer.concat([u32(bytes.length), bytes]);
};
/** RFC 4251 mpint: big-endian, a leading zero when the high bit is set. */
const mpint = (b: Buffer) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const trimmed = b.subarray(i);
  return sshString((trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
};
const b64u = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');

interface Parts {
  type: string;
  pub: Buffer;
  priv: Buffer;
}

function partsOf(algorithm: SshKeyAlgorithm): Parts {
  switch (algorithm) {
    case 'ed25519': {
      const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
      const pk = b64u(jwk.x);
      const type = 'ssh-ed25519';
      return {
        type,
        pub: Buffer.concat([sshString(type), sshString(pk)]),
        priv: Buffer.concat([sshString(type), sshString(pk), sshString(Buffer.concat([b64u(jwk.d), pk]))]),
      };
    }
    case 'ecdsa-p384': {
      const jwk = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'jwk' });
      const q = Buffer.concat([Buffer.from([4]), b64u(jwk.x), b64u(jwk.y)]);
      const type = 'ecdsa-sha2-nistp384';
      const head = Buffer.concat([sshString(type), sshString('nistp384'), sshString(q)]);
      return { type, pub: head, priv: Buffer.concat([head, mpint(b64u(jwk.d))]) };
    }
    case 'rsa': {
      const jwk: JsonWebKey = generateKeyPairSync('rsa', { modulusLength: 4096 }).privateKey.export({ format: 'jwk' });
      const type = 'ssh-rsa';
      const [n, e, d, p, q, qi] = [jwk.n, jwk.e, jwk.d, jwk.p, jwk.q, jwk.qi].map(b64u) as [Buffer, Buffer, Buffer, Buffer, Buffer, Buffer];
      return {
        type,
        pub: Buffer.concat([sshString(type), mpint(e), mpint(n)]),
        priv: Buffer.concat([sshString(type), mpint(n), mpint(e), mpint(d), mpint(qi), mpint(p), mpint(q)]),
      };
    }
  }
}

/** PROTOCOL.key: an unencrypted openssh-key-v1 container holding one key. */
function opensshPrivateKey(parts: Parts, comment: string): string {
  const check = randomBytes(4);
  let body = Buffer.concat([check, check, parts.priv, sshString(comment)]);
  const pad = (8 - (body.length % 8)) % 8;
  body = Buffer.concat([body, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const blob = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    u32(1),
    sshString(parts.pub),
    sshString(body),
  ]);
  const lines = blob.toString('base64').match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

export function generateSshKey(algorithm: SshKeyAlgorithm, comment: string): SshKeyPair {
  const parts = partsOf(algorithm);
  return {
    privateKey: opensshPrivateKey(parts, comment),
    publicKey: `${parts.type} ${parts.pub.toString('base64')}${comment === '' ? '' : ` ${comment}`}`,
    fingerprint: fingerprintOfBlob(parts.pub),
  };
}

const fingerprintOfBlob = (blob: Buffer) => `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;

/** The key of an authorized_keys or known_hosts line (`[host] type base64 [comment]`), undefined when there is none. */
export function sshPublicKeyOf(line: string): { type: string; blob: Buffer; fingerprint: string } | undefined {
  const fields = line.trim().split(/\s+/);
  for (let i = 0; i + 1 < fields.length && i < 3; i++) {
    const type = fields[i] ?? '';
    if (!/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+)$/.test(type)) continue;
    const blob = Buffer.from(fields[i + 1] ?? '', 'base64');
    // The blob starts with its own type name: a line whose two disagree is not a key.
    if (blob.length < 4 || blob.subarray(4, 4 + blob.readUInt32BE(0)).toString() !== type) return undefined;
    return { type, blob, fingerprint: fingerprintOfBlob(blob) };
  }
  return undefined;
}

/**
 * The openssh-key-v1 container (PROTOCOL.key) of `-----BEGIN OPENSSH PRIVATE KEY-----` text, holding
 * one key: undefined when the text has no such block; throws (without key bytes) when it is malformed.
 * `privateSection` is still encrypted unless `cipher` is `none`.
 */
export function opensshContainer(text: string): { cipher: string; publicKey: Buffer; privateSection: Buffer } | undefined {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (m === null) return undefined;
  const blob = Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (blob.subarray(0, magic.length).toString('latin1') !== magic) throw new Error('not an openssh-key-v1 container');
  let at = magic.length;
  const next = (): Buffer => {
    const n = blob.readUInt32BE(at);
    if (at + 4 + n > blob.length) throw new Error('truncated');
    const v = blob.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return v;
  };
  const cipher = next().toString('latin1');
  next(); // kdf name
  next(); // kdf options
  if (blob.readUInt32BE(at) !== 1) throw new Error('one key expected');
  at += 4;
  const publicKey = next();
  return { cipher, publicKey, privateSection: next() };
}

/** The public key line of an OpenSSH (or PEM/PKCS#8) private key: what GitHub registers. */
export function publicKeyOfPrivate(privateKey: string, file: string): string {
  try {
    const container = opensshContainer(privateKey);
    if (container) {
      const pub = container.publicKey;
      const type = pub.subarray(4, 4 + pub.readUInt32BE(0)).toString();
      return `${type} ${pub.toString('base64')}`;
    }
    const jwk = createPrivateKey(privateKey).export({ format: 'jwk' });
    if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519')
      return `ssh-ed25519 ${Buffer.concat([sshString('ssh-ed25519'), sshString(b64u(jwk.x))]).toString('base64')}`;
    if (jwk.kty === 'RSA') return `ssh-rsa ${Buffer.concat([sshString('ssh-rsa'), mpint(b64u(jwk.e)), mpint(b64u(jwk.n))]).toString('base64')}`;
    if (jwk.kty === 'EC' && jwk.crv === 'P-384') {
      return `ecdsa-sha2-nistp384 ${Buffer.concat([sshString('ecdsa-sha2-nistp384'), sshString('nistp384'), sshString(Buffer.concat([Buffer.from([4]), b64u(jwk.x), b64u(jwk.y)]))]).toString('base64')}`;
    }
  } catch {
    // Reported below, without the key's text.
  }
  throw new FluxstrapError('E_CONFIG', 'not an SSH private key fluxstrap can read', {
    location: { file },
    hint: 'an OpenSSH or PEM private key without a passphrase, e.g. one `ssh-keygen -t ed25519 -N ""` makes',
  });
}
