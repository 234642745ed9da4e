// Issue 9 §5: clusters started and stopped again and again, and two at once, must bring every
// Flux controller to Ready each time — no listener may get a port another one holds — and a
// controller whose port is taken anyway restarts on a new one.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { describe, test } from 'node:test';
import { DEFAULT_CONTROLLERS, startCluster, type Cluster, type StartOptions } from '../cluster/index.ts';
import { portsDir } from '../cluster/ports.ts';
import { waitFor } from '../cluster/proc.ts';

const ITERATIONS = 3;
const PAIRS = 2;

/** Starts with flux: 'now', which returns only once every controller's /readyz answers 200. */
async function readyCluster(opts: StartOptions = {}): Promise<Cluster> {
  const c = await startCluster({ flux: 'now', ...opts });
  try {
    for (const name of opts.controllers ?? DEFAULT_CONTROLLERS) {
      assert.equal(await c.controllers.healthy(name), true, `${name} is not Ready`);
      assert.equal(c.controllers.portRestarts(name), 0, `${name} had to restart on new ports:\n${c.logTails(20)}`);
    }
    return c;
  } catch (err) {
    c.keep('churn test failed');
    await c.stop();
    throw err;
  }
}

function listenerPorts(c: Cluster): number[] {
  return [Number(new URL(c.server).port), ...DEFAULT_CONTROLLERS.flatMap((n) => Object.values(c.controllers.ports(n)))];
}

function assertDisjoint(ports: number[]): void {
  const seen = new Set<number>();
  for (const p of ports) {
    assert.ok(!seen.has(p), `port ${p} given to two listeners: ${ports.join(', ')}`);
    seen.add(p);
  }
}

function ownLocks(): string[] {
  return readdirSync(portsDir()).filter((f) => (JSON.parse(readFileSync(`${portsDir()}/${f}`, 'utf8')) as { pid: number }).pid === process.pid);
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

void describe('clusters started and stopped repeatedly', { timeout: 15 * 60_000 }, () => {
  void test(`${ITERATIONS} clusters one after another: every controller Ready each time`, async () => {
    for (let i = 0; i < ITERATIONS; i++) {
      const c = await readyCluster();
      try {
        assertDisjoint(listenerPorts(c));
      } finally {
        await c.stop();
      }
      assert.deepEqual(ownLocks(), [], 'stop() left its port blocks reserved');
    }
  });

  void test(`two clusters at once, ${PAIRS} times: every controller of both Ready, no port shared`, async () => {
    for (let i = 0; i < PAIRS; i++) {
      const started = await Promise.allSettled([readyCluster(), readyCluster()]);
      const up = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      try {
        for (const r of started) if (r.status === 'rejected') throw r.reason;
        assertDisjoint(up.flatMap(listenerPorts));
      } finally {
        await Promise.all(up.map((c) => c.stop()));
      }
    }
    assert.deepEqual(ownLocks(), []);
  });

  // A foreign program takes a controller's port between two runs of it.
  for (const role of ['storage', 'health'] as const) {
    void test(`source-controller whose ${role} port is taken restarts on a new port and becomes Ready`, async () => {
      const c = await readyCluster({ controllers: ['source-controller'] });
      let squatter: Server | undefined;
      try {
        const before = c.controllers.ports('source-controller');
        await c.controllers.stop('source-controller');
        squatter = await listen(before[role] ?? 0);
        await c.controllers.start('source-controller');
        await waitFor(
          'source-controller restarted on new ports and Ready',
          async () => (c.controllers.portRestarts('source-controller') === 1 && (await c.controllers.healthy('source-controller')) ? true : undefined),
          { timeoutMs: 60_000 },
        );
        const after = c.controllers.ports('source-controller');
        assert.notEqual(after[role], before[role]);
        const log = readFileSync(`${c.logsDir}/source-controller.log`, 'utf8');
        assert.match(log, new RegExp(`127\\.0\\.0\\.1:${before[role]}: bind: address already in use`));
        assert.match(log, /fluxstrap harness: .*restarting on new ports/);
      } catch (err) {
        c.keep(`churn test failed: ${role}`);
        throw err;
      } finally {
        squatter?.close();
        await c.stop();
      }
    });
  }
});
