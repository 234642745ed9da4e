import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.ts';

// Start-up is a feature: the commands people run most must not pay for the Kubernetes or GitHub
// clients (~0.3 s and ~130 MB for @kubernetes/client-node alone).
const HEAVY = ['@kubernetes/client-node', '@octokit/', 'listr2'];
const hook = fileURLToPath(new URL('../helpers/trace-imports.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-startup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function loadedBy(args: string[]): { code: number; modules: string[] } {
  const trace = join(dir, `${args.join('_').replace(/\W/g, '_')}.txt`);
  const r = runCli(args, { nodeArgs: ['--import', hook], env: { FLUXSTRAP_TRACE_IMPORTS: trace }, cwd: dir });
  let modules: string[] = [];
  try {
    modules = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
  } catch {
    // no module resolved at all would mean the hook did not run; asserted below
  }
  return { code: r.code, modules };
}

void describe('start-up imports', () => {
  for (const args of [['--help'], ['keys', '--help'], ['encrypt', '--help'], ['--version']]) {
    void it(`fluxstrap ${args.join(' ')} loads no heavy client`, () => {
      const { code, modules } = loadedBy(args);
      assert.equal(code, 0);
      assert.ok(
        modules.some((m) => m.endsWith('/dist/main.js')),
        'the trace hook recorded the imports',
      );
      for (const heavy of HEAVY) {
        assert.deepEqual(
          modules.filter((m) => m.includes(heavy)),
          [],
          `${heavy} must not load`,
        );
      }
    });
  }
});

void describe('the RE2 engine loads with the first pattern only', () => {
  const recipient = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
  const re2Loaded = (modules: string[]) => modules.some((m) => m.includes('/node_modules/re2js/'));

  void it('a single encrypt without a pattern does not load it; with --encrypted-regex it does', () => {
    writeFileSync(join(dir, 's.yaml'), 'password: p\n');
    const plain = loadedBy(['encrypt', '--age', recipient, 's.yaml']);
    assert.equal(plain.code, 0);
    assert.ok(
      plain.modules.some((m) => m.endsWith('/dist/main.js')),
      'the trace hook recorded the imports',
    );
    assert.equal(re2Loaded(plain.modules), false);
    const withPattern = loadedBy(['encrypt', '--age', recipient, '--encrypted-regex', '^pass', 's.yaml']);
    assert.equal(withPattern.code, 0);
    assert.equal(re2Loaded(withPattern.modules), true);
  });
});
