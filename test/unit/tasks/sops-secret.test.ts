import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { generateIdentity } from 'age-encryption';
import { isFluxstrapError } from '../../../src/core/errors.ts';
import { compilePlaybook } from '../../../src/playbook/loader.ts';
import { builtinKinds } from '../../../src/tasks/registry.ts';
import { secretFromManifest, sopsSecretKind } from '../../../src/tasks/sops-secret.ts';
import { ageKeyPair, encryptedForAge } from '../../helpers/age.ts';
import { offlineTaskContext } from '../../helpers/task-context.ts';
import { tempDir } from '../../helpers/tmp.ts';

/** sops-secret: a Secret manifest kept SOPS-encrypted in the repository, opened in memory and planned like every Secret; values never shown. */

const TOKEN = 'registry-token-never-shown';
const MANIFEST = `apiVersion: v1
kind: Secret
metadata:
  name: registry
  namespace: flux-system
type: kubernetes.io/basic-auth
data:
  username: ${Buffer.from('robot').toString('base64')}
stringData:
  password: ${TOKEN}
`;

let repo: string;
let age: { identity: string; recipient: string };

async function plan(file: string, env: NodeJS.ProcessEnv) {
  const ctx = offlineTaskContext('prod', repo, env);
  const p = sopsSecretKind.params.parse({ file });
  return sopsSecretKind.plan(p, await sopsSecretKind.observe(p, ctx, { check: true }), ctx);
}

async function encrypted(rel: string, plain: string): Promise<void> {
  const file = join(repo, rel);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, await encryptedForAge(plain, 'yaml', file, age.recipient, '^(data|stringData)$'));
}

void describe('sops-secret', () => {
  before(async () => {
    repo = await tempDir('sops-secret');
    age = await ageKeyPair();
  });

  void it('reads a Secret manifest: stringData over base64 data, its type, its name and namespace', () => {
    assert.deepEqual(secretFromManifest(MANIFEST, 'f.yaml'), {
      namespace: 'flux-system',
      name: 'registry',
      type: 'kubernetes.io/basic-auth',
      data: { username: 'robot', password: TOKEN },
    });
    const both = `apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: b}\ndata: {password: ${Buffer.from('old').toString('base64')}}\nstringData: {password: new}\n`;
    assert.deepEqual(secretFromManifest(both, 'f').data, { password: 'new' }, 'stringData wins, as the API server merges it');
  });

  void it('refuses what is not one usable Secret, naming the file and keys, never a value', () => {
    const cases: [string, RegExp][] = [
      [MANIFEST.replace('kind: Secret', 'kind: ConfigMap'), /not an apiVersion: v1, kind: Secret manifest/],
      [`${MANIFEST}---\n${MANIFEST}`, /2 documents, one Secret expected/],
      [MANIFEST.replace('  namespace: flux-system\n', ''), /metadata.name and metadata.namespace are needed/],
      [MANIFEST.replace(`  password: ${TOKEN}`, '  password: [a]'), /stringData.password is not a string/],
      ['apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: b}\n', /no data or stringData/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => secretFromManifest(text, 'bootstrap/prod/registry.sops.yaml'),
        (e) =>
          isFluxstrapError(e) &&
          e.code === 'E_CONFIG' &&
          message.test(e.message) &&
          e.location?.file === 'bootstrap/prod/registry.sops.yaml' &&
          !e.message.includes(TOKEN),
      );
    }
  });

  void it('opens the file in memory with the cluster key and plans the Secret with masked values', async () => {
    await encrypted('bootstrap/prod/registry.sops.yaml', MANIFEST);
    const changes = await plan('bootstrap/prod/registry.sops.yaml', { PROD_AGE_KEY: age.identity });
    assert.equal(changes.length, 1);
    assert.equal(changes[0]?.action, 'create');
    assert.equal(changes[0]?.target, 'Secret flux-system/registry');
    assert.equal(changes[0]?.summary, 'keys password, username');
    assert.doesNotMatch(`${changes[0]?.after ?? ''}${changes[0]?.summary ?? ''}`, new RegExp(TOKEN));
    assert.deepEqual(changes[0]?.data, {
      namespace: 'flux-system',
      name: 'registry',
      type: 'kubernetes.io/basic-auth',
      data: { username: 'robot', password: TOKEN },
    });
  });

  void it('another key does not open it: E_DECRYPT naming the file; a missing file is E_NOT_FOUND', async () => {
    await assert.rejects(
      plan('bootstrap/prod/registry.sops.yaml', { PROD_AGE_KEY: await generateIdentity() }),
      (e) => isFluxstrapError(e) && e.code === 'E_DECRYPT' && e.location?.file === 'bootstrap/prod/registry.sops.yaml',
    );
    await assert.rejects(plan('bootstrap/prod/none.sops.yaml', { PROD_AGE_KEY: age.identity }), (e) => isFluxstrapError(e) && e.code === 'E_NOT_FOUND');
  });

  void it('a playbook names the file inside the repository only, refused at its line', async () => {
    const playbook = (file: string) => `name: x\ntasks:\n  - sops-secret:\n      file: ${file}\n`;
    const opts = { registry: builtinKinds, builtins: { cluster: { name: 'prod', path: 'clusters/prod' }, check_mode: false } };
    const ok = await compilePlaybook(playbook('bootstrap/prod/registry.sops.yaml'), 'p.yaml', opts);
    assert.equal(ok.tasks.length, 1);
    for (const file of ['/etc/registry.sops.yaml', '../other/registry.sops.yaml'])
      await assert.rejects(
        compilePlaybook(playbook(file), 'p.yaml', opts),
        (e: unknown) => isFluxstrapError(e) && e.location?.line === 4 && /must be a path inside the repository/.test(e.message),
      );
  });
});
