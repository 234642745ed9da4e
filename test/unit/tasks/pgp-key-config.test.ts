import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { pgpKeyConfigKind } from '../../../src/tasks/pgp-key-config.ts';
import { planFile } from '../../helpers/file-tasks.ts';

const CONFIG = `# fleet
clusters:
  prod:
    path: clusters/prod # where Flux syncs
    sopsKey:
      pgp: {file: ~/keys/prod.asc}
  lab:
    sopsKey:
      pgp:
        file: ~/keys/prod.asc
`;

const pgpOf = (text: string | undefined, cluster: string) =>
  (parse(text ?? '') as { clusters: Record<string, { sopsKey: { pgp: unknown } }> }).clusters[cluster]?.sopsKey.pgp;

void describe('pgp-key-config plan', () => {
  void it("records the new key with the old one retiring in the cluster's entry only, comments kept", () => {
    const { changes, after } = planFile(
      pgpKeyConfigKind,
      { cluster: 'prod', pgp: { file: '~/keys/prod-2.asc', retiring: { file: '~/keys/prod.asc' } } },
      CONFIG,
    );
    assert.equal(changes[0]?.summary, 'set clusters.prod.sopsKey.pgp to ~/keys/prod-2.asc, retiring ~/keys/prod.asc');
    assert.deepEqual(pgpOf(after, 'prod'), { file: '~/keys/prod-2.asc', retiring: { file: '~/keys/prod.asc' } });
    assert.deepEqual(pgpOf(after, 'lab'), { file: '~/keys/prod.asc' });
    assert.match(after ?? '', /^# fleet$/m);
    assert.match(after ?? '', /# where Flux syncs/);
  });

  void it('drops retiring at the end, and a value already in place is nothing to do', () => {
    const during = planFile(
      pgpKeyConfigKind,
      { cluster: 'prod', pgp: { file: '~/keys/prod-2.asc', retiring: { fingerprint: 'AB'.repeat(20) } } },
      CONFIG,
    ).after;
    const { changes, after } = planFile(pgpKeyConfigKind, { cluster: 'prod', pgp: { file: '~/keys/prod-2.asc' } }, during);
    assert.equal(changes[0]?.summary, 'set clusters.prod.sopsKey.pgp to ~/keys/prod-2.asc (no key retiring)');
    assert.deepEqual(pgpOf(after, 'prod'), { file: '~/keys/prod-2.asc' });
    assert.deepEqual(planFile(pgpKeyConfigKind, { cluster: 'lab', pgp: { file: '~/keys/prod.asc' } }, CONFIG).changes, []);
  });

  void it('refuses an entry shared through a YAML anchor, and a missing file, naming the field', () => {
    const shared = `clusters:\n  prod:\n    sopsKey: &k\n      pgp: {file: a.asc}\n  lab:\n    sopsKey: *k\n`;
    assert.throws(
      () => planFile(pgpKeyConfigKind, { cluster: 'prod', pgp: { file: 'b.asc', retiring: { file: 'a.asc' } } }, shared),
      (e: unknown) => e instanceof FluxstrapError && e.code === 'E_CONFIG' && e.location?.field === 'clusters.prod.sopsKey.pgp' && e.location.line === 4,
    );
    assert.throws(
      () => planFile(pgpKeyConfigKind, { cluster: 'prod', pgp: { file: 'b.asc' } }, undefined),
      (e: unknown) => e instanceof FluxstrapError && e.location?.file === 'fluxstrap.yaml',
    );
  });
});
