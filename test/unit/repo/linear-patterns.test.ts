import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { resolveCluster } from '../../../src/cluster/config.ts';
import { encParts } from '../../../src/sops/cipher.ts';
import { parseGoFloat } from '../../../src/sops/scalars.ts';
import { clusterRootKind } from '../../../src/tasks/cluster-root.ts';
import { planFile } from '../../helpers/file-tasks.ts';

/**
 * The fixed patterns that read repository content run in linear time: each input below made the
 * previous pattern backtrack for minutes (ENC values, floats) or take quadratic time (trailing
 * slashes). Results are asserted, not times.
 */

// sops' own pattern (Go, so linear there; Go's `.` stops at \n only), used on short inputs only, as the reference.
const SOPS_ENC = /^ENC\[AES256_GCM,data:([^\n]+),iv:([^\n]+),tag:([^\n]+),type:([^\n]+)\]/;

void describe('ENC[…] values', () => {
  void it('a crafted value of 45 kB is refused at once', () => {
    assert.equal(encParts(`ENC[AES256_GCM,data:${',iv:,tag:,type:'.repeat(3000)}`), undefined);
    assert.equal(encParts(`ENC[AES256_GCM,data:a,iv:b,tag:c,type:${']'.repeat(50_000)}x`), undefined);
  });

  void it('reads the parts sops reads, trailing text after the last ] included', () => {
    assert.deepEqual(encParts('ENC[AES256_GCM,data:ZA==,iv:aXY=,tag:dGFn,type:str]'), { data: 'ZA==', iv: 'aXY=', tag: 'dGFn', type: 'str' });
    assert.deepEqual(encParts('ENC[AES256_GCM,data:ZA==,iv:aXY=,tag:dGFn,type:int] trailing'), { data: 'ZA==', iv: 'aXY=', tag: 'dGFn', type: 'int' });
    // sops' greedy type would be `str]x`, a type it refuses.
    assert.equal(encParts('ENC[AES256_GCM,data:ZA==,iv:aXY=,tag:dGFn,type:str]x]'), undefined);
  });

  void it("agrees with sops' pattern on every value sops can open (parts without commas, a known type)", () => {
    const token = fc.constantFrom('ENC[AES256_GCM,data:', ',iv:', ',tag:', ',type:', ']', 'QQ==', 'str', ',', '\n', '\r', 'x');
    const value = fc.array(token, { maxLength: 14 }).map((t) => t.join(''));
    const openable = fc
      .tuple(
        fc.base64String({ minLength: 4, maxLength: 12 }),
        fc.base64String({ minLength: 4, maxLength: 8 }),
        fc.constantFrom('str', 'int', 'bytes'),
        fc.array(token, { maxLength: 4 }),
      )
      .map(([b1, b2, type, rest]) => `ENC[AES256_GCM,data:${b1},iv:${b2},tag:${b1},type:${type}]${rest.join('')}`);
    fc.assert(
      fc.property(fc.oneof(value, openable), (s) => {
        const m = SOPS_ENC.exec(s);
        const theirs =
          m && [m[1], m[2], m[3]].every((p) => p !== undefined && !p.includes(',')) && !/[,\]]/.test(m[4] ?? ',')
            ? { data: m[1], iv: m[2], tag: m[3], type: m[4] }
            : undefined;
        assert.deepEqual(encParts(s), theirs, JSON.stringify(s));
      }),
      { numRuns: 3000, seed: 9 },
    );
  });
});

void describe('floats and paths', () => {
  void it('a float of 200,000 digits and a letter is not a float, at once', () => {
    assert.equal(parseGoFloat(`${'1'.repeat(200_000)}x`), undefined);
    for (const [s, want] of [
      ['1.', 1],
      ['1.5', 1.5],
      ['.5', 0.5],
      ['-2.e3', -2000],
      ['7', 7],
    ] as const)
      assert.equal(parseGoFloat(s), want, s);
    for (const s of ['.', '1..2', 'e5', '1e', '--1']) assert.equal(parseGoFloat(s), undefined, s);
  });

  void it('a cluster path with a long run of slashes in fluxstrap.yaml is read at once', () => {
    const where = { repoDir: '/repo', cwd: '/repo' };
    const slashes = '/'.repeat(100_000);
    const path = (p: string) => resolveCluster({ clusters: { prod: { path: p } } }, { cluster: 'prod' }, {}, where).path;
    assert.equal(path(`clusters/prod${slashes}`), 'clusters/prod');
    assert.equal(path(`clusters${slashes}x`), `clusters${slashes}x`);
  });

  void it('a kustomization resource with a long run of slashes is read at once', () => {
    const seed = `resources:\n  - ./flux-system${'/'.repeat(100_000)}\n`;
    assert.deepEqual(planFile(clusterRootKind, { file: 'clusters/prod/kustomization.yaml' }, seed).changes, []);
    const other = `resources:\n  - apps${'/'.repeat(100_000)}x\n`;
    assert.equal(planFile(clusterRootKind, { file: 'clusters/prod/kustomization.yaml' }, other).changes.length, 1);
  });
});
