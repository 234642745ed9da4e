import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { generateIdentity } from 'age-encryption';
import type { CloudSopsKey } from '../../../src/cluster/config.ts';
import { isFluxstrapError } from '../../../src/core/errors.ts';
import { azureCredentialsSecretKind, servicePrincipalValues } from '../../../src/tasks/azure-credentials-secret.ts';
import { ageKeyPair, encryptedForAge } from '../../helpers/age.ts';
import { offlineTaskContext } from '../../helpers/task-context.ts';
import { tempDir } from '../../helpers/tmp.ts';

/** The Service Principal Secret: from a SOPS file opened in memory or from the environment, values never shown. */

const SECRET = 'sp-secret-value-never-shown';
const VALUES = { AZURE_TENANT_ID: 'tenant-1', AZURE_CLIENT_ID: 'client-1', AZURE_CLIENT_SECRET: SECRET };
const KEY: CloudSopsKey = {
  type: 'azure-kv',
  vaultUrl: 'https://v.vault.azure.net',
  key: 'sops',
  version: '0123',
  servicePrincipal: { secretName: 'sops-azure-credentials' },
};

let repo: string;
let age: { identity: string; recipient: string };

function context(sopsKey: CloudSopsKey | undefined, env: NodeJS.ProcessEnv) {
  return offlineTaskContext('aks', repo, env, sopsKey ? { cloudKey: sopsKey } : {});
}

const plan = async (sopsKey: CloudSopsKey | undefined, env: NodeJS.ProcessEnv) => {
  const ctx = context(sopsKey, env);
  const p = azureCredentialsSecretKind.params.parse({});
  const facts = await azureCredentialsSecretKind.observe(p, ctx, { check: true });
  return { changes: azureCredentialsSecretKind.plan(p, facts, ctx), notes: azureCredentialsSecretKind.notes?.(p, facts) ?? [] };
};

void describe('azure-credentials-secret', () => {
  before(async () => {
    repo = await tempDir('azure-sp');
    age = await ageKeyPair();
  });

  void it("takes a flat map or a Secret manifest's stringData; missing values are named, never the present ones", () => {
    assert.deepEqual(servicePrincipalValues(VALUES, 'f', 'x'), VALUES);
    assert.deepEqual(servicePrincipalValues({ kind: 'Secret', stringData: VALUES }, 'f', 'x'), VALUES);
    assert.throws(
      () => servicePrincipalValues({ AZURE_CLIENT_SECRET: SECRET, AZURE_TENANT_ID: '' }, 'the environment', 'clusters.aks.sopsKey.azureKv.servicePrincipal'),
      (e) => {
        assert.ok(isFluxstrapError(e));
        assert.equal(e.message, 'no Service Principal credentials: AZURE_TENANT_ID, AZURE_CLIENT_ID are missing from the environment');
        assert.equal(e.location?.field, 'clusters.aks.sopsKey.azureKv.servicePrincipal');
        assert.doesNotMatch(`${e.message}${e.hint ?? ''}`, new RegExp(SECRET));
        return true;
      },
    );
  });

  void it('from the environment: a Secret with the three keys, values masked in the plan', async () => {
    const { changes } = await plan(KEY, VALUES);
    assert.equal(changes.length, 1);
    assert.equal(changes[0]?.action, 'create');
    assert.equal(changes[0]?.target, 'Secret flux-system/sops-azure-credentials');
    assert.equal(changes[0]?.summary, 'keys AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID');
    assert.doesNotMatch(`${changes[0]?.after ?? ''}${changes[0]?.summary ?? ''}`, new RegExp(SECRET));
    assert.deepEqual((changes[0]?.data as { data: unknown }).data, VALUES);
  });

  void it('from a SOPS dotenv file of the repository, opened in memory with the age key', async () => {
    await mkdir(join(repo, 'clusters/aks'), { recursive: true });
    const file = join(repo, 'clusters/aks/azure-sp.env');
    const plain = Object.entries(VALUES)
      .map(([k, v]) => `${k}=${v}\n`)
      .join('');
    await writeFile(file, await encryptedForAge(plain, 'dotenv', file, age.recipient));
    const withFile: CloudSopsKey = { ...KEY, servicePrincipal: { secretName: 'sp', file } };
    const { changes } = await plan(withFile, { AKS_AGE_KEY: age.identity });
    assert.equal(changes[0]?.target, 'Secret flux-system/sp');
    assert.deepEqual((changes[0]?.data as { data: unknown }).data, VALUES);
    // Without the key the file does not open, and the error names the file, not a value.
    await assert.rejects(
      plan(withFile, { AKS_AGE_KEY: await generateIdentity() }),
      (e) =>
        isFluxstrapError(e) && e.code === 'E_DECRYPT' && e.location?.file === 'clusters/aks/azure-sp.env' && !`${e.message}${e.hint ?? ''}`.includes(SECRET),
    );
  });

  void it('nothing to do without a Service Principal in sopsKey', async () => {
    for (const key of [undefined, { type: 'aws-kms', arn: 'arn:aws:kms:eu-west-1:1:key/k' } as const]) {
      const { changes, notes } = await plan(key, VALUES);
      assert.deepEqual(changes, []);
      assert.match(notes[0] ?? '', /nothing to create/);
    }
  });
});
