import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { configError, FluxstrapError } from '../core/errors.ts';
import { b64, hkdf, openFileKey, sealFileKey, unb64, x25519, type Stanza } from './age-x25519.ts';
import { opensshContainer, sshPublicKeyOf } from './ssh.ts';

/**
 * age's `ssh-ed25519` and `ssh-rsa` recipient types (age spec, "SSH keys"), as sops takes them in
 * `age:` and from SOPS_AGE_SSH_PRIVATE_KEY_FILE / `~/.ssh`. Native because age-encryption (the npm
 * package) has no SSH recipients. Only local decryption uses them: kustomize-controller imports
 * only native age identities, so an SSH key never becomes a cluster key.
 */

const ED25519_LABEL = 'age-encryption.org/v1/ssh-ed25519';
const RSA_LABEL = 'age-encryption.org/v1/ssh-rsa';
const P = 2n ** 255n - 19n;
const BASEPOINT = Buffer.concat([Buffer.from([9]), Buffer.alloc(31)]);

const u32 = (b: Buffer, at: number): number => b.readUInt32BE(at);

/** The first four bytes of SHA-256 of the SSH wire key: how a stanza names its recipient. */
const tagOf = (wire: Buffer): string => b64(createHash('sha256').update(wire).digest().subarray(0, 4));

function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let r = 1n;
  let b = base % m;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
  }
  return r;
}

const leToBig = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).reverse().toString('hex') || '0'}`);
function bigToLe(n: bigint, len: number): Buffer {
  return Buffer.from(n.toString(16).padStart(len * 2, '0'), 'hex').reverse();
}
const beToBig = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).toString('hex') || '0'}`);
const bigToB64u = (n: bigint): string => {
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex').toString('base64url');
};

/**
 * The Montgomery u of an Ed25519 public key (u = (1+y)/(1-y)), undefined when the bytes are not a
 * point of the curve, which age (edwards25519) refuses too.
 */
function ed25519ToX25519(pub: Uint8Array): Buffer | undefined {
  const y = leToBig(pub) & ((1n << 255n) - 1n);
  const yy = (y * y) % P;
  const d = (P - ((121665n * modPow(121666n, P - 2n, P)) % P)) % P;
  const x2 = ((yy - 1n + P) * modPow((d * yy + 1n) % P, P - 2n, P)) % P;
  if (x2 !== 0n && modPow(x2, (P - 1n) / 2n, P) !== 1n) return undefined;
  const den = (1n - y + P) % P;
  if (den === 0n) return undefined;
  return bigToLe(((1n + y) * modPow(den, P - 2n, P)) % P, 32);
}

/** A parsed SSH recipient: what `wrapSsh` needs. */
export type SshRecipient = { type: 'ssh-ed25519'; wire: Buffer; tag: string; x25519: Buffer } | { type: 'ssh-rsa'; wire: Buffer; tag: string; key: KeyObject };

function sshString(b: Buffer, at: number): [Buffer, number] {
  const n = u32(b, at);
  if (at + 4 + n > b.length) throw new Error('truncated');
  return [b.subarray(at + 4, at + 4 + n), at + 4 + n];
}

function rsaPublicFromWire(wire: Buffer): KeyObject {
  let at = sshString(wire, 0)[1];
  const [e, at2] = sshString(wire, at);
  at = at2;
  const [n] = sshString(wire, at);
  return createPublicKey({ key: { kty: 'RSA', n: bigToB64u(beToBig(n)), e: bigToB64u(beToBig(e)) }, format: 'jwk' });
}

/**
 * An authorized_keys line (`ssh-ed25519 AAAA… [comment]`) as an age recipient; undefined when it
 * is not an SSH key age encrypts to (another key type, a broken blob, an RSA key under 2048 bits).
 */
export function parseSshRecipient(line: string): SshRecipient | undefined {
  const key = sshPublicKeyOf(line);
  if (key === undefined || !line.trim().startsWith(key.type)) return undefined;
  const wire = key.blob;
  try {
    if (key.type === 'ssh-ed25519') {
      const [pk] = sshString(wire, sshString(wire, 0)[1]);
      const u = pk.length === 32 ? ed25519ToX25519(pk) : undefined;
      return u === undefined ? undefined : { type: 'ssh-ed25519', wire, tag: tagOf(wire), x25519: u };
    }
    if (key.type === 'ssh-rsa') {
      const k = rsaPublicFromWire(wire);
      return (k.asymmetricKeyDetails?.modulusLength ?? 0) < 2048 ? undefined : { type: 'ssh-rsa', wire, tag: tagOf(wire), key: k };
    }
  } catch {
    // A blob whose fields do not parse is no recipient.
  }
  return undefined;
}

export const isSshRecipient = (s: string): boolean => /^ssh-(ed25519|rsa) /.test(s) && parseSshRecipient(s) !== undefined;

/** The stanza that seals `fileKey` for an SSH recipient. */
export function wrapSsh(r: SshRecipient, fileKey: Buffer): Stanza {
  if (r.type === 'ssh-rsa') {
    const body = publicEncrypt({ key: r.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from(RSA_LABEL) }, fileKey);
    return { type: 'ssh-rsa', args: [r.tag], body };
  }
  const ephemeral = randomBytes(32);
  const share = x25519(ephemeral, BASEPOINT);
  const shared = x25519(tweakOf(r.wire), x25519(ephemeral, r.x25519));
  const wrapKey = hkdf(shared, Buffer.concat([share, r.x25519]), ED25519_LABEL);
  return { type: 'ssh-ed25519', args: [r.tag, b64(share)], body: sealFileKey(wrapKey, fileKey) };
}

/** The spec's tweak: the shared secret is multiplied by a scalar bound to the SSH key, so it differs from a plain X25519 one. */
const tweakOf = (wire: Buffer): Buffer => hkdf(Buffer.alloc(0), wire, ED25519_LABEL);

/** An SSH private key opened for age. Secret: never print. */
export type SshIdentity =
  { type: 'ssh-ed25519'; wire: Buffer; tag: string; scalar: Buffer; x25519: Buffer } | { type: 'ssh-rsa'; wire: Buffer; tag: string; key: KeyObject };

/** The public key line of an SSH identity, as a recipient is written in `.sops.yaml`. */
export const sshIdentityRecipient = (id: SshIdentity): string => `${id.type} ${id.wire.toString('base64')}`;

/** E_DECRYPT: the key is there but cannot be unlocked, which stops a command like a wrong passphrase. */
const locked = (file: string) =>
  new FluxstrapError('E_DECRYPT', 'the SSH key is protected by a passphrase, which fluxstrap does not ask for', {
    location: { file },
    hint: 'fluxstrap reads unencrypted SSH keys only: use an age key (`fluxstrap keys new`), or name a copy without a passphrase (ssh-keygen -p -N "" -f COPY) in SOPS_AGE_SSH_PRIVATE_KEY_FILE',
  });

/**
 * An SSH private key file (OpenSSH's own format, or PEM/PKCS#8) as an age identity. Errors name
 * the file, never a byte of the key.
 */
export function parseSshIdentity(text: string, file: string): SshIdentity {
  let container: ReturnType<typeof opensshContainer>;
  try {
    container = opensshContainer(text);
  } catch {
    throw notSsh(file);
  }
  if (container === undefined) {
    if (/Proc-Type:\s*4,ENCRYPTED|BEGIN ENCRYPTED PRIVATE KEY/.test(text)) throw locked(file);
    return fromKeyObject(pemKey(text, file), file);
  }
  if (container.cipher !== 'none') throw locked(file);
  return fromOpensshPrivate(container.privateSection, file);
}

const notSsh = (file: string) =>
  configError(
    'not an SSH private key fluxstrap can read',
    { file },
    'an unencrypted OpenSSH ed25519 or RSA private key, as `ssh-keygen -t ed25519 -N ""` makes',
  );
const notAgeType = (type: string, file: string) =>
  configError(
    `age encrypts only to ssh-ed25519 and ssh-rsa keys, not ${type}`,
    { file },
    'use an ed25519 or RSA SSH key, or an age key (`fluxstrap keys new`)',
  );

function pemKey(text: string, file: string): KeyObject {
  try {
    return createPrivateKey(text);
  } catch {
    throw notSsh(file);
  }
}

function fromOpensshPrivate(priv: Buffer, file: string): SshIdentity {
  let at = 8;
  let type: string;
  try {
    if (u32(priv, 0) !== u32(priv, 4)) throw new Error('check');
    const [t, a] = sshString(priv, at);
    type = t.toString('latin1');
    at = a;
    if (type === 'ssh-ed25519') {
      const [, a2] = sshString(priv, at);
      const [sk] = sshString(priv, a2);
      if (sk.length !== 64) throw new Error('length');
      return fromKeyObject(
        createPrivateKey({
          key: { kty: 'OKP', crv: 'Ed25519', d: sk.subarray(0, 32).toString('base64url'), x: sk.subarray(32).toString('base64url') },
          format: 'jwk',
        }),
        file,
      );
    }
    if (type === 'ssh-rsa') {
      const fields: bigint[] = [];
      for (let i = 0; i < 6; i++) {
        const [v, next] = sshString(priv, at);
        fields.push(beToBig(v));
        at = next;
      }
      const [n = 0n, e = 0n, d = 0n, qi = 0n, p = 0n, q = 0n] = fields;
      const jwk = {
        kty: 'RSA',
        n: bigToB64u(n),
        e: bigToB64u(e),
        d: bigToB64u(d),
        p: bigToB64u(p),
        q: bigToB64u(q),
        dp: bigToB64u(d % (p - 1n)),
        dq: bigToB64u(d % (q - 1n)),
        qi: bigToB64u(qi),
      };
      return fromKeyObject(createPrivateKey({ key: jwk, format: 'jwk' }), file);
    }
  } catch {
    throw notSsh(file);
  }
  throw notAgeType(type, file);
}

function fromKeyObject(key: KeyObject, file: string): SshIdentity {
  const jwk = key.export({ format: 'jwk' });
  const str = (s: string | Buffer) => {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    const n = Buffer.alloc(4);
    n.writeUInt32BE(b.length);
    return Buffer.concat([n, b]);
  };
  const mpint = (b64u: string | undefined) => {
    const b = Buffer.from(b64u ?? '', 'base64url');
    return str((b[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
  };
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    const pk = Buffer.from(jwk.x ?? '', 'base64url');
    const wire = Buffer.concat([str('ssh-ed25519'), str(pk)]);
    const u = ed25519ToX25519(pk);
    if (u === undefined) throw notSsh(file);
    // age's conversion of the Ed25519 secret: the first half of SHA-512 of the seed (X25519 clamps it).
    const scalar = createHash('sha512')
      .update(Buffer.from(jwk.d ?? '', 'base64url'))
      .digest()
      .subarray(0, 32);
    return { type: 'ssh-ed25519', wire, tag: tagOf(wire), scalar, x25519: u };
  }
  if (jwk.kty === 'RSA') {
    const wire = Buffer.concat([str('ssh-rsa'), mpint(jwk.e), mpint(jwk.n)]);
    return { type: 'ssh-rsa', wire, tag: tagOf(wire), key };
  }
  throw notAgeType(jwk.kty === 'EC' ? `ecdsa-${jwk.crv ?? ''}` : (jwk.kty ?? 'this key type'), file);
}

/** The file key out of the first stanza one of the SSH identities opens; undefined when none does. */
export function unwrapSsh(stanzas: readonly Stanza[], identities: readonly SshIdentity[]): Buffer | undefined {
  for (const id of identities) {
    for (const s of stanzas) {
      if (s.type !== id.type || s.args[0] !== id.tag) continue;
      if (id.type === 'ssh-rsa') {
        if (s.args.length !== 1) continue;
        try {
          const k = privateDecrypt({ key: id.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from(RSA_LABEL) }, s.body);
          if (k.length === 16) return k;
        } catch {
          // Not ours after all (a tag collision): the next stanza may be.
        }
        continue;
      }
      if (s.args.length !== 2) continue;
      const share = unb64(s.args[1] ?? '');
      if (share.length !== 32) continue;
      let shared: Buffer;
      try {
        shared = x25519(tweakOf(id.wire), x25519(id.scalar, share));
      } catch {
        continue;
      }
      if (timingSafeEqual(shared, Buffer.alloc(32))) continue;
      const k = openFileKey(hkdf(shared, Buffer.concat([share, id.x25519]), ED25519_LABEL), s.body);
      if (k) return k;
    }
  }
  return undefined;
}
