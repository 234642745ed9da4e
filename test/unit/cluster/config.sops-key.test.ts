import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig, resolveCluster } from '../../../src/cluster/config.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';

/** fluxstrap.yaml `sopsKey`: the key service a cluster decrypts through, checked at file:line. */

const ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const where = { repoDir: '/repo', cwd: '/work', configFile: '/repo/fluxstrap.yaml' };
const entry = (sopsKey: string): string => `clusters:\n  c:\n    sopsKey:\n${sopsKey}`;

function refused(text: string): FluxstrapError {
  try {
    parseConfig(text, 'fluxstrap.yaml');
  } catch (e) {
    assert.ok(e instanceof FluxstrapError, String(e));
    return e;
  }
  assert.fail('accepted');
}

void describe('fluxstrap.yaml sopsKey', () => {
  void it('resolves each backend with its identity; a Service Principal file is relative to the repository, the Secret named by default', () => {
    const aws = resolveCluster(
      parseConfig(entry(`      awsKms:\n        arn: ${ARN}\n        roleArn: arn:aws:iam::111122223333:role/flux\n        region: eu-west-1\n`), 'f'),
      {},
      {},
      where,
    );
    assert.deepEqual(aws.cloudKey, { type: 'aws-kms', arn: ARN, roleArn: 'arn:aws:iam::111122223333:role/flux', region: 'eu-west-1' });
    const gcp = resolveCluster(parseConfig(entry('      gcpKms: {resourceId: projects/p/locations/global/keyRings/r/cryptoKeys/k}\n'), 'f'), {}, {}, where);
    assert.deepEqual(gcp.cloudKey, { type: 'gcp-kms', resourceId: 'projects/p/locations/global/keyRings/r/cryptoKeys/k' });
    const azure = resolveCluster(
      parseConfig(entry('      azureKv: {vaultUrl: https://v.vault.azure.net, key: sops, version: "0123", servicePrincipal: {file: secrets/sp.env}}\n'), 'f'),
      {},
      {},
      where,
    );
    assert.deepEqual(azure.cloudKey, {
      type: 'azure-kv',
      vaultUrl: 'https://v.vault.azure.net',
      key: 'sops',
      version: '0123',
      servicePrincipal: { secretName: 'sops-azure-credentials', file: '/repo/secrets/sp.env' },
    });
    assert.equal(resolveCluster(parseConfig('clusters:\n  c: {}\n', 'f'), {}, {}, where).cloudKey, undefined);
  });

  void it("a key in another region than the cluster's is refused at the region's line", () => {
    const e = refused(entry(`      awsKms:\n        arn: ${ARN}\n        region: us-east-1\n`));
    assert.equal(e.message, `the KMS key ${ARN} is in region eu-west-1, not in the cluster's region us-east-1`);
    assert.deepEqual([e.location?.file, e.location?.line], ['fluxstrap.yaml', 6]);
    assert.match(e.hint ?? '', /a KMS key is regional/);
  });

  void it('a malformed ARN, role, resource id or vault URL is refused at its line; two Azure identities are one too many', () => {
    const cases: [string, number, RegExp][] = [
      ['      awsKms: {arn: "arn:aws:kms:eu-west-1:key/abcd"}\n', 4, /must be an AWS KMS key ARN/],
      [`      awsKms:\n        arn: ${ARN}\n        roleArn: arn:aws:iam::1:user/x\n`, 6, /must be an IAM role ARN/],
      ['      gcpKms: {resourceId: projects/p/keyRings/r}\n', 4, /must be projects\/P\/locations/],
      ['      azureKv: {vaultUrl: http://v.vault.azure.net, key: k, version: v}\n', 4, /https:\/\/ URL/],
      [
        '      azureKv: {vaultUrl: https://v, key: k, version: v, aadPodIdentity: {binding: b}, servicePrincipal: {}}\n',
        4,
        /at most one of workloadIdentity, aadPodIdentity, servicePrincipal/,
      ],
    ];
    for (const [text, line, message] of cases) {
      const e = refused(entry(text));
      assert.match(e.message, message, text);
      assert.equal(e.location?.line, line, text);
    }
  });
});
