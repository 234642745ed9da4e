import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { decryptGitSecret } from '../../../src/flux/git-secret.ts';
import { parseAgeKeyFile, recipientOf } from '../../../src/keys/age.ts';
import { gitCredentialsFileKind } from '../../../src/tasks/git-credentials-file.ts';
import { tempDir } from '../../helpers/tmp.ts';

/** init's task: creates the encrypted file once, refuses a missing token before any write, keeps an existing file. */

const run = { check: false };

void describe('git-credentials-file', () => {
  void it('plans a create, writes only ciphertext, and then plans nothing', async () => {
    const repo = await tempDir('gcf');
    const secret = await generateIdentity();
    const params = gitCredentialsFileKind.params.parse({
      file: 'bootstrap/lab/git.sops.yaml',
      age: [await identityToRecipient(secret)],
      source: { https: { username: 'me', passwordEnv: 'TOK' } },
    });
    const ctx = { paths: { repo }, env: { TOK: 'tok-value-1234' } };
    const facts = await gitCredentialsFileKind.observe(params, ctx, run);
    const [change, ...rest] = gitCredentialsFileKind.plan(params, facts, ctx);
    assert.equal(rest.length, 0);
    assert.equal(change?.action, 'create');
    assert.ok(!JSON.stringify(change).includes('tok-value-1234'), 'the plan holds no secret');
    if (change) await gitCredentialsFileKind.apply(change, params, ctx);
    const text = await readFile(join(repo, 'bootstrap/lab/git.sops.yaml'), 'utf8');
    assert.ok(!text.includes('tok-value-1234'));
    const ids = await parseAgeKeyFile(`${secret}\n`, 'k', recipientOf);
    assert.deepEqual(await decryptGitSecret(Buffer.from(text), 'f', ids), { type: 'https', username: 'me', password: 'tok-value-1234' });
    assert.deepEqual(gitCredentialsFileKind.plan(params, await gitCredentialsFileKind.observe(params, ctx, run), ctx), []);
  });

  void it('refuses a missing token at observe, and keeps an existing file without reading the token', async () => {
    const repo = await tempDir('gcf');
    const params = gitCredentialsFileKind.params.parse({
      file: 'g.sops.yaml',
      age: [await identityToRecipient(await generateIdentity())],
      source: { https: { username: 'me', passwordEnv: 'TOK' } },
    });
    await assert.rejects(
      gitCredentialsFileKind.observe(params, { paths: { repo }, env: {} }, run),
      (e: unknown) => e instanceof FluxstrapError && /TOK/.test(e.message),
    );
    await writeFile(join(repo, 'g.sops.yaml'), 'kept\n');
    const facts = await gitCredentialsFileKind.observe(params, { paths: { repo }, env: {} }, run);
    assert.deepEqual(gitCredentialsFileKind.plan(params, facts, { paths: { repo }, env: {} }), []);
  });
});
