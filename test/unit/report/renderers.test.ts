import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Reporter, RunEvent, TaskResult } from '../../../src/core/events.ts';
import { diffLines, lineDiff, maskText } from '../../../src/report/format.ts';
import { JsonReporter } from '../../../src/report/json.ts';
import { ListrReporter } from '../../../src/report/listr.ts';
import { PlainReporter } from '../../../src/report/plain.ts';

/** Renderers on a recorded event stream, compared with golden text (UPDATE_GOLDEN=1 rewrites it). */

const fixtures = join(import.meta.dirname, 'fixtures');

function recorded(): RunEvent[] {
  const events = JSON.parse(readFileSync(join(fixtures, 'run.events.json'), 'utf8')) as RunEvent[];
  // run-end carries every result, as the engine sends it.
  const results = events.flatMap<TaskResult>((e) => (e.type === 'task-end' ? [e.result] : []));
  return events.map((e) => (e.type === 'run-end' ? { ...e, results } : e));
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function render(reporter: Reporter): Promise<void> {
  for (const e of recorded()) reporter.emit(e);
  await reporter.close();
}

function golden(name: string, actual: string): void {
  const file = join(fixtures, name);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, actual);
  assert.equal(actual, readFileSync(file, 'utf8'), `${name} differs (UPDATE_GOLDEN=1 to accept)`);
}

const SECRETS = ['OLDOLD', 'NEWNEW', 'SECOND'];
const assertNoSecrets = (text: string) => {
  for (const s of SECRETS) assert.ok(!text.includes(s), `secret ${s} printed`);
};

void describe('renderers', () => {
  void it('plain: one line per task, changes, error and hint, recap', async () => {
    const out = new Capture();
    await render(new PlainReporter(out, { color: false, quiet: false }));
    golden('plain.txt', out.text);
  });

  void it('plain --diff: before/after, with sensitive values masked even if a kind forgot', async () => {
    const out = new Capture();
    await render(new PlainReporter(out, { color: false, quiet: false, diff: true }));
    golden('plain-diff.txt', out.text);
    assertNoSecrets(out.text);
    assert.match(out.text, /\+\s+age-2\.agekey: \*\*\*/);
    assert.match(out.text, /\+\s+cluster: prod/);
  });

  void it('plain --quiet: only failures and the recap', async () => {
    const out = new Capture();
    await render(new PlainReporter(out, { color: false, quiet: true }));
    assert.deepEqual(out.text.split('\n').filter((l) => /^\S/.test(l)).map((l) => l.slice(0, 18)), ['✗ Flux components ', 'Bootstrap prod: ok']);
  });

  void it('json: one document on close, changes masked', async () => {
    const out = new Capture();
    const reporter = new JsonReporter(out);
    for (const e of recorded()) reporter.emit(e);
    assert.equal(out.text, '', 'nothing before the run is over');
    await reporter.close();
    const doc = JSON.parse(out.text) as { success: boolean; recap: unknown; tasks: TaskResult[] };
    assert.equal(doc.success, false);
    assert.deepEqual(doc.recap, { ok: 1, changed: 1, wouldChange: 0, skipped: 1, failed: 1 });
    assert.deepEqual(doc.tasks.map((t) => t.outcome), ['ok', 'changed', 'failed', 'skipped']);
    assertNoSecrets(out.text);
    golden('run.json', out.text);
  });

  void it('listr2: the list follows the events; status, durations, diff and recap', async () => {
    const out = new Capture();
    await render(new ListrReporter(out as unknown as NodeJS.WriteStream, { diff: true, renderer: 'simple' }));
    // The simple renderer stamps lines with the time of day; the rest must be stable.
    const text = out.text.replace(/\[\d{2}:\d{2}:\d{2}\] ?/g, '').replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '');
    assertNoSecrets(text);
    golden('listr.txt', text);
  });

  void it('diffs in file order, so an inserted rule shows where it goes', () => {
    const before = ['creation_rules:', '  - path_regex: .*\\.sops\\.yaml$', '    age: age1old'];
    const after = ['creation_rules:', '  - path_regex: ^clusters/prod/.*$', '    age: age1new', '  - path_regex: .*\\.sops\\.yaml$', '    age: age1old'];
    assert.deepEqual(lineDiff(before, after).map((o) => `${o.op}${o.line}`), [
      ' creation_rules:', '+  - path_regex: ^clusters/prod/.*$', '+    age: age1new', '   - path_regex: .*\\.sops\\.yaml$', '     age: age1old',
    ]);
    assert.deepEqual(lineDiff(['a', 'b', 'c'], ['a', 'x', 'c']).map((o) => o.op + o.line), [' a', '-b', '+x', ' c']);
    const many = Array.from({ length: 40 }, (_, i) => `line ${i}`);
    const edited = many.map((l, i) => (i === 20 ? 'changed' : l));
    assert.deepEqual(diffLines({ action: 'update', target: 'f', summary: '', before: many.join('\n'), after: edited.join('\n') }), [
      '    --- f', '    +++ f', '     …', '     line 19', '    -line 20', '    +changed', '     line 21', '     …',
    ]);
    const big = Array.from({ length: 3000 }, (_, i) => `${i}`);
    const reversed = [...big].reverse();
    assert.equal(lineDiff(big, reversed).filter((o) => o.op === '+').length, 3000, 'beyond the LCS budget the middle is replaced whole');
  });

  void it('masks values of key: value text and keeps the keys', () => {
    assert.equal(maskText('data:\n  a.agekey: SECRET\n  b: "x"\n- plain line\n'), 'data:\n  a.agekey: ***\n  b: ***\n***\n');
    assert.equal(maskText('{\n  "password": "hunter2"\n}'), '***\n  "password": ***\n***');
  });
});
