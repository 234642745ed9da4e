import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cliPath, repoRoot } from '../helpers/cli.ts';

// A global install runs under whatever `node` is on PATH; the machine's own is often older than
// the one the tests run with. The guard must be the first thing that Node parses and links.
const engines = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { engines?: { node?: string } }).engines?.node;
const minimum = Number(/^>=(\d+)$/.exec(engines ?? '')?.[1]);

const versionOf = (node: string): string | undefined => {
  const r = spawnSync(node, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().replace(/^v/, '') : undefined;
};

/** A real Node older than the minimum: FLUXSTRAP_OLD_NODE, else the system's. Fails saying how to get one. */
function oldNode(): { node: string; version: string } {
  const candidates = [process.env.FLUXSTRAP_OLD_NODE, '/usr/bin/node', '/usr/local/bin/node'].filter(
    (p): p is string => p !== undefined && p !== '' && existsSync(p),
  );
  for (const node of candidates) {
    const version = versionOf(node);
    if (version !== undefined && Number(version.split('.')[0]) < minimum) return { node, version };
  }
  assert.fail(
    `no Node older than ${minimum} in ${candidates.join(', ') || '/usr/bin or /usr/local/bin'}: ` +
      'apt-get install nodejs (Debian 12 ships Node 18), or set FLUXSTRAP_OLD_NODE to an old node binary',
  );
}

void describe('Node version guard', () => {
  void it('package.json declares the Node it needs (engines.node ">=MAJOR")', () => {
    assert.ok(minimum >= 22, `engines.node is ${String(engines)}`);
  });

  void it('an older Node gets one error line and a hint, exit 1, no stack trace', () => {
    const { node, version } = oldNode();
    for (const args of [['--help'], ['keys', 'new', '--out', '/nonexistent/never-written.txt']]) {
      const r = spawnSync(node, [cliPath, ...args], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines[0], `error: fluxstrap needs Node.js ${minimum} or newer (found ${version})`, r.stderr);
      assert.match(lines[1] ?? '', /^hint: install Node\.js \d+ or newer/);
      assert.equal(lines.length, 2, r.stderr);
    }
  });

  void it('the Node running the tests (new enough) starts the CLI', () => {
    const r = spawnSync(process.execPath, [cliPath, '--version'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
  });
});
