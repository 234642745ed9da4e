import { bech32 } from '@scure/base';

/**
 * Bech32 (BIP 173) as age uses it for keys: no length limit (post-quantum recipients are long),
 * upper or lower case. Its own module, free of crypto imports, so commands that only check a
 * recipient's shape stay cheap.
 */

/** Bech32 to its HRP (lower case) and bytes; undefined if malformed (mixed case, checksum, padding). */
export function bech32Decode(s: string): { hrp: string; data: Buffer } | undefined {
  try {
    const { prefix, words } = bech32.decode(s as `${string}1${string}`, false);
    return { hrp: prefix, data: Buffer.from(bech32.fromWords(words)) };
  } catch {
    return undefined;
  }
}

export function bech32Encode(hrp: string, data: Uint8Array): string {
  return bech32.encode(hrp, bech32.toWords(data), false);
}
