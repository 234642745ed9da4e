import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateSshKey } from '../../../src/keys/ssh.ts';
import { rotationCalls } from '../../../src/tasks/deploy-key-rotation.ts';

const A = generateSshKey('ed25519', 'a').publicKey;
const B = generateSshKey('ed25519', 'b').publicKey;
const T = 'flux-system-main-flux-system-clusters/prod';
const k = (id: number, title: string, key: string, readOnly = true) => ({ id, title, key: key.split(' ').slice(0, 2).join(' '), read_only: readOnly });

void describe('Deploy key rotation steps (GitHub, Gitea)', () => {
  void it('register: the new key beside the old under <title>-next; nothing once it is there, or already under the title', () => {
    assert.deepEqual(rotationCalls('register', T, true, B, [k(1, T, A)]), [{ create: { title: `${T}-next` } }]);
    assert.deepEqual(rotationCalls('register', T, true, B, [k(1, T, A), k(2, `${T}-next`, B)]), []);
    assert.deepEqual(rotationCalls('register', T, true, B, [k(2, T, B)]), [], 'a later run of a finished GitHub step');
  });

  void it('register: a stale -next entry (another key, or the wrong access) is replaced', () => {
    assert.deepEqual(rotationCalls('register', T, true, B, [k(1, T, A), k(2, `${T}-next`, A)]), [
      { delete: { id: 2, title: `${T}-next` } },
      { create: { title: `${T}-next` } },
    ]);
    assert.deepEqual(rotationCalls('register', T, true, B, [k(1, T, A), k(2, `${T}-next`, B, false)]), [
      { delete: { id: 2, title: `${T}-next` } },
      { create: { title: `${T}-next` } },
    ]);
  });

  void it('finish: old key and -next deleted before the new key goes under the title (GitHub takes a key once)', () => {
    assert.deepEqual(rotationCalls('finish', T, true, B, [k(1, T, A), k(2, `${T}-next`, B)]), [
      { delete: { id: 1, title: T } },
      { delete: { id: 2, title: `${T}-next` } },
      { create: { title: T } },
    ]);
  });

  void it('finish resumes from every point a run can stop at', () => {
    assert.deepEqual(rotationCalls('finish', T, true, B, [k(2, `${T}-next`, B)]), [{ delete: { id: 2, title: `${T}-next` } }, { create: { title: T } }]);
    assert.deepEqual(rotationCalls('finish', T, true, B, []), [{ create: { title: T } }]);
    assert.deepEqual(rotationCalls('finish', T, true, B, [k(3, T, B)]), []);
  });

  void it('other titles are never touched', () => {
    assert.deepEqual(rotationCalls('finish', T, true, B, [k(3, T, B), k(4, 'someone-else', A)]), []);
  });

  void it('--check before the new key exists: the steps it would take', () => {
    assert.deepEqual(rotationCalls('register', T, true, undefined, [k(1, T, A)]), [{ create: { title: `${T}-next` } }]);
  });
});
