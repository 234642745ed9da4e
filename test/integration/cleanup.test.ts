// What the harness leaves in the temp dir: nothing after a passing run, the logs of a failing
// one, everything with FLUXSTRAP_KEEP_CLUSTER_DIRS=1, and nothing of a run whose test process
// was killed (its watchdog or the next start removes it) — but never the dir of a live run.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { KEPT_MARKER, pidAlive, tempDir } from '../helpers/tmp.ts';
import { KEEP_ENV, startCluster } from '../cluster/index.ts';
import { waitFor } from '../cluster/proc.ts';

const harness = join(import.meta.dirname, '..', 'cluster');
// These tests are about what happens by default; the test with the variable sets it itself.
delete process.env[KEEP_ENV];
const fakes: string[] = [];
after(() => {
  for (const dir of fakes) rmSync(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync('true');
  assert.ok(r.pid !== undefined && r.status === 0);
  return r.pid;
}

/** A dir named as a run of `owner` would name it, last touched `ageMs` ago. */
function fakeRun(owner: number, ageMs: number, kept?: { ageMs: number }): string {
  const dir = mkdtempSync(join(tmpdir(), `fluxstrap-cluster-pid${owner}-`));
  fakes.push(dir);
  mkdirSync(join(dir, 'logs'));
  writeFileSync(join(dir, 'logs', 'etcd.log'), 'a log line\n');
  const ago = (ms: number): Date => new Date(Date.now() - ms);
  if (kept !== undefined) {
    const marker = join(dir, KEPT_MARKER);
    writeFileSync(marker, JSON.stringify({ why: 'test failed: fake', everything: false }));
    utimesSync(marker, ago(kept.ageMs), ago(kept.ageMs));
  }
  utimesSync(dir, ago(ageMs), ago(ageMs));
  return dir;
}

/** Runs a script with the Node that runs the tests, outside this test runner's context. */
function nodeEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

void describe('cluster directories', { timeout: 5 * MINUTE }, () => {
  void test("stop() removes the directory; a start prunes dead runs' dirs but not live or freshly kept ones", async () => {
    const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      assert.ok(sleeper.pid !== undefined);
      const dead = fakeRun(deadPid(), 10 * MINUTE);
      const deadJustNow = fakeRun(deadPid(), 0);
      const live = fakeRun(sleeper.pid, 10 * MINUTE);
      const keptRecently = fakeRun(deadPid(), 10 * MINUTE, { ageMs: HOUR });
      const keptLongAgo = fakeRun(deadPid(), 10 * MINUTE, { ageMs: 25 * HOUR });

      const cluster = await startCluster({ flux: 'off' });
      let dir: string;
      try {
        dir = cluster.dir;
        assert.match(dir, new RegExp(`fluxstrap-cluster-pid${process.pid}-`));
        assert.ok(existsSync(join(dir, 'logs', 'etcd.log')));
        assert.equal(existsSync(dead), false, "the dead run's dir was not pruned");
        assert.equal(existsSync(keptLongAgo), false, 'a dir kept 25 h ago was not pruned');
        assert.ok(existsSync(live), 'the dir of a live owner was pruned');
        assert.ok(existsSync(deadJustNow), 'a dir touched just now was pruned');
        assert.ok(existsSync(join(keptRecently, 'logs', 'etcd.log')), 'a dir kept an hour ago was pruned');
      } finally {
        await cluster.stop();
      }
      assert.equal(existsSync(dir), false, `${dir} is left after stop()`);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  void test(`${KEEP_ENV}=1 keeps the whole directory after stop()`, async () => {
    process.env[KEEP_ENV] = '1';
    let dir: string;
    try {
      const cluster = await startCluster({ flux: 'off' });
      dir = cluster.dir;
      fakes.push(dir);
      await cluster.stop();
    } finally {
      delete process.env[KEEP_ENV];
    }
    const left = readdirSync(dir);
    for (const entry of ['logs', 'etcd', 'kubeconfig', 'repos', KEPT_MARKER]) assert.ok(left.includes(entry), `${entry} not kept: ${left.join(', ')}`);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, KEPT_MARKER), 'utf8')), { why: `${KEEP_ENV}=1`, everything: true });
  });

  // clusterForFile() as a test file uses it, run as its own test process.
  async function runTestFile(fail: boolean): Promise<{ code: number | null; output: string; dir: string }> {
    const work = await tempDir('cleanup-fixture');
    const file = join(work, 'fixture.test.ts');
    const out = join(work, 'cluster-dir');
    writeFileSync(
      file,
      `
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { clusterForFile } from ${JSON.stringify(join(harness, 'testing.ts'))};
const suite = clusterForFile({ flux: 'off' });
test('uses the cluster', () => suite.run(() => {
  writeFileSync(${JSON.stringify(out)}, suite.cluster.dir);
  if (${String(fail)}) throw new Error('the fixture fails');
}));
`,
    );
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', file], { encoding: 'utf8', env: nodeEnv({}) });
    const output = `${r.stdout}${r.stderr}`;
    assert.ok(existsSync(out), `the fixture did not reach its test:\n${output}`);
    const dir = readFileSync(out, 'utf8');
    fakes.push(dir);
    return { code: r.status, output, dir };
  }

  void test('clusterForFile: a passing test file leaves nothing behind', async () => {
    const { code, output, dir } = await runTestFile(false);
    assert.equal(code, 0, output);
    assert.equal(existsSync(dir), false, `${dir} is left after a passing test file`);
  });

  void test('clusterForFile: a failing test prints the log tails, says where the logs are kept and keeps them', async () => {
    const { code, output, dir } = await runTestFile(true);
    assert.equal(code, 1, output);
    assert.match(output, /the fixture fails/);
    assert.ok(output.includes(`----- ${join(dir, 'logs', 'etcd.log')} (last 30 lines)`), output);
    assert.ok(output.includes(`cluster logs kept in ${join(dir, 'logs')}`), output);
    assert.deepEqual(readdirSync(dir).sort(), [KEPT_MARKER, 'logs'].sort());
    assert.ok(readdirSync(join(dir, 'logs')).includes('kube-apiserver.log'));
    assert.deepEqual(JSON.parse(readFileSync(join(dir, KEPT_MARKER), 'utf8')), { why: 'test failed: uses the cluster', everything: false });
  });

  void test('a SIGKILLed test process: the watchdog kills its processes and removes its directory', async () => {
    const work = await tempDir('cleanup-owner');
    const script = join(work, 'owner.ts');
    writeFileSync(
      script,
      `
import { startCluster } from ${JSON.stringify(join(harness, 'index.ts'))};
const cluster = await startCluster({ flux: 'off' });
process.stdout.write(cluster.dir + '\\n');
setInterval(() => undefined, 60_000);
`,
    );
    const owner = spawn(process.execPath, [script], { env: nodeEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    owner.stdout.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    owner.stderr.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    const exited = new Promise((resolve) => owner.on('exit', resolve));
    let pids: number[] = [];
    try {
      const dir = await waitFor(
        'the owner to print its cluster dir',
        () => {
          if (owner.exitCode !== null) throw new Error(`the owner exited (${owner.exitCode}):\n${output}`);
          return Promise.resolve(/^(\/\S+)\n/m.exec(output)?.[1]);
        },
        { timeoutMs: 2 * MINUTE },
      );
      fakes.push(dir);
      pids = readdirSync(join(dir, 'pids')).map((f) => Number(readFileSync(join(dir, 'pids', f), 'utf8')));
      assert.ok(pids.length >= 2 && pids.every(pidAlive), `etcd and kube-apiserver are not running: ${pids.join(', ')}`);

      owner.kill('SIGKILL');
      await exited;
      await waitFor(`the watchdog to remove ${dir}`, () => Promise.resolve(existsSync(dir) ? undefined : true), { timeoutMs: 15_000 });
      // Until init reaps them, killed processes still answer kill(pid, 0).
      await waitFor(
        'the cluster processes to be gone',
        () => {
          const alive = pids.filter(pidAlive);
          return Promise.resolve(alive.length === 0 ? true : undefined);
        },
        { timeoutMs: 10_000 },
      );
    } finally {
      owner.kill('SIGKILL');
      for (const pid of pids) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // Gone, as it should be.
        }
      }
    }
  });
});
