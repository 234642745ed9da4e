import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { FluxstrapError } from '../../../src/core/errors.ts';
import { decryptGitSecret, encryptGitSecret } from '../../../src/flux/git-secret.ts';
import { recipientOf } from '../../../src/keys/age.ts';
import type { AgeIdentity } from '../../../src/keys/age.ts';
import { parseAgeKeyFile } from '../../../src/keys/age.ts';
import { generateSshKey } from '../../../src/keys/ssh.ts';
import { encryptDocument } from '../../../src/sops/engine.ts';
import { newStanza } from '../../../src/sops/datakey.ts';

/** The Git credential Secret encrypted for the cluster key and read back, and what is not one. */

async function key(): Promise<{ recipient: string; ids: AgeIdentity[] }> {
  const secret = await generateIdentity();
  return { recipient: await identityToRecipient(secret), ids: await parseAgeKeyFile(`${secret}\n`, 'k', recipientOf) };
}

void describe('git-secret', () => {
  void it('round-trips a token and a deploy key; only values are encrypted', async () => {
    const { recipient, ids } = await key();
    const https = await encryptGitSecret({ type: 'https', username: 'me', password: 'p4ss-word-123' }, [recipient], 'f.yaml');
    assert.ok(!https.includes('p4ss-word-123'));
    assert.match(https, /^kind: Secret$/m);
    assert.match(https, /^ {4}name: flux-system$/m);
    assert.deepEqual(await decryptGitSecret(Buffer.from(https), 'f.yaml', ids), { type: 'https', username: 'me', password: 'p4ss-word-123' });

    const pair = generateSshKey('ed25519', 't');
    const ssh = await encryptGitSecret({ type: 'ssh', identity: pair.privateKey, knownHosts: 'h ssh-ed25519 AAAA\n' }, [recipient], 'f.yaml');
    assert.deepEqual(await decryptGitSecret(Buffer.from(ssh), 'f.yaml', ids), { type: 'ssh', identity: pair.privateKey, knownHosts: 'h ssh-ed25519 AAAA\n' });
  });

  void it('refuses a file of another key, and one that holds no credentials, naming the file', async () => {
    const { recipient } = await key();
    const other = await key();
    const text = await encryptGitSecret({ type: 'https', username: 'me', password: 'p4ss-word-123' }, [recipient], 'f.yaml');
    await assert.rejects(
      decryptGitSecret(Buffer.from(text), 'f.yaml', other.ids),
      (e: unknown) => e instanceof FluxstrapError && e.location?.file === 'f.yaml',
    );

    const empty = await encryptDocument(
      Buffer.from('kind: Secret\nstringData:\n  identity: x\n'),
      'yaml',
      'g.yaml',
      { keyGroups: [[newStanza('age', other.recipient)]], shamirThreshold: 0, rules: {} },
      { age: [], pgpFiles: [], gpg: false },
    );
    await assert.rejects(
      decryptGitSecret(Buffer.from(empty), 'g.yaml', other.ids),
      (e: unknown) => e instanceof FluxstrapError && e.location?.file === 'g.yaml' && /identity without known_hosts/.test(e.message),
    );
  });
});
