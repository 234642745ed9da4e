import { Timestamp } from './tree.ts';

/**
 * Go's ways of turning values into text, which sops uses for the bytes it encrypts and hashes
 * (`strconv.FormatFloat(f, 'f', -1)`, `True`/`False`) and for the text it prints (`'g'`/`'G'`).
 * JS prints numbers differently (`1e+21`, no `e+06` padding), so the digits are re-laid here.
 */

/** Shortest round-trip digits and decimal exponent: value = 0.d1d2… × 10^point. */
function shortestDigits(f: number): { neg: boolean; digits: string; point: number } {
  const neg = f < 0 || Object.is(f, -0);
  const [mantissa = '0', exp = '0'] = Math.abs(f).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  return { neg, digits: digits === '0' ? '0' : digits, point: Number(exp) + 1 };
}

function nonFinite(f: number): string | undefined {
  if (Number.isNaN(f)) return 'NaN';
  if (f === Infinity) return '+Inf';
  if (f === -Infinity) return '-Inf';
  return undefined;
}

/** `strconv.FormatFloat(f, 'f', -1, 64)`: never an exponent. */
export function formatFloatF(f: number): string {
  const special = nonFinite(f);
  if (special) return special;
  const { neg, digits, point } = shortestDigits(f);
  let out: string;
  if (digits === '0') out = '0';
  else if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return neg ? `-${out}` : out;
}

/** `strconv.FormatFloat(f, 'g' | 'G', -1, 64)`: exponent form below 1e-4 and from 1e6 on (`1e+06`). */
export function formatFloatG(f: number, upper = false): string {
  const special = nonFinite(f);
  if (special) return special;
  const { neg, digits, point } = shortestDigits(f);
  const exp = point - 1;
  if (digits !== '0' && (exp < -4 || exp >= 6)) {
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp) < 10 ? `0${Math.abs(exp)}` : String(Math.abs(exp));
    return `${neg ? '-' : ''}${mant}${upper ? 'E' : 'e'}${exp < 0 ? '-' : '+'}${e}`;
  }
  return formatFloatF(f);
}

export type TextScalar = string | bigint | number | boolean | Timestamp;

/** The plaintext bytes sops encrypts and feeds to the MAC for a leaf (`ToBytes`). */
export function scalarText(v: TextScalar): string {
  if (typeof v === 'string') return v;
  if (v instanceof Timestamp) return v.text;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return formatFloatF(v);
  return v ? 'True' : 'False';
}

/** The `type:` sops records for a leaf. */
export function scalarType(v: TextScalar | Uint8Array): string {
  if (typeof v === 'string' || v instanceof Uint8Array) return 'str';
  if (v instanceof Timestamp) return 'time';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'number') return 'float';
  return 'bool';
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** `strconv.ParseInt(s, 0, 64)`: sign, then 0x/0o/0b/leading-0 octal or decimal; undefined if not an int64. */
export function parseGoInt(s: string): bigint | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const body = m[2] ?? '';
  let n: bigint;
  if (/^0[0-7]+$/.test(body)) n = BigInt(`0o${body.slice(1)}`);
  else n = BigInt(body.replace(/^0O/, '0o').replace(/^0X/, '0x').replace(/^0B/, '0b'));
  if (m[1] === '-') n = -n;
  return n >= INT64_MIN && n <= INT64_MAX ? n : undefined;
}

/** `strconv.ParseFloat(s, 64)` for the decimal forms plus Go's spellings of the non-finite values. */
export function parseGoFloat(s: string): number | undefined {
  if (/^[+-]?(inf|infinity)$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(s)) return NaN;
  if (!/^[+-]?(\d+(?:\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

/** `strconv.ParseBool`. */
export function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** sops' `ValToString`, used by dotenv and INI for non-string values. */
export function valToString(v: TextScalar): string {
  if (v instanceof Timestamp) return v.text;
  if (typeof v === 'number') {
    const s = formatFloatG(v, true);
    return /[.E]/.test(s) || !Number.isFinite(v) ? s : `${s}.0`;
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return v.toString();
}

/**
 * yaml.v3's timestamp forms (RFC 3339 with 1–2 digit fields, lower-case `t`, space-separated
 * without zone, date only), turned into Go's `MarshalText` (RFC 3339 with trimmed nanoseconds).
 */
export function parseYamlTimestamp(s: string): Timestamp | undefined {
  const m =
    /^(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2}))|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d{1,9})?))?$/.exec(
      s,
    );
  if (!m) return undefined;
  const [, y, mo, d, h1, mi1, s1, f1, zone, h2, mi2, s2, f2] = m;
  const p2 = (x: string | undefined): string => (x ?? '0').padStart(2, '0');
  const [mon, day] = [Number(mo), Number(d)];
  if (mon < 1 || mon > 12 || day < 1 || day > new Date(Date.UTC(Number(y), mon, 0)).getUTCDate()) return undefined;
  const h = h1 ?? h2;
  if (h !== undefined && (Number(h) > 23 || Number(mi1 ?? mi2) > 59 || Number(s1 ?? s2) > 59)) return undefined;
  const frac = (f1 ?? f2 ?? '').replace(/0+$/, '');
  const z = zone === undefined || zone === 'Z' || zone === '+00:00' || zone === '-00:00' ? 'Z' : zone;
  return new Timestamp(`${y}-${p2(mo)}-${p2(d)}T${p2(h)}:${p2(mi1 ?? mi2)}:${p2(s1 ?? s2)}${frac === '.' ? '' : frac}${z}`);
}
