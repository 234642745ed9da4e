// Where a test lives says what it covers: a unit test sits at its module's path under test/unit
// (`src/a/b.ts` → `test/unit/a/b.test.ts`, or `b.<aspect>.test.ts` for one more side of it); only
// repository-wide properties live in test/unit/repo. The cluster harness (test/cluster) holds no
// tests; the tests that start a cluster live in test/integration.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../helpers/cli.ts';

function* testFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* testFiles(p);
    else if (e.name.endsWith('.test.ts')) yield p;
  }
}

/** `a/b.test.ts`, `a/b.aspect.test.ts`, `a/b.aspect.property.test.ts` → the module `src/a/b.ts`. */
function moduleOf(rel: string): string {
  const [dir, file] = [rel.slice(0, rel.lastIndexOf('/') + 1), rel.slice(rel.lastIndexOf('/') + 1)];
  return `src/${dir}${file.slice(0, file.indexOf('.'))}.ts`;
}

void describe('test layout', () => {
  const unit = join(repoRoot, 'test', 'unit');

  void it('maps a test path to the module it covers', () => {
    assert.equal(moduleOf('sops/engine.vectors.test.ts'), 'src/sops/engine.ts');
    assert.equal(moduleOf('tasks/age-key-file.test.ts'), 'src/tasks/age-key-file.ts');
    assert.equal(moduleOf('sops/stores.roundtrip.property.test.ts'), 'src/sops/stores.ts');
  });

  void it('every unit test outside test/unit/repo mirrors a module in src/', () => {
    const all = [...testFiles(unit)].map((f) => relative(unit, f).split('\\').join('/'));
    assert.ok(all.length > 40, `found only ${all.length} unit tests`);
    const strays = all.filter((rel) => !rel.startsWith('repo/') && !existsSync(join(repoRoot, moduleOf(rel))));
    assert.deepEqual(strays, [], 'move each to the path of the module it tests, or to test/unit/repo if it covers the repository');
  });

  void it('the cluster harness holds no tests', () => {
    assert.deepEqual([...testFiles(join(repoRoot, 'test', 'cluster'))], []);
    assert.ok([...testFiles(join(repoRoot, 'test', 'integration'))].length > 10);
  });
});
