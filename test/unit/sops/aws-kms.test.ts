import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { arnProblem, arnRegion, kmsKeyOf, parseArnSpec, parseContextFlag } from '../../../src/sops/aws-kms.ts';
import { parseConfig } from '../../../src/sops/config.ts';
import { stanzaName } from '../../../src/sops/metadata.ts';

/** The pure side of sops' kms keys: ARNs, roles, contexts and the names that tell two keys apart. */

const ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const ROLE = 'arn:aws:iam::111122223333:role/sops';

void describe('ARNs as sops reads them', () => {
  void it('the region is what the ARN names, partitions included; what sops refuses has none', () => {
    assert.equal(arnRegion(ARN), 'eu-west-1');
    assert.equal(arnRegion('arn:aws-us-gov:kms:us-gov-west-1:123:alias/x'), 'us-gov-west-1');
    for (const bad of [
      '',
      'alias/x',
      'arn:aws:kms:eu-west-1:key/x',
      'arn:aws:s3:eu-west-1:1:key/x',
      'arn:aws:kms:eu-west-1:12a:key/x',
      `arn:aws:kms:r:1:key/${'x'.repeat(3000)}`,
    ]) {
      assert.equal(arnRegion(bad), undefined, bad);
    }
  });

  void it('arn+role splits at +arn:, spaces are dropped', () => {
    assert.deepEqual(parseArnSpec(` ${ARN} + ${ROLE}`), { arn: ARN, role: ROLE });
    assert.deepEqual(parseArnSpec(ARN), { arn: ARN, role: '' });
    assert.equal(arnProblem({ arn: ARN, role: 'arn:aws:iam::1:user/bob' }), 'not an IAM role ARN: arn:aws:iam::1:user/bob');
    assert.equal(arnProblem({ arn: ARN, role: ROLE }), undefined);
  });

  void it('--encryption-context pairs; a pair without exactly one colon voids it, as in sops', () => {
    assert.deepEqual(parseContextFlag('a:1,b:2'), { a: '1', b: '2' });
    assert.equal(parseContextFlag('a:1:2'), undefined);
    assert.equal(parseContextFlag('a'), undefined);
  });
});

void describe('kms rules of .sops.yaml', () => {
  const config = parseConfig(
    [
      'creation_rules:',
      '  - path_regex: flat',
      `    kms: "${ARN}+${ROLE}, ${ARN.replace('eu-west-1', 'us-east-1')}"`,
      '    aws_profile: prod',
      '  - key_groups:',
      '      - kms:',
      `          - arn: ${ARN}`,
      `            role: ${ROLE}`,
      '            context: {b: "2", a: "1"}',
      '          - arn: arn:aws:kms:eu-west-1:111122223333:alias/plain',
      '',
    ].join('\n'),
    '/repo/.sops.yaml',
  );

  void it("flat: comma-separated arn+role with the rule's aws_profile, each naming its line", () => {
    const keys = config.creationRules[0]?.keyGroups[0] ?? [];
    assert.deepEqual(keys.map(kmsKeyOf), [
      { arn: ARN, role: ROLE, context: {}, profile: 'prod' },
      { arn: ARN.replace('eu-west-1', 'us-east-1'), role: '', context: {}, profile: 'prod' },
    ]);
    assert.deepEqual(keys[0]?.origin, { file: '/repo/.sops.yaml', line: 3 });
  });

  void it('key groups: maps of arn, role, context; names as sops prints keys (context sorted, profile last)', () => {
    const keys = config.creationRules[1]?.keyGroups[0] ?? [];
    assert.deepEqual(keys.map(stanzaName), [`${ARN}+${ROLE}|a:1,b:2`, 'arn:aws:kms:eu-west-1:111122223333:alias/plain']);
    const flat = config.creationRules[0]?.keyGroups[0]?.[1];
    assert.ok(flat);
    assert.equal(stanzaName(flat), `${ARN.replace('eu-west-1', 'us-east-1')}||prod`);
  });

  void it('a context that is not a map is refused with its line', () => {
    assert.throws(
      () => parseConfig(`creation_rules:\n  - key_groups:\n      - kms:\n          - arn: ${ARN}\n            context: [a]\n`, '/r/.sops.yaml'),
      (e: Error & { location?: { line?: number } }) => /context must be a map/.test(e.message) && e.location?.line === 5,
    );
  });
});
