import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../helpers/cli.ts';

/** The folders whose code runs in tests, benchmarks and the demo: they must work from a bare clone. */
const CODE_DIRS = ['src', 'test', 'bench', 'scripts'];

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'vectors' || e.name === 'fixtures') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (/\.(ts|js|mjs|sh)$/.test(e.name)) yield p;
  }
}

const inside = (p: string) => {
  const rel = relative(repoRoot, p);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep));
};

/** The paths a module reaches relative to itself: `new URL('<path>', import.meta.url)`. */
const relativeLiterals = (text: string) => [...text.matchAll(/new URL\(\s*['"`]([^'"`]+)['"`]\s*,\s*import\.meta\.url\s*\)/g)].map((m) => m[1] ?? '');

void describe('the repository is self-contained', () => {
  const self = fileURLToPath(import.meta.url);
  const all = CODE_DIRS.flatMap((d) => [...files(join(repoRoot, d))]);

  void it('scans the code folders', () => {
    assert.ok(all.length > 50, `found only ${all.length} files`);
  });

  void it('names no folder beside the clone (../shared or any path above the repository)', () => {
    const offenders: string[] = [];
    for (const f of all) {
      const text = readFileSync(f, 'utf8').replace(/^\s*(\/\/|\*|\/\*).*$/gm, ''); // comments may quote such paths
      if (f !== self && (/\.\.\/shared\b/.test(text) || /\(\s*repoRoot\s*,\s*['"]\.\.['"]/.test(text)))
        offenders.push(`${relative(repoRoot, f)}: names ../shared`);
      for (const lit of relativeLiterals(text)) {
        if (!inside(resolve(dirname(f), lit))) offenders.push(`${relative(repoRoot, f)}: ${lit} leaves the repository`);
      }
    }
    assert.deepEqual(offenders, []);
  });

  void it('the checker itself catches a path that climbs out', () => {
    const probe = join(repoRoot, 'test', 'unit', 'x.ts');
    assert.equal(inside(resolve(dirname(probe), '../../../shared/')), false);
    assert.equal(inside(resolve(dirname(probe), '../fixtures/flux/')), true);
    assert.equal(inside(resolve(dirname(probe), '../../')), true);
    assert.deepEqual(relativeLiterals(`new URL('../../../shared/', import.meta.url)`), ['../../../shared/']);
  });
});
