import { valToString } from './scalars.ts';
import { Comment, FormatError, TreeMap, type Item, type Value } from './tree.ts';

/**
 * The dotenv store as sops reads it: split on `\n` only (a `\r` stays in the value), nothing
 * trimmed (`foo = bar` is key `foo ` and value ` bar`), `#` lines are comments, and the two
 * characters `\n` in a value stand for a newline. Every value is a string.
 */

export function parseDotenv(text: string): TreeMap {
  const items: Item[] = [];
  text.split('\n').forEach((line, i) => {
    if (line === '') return;
    if (line.startsWith('#')) {
      items.push({ key: new Comment(line.slice(1)), value: null });
      return;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new FormatError('invalid dotenv line: no "="', i + 1);
    items.push({ key: line.slice(0, eq), value: line.slice(eq + 1).replaceAll('\\n', '\n') });
  });
  return new TreeMap(items);
}

export function emitDotenv(m: TreeMap): string {
  let out = '';
  for (const item of m.items) {
    if (item.key instanceof Comment) {
      out += `#${item.key.text}\n`;
      continue;
    }
    out += `${item.key}=${dotenvValue(item.value)}\n`;
  }
  return out;
}

function dotenvValue(v: Value): string {
  if (v instanceof TreeMap || Array.isArray(v) || v instanceof Comment) throw new FormatError('dotenv values cannot be nested', 0);
  if (v === null) return '';
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  return valToString(v).replaceAll('\n', '\\n');
}
