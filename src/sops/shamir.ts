import { randomBytes } from 'node:crypto';

/**
 * Shamir secret sharing over GF(2^8) with the AES polynomial, the scheme sops uses for key
 * groups: one random polynomial per secret byte, degree threshold−1; a share is the y-values
 * followed by one byte x (1-based). Combining interpolates at x = 0.
 */

const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    // multiply by the generator 3 = x·2 ⊕ x, reducing by x^8+x^4+x^3+x+1
    x ^= (x << 1) ^ (x & 0x80 ? 0x11b : 0);
  }
  for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255] ?? 0;
}

function mul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : (EXP[(LOG[a] ?? 0) + (LOG[b] ?? 0)] ?? 0);
}

function div(a: number, b: number): number {
  if (b === 0) throw new Error('division by zero');
  return a === 0 ? 0 : (EXP[(LOG[a] ?? 0) + 255 - (LOG[b] ?? 0)] ?? 0);
}

export function split(secret: Uint8Array, parts: number, threshold: number): Uint8Array[] {
  if (threshold < 2 || threshold > parts || parts > 255) throw new Error('invalid Shamir parameters');
  const shares = Array.from({ length: parts }, (_, i) => {
    const s = new Uint8Array(secret.length + 1);
    s[secret.length] = i + 1;
    return s;
  });
  for (let b = 0; b < secret.length; b++) {
    const coeffs = [secret[b] ?? 0, ...randomBytes(threshold - 1)];
    for (const share of shares) {
      const x = share[secret.length] ?? 0;
      let y = 0;
      for (let k = coeffs.length - 1; k >= 0; k--) y = mul(y, x) ^ (coeffs[k] ?? 0);
      share[b] = y;
    }
  }
  return shares;
}

export function combine(shares: readonly Uint8Array[]): Uint8Array {
  const first = shares[0];
  if (!first || shares.length < 2) throw new Error('at least two Shamir shares are needed');
  const len = first.length - 1;
  if (shares.some((s) => s.length !== first.length)) throw new Error('Shamir shares differ in length');
  const xs = shares.map((s) => s[len] ?? 0);
  if (new Set(xs).size !== xs.length) throw new Error('duplicate Shamir share');
  const out = new Uint8Array(len);
  for (let b = 0; b < len; b++) {
    let acc = 0;
    for (let i = 0; i < shares.length; i++) {
      // Lagrange basis at 0: Π x_j / (x_j − x_i), subtraction being xor in GF(2^8)
      let basis = 1;
      for (let j = 0; j < shares.length; j++) {
        if (i !== j) basis = mul(basis, div(xs[j] ?? 0, (xs[j] ?? 0) ^ (xs[i] ?? 0)));
      }
      acc ^= mul(shares[i]?.[b] ?? 0, basis);
    }
    out[b] = acc;
  }
  return out;
}
