import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Reporter, RunEvent, TaskResult } from '../../../src/core/events.ts';
import type { ClusterRun } from '../../../src/core/events.ts';
import { diffLines, lineDiff, maskText } from '../../../src/report/format.ts';
import { JsonReporter } from '../../../src/report/json.ts';
import { ListrFleetView, ListrReporter } from '../../../src/report/listr.ts';
import { PlainReporter } from '../../../src/report/plain.ts';

/** Renderers on a recorded event stream, compared with golden text (UPDATE_GOLDEN=1 rewrites it). */

const fixtures = join(import.meta.dirname, 'fixtures');

function recorded(file = 'run.events.json'): RunEvent[] {
  const events = JSON.parse(readFileSync(join(fixtures, file), 'utf8')) as RunEvent[];
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

const ESC = String.fromCharCode(27);
const ESCAPES = new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g');

/**
 * What listr2's default renderer leaves on the terminal: the frame drawn after its last erase
 * (log-update ends an erase with ESC[G), then whatever was written after it.
 */
function lastFrame(text: string): string {
  const erased = text.lastIndexOf(`${ESC}[G`);
  assert.ok(erased >= 0, 'the list was drawn in place');
  return text.slice(erased + 3).replace(ESCAPES, '');
}

/** Each line at the margin, and what is drawn indented under it, as one line of words (wrap-proof). */
function entries(frame: string): { head: string; body: string }[] {
  const out: { head: string; body: string }[] = [];
  for (const line of frame.split('\n')) {
    const last = out.at(-1);
    if (/^\S/.test(line)) out.push({ head: line, body: '' });
    else if (last && line.trim() !== '') last.body += `${line.trim()} `;
  }
  return out;
}

/** Whether the captured text comes to match within two seconds, as a terminal shows it over time. */
async function shows(out: Capture, pattern: RegExp): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (pattern.test(out.text.replace(ESCAPES, ''))) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
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
    assert.deepEqual(
      out.text
        .split('\n')
        .filter((l) => /^\S/.test(l))
        .map((l) => l.slice(0, 18)),
      ['✗ Flux components ', 'Bootstrap prod: ok'],
    );
  });

  void it('json: one document on close, changes masked', async () => {
    const out = new Capture();
    const reporter = new JsonReporter((doc) => out.write(`${JSON.stringify(doc, null, 2)}\n`));
    for (const e of recorded()) reporter.emit(e);
    assert.equal(out.text, '', 'nothing before the run is over');
    await reporter.close();
    const doc = JSON.parse(out.text) as { success: boolean; recap: unknown; tasks: TaskResult[] };
    assert.equal(doc.success, false);
    assert.deepEqual(doc.recap, { ok: 1, changed: 1, wouldChange: 0, skipped: 1, failed: 1 });
    assert.deepEqual(
      doc.tasks.map((t) => t.outcome),
      ['ok', 'changed', 'failed', 'skipped'],
    );
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

  void it('listr2: a progress message repeated by a wait shows once per change', async () => {
    const out = new Capture();
    // The terminal renderer: it keeps every output line of a task (the simple one prints changes).
    const reporter = new ListrReporter(out as unknown as NodeJS.WriteStream);
    const events = recorded();
    const at = events.findIndex((e) => e.type === 'task-progress');
    const recordedProgress = events[at];
    assert.ok(recordedProgress?.type === 'task-progress');
    const progress = { ...recordedProgress, message: 'Kustomization flux-system: reconciling' };
    const other = { ...progress, message: 'Kustomization flux-system: still reconciling' };
    for (const e of [...events.slice(0, at), progress, other, progress, progress, ...events.slice(at + 1)]) {
      reporter.emit(e);
      // As a wait reports: listr2 has drawn the task before the next event comes.
      if (e.type === 'task-progress') await new Promise((r) => setTimeout(r, 30));
    }
    await reporter.close();
    const frame = lastFrame(out.text);
    assert.equal(frame.split(`${progress.message}\n`).length - 1, 2, frame);
  });

  // The timeout: a list that never ends would keep its spinner, and the test, running.
  void it('listr2 fleet: one tree, every cluster with its tasks under it, one waiting, one failing early, recaps', { timeout: 20_000 }, async () => {
    const out = new Capture();
    const view = new ListrFleetView(out as unknown as NodeJS.WriteStream, ['prod', 'staging', 'edge'], { diff: true });
    // As with --parallel 2: two clusters run, the third waits for a free slot.
    const prod = view.cluster('prod');
    const staging = view.cluster('staging');
    // Asserted once the list has ended: a failed assertion must not leave it running.
    const waited = await shows(out, /edge: waiting for a free slot \(--parallel\)/);
    const prodEvents = recorded();
    const stagingEvents = recorded('run-ok.events.json');
    for (let i = 0; i < Math.max(prodEvents.length, stagingEvents.length); i++) {
      for (const [reporter, events] of [
        [prod, prodEvents],
        [staging, stagingEvents],
      ] as const) {
        const e = events[i];
        if (e) reporter.emit(e);
      }
      await new Promise(setImmediate);
    }
    await Promise.all([prod.close(), staging.close()]);
    view.cluster('edge');
    const end = (events: RunEvent[]) => events.at(-1) as Extract<RunEvent, { type: 'run-end' }>;
    const runs: ClusterRun[] = [
      { name: 'prod', success: false, end: end(prodEvents) },
      { name: 'staging', success: true, end: end(stagingEvents) },
      {
        name: 'edge',
        success: false,
        error: { code: 'E_NOT_FOUND', message: 'kubeconfig /home/ops/.kube/edge not found', hint: 'set kubeconfig for edge in fluxstrap.yaml' },
      },
    ];
    await view.close(runs);
    assert.ok(waited, 'a cluster the fleet has not begun says it waits');
    assertNoSecrets(out.text);

    const tree = entries(lastFrame(out.text));
    assert.deepEqual(
      tree.map((t) => t.head.replace(/^[^\w\s]+ /, '')),
      [
        'prod: ok=1 changed=1 would-change=0 skipped=1 failed=1 (4.7s)',
        'staging: ok=1 changed=2 would-change=0 skipped=0 failed=0 (3.5s)',
        'edge: failed before its playbook ran',
        'recap of 3 clusters:',
      ],
    );
    const [prodTasks, stagingTasks, edgeTasks, recap] = tree.map((t) => t.body);
    for (const line of [
      '✔ Preflight [ok] (0.4s) — Kubernetes v1.33.1',
      '✔ Secret sops-age [changed] (1.3s)',
      'update Secret flux-system/sops-age: rotate identities',
      '✖ Flux components [failed] (3.0s) › cannot apply CustomResourceDefinition gitrepositories.source.toolkit.fluxcd.io: HTTP 403 (playbooks/bootstrap.yaml:30:5) hint: use a context with cluster-admin rights',
      '↓ Reconcile [skipped]',
    ])
      assert.ok(prodTasks?.includes(line), `prod shows ${line}:\n${prodTasks}`);
    for (const line of [
      '✔ Preflight [ok] (0.4s) — Kubernetes v1.32.4',
      '✔ Secret sops-age [changed] (0.9s)',
      'create Secret flux-system/sops-age: 1 identity',
      '+  age.agekey: ***',
      '✔ Reconcile [changed] (2.2s) — revision main@sha1:4f2c9e1',
      'run Kustomization flux-system: reconcile to main@sha1:4f2c9e1',
    ])
      assert.ok(stagingTasks?.includes(line), `staging shows ${line}:\n${stagingTasks}`);
    assert.doesNotMatch(stagingTasks ?? '', /failed|hint|v1\.33/, 'nothing of prod under staging');
    assert.equal(edgeTasks, '› kubeconfig /home/ops/.kube/edge not found hint: set kubeconfig for edge in fluxstrap.yaml ');
    assert.equal(
      recap,
      [
        'prod: ok=1 changed=1 would-change=0 skipped=1 failed=1 (4.7s)',
        'staging: ok=1 changed=2 would-change=0 skipped=0 failed=0 (3.5s)',
        'edge: failed before its playbook ran: kubeconfig /home/ops/.kube/edge not found',
      ]
        .map((l) => `${l} `)
        .join(''),
    );
  });

  void it('listr2 fleet: a cluster whose run dies midway fails its open task with the error, and the list ends', { timeout: 20_000 }, async () => {
    const out = new Capture();
    const view = new ListrFleetView(out as unknown as NodeJS.WriteStream, ['prod']);
    const prod = view.cluster('prod');
    // run-start, then Preflight starts and ends; then the engine run throws.
    for (const e of recorded().slice(0, 3)) prod.emit(e);
    await view.close([{ name: 'prod', success: false, error: { code: 'E_INTERNAL', message: 'the view broke' }, started: true }]);
    const [entry] = entries(lastFrame(out.text));
    assert.equal(entry?.head.replace(/^[^\w\s]+ /, ''), 'prod — Bootstrap prod');
    assert.match(
      entry.body,
      /✔ Preflight \[ok\].* ✖ Secret sops-age \[failed\] \(0\.0s\) › the view broke ↓ Flux components \[skipped\] ↓ Reconcile \[skipped\] $/,
    );
    assert.match(out.text, /^ {2}prod: failed while its playbook ran: the view broke$/m);
  });

  void it('diffs in file order, so an inserted rule shows where it goes', () => {
    const before = ['creation_rules:', '  - path_regex: .*\\.sops\\.yaml$', '    age: age1old'];
    const after = ['creation_rules:', '  - path_regex: ^clusters/prod/.*$', '    age: age1new', '  - path_regex: .*\\.sops\\.yaml$', '    age: age1old'];
    assert.deepEqual(
      lineDiff(before, after).map((o) => `${o.op}${o.line}`),
      [' creation_rules:', '+  - path_regex: ^clusters/prod/.*$', '+    age: age1new', '   - path_regex: .*\\.sops\\.yaml$', '     age: age1old'],
    );
    assert.deepEqual(
      lineDiff(['a', 'b', 'c'], ['a', 'x', 'c']).map((o) => o.op + o.line),
      [' a', '-b', '+x', ' c'],
    );
    const many = Array.from({ length: 40 }, (_, i) => `line ${i}`);
    const edited = many.map((l, i) => (i === 20 ? 'changed' : l));
    assert.deepEqual(diffLines({ action: 'update', target: 'f', summary: '', before: many.join('\n'), after: edited.join('\n') }), [
      '    --- f',
      '    +++ f',
      '     …',
      '     line 19',
      '    -line 20',
      '    +changed',
      '     line 21',
      '     …',
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
