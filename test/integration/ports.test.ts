// Port blocks (ports.ts): no two allocators — in one process or in several at once — hand out
// the same port, none comes from the ephemeral range, a live owner's block is never taken, a
// dead owner's is reclaimed, and a port some program listens on is skipped.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, beforeEach, describe, test } from 'node:test';
import { tempDir } from '../helpers/tmp.ts';
import { BLOCK_SIZE, PortAllocator, blockStarts, ephemeralRange, portsDir, releaseBlocksOf } from '../cluster/ports.ts';

// Blocks of real clusters running beside these tests must not be touched.
process.env.FLUXSTRAP_TEST_CACHE = await tempDir('ports-cache');

const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
after(() => sleeper.kill('SIGKILL'));
const livePid = sleeper.pid ?? assert.fail('no sleep process');

function deadPid(): number {
  const r = spawnSync('true');
  return r.pid ?? assert.fail('no pid');
}

/** Lock files for every block but `except`, as other owners would leave them. */
function holdAllBlocksBut(except: readonly number[], pid: number): void {
  for (const start of blockStarts(ephemeralRange())) {
    if (!except.includes(start)) writeFileSync(join(portsDir(), `${start}.lock`), JSON.stringify({ pid, holder: 'test' }));
  }
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

beforeEach(() => {
  rmSync(portsDir(), { recursive: true, force: true });
  mkdirSync(portsDir(), { recursive: true });
});

void describe('port blocks', () => {
  void test('blocks lie outside the ephemeral range', () => {
    const starts = blockStarts([32_768, 60_999]);
    assert.ok(starts.length > 100);
    for (const s of starts) assert.ok(s + BLOCK_SIZE <= 32_768 || s > 60_999, `block ${s}`);
    assert.deepEqual(blockStarts([1024, 65_535]), []);
  });

  void test('two allocators of one process never share a port; release() frees their blocks', async () => {
    const a = new PortAllocator('a');
    const b = new PortAllocator('b');
    // More than a block each, interleaved as two clusters starting at once would take them.
    const taken = await Promise.all(Array.from({ length: 2 * (BLOCK_SIZE + 8) }, (_, i) => (i % 2 === 0 ? a : b).take()));
    assert.equal(new Set(taken).size, taken.length, 'a port was handed out twice');
    const [low, high] = ephemeralRange();
    assert.ok(
      taken.every((p) => p < low || p > high),
      'a port from the ephemeral range',
    );
    assert.equal(a.blocks.length, 2);
    assert.equal(readdirSync(portsDir()).length, 4);
    a.release();
    assert.equal(readdirSync(portsDir()).length, 2);
    b.release();
    assert.deepEqual(readdirSync(portsDir()), []);
  });

  void test('allocators in several processes at once get disjoint ports', async () => {
    const script = join(await tempDir('ports-proc'), 'take.ts');
    writeFileSync(
      script,
      `
import { PortAllocator } from ${JSON.stringify(join(import.meta.dirname, '..', 'cluster', 'ports.ts'))};
const a = new PortAllocator('proc');
const ports = [];
for (let i = 0; i < 40; i++) ports.push(await a.take());
process.stdout.write(JSON.stringify(ports));
// Hold the blocks until the test has seen every process's ports.
process.stdin.on('end', () => a.release()).resume();
`,
    );
    const children = Array.from({ length: 4 }, () => spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] }));
    const outputs = await Promise.all(
      children.map(
        (c) =>
          new Promise<number[]>((resolve) => {
            let out = '';
            c.stdout.setEncoding('utf8').on('data', (d: string) => {
              out += d;
              if (out.endsWith(']')) resolve(JSON.parse(out) as number[]);
            });
          }),
      ),
    );
    const all = outputs.flat();
    assert.equal(new Set(all).size, all.length, 'two processes were given the same port');
    await Promise.all(
      children.map(
        (c) =>
          new Promise((resolve) => {
            c.on('exit', resolve);
            c.stdin.end();
          }),
      ),
    );
    assert.deepEqual(readdirSync(portsDir()), [], 'a process left its lock files');
  });

  void test("a live owner's block is never taken; a dead owner's is reclaimed once it is 10 s old", async () => {
    const starts = blockStarts(ephemeralRange());
    const [deadOld = 0, deadFresh = 0] = starts;
    holdAllBlocksBut([deadOld, deadFresh], livePid);
    const lock = (s: number): string => join(portsDir(), `${s}.lock`);
    writeFileSync(lock(deadFresh), JSON.stringify({ pid: deadPid(), holder: 'crashed just now' }));
    writeFileSync(lock(deadOld), JSON.stringify({ pid: deadPid(), holder: 'crashed a while ago' }));
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock(deadOld), old, old);

    const a = new PortAllocator('me');
    const port = await a.take();
    assert.equal(port, deadOld);
    assert.equal((JSON.parse(readFileSync(lock(deadOld), 'utf8')) as { pid: number }).pid, process.pid);
    // The only other block not held by a live process was freed too recently to be trusted.
    const b = new PortAllocator('other');
    await assert.rejects(b.take(), /every port block .* is reserved/);
    assert.ok(existsSync(lock(deadFresh)));
    a.release();
  });

  void test('a port some program listens on is skipped', async () => {
    const [only = 0] = blockStarts(ephemeralRange()).slice(-1);
    holdAllBlocksBut([only], livePid);
    const squatter = await listen(only);
    try {
      const a = new PortAllocator('me');
      assert.equal(await a.take(), only + 1);
      a.release();
    } finally {
      squatter.close();
    }
  });

  void test('the watchdog frees every block of a dead owner and no other', () => {
    const dead = deadPid();
    const [x = 0, y = 0, z = 0] = blockStarts(ephemeralRange());
    writeFileSync(join(portsDir(), `${x}.lock`), JSON.stringify({ pid: dead, holder: 'one' }));
    writeFileSync(join(portsDir(), `${y}.lock`), JSON.stringify({ pid: dead, holder: 'two' }));
    writeFileSync(join(portsDir(), `${z}.lock`), JSON.stringify({ pid: livePid, holder: 'alive' }));
    releaseBlocksOf(dead);
    assert.deepEqual(readdirSync(portsDir()), [`${z}.lock`]);
  });
});
