import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import type { Change } from '../../../src/core/change.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';
import type { Reporter, RunEvent } from '../../../src/core/events.ts';
import type { TaskKind } from '../../../src/core/task.ts';
import { builtinPlaybook, parseExtraVars, runPlaybook } from '../../../src/flows/bootstrap.ts';
import type { PlaybookRunOptions } from '../../../src/flows/bootstrap.ts';
import type { TaskContext } from '../../../src/tasks/context.ts';
import { builtinKinds } from '../../../src/tasks/registry.ts';
import type { KindRegistry } from '../../../src/tasks/registry.ts';
import { loadPlaybook } from '../../../src/playbook/loader.ts';

/** A file kind small enough to read at a glance: the engine, not the kind, is under test. */
const FileParams = z.strictObject({ path: z.string(), content: z.string() });
const fileKind: TaskKind<z.infer<typeof FileParams>, string | undefined, TaskContext> = {
  kind: 'file',
  params: FileParams,
  observe: (p, ctx) => readFile(join(ctx.paths.repo, p.path), 'utf8').catch(() => undefined),
  plan: (p, have): Change[] =>
    have === p.content
      ? []
      : [{ action: have === undefined ? 'create' : 'update', target: `file ${p.path}`, summary: '', before: have ?? '', after: p.content }],
  apply: async (_c, p, ctx) => {
    ctx.log(`writing ${p.path}`);
    await writeFile(join(ctx.paths.repo, p.path), p.content);
  },
};
const failKind: TaskKind<Record<string, never>, null, TaskContext> = {
  kind: 'fail',
  params: z.strictObject({}),
  observe: () => Promise.reject(new FluxstrapError('E_PRECONDITION', 'refused on purpose')),
  plan: () => [],
  apply: () => Promise.resolve(),
};
const registry: KindRegistry = { file: () => Promise.resolve(fileKind as never), fail: () => Promise.resolve(failKind as never) };

class Recorder implements Reporter {
  events: RunEvent[] = [];
  emit(e: RunEvent): void {
    this.events.push(e);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  get end() {
    const e = this.events.at(-1);
    if (e?.type !== 'run-end') return assert.fail('the run did not end with run-end');
    return e;
  }
}

let repo: string;
const PLAYBOOK = `name: "Files of {{ cluster.name }}"
vars:
  greeting: hello
tasks:
  - name: Readme
    file: { path: README.txt, content: "{{ greeting }} {{ cluster.name }}\\n" }
  - name: Only under check
    file: { path: never.txt, content: x }
    when: check_mode and cluster.name == 'nope'
`;

const HANDLERS = `name: handlers
tasks:
  - file: { path: config.txt, content: "{{ value | default('one') }}" }
    notify: [Marker]
  - file: { path: other.txt, content: same }
handlers:
  - name: Marker
    file: { path: marker.txt, content: "ran" }
  - name: Never notified
    file: { path: never.txt, content: "x" }
`;

async function run(opts: Partial<PlaybookRunOptions> = {}, playbook = 'site.yaml'): Promise<{ code: number; rec: Recorder; out: string }> {
  const rec = new Recorder();
  let out = '';
  const code = await runPlaybook(
    { playbook: join(repo, playbook), ...opts },
    {
      cwd: repo,
      env: {},
      registry,
      reporter: () => Promise.resolve(rec),
      out: new Writable({ write: (chunk: Buffer, _enc, done) => ((out += chunk.toString()), done()) }),
    },
  );
  return { code, rec, out };
}

void describe('running a playbook (in process)', () => {
  before(async () => {
    repo = await mkdtemp(join(tmpdir(), 'fluxstrap-run-'));
    await writeFile(join(repo, 'fluxstrap.yaml'), 'clusters:\n  lab: {}\n');
    await writeFile(join(repo, 'site.yaml'), PLAYBOOK);
    await writeFile(join(repo, 'handlers.yaml'), HANDLERS);
    await writeFile(join(repo, 'failing.yaml'), 'name: f\ntasks:\n  - fail: {}\n  - file: {path: after.txt, content: x}\n');
  });
  after(async () => {
    await rm(repo, { recursive: true, force: true });
  });

  void it('converges, then reports zero changes on the second run', async () => {
    const first = await run();
    assert.equal(first.code, 0);
    assert.equal(first.rec.end.title, 'Files of lab');
    assert.deepEqual(first.rec.end.recap, { ok: 0, changed: 1, wouldChange: 0, skipped: 1, failed: 0 });
    assert.equal(await readFile(join(repo, 'README.txt'), 'utf8'), 'hello lab\n');
    assert.ok(first.rec.events.some((e) => e.type === 'task-progress' && e.message === 'writing README.txt' && e.task.name === 'Readme'));
    const second = await run();
    assert.equal(second.code, 0);
    assert.deepEqual(second.rec.end.recap, { ok: 1, changed: 0, wouldChange: 0, skipped: 1, failed: 0 });
  });

  void it('--check changes nothing and exits 3 when something would change', async () => {
    await writeFile(join(repo, 'README.txt'), 'edited by hand\n');
    const checked = await run({ check: true });
    assert.equal(checked.code, 3);
    assert.equal(checked.rec.end.recap.wouldChange, 1);
    assert.equal(await readFile(join(repo, 'README.txt'), 'utf8'), 'edited by hand\n');
    await writeFile(join(repo, 'README.txt'), 'hi lab\n');
    assert.equal((await run({ check: true, extraVars: ['greeting=hi'] })).code, 0, 'nothing to do: exit 0 under --check');
  });

  void it('exits 1 when a task fails, and skips what follows', async () => {
    const failed = await run({}, 'failing.yaml');
    assert.equal(failed.code, 1);
    assert.deepEqual(
      failed.rec.end.results.map((r) => r.outcome),
      ['failed', 'skipped'],
    );
    assert.equal(failed.rec.end.results[0]?.error?.code, 'E_PRECONDITION');
  });

  void it('refuses bad input before anything runs', async () => {
    const refuses = (opts: Partial<PlaybookRunOptions>, pattern: RegExp) => assert.rejects(run(opts), pattern);
    await refuses({ timeout: 'soon' }, /--timeout soon/);
    await refuses({ extraVars: ['oops'] }, /expected NAME=VALUE/);
    await refuses({ cluster: 'prod' }, /cluster "prod" is not in/);
    await refuses({ require: ['git-url'] }, /no Git URL for cluster "lab"/);
    await assert.rejects(run({}, 'missing.yaml'), (e: unknown) => e instanceof FluxstrapError && e.code === 'E_NOT_FOUND');
  });

  void it('runs a notified handler once after the tasks, only when the notifying task changed', async () => {
    const first = await run({}, 'handlers.yaml');
    assert.equal(first.code, 0);
    assert.deepEqual(
      first.rec.end.results.map((r) => `${r.name}:${r.outcome}`),
      ['file:changed', 'file:changed', 'Marker:changed', 'Never notified:skipped'],
    );
    await rm(join(repo, 'marker.txt'));
    const second = await run({}, 'handlers.yaml');
    assert.deepEqual(
      second.rec.end.results.map((r) => r.outcome),
      ['ok', 'ok', 'skipped', 'skipped'],
    );
    await assert.rejects(readFile(join(repo, 'marker.txt')), 'an unchanged task notifies nothing');
    const checked = await run({ check: true, extraVars: ['value=two'] }, 'handlers.yaml');
    assert.equal(checked.code, 3);
    assert.deepEqual(
      checked.rec.end.results.map((r) => r.outcome),
      ['would-change', 'ok', 'would-change', 'skipped'],
    );
  });

  void it('refuses a notify that names no handler, at the notify line', async () => {
    await writeFile(join(repo, 'bad-notify.yaml'), 'name: x\ntasks:\n  - file: {path: a, content: b}\n    notify: Restart\n');
    await assert.rejects(
      run({}, 'bad-notify.yaml'),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_CONFIG' && e.location?.line === 4 && /no handler is named "Restart"/.test(e.message),
    );
  });

  void it('--list-tasks validates and lists, and runs nothing', async () => {
    const listed = await run({ listTasks: true }, 'handlers.yaml');
    assert.equal(listed.code, 0);
    assert.deepEqual(listed.rec.events, []);
    assert.equal(
      listed.out,
      [
        'handlers',
        `  file  [file]  ${join(repo, 'handlers.yaml')}:3`,
        `  file  [file]  ${join(repo, 'handlers.yaml')}:5`,
        `  Marker  [file]  ${join(repo, 'handlers.yaml')}:7`,
        `  Never notified  [file]  ${join(repo, 'handlers.yaml')}:9`,
        '',
      ].join('\n'),
    );
  });

  void it('reads -e values as YAML scalars', () => {
    assert.deepEqual(parseExtraVars(['n=2', 'b=true', 's=a=b', 'e=']), { n: 2, b: true, s: 'a=b', e: '' });
  });

  void it('keeps -e __proto__=… as a variable (an assignment would have made it the prototype)', () => {
    const vars = parseExtraVars(['__proto__={a: 1}', 'constructor=c']);
    assert.deepEqual(Object.keys(vars), ['__proto__', 'constructor']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(vars, '__proto__')?.value, { a: 1 });
    assert.equal(Object.getPrototypeOf(vars), Object.prototype);
  });
});

void describe('the built-in bootstrap playbook', () => {
  void it('uses only registered kinds, in the order of the issue', async () => {
    const pb = await loadPlaybook(builtinPlaybook('bootstrap'), {
      registry: builtinKinds,
      builtins: { cluster: { name: 'prod' }, check_mode: false, rotate_secrets: false },
    });
    assert.equal(pb.name, 'Bootstrap Flux on prod');
    assert.deepEqual(
      pb.tasks.map((t) => t.kind.kind),
      [
        'preflight',
        'github-repository',
        'ssh-deploy-key',
        'known-hosts',
        'github-deploy-key',
        'gitea-deploy-key',
        'preflight',
        'namespace',
        'git-credentials',
        'sops-age-secret',
        'sops-gpg-secret',
        'sops-hcvault-secret',
        'azure-credentials-secret',
        'flux-components',
        'wait-controllers',
        'flux-sync',
        'reconcile',
        'verify-decryption',
      ],
    );
    // With SSH auth the repository may be readable only once the forge steps registered the deploy key.
    assert.deepEqual(
      pb.tasks
        .filter((t) => t.kind.kind === 'preflight')
        .map((t) => {
          const q = t.params as { scope: string; deferRead: boolean };
          return [q.scope, q.deferRead];
        }),
      [
        ['all', true],
        ['repository', false],
      ],
    );
  });

  void it('--tags deploy_key --skip-tags always: the Git-hosting steps alone', async () => {
    const pb = await loadPlaybook(builtinPlaybook('bootstrap'), {
      registry: builtinKinds,
      builtins: { cluster: { name: 'prod' }, check_mode: false, rotate_secrets: false },
      tags: ['deploy_key'],
      skipTags: ['always'],
    });
    assert.deepEqual(
      pb.tasks.map((t) => t.kind.kind),
      ['github-repository', 'ssh-deploy-key', 'known-hosts', 'github-deploy-key', 'gitea-deploy-key'],
    );
  });

  void it('lets --tags pick steps, preflight always included', async () => {
    const pb = await loadPlaybook(builtinPlaybook('bootstrap'), {
      registry: builtinKinds,
      builtins: { cluster: { name: 'prod' }, check_mode: false, rotate_secrets: false },
      tags: ['secrets'],
    });
    assert.deepEqual(
      pb.tasks.map((t) => t.kind.kind),
      [
        'preflight',
        'github-repository',
        'ssh-deploy-key',
        'known-hosts',
        'github-deploy-key',
        'gitea-deploy-key',
        'preflight',
        'namespace',
        'git-credentials',
        'sops-age-secret',
        'sops-gpg-secret',
        'sops-hcvault-secret',
        'azure-credentials-secret',
      ],
    );
  });
});
