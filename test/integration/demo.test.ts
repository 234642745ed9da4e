// Issue 9 §5: `npm run demo` interrupted (SIGINT, SIGTERM) or failing stops every process it
// started — the fluxstrap command running, the cluster's processes and watchdog — and removes
// its temp dirs (a failure keeps the cluster logs, as the harness does for a failing test).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KEPT_MARKER } from '../helpers/tmp.ts';
import { assertBuilt } from '../cluster/index.ts';
import { waitFor } from '../cluster/proc.ts';

const demoScript = join(import.meta.dirname, '..', '..', 'scripts', 'demo.ts');

interface Proc {
  pid: number;
  ppid: number;
  state: string;
  cmdline: string;
}

/** Every process on the machine, from /proc (Linux, like the rest of the harness). */
function processes(): Proc[] {
  const out: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name in parentheses may itself hold spaces and parentheses.
      const [state = '', ppid = '0'] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      out.push({ pid: Number(entry), ppid: Number(ppid), state, cmdline });
    } catch {
      // Exited while being read.
    }
  }
  return out;
}

/** The process tree under `root`, excluding zombies (exited, waiting to be reaped). */
function descendants(root: number): Proc[] {
  const all = processes();
  const found: Proc[] = [];
  const parents = [root];
  while (parents.length > 0) {
    const parent = parents.pop();
    for (const p of all.filter((q) => q.ppid === parent)) {
      found.push(p);
      parents.push(p.pid);
    }
  }
  return found.filter((p) => p.state !== 'Z');
}

function alive(pid: number): boolean {
  return processes().some((p) => p.pid === pid && p.state !== 'Z');
}

/** The temp dirs of the demo with that pid: the cluster's and the example repository's. */
function demoDirs(pid: number): string[] {
  return readdirSync(tmpdir())
    .filter((n) => n.startsWith(`fluxstrap-cluster-pid${pid}-`) || n.startsWith(`fluxstrap-demo-pid${pid}-`))
    .map((n) => join(tmpdir(), n));
}

interface Demo {
  child: ChildProcess;
  pid: number;
  output: () => string;
  exit: Promise<number | null>;
}

function startDemo(): Demo {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [demoScript], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, pid: child.pid ?? assert.fail('the demo did not start'), output: () => output, exit };
}

async function reach(demo: Demo, marker: string): Promise<void> {
  await waitFor(
    `the demo to print "${marker}"`,
    () => {
      if (demo.child.exitCode !== null) throw new Error(`the demo exited (${demo.child.exitCode}):\n${demo.output()}`);
      return Promise.resolve(demo.output().includes(marker) ? true : undefined);
    },
    { timeoutMs: 4 * 60_000, intervalMs: 100 },
  );
}

/** The running `fluxstrap bootstrap` the demo started. */
async function bootstrapCommand(demo: Demo): Promise<Proc> {
  return waitFor(
    "the demo's fluxstrap bootstrap process",
    () => Promise.resolve(descendants(demo.pid).find((p) => p.cmdline.includes('dist/cli.js bootstrap'))),
    { timeoutMs: 30_000, intervalMs: 50 },
  );
}

/** Nothing the demo started is alive, nor any process naming one of its dirs (started later). */
function assertNothingLeft(demo: Demo, before: Proc[], dirs: string[]): void {
  const left = before.filter((p) => alive(p.pid));
  const naming = processes().filter((p) => p.state !== 'Z' && dirs.some((d) => p.cmdline.includes(d)));
  assert.deepEqual(
    [...left, ...naming].map((p) => `${p.pid} ${p.cmdline}`),
    [],
    `processes left by the demo:\n${demo.output()}`,
  );
}

const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

void describe('npm run demo stops everything it started', { timeout: 15 * 60_000 }, () => {
  void test('interrupted (SIGINT) during fluxstrap bootstrap', async () => {
    assertBuilt();
    const demo = startDemo();
    try {
      await reach(demo, '== fluxstrap bootstrap — cold cluster');
      await bootstrapCommand(demo);
      const before = descendants(demo.pid);
      const dirs = demoDirs(demo.pid);
      assert.equal(dirs.length, 2, `the cluster and example dirs: ${dirs.join(', ')}`);
      assert.ok(
        before.some((p) => p.cmdline.includes('kube-apiserver')),
        'the cluster runs',
      );
      demo.child.kill('SIGINT');
      assert.equal(await demo.exit, SIGNAL_EXIT.SIGINT, demo.output());
      assert.match(demo.output(), /demo interrupted \(SIGINT\): every process it started is stopped/);
      assertNothingLeft(demo, before, dirs);
      assert.deepEqual(demoDirs(demo.pid), [], 'temp dirs left');
    } finally {
      demo.child.kill('SIGKILL');
    }
  });

  void test('terminated (SIGTERM) while the cluster starts', async () => {
    assertBuilt();
    const demo = startDemo();
    try {
      await reach(demo, '== starting the local cluster');
      const before = descendants(demo.pid);
      demo.child.kill('SIGTERM');
      assert.equal(await demo.exit, SIGNAL_EXIT.SIGTERM, demo.output());
      assertNothingLeft(demo, before, [`fluxstrap-cluster-pid${demo.pid}-`, `fluxstrap-demo-pid${demo.pid}-`]);
      assert.deepEqual(demoDirs(demo.pid), [], 'temp dirs left');
    } finally {
      demo.child.kill('SIGKILL');
    }
  });

  void test('failing (its bootstrap command dies): exit 1, processes stopped, only the cluster logs kept', async () => {
    assertBuilt();
    const demo = startDemo();
    try {
      await reach(demo, '== fluxstrap bootstrap — cold cluster');
      const command = await bootstrapCommand(demo);
      const before = descendants(demo.pid);
      const dirs = demoDirs(demo.pid);
      process.kill(command.pid, 'SIGKILL');
      assert.equal(await demo.exit, 1, demo.output());
      assert.match(demo.output(), /demo failed: bootstrap failed/);
      assertNothingLeft(demo, before, dirs);
      const kept = demoDirs(demo.pid);
      try {
        assert.equal(kept.length, 1, `only the cluster dir stays: ${kept.join(', ')}`);
        assert.deepEqual(readdirSync(kept[0] ?? '').sort(), [KEPT_MARKER, 'logs'].sort());
      } finally {
        for (const d of kept) rmSync(d, { recursive: true, force: true });
      }
    } finally {
      demo.child.kill('SIGKILL');
    }
  });
});
