import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { vaultWrite } from '../../../src/adapters/vault.ts';
import { FluxstrapError } from '../../../src/core/errors.ts';

/** Answers as Vault's transit engine does, by path: the status and `errors` a real Vault sends. */
const ANSWERS: Record<string, [number, string[]]> = {
  '/v1/transit/decrypt/missing': [400, ['encryption key not found']],
  '/v1/transit/decrypt/tampered': [400, ['cipher: message authentication failed']],
  '/v1/transit/decrypt/denied': [403, ['1 error occurred:\n\t* permission denied\n\n']],
  '/v1/nowhere/decrypt/k': [404, ['no handler for route "nowhere/decrypt/k". route entry not found.']],
};

let server: Server;
let address: string;

before(async () => {
  server = createServer((req, res) => {
    const [status, errors] = ANSWERS[req.url ?? ''] ?? [200, []];
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(status === 200 ? { data: { plaintext: 'AAAA' } } : { errors }));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

async function refusal(path: string, at = address): Promise<FluxstrapError> {
  const e = await vaultWrite({ address: at, path, token: 'hvs.never-printed', body: {} }).then(
    () => undefined,
    (x: unknown) => x,
  );
  assert.ok(e instanceof FluxstrapError, String(e));
  assert.ok(!e.message.includes('hvs.never-printed') && !(e.hint ?? '').includes('hvs.never-printed'));
  return e;
}

void describe('vaultWrite error codes (as AWS KMS reports the same failures)', () => {
  void it('a key Vault does not have is E_NOT_FOUND, a ciphertext the key does not open E_DECRYPT', async () => {
    const missing = await refusal('transit/decrypt/missing');
    assert.equal(missing.code, 'E_NOT_FOUND');
    assert.match(missing.message, /encryption key not found \(HTTP 400\)/);
    assert.equal((await refusal('transit/decrypt/tampered')).code, 'E_DECRYPT');
  });

  void it('a refused token, an unknown engine and an unreachable Vault are E_PRECONDITION', async () => {
    const denied = await refusal('transit/decrypt/denied');
    assert.equal(denied.code, 'E_PRECONDITION');
    assert.match(denied.message, /permission denied \(HTTP 403\)$/);
    assert.equal((await refusal('nowhere/decrypt/k')).code, 'E_PRECONDITION');
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((done) => closed.close(() => done()));
    const unreachable = await refusal('transit/decrypt/k', `http://127.0.0.1:${port}`);
    assert.equal(unreachable.code, 'E_PRECONDITION');
    assert.match(unreachable.message, /^cannot reach Vault at http:\/\/127\.0\.0\.1:\d+ \(connection refused\)$/);
  });

  void it('an answer is read', async () => {
    assert.deepEqual(await vaultWrite({ address, path: 'transit/decrypt/ok', token: 't', body: {} }), { plaintext: 'AAAA' });
  });
});
