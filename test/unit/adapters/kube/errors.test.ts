import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpError, isTransientFailure, kubeError, parseStatus } from '../../../../src/adapters/kube/errors.ts';
import { FluxstrapError } from '../../../../src/core/errors.ts';

/** Failed requests → FluxstrapError, by HTTP status and errno; never the text of a Secret. */

const SERVER = 'https://127.0.0.1:6443';
const status = (code: number, body: Record<string, unknown> = {}) => new HttpError(code, { kind: 'Status', ...body });
const errno = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

void describe('kubeError', () => {
  void it('404 is E_NOT_FOUND with the apiserver message', () => {
    const e = kubeError(status(404, { message: 'configmaps "x" not found' }), 'read ConfigMap x', SERVER);
    assert.equal(e.code, 'E_NOT_FOUND');
    assert.equal(e.message, 'cannot read ConfigMap x: HTTP 404: configmaps "x" not found');
  });

  void it('401, 403 and 409 are E_KUBE with a hint saying what to do', () => {
    for (const [code, hint] of [
      [401, /log in again/],
      [403, /cluster-admin/],
      [409, /run again/],
    ] as const) {
      const e = kubeError(status(code, { reason: 'R' }), 'apply X', SERVER);
      assert.equal(e.code, 'E_KUBE');
      assert.match(e.hint ?? '', hint);
    }
    assert.equal(kubeError(status(422, { message: 'invalid' }), 'apply X', SERVER).hint, undefined);
  });

  void it('a Secret keeps only the reason and field names: the message may quote what was sent', () => {
    const body = { reason: 'Invalid', message: 'data[token]: value "s3cr3t" is invalid', details: { causes: [{ field: 'data[token]' }] } };
    const e = kubeError(status(422, body), 'apply Secret a', SERVER, true);
    assert.equal(e.message, 'cannot apply Secret a: HTTP 422: Invalid; fields: data[token]');
    assert.doesNotMatch(JSON.stringify(e), /s3cr3t/);
  });

  void it('a network failure, found in the cause chain, says the API is unreachable', () => {
    const e = kubeError(new TypeError('fetch failed', { cause: errno('ECONNREFUSED') }), 'list Pods', SERVER);
    assert.equal(e.code, 'E_KUBE');
    assert.equal(e.message, `cannot list Pods: the Kubernetes API at ${SERVER} is unreachable (ECONNREFUSED)`);
    assert.match(e.hint ?? '', /--context/);
  });

  void it('anything else keeps its innermost reason (and the cause, unless sensitive)', () => {
    const e = kubeError(new TypeError('fetch failed', { cause: new Error('bad port') }), 'list Pods', SERVER);
    assert.equal(e.message, 'cannot list Pods: bad port');
    assert.ok(e.cause);
    assert.equal(kubeError(new Error('boom'), 'read Secret s', SERVER, true).cause, undefined);
  });

  void it('a FluxstrapError passes through unchanged', () => {
    const own = new FluxstrapError('E_CONFIG', 'mine');
    assert.equal(kubeError(own, 'x', SERVER), own);
  });
});

void describe('isTransientFailure', () => {
  void it('an API server restarting or throttling is transient; a refusal or a missing object is not', () => {
    for (const e of [
      status(503),
      status(429),
      status(500),
      errno('ECONNRESET'),
      errno('ECONNREFUSED'),
      Object.assign(new Error('t'), { name: 'TimeoutError' }),
    ]) {
      assert.equal(isTransientFailure(kubeError(e, 'x', SERVER)), true, String(e));
    }
    for (const e of [status(403), status(404), status(409), errno('ENOTFOUND'), errno('CERT_HAS_EXPIRED')]) {
      assert.equal(isTransientFailure(kubeError(e, 'x', SERVER)), false, String(e));
    }
  });
  void it('only a mapped error is: the raw failure is not', () => assert.equal(isTransientFailure(status(503)), false));
});

void describe('parseStatus', () => {
  void it('reads the Status document, or nothing when the body is not JSON', () => {
    assert.equal(parseStatus('{"kind":"Status","reason":"NotFound"}')?.reason, 'NotFound');
    assert.equal(parseStatus('<html>bad gateway</html>'), undefined);
  });
});
