import { valToString } from './scalars.ts';
import { Comment, FormatError, TreeMap, type Item, type Value } from './tree.ts';

/**
 * The INI store as sops reads it through gopkg.in/ini: a `DEFAULT` section first, each section a
 * map of string values, a comment before a section its first item, a comment before a key
 * right after that key. Written as go-ini pretty-prints: `=` aligned per section, `; comment`
 * lines, a blank line between sections.
 */

function stripCommentChar(line: string): string {
  if (line.startsWith(';')) return line.replace(/^[; ]+/, '');
  if (line.startsWith('#')) return line.replace(/^[# ]+/, '');
  return line;
}

function unquote(v: string): string {
  for (const q of ['"', "'", '`']) {
    if (v.length >= 2 && v.startsWith(q) && v.endsWith(q)) return v.slice(1, -1);
  }
  return v;
}

export function parseIni(text: string): TreeMap {
  const sections: Item[] = [];
  let current = new TreeMap();
  sections.push({ key: 'DEFAULT', value: current });
  let pending: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '') continue;
    if (line.startsWith(';') || line.startsWith('#')) {
      pending.push(line);
      continue;
    }
    if (line.startsWith('[')) {
      const end = line.indexOf(']');
      if (end < 0) throw new FormatError('unclosed section header', i + 1);
      current = new TreeMap();
      if (pending.length > 0) current.items.push({ key: new Comment(stripCommentChar(pending.join('\n'))), value: null });
      pending = [];
      sections.push({ key: line.slice(1, end), value: current });
      continue;
    }
    const eq = line.search(/[=:]/);
    const key = (eq < 0 ? line : line.slice(0, eq)).trim();
    let value = eq < 0 ? '' : line.slice(eq + 1).trim();
    if (value.startsWith('"""')) {
      // go-ini multi-line values; sops 3.13.0/3.13.1 wrote metadata this way.
      let body = value.slice(3);
      while (!body.endsWith('"""')) {
        i++;
        if (i >= lines.length) throw new FormatError('unclosed """ value', i);
        body += `\n${lines[i] ?? ''}`;
      }
      value = body.slice(0, -3);
    } else if (/^["'`]/.test(value)) {
      value = unquote(value);
    } else {
      // go-ini: an unquoted value ends at the first `#` or `;`, the rest is the key's comment.
      const hash = value.search(/[#;]/);
      if (hash >= 0) {
        pending.push(value.slice(hash));
        value = value.slice(0, hash).trim();
      }
    }
    current.items.push({ key, value });
    if (pending.length > 0) current.items.push({ key: new Comment(stripCommentChar(pending.join('\n'))), value: null });
    pending = [];
  }
  return new TreeMap(sections);
}

function iniValue(v: Value): string {
  if (v instanceof TreeMap || Array.isArray(v) || v instanceof Comment) throw new FormatError('INI values cannot be nested', 0);
  if (v === null) return '';
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  const s = valToString(v);
  return s.includes('\n') ? `"""${s}"""` : s;
}

export function emitIni(root: TreeMap): string {
  const blocks: string[] = [];
  for (const section of root.items) {
    if (section.key instanceof Comment) continue;
    if (!(section.value instanceof TreeMap)) throw new FormatError('INI sections must be maps', 0);
    let items = section.value.items;
    const lines: string[] = [];
    const first = items[0];
    if (first && first.key instanceof Comment) {
      lines.push(`; ${first.key.text}`);
      items = items.slice(1);
    }
    if (section.key === 'DEFAULT' && items.length === 0) continue;
    if (section.key !== 'DEFAULT') lines.push(`[${section.key}]`);
    const width = Math.max(0, ...items.map((i) => (typeof i.key === 'string' ? i.key.length : 0)));
    const keyLines: string[][] = [];
    for (const item of items) {
      if (item.key instanceof Comment) {
        // go-ini keeps a key's comment above it; sops reads it back as the item after the key.
        keyLines[keyLines.length - 1]?.unshift(`; ${item.key.text}`);
        continue;
      }
      keyLines.push([`${item.key.padEnd(width)} = ${iniValue(item.value)}`]);
    }
    lines.push(...keyLines.flat());
    blocks.push(`${lines.join('\n')}\n`);
  }
  return blocks.join('\n');
}
