import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExprError, UndefinedVariable, evaluate, parseExpr, parseTemplate, renderTemplate } from '../../../src/playbook/expr.ts';

const scope = {
  cluster: { name: 'prod', tags: ['a', 'b'], auth: { type: 'ssh' }, empty: '' },
  check_mode: false,
  n: 3,
  list: [],
};
const ev = (src: string) => evaluate(parseExpr(src), scope);

void describe('playbook expressions', () => {
  void it('evaluates paths, literals and comparisons', () => {
    assert.equal(ev('cluster.name'), 'prod');
    assert.equal(ev("cluster.auth.type == 'ssh'"), true);
    assert.equal(ev('cluster.auth.type != "ssh"'), false);
    assert.equal(ev('n == 3'), true);
    assert.equal(ev("'a' in cluster.tags"), true);
    assert.equal(ev("'c' not in cluster.tags"), true);
    assert.equal(ev("'ro' in cluster.name"), true);
    assert.equal(ev("'auth' in cluster"), true);
    assert.equal(ev('null'), null);
    assert.equal(ev('True'), true);
  });

  void it('gives not > and > or their usual precedence, with Python truthiness', () => {
    assert.equal(ev('not check_mode and n == 3'), true);
    assert.equal(ev('true or false and false'), true);
    assert.equal(ev('(true or false) and false'), false);
    assert.equal(ev('not list'), true);
    assert.equal(ev('not cluster.empty'), true);
    assert.equal(ev('not not cluster'), true);
  });

  void it('applies filters; default covers undefined variables', () => {
    assert.equal(ev("missing | default('x')"), 'x');
    assert.equal(ev('cluster.missing.deeper | default(n)'), 3);
    assert.equal(ev('cluster.name | upper'), 'PROD');
    assert.equal(ev("'AbC' | lower"), 'abc');
  });

  void it('never reaches JavaScript internals: only own properties are variables', () => {
    assert.throws(() => ev('cluster.constructor'), UndefinedVariable);
    assert.throws(() => ev('cluster.name.length'), UndefinedVariable);
    assert.throws(() => ev('__proto__'), UndefinedVariable);
  });

  void it('reports syntax errors with the offset of the problem', () => {
    const offsetOf = (src: string) => {
      try {
        parseExpr(src);
      } catch (e) {
        assert.ok(e instanceof ExprError);
        return e.offset;
      }
      assert.fail(`no error for ${src}`);
    };
    assert.equal(offsetOf("a = 'b'"), 2);
    assert.equal(offsetOf('a and'), 5);
    assert.equal(offsetOf('a | eval'), 4);
    assert.equal(offsetOf('(a'), 2);
    assert.equal(offsetOf('a b'), 2);
    assert.equal(offsetOf('a.'), 2);
  });

  void it('renders templates: one expression keeps its type, text interpolates', () => {
    assert.equal(renderTemplate(parseTemplate('{{ n }}'), scope), 3);
    assert.deepEqual(renderTemplate(parseTemplate('{{cluster.tags}}'), scope), ['a', 'b']);
    assert.equal(renderTemplate(parseTemplate('n={{ n }}, c={{ cluster.name }}!'), scope), 'n=3, c=prod!');
    assert.equal(renderTemplate(parseTemplate('no template'), scope), 'no template');
    assert.throws(
      () => parseTemplate('a {{ b'),
      (e: unknown) => e instanceof ExprError && e.offset === 2,
    );
    assert.throws(
      () => parseTemplate('a {{ b c }}'),
      (e: unknown) => e instanceof ExprError && e.offset === 7,
    );
  });
});
