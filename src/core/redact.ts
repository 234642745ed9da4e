/**
 * Private keys pasted where they do not belong (a recipient flag, a `.sops.yaml` rule, a file name)
 * must never be echoed back: an error line ends up in CI logs, terminals shared on a call and bug
 * reports. These patterns recognise the private key formats fluxstrap meets, so that a message can
 * say what was given instead of repeating it, and so that the error printer can scrub any message
 * as a last line of defence.
 */

interface PrivateKeyKind {
  what: string;
  /** Global, linear-time patterns (no nested quantifiers) that match the key text. */
  re: RegExp;
}

// Literal patterns (bech32 characters: 0 and 2-9, letters without b, i, o), built at load time like
// every pattern in src/: nothing here comes from a file or a flag.
// Armored blocks match from BEGIN to END (or the end of the text), also with spaces lost or case
// changed (a `.sops.yaml` value is normalised like a fingerprint).
// Order matters for describePrivateKey: the more specific kind first (PQ before plain age).
const KINDS: PrivateKeyKind[] = [
  { what: 'a post-quantum age private key', re: /AGE-SECRET-KEY-PQ-1[02-9AC-HJ-NP-Zac-hj-np-z]+/gi },
  { what: 'an age private key', re: /AGE-SECRET-KEY-1[02-9AC-HJ-NP-Zac-hj-np-z]+/gi },
  { what: 'a private age plugin identity', re: /AGE-PLUGIN-[A-Z0-9-]+-1[02-9AC-HJ-NP-Zac-hj-np-z]+/gi },
  {
    what: 'an armored OpenPGP private key',
    re: /-----\s*BEGIN\s*PGP\s*PRIVATE\s*KEY\s*BLOCK\s*-----[\s\S]*?(?:-----\s*END\s*PGP\s*PRIVATE\s*KEY\s*BLOCK\s*-----|$)/gi,
  },
  { what: 'an SSH private key', re: /-----\s*BEGIN\s*OPENSSH\s*PRIVATE\s*KEY\s*-----[\s\S]*?(?:-----\s*END\s*OPENSSH\s*PRIVATE\s*KEY\s*-----|$)/gi },
  {
    what: 'a PEM private key',
    re: /-----\s*BEGIN\s*(?:RSA\s*|EC\s*|DSA\s*|ENCRYPTED\s*)?PRIVATE\s*KEY\s*-----[\s\S]*?(?:-----\s*END\s*(?:RSA\s*|EC\s*|DSA\s*|ENCRYPTED\s*)?PRIVATE\s*KEY\s*-----|$)/gi,
  },
  // A key whose armor lines were cut off (a shell variable without quotes, a YAML folded scalar).
  { what: 'part of an armored private key', re: /-----\s*(?:BEGIN|END)[A-Z\s]*PRIVATE\s*KEY[A-Z\s]*-----/gi },
];

/** "an age private key", … when `text` holds a private key; `undefined` when it holds none. */
export function describePrivateKey(text: string): string | undefined {
  for (const k of KINDS) {
    k.re.lastIndex = 0;
    if (k.re.test(text)) {
      k.re.lastIndex = 0;
      return k.what;
    }
  }
  return undefined;
}

/** `text` with every private key in it replaced by `<what it is, not shown>`. */
export function redactPrivateKeys(text: string): string {
  let out = text;
  for (const k of KINDS) out = out.replace(k.re, `<${k.what}, not shown>`);
  return out;
}

/** How to get the public half, for the hint of an error about a private key in a public key's place. */
export const PUBLIC_KEY_HINT = 'give the public key instead: `fluxstrap keys pub KEYFILE` prints it (age1… for age, the fingerprint for OpenPGP)';

/** Longest piece of a bad value that a message quotes: enough to spot a typo, never a whole blob. */
const QUOTE_MAX = 80;

/**
 * A value the user gave where a public key belongs, fit to quote in a message: a private key
 * becomes the name of what it is; anything else is shortened, and quoted (JSON) when it holds spaces
 * or control characters, so that a newline cannot forge a line of output.
 */
export function quoteKeyValue(value: string): string {
  const kind = describePrivateKey(value);
  if (kind !== undefined) return kind;
  const short = value.slice(0, QUOTE_MAX);
  const quoted = /^[\x21-\x7e]+$/.test(short) ? short : JSON.stringify(short);
  return value.length > QUOTE_MAX ? `${quoted}…` : quoted;
}

/**
 * The message for a value that is not a valid public key of the expected kind (`age recipient`,
 * `OpenPGP fingerprint`), and its hint: a private key is named, never shown.
 */
export function badPublicKey(value: string, expected: string, normalHint: string): { message: string; hint: string } {
  const kind = describePrivateKey(value);
  if (kind !== undefined) return { message: `${kind} was given where an ${expected} (a public key) belongs; it is not shown`, hint: PUBLIC_KEY_HINT };
  return { message: `invalid ${expected} ${quoteKeyValue(value)}`, hint: normalHint };
}
