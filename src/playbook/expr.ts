/**
 * The expression language of playbooks: `{{ cluster.name }}` in values and `when:` conditions.
 * Deliberately tiny and never `eval`: dotted variable paths, string/number/boolean/null literals,
 * `==`, `!=`, `in`, `not`, `and`, `or`, parentheses, and the filters `default(x)`, `lower`, `upper`.
 * Jinja as a programming language is what makes Ansible playbooks hard to review; a playbook here
 * only selects and substitutes.
 */

export type Scope = Readonly<Record<string, unknown>>;

export type Expr =
  | { t: 'lit'; value: unknown }
  | { t: 'var'; path: string[] }
  | { t: 'not'; e: Expr }
  | { t: 'bin'; op: 'and' | 'or' | '==' | '!=' | 'in'; l: Expr; r: Expr }
  | { t: 'filter'; name: Filter; e: Expr; args: Expr[] };

const FILTERS = ['default', 'lower', 'upper'] as const;
type Filter = (typeof FILTERS)[number];

/** A syntax or evaluation problem; `offset` is within the expression text, for the caller's location. */
export class ExprError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.name = 'ExprError';
    this.offset = offset;
  }
}

// A Map, not an object literal: `__proto__` must be a variable name like any other, not a lookup hit.
const LITERALS = new Map<string, unknown>([
  ['true', true],
  ['false', false],
  ['null', null],
  ['True', true],
  ['False', false],
  ['None', null],
]);

type Token = { k: 'str' | 'num' | 'id' | 'op'; v: string; at: number };

const TOKEN_RE = /\s*(?:(?<num>-?\d+(?:\.\d+)?)|(?<id>[A-Za-z_][A-Za-z0-9_]*)|'(?<sq>[^'\\]*)'|"(?<dq>[^"\\]*)"|(?<op>==|!=|[.|(),]))/y;

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  TOKEN_RE.lastIndex = 0;
  while (TOKEN_RE.lastIndex < src.length) {
    if (/^\s*$/.test(src.slice(TOKEN_RE.lastIndex))) break;
    const start = TOKEN_RE.lastIndex;
    const m = TOKEN_RE.exec(src);
    if (!m?.groups) {
      const rest = src.slice(start);
      throw new ExprError(`unexpected character ${JSON.stringify(rest.trimStart()[0])}`, start + rest.length - rest.trimStart().length);
    }
    const at = start + (m[0].length - m[0].trimStart().length);
    const g = m.groups;
    if (g.num !== undefined) out.push({ k: 'num', v: g.num, at });
    else if (g.id !== undefined) out.push({ k: 'id', v: g.id, at });
    else if (g.sq !== undefined || g.dq !== undefined) out.push({ k: 'str', v: g.sq ?? g.dq ?? '', at });
    else out.push({ k: 'op', v: g.op ?? '', at });
  }
  return out;
}

/**
 * Bounds on expressions and what they render to: evaluation recurses over the parsed tree, and
 * `vars` that repeat each other double at every step.
 */
export const EXPR_LIMITS = { chars: 4096, depth: 64, renderedChars: 1024 * 1024 } as const;

/** Parse an expression; throws ExprError with the offset of the first problem. */
export function parseExpr(src: string): Expr {
  if (src.length > EXPR_LIMITS.chars) throw new ExprError(`expression longer than ${EXPR_LIMITS.chars} characters`, 0);
  const toks = tokenize(src);
  let i = 0;
  let depth = 0;
  const nest = <T>(f: () => T): T => {
    if (++depth > EXPR_LIMITS.depth) fail(`nested deeper than ${EXPR_LIMITS.depth} levels`);
    const r = f();
    depth--;
    return r;
  };
  const peek = () => toks[i];
  const isWord = (w: string) => peek()?.k === 'id' && peek()?.v === w;
  const isOp = (o: string) => peek()?.k === 'op' && peek()?.v === o;
  const fail = (what: string): never => {
    const tok = peek();
    throw new ExprError(tok ? `${what}, found ${JSON.stringify(tok.v)}` : `${what}, found the end`, tok?.at ?? src.length);
  };
  const expectOp = (o: string) => {
    if (!isOp(o)) fail(`expected "${o}"`);
    i++;
  };

  // `a or b or c` and `a and b`, left-associative; `and` binds tighter than `or`.
  const chain = (op: 'and' | 'or', next: () => Expr) => (): Expr => {
    let l = next();
    while (isWord(op)) {
      i++;
      l = { t: 'bin', op, l, r: next() };
    }
    return l;
  };
  const and = chain('and', () => not());
  const or = chain('or', and);
  const not = (): Expr => {
    if (isWord('not')) {
      i++;
      return { t: 'not', e: nest(not) };
    }
    return compare();
  };
  const compare = (): Expr => {
    const l = filtered();
    if (isOp('==') || isOp('!=') || isWord('in')) {
      const op = (toks[i++] as Token).v as '==' | '!=' | 'in';
      return { t: 'bin', op, l, r: filtered() };
    }
    if (isWord('not') && toks[i + 1]?.v === 'in') {
      i += 2;
      return { t: 'not', e: { t: 'bin', op: 'in', l, r: filtered() } };
    }
    return l;
  };
  const filtered = (): Expr => {
    let e = primary();
    while (isOp('|')) {
      i++;
      const tok = peek();
      if (tok?.k !== 'id' || !(FILTERS as readonly string[]).includes(tok.v)) fail(`expected a filter (${FILTERS.join(', ')})`);
      i++;
      const args: Expr[] = [];
      if (isOp('(')) {
        i++;
        if (!isOp(')')) {
          args.push(nest(or));
          while (isOp(',')) {
            i++;
            args.push(nest(or));
          }
        }
        expectOp(')');
      }
      e = { t: 'filter', name: (tok as Token).v as Filter, e, args };
    }
    return e;
  };
  const primary = (): Expr => {
    const tok = peek();
    if (!tok) return fail('expected a value');
    if (tok.k === 'str') {
      i++;
      return { t: 'lit', value: tok.v };
    }
    if (tok.k === 'num') {
      i++;
      return { t: 'lit', value: Number(tok.v) };
    }
    if (isOp('(')) {
      i++;
      const e = nest(or);
      expectOp(')');
      return e;
    }
    if (tok.k === 'id') {
      i++;
      if (LITERALS.has(tok.v)) return { t: 'lit', value: LITERALS.get(tok.v) };
      const path = [tok.v];
      while (isOp('.')) {
        i++;
        const next = peek();
        if (next?.k !== 'id') fail('expected a name after "."');
        path.push((next as Token).v);
        i++;
      }
      return { t: 'var', path };
    }
    return fail('expected a value');
  };

  const e = or();
  if (i < toks.length) fail('unexpected text');
  return e;
}

/** Raised for a variable that is not defined (and has no `| default(...)`). */
export class UndefinedVariable extends Error {
  constructor(path: string[]) {
    super(`undefined variable ${path.join('.')}`);
    this.name = 'UndefinedVariable';
  }
}

function lookup(scope: Scope, path: string[]): unknown {
  let v: unknown = scope;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, key)) throw new UndefinedVariable(path);
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** Python-like truth, as Ansible users expect: empty strings, lists and maps are false. */
export function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v !== null && typeof v === 'object') return Object.keys(v).length > 0;
  return Boolean(v);
}

export function evaluate(e: Expr, scope: Scope): unknown {
  switch (e.t) {
    case 'lit':
      return e.value;
    case 'var':
      return lookup(scope, e.path);
    case 'not':
      return !truthy(evaluate(e.e, scope));
    case 'bin': {
      if (e.op === 'and') return truthy(evaluate(e.l, scope)) && truthy(evaluate(e.r, scope));
      if (e.op === 'or') return truthy(evaluate(e.l, scope)) || truthy(evaluate(e.r, scope));
      const l = evaluate(e.l, scope);
      const r = evaluate(e.r, scope);
      if (e.op === '==') return l === r;
      if (e.op === '!=') return l !== r;
      if (typeof r === 'string') return typeof l === 'string' && r.includes(l);
      if (Array.isArray(r)) return r.includes(l);
      if (r !== null && typeof r === 'object') return typeof l === 'string' && Object.hasOwn(r, l);
      return false;
    }
    case 'filter': {
      if (e.name === 'default') {
        try {
          const v = evaluate(e.e, scope);
          if (v !== undefined && v !== null) return v;
        } catch (err) {
          if (!(err instanceof UndefinedVariable)) throw err;
        }
        return e.args[0] === undefined ? '' : evaluate(e.args[0], scope);
      }
      const v = evaluate(e.e, scope);
      const s = typeof v === 'string' ? v : JSON.stringify(v);
      return e.name === 'lower' ? s.toLowerCase() : s.toUpperCase();
    }
  }
}

export interface TemplatePart {
  text?: string;
  expr?: Expr;
  /** Offset of the expression in the template, for error locations. */
  at: number;
}

/** Split `a {{ x }} b` into literal text and parsed expressions. */
export function parseTemplate(src: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let pos = 0;
  while (pos < src.length) {
    const open = src.indexOf('{{', pos);
    if (open < 0) {
      parts.push({ text: src.slice(pos), at: pos });
      break;
    }
    if (open > pos) parts.push({ text: src.slice(pos, open), at: pos });
    const close = src.indexOf('}}', open + 2);
    if (close < 0) throw new ExprError('"{{" without a closing "}}"', open);
    const inner = src.slice(open + 2, close);
    try {
      parts.push({ expr: parseExpr(inner), at: open });
    } catch (err) {
      if (err instanceof ExprError) throw new ExprError(err.message, open + 2 + err.offset);
      throw err;
    }
    pos = close + 2;
  }
  return parts;
}

export function isTemplate(src: string): boolean {
  return src.includes('{{');
}

/**
 * Render a template. A string that is exactly one `{{ expr }}` keeps the value's type (so a
 * number, a boolean or a list can be passed through); anything else is string interpolation.
 */
export function renderTemplate(parts: TemplatePart[], scope: Scope): unknown {
  const [only] = parts;
  if (parts.length === 1 && only?.expr) return evaluate(only.expr, scope);
  let out = '';
  for (const p of parts) {
    const v = p.expr ? evaluate(p.expr, scope) : (p.text ?? '');
    out += typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(boundedValue(v));
    if (out.length > EXPR_LIMITS.renderedChars) throw new ExprError(`renders to more than ${EXPR_LIMITS.renderedChars} characters`, p.at);
  }
  return out;
}

/**
 * A value whose expanded size (values and characters, shared parts counted each time they
 * appear) stays within EXPR_LIMITS.renderedChars, or an ExprError: lists of vars that repeat
 * each other are small in memory but exponential once walked or written out.
 */
export function boundedValue<T>(value: T): T {
  let budget = EXPR_LIMITS.renderedChars;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    budget -= typeof v === 'string' ? v.length + 1 : 1;
    if (budget < 0) throw new ExprError(`expands to more than ${EXPR_LIMITS.renderedChars} characters`, 0);
    if (Array.isArray(v)) stack.push(...(v as unknown[]));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) stack.push(k, x);
  }
  return value;
}
