import assert from 'node:assert/strict';
import { existsSync, linkSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { generateSshKey } from '../../../src/keys/ssh.ts';
import { deployKeyPromotedKind } from '../../../src/tasks/deploy-key-promoted.ts';
import { tempDir } from '../../helpers/tmp.ts';

const A = generateSshKey('ed25519', 'a');
const B = generateSshKey('ed25519', 'b');
const C = generateSshKey('ed25519', 'c');

/** observe → plan → apply each change → observe → plan, as the engine runs a task. */
async function converge(keyFile: string): Promise<number> {
  const p = { keyFile };
  const changes = deployKeyPromotedKind.plan(p, await deployKeyPromotedKind.observe(p, undefined, { check: false }), undefined);
  for (const c of changes) await deployKeyPromotedKind.apply(c, p, undefined);
  assert.deepEqual(deployKeyPromotedKind.plan(p, await deployKeyPromotedKind.observe(p, undefined, { check: false }), undefined), []);
  return changes.length;
}

const setup = async (files: Record<string, string>) => {
  const dir = await tempDir('promote');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o600 });
  return { dir, keyFile: join(dir, 'deploy') };
};

void describe('the new deploy key moved into place, the old kept', () => {
  void it('K=A, staged B: K=B, .old=A, both .pub files, nothing staged left', async () => {
    const { dir, keyFile } = await setup({
      deploy: A.privateKey,
      'deploy.pub': `${A.publicKey}\n`,
      'deploy.next': B.privateKey,
      'deploy.next.pub': `${B.publicKey}\n`,
    });
    assert.equal(await converge(keyFile), 1);
    assert.equal(readFileSync(keyFile, 'utf8'), B.privateKey);
    assert.equal(readFileSync(`${keyFile}.old`, 'utf8'), A.privateKey);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(readFileSync(`${keyFile}.pub`, 'utf8'), `${B.publicKey}\n`, 'the comment kept');
    assert.equal(readFileSync(`${keyFile}.old.pub`, 'utf8'), `${A.publicKey}\n`);
    assert.equal(existsSync(`${keyFile}.next`) || existsSync(`${keyFile}.next.pub`), false);
    assert.ok(existsSync(join(dir, 'deploy.old')));
  });

  void it('stopped after the old key was linked: the next run finishes with the same files', async () => {
    const { keyFile } = await setup({ deploy: A.privateKey, 'deploy.next': B.privateKey });
    linkSync(keyFile, `${keyFile}.old`);
    assert.equal(await converge(keyFile), 1);
    assert.equal(readFileSync(keyFile, 'utf8'), B.privateKey);
    assert.equal(readFileSync(`${keyFile}.old`, 'utf8'), A.privateKey);
    assert.equal(readFileSync(`${keyFile}.pub`, 'utf8').trim().split(' ')[1], B.publicKey.split(' ')[1], 'derived when the staged .pub is gone');
  });

  void it('nothing staged: the rotation is over, nothing to do', async () => {
    const { keyFile } = await setup({ deploy: B.privateKey, 'deploy.old': A.privateKey });
    assert.equal(await converge(keyFile), 0);
  });

  void it("an earlier rotation's .old is never overwritten", async () => {
    const { keyFile } = await setup({ deploy: A.privateKey, 'deploy.next': B.privateKey, 'deploy.old': C.privateKey });
    await assert.rejects(converge(keyFile), (e: unknown) => e instanceof FluxstrapError && /deploy\.old holds another key/.test(e.message));
    assert.equal(readFileSync(`${keyFile}.old`, 'utf8'), C.privateKey);
    assert.equal(readFileSync(keyFile, 'utf8'), A.privateKey);
  });

  void it('--check before the key is staged shows the step', async () => {
    const { keyFile } = await setup({ deploy: A.privateKey });
    const p = { keyFile };
    assert.equal(deployKeyPromotedKind.plan(p, await deployKeyPromotedKind.observe(p, undefined, { check: true }), undefined).length, 1);
  });
});
