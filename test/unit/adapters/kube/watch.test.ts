import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { watchEvents } from '../../../../src/adapters/kube/watch.ts';
import type { WatchEvent } from '../../../../src/adapters/kube/watch.ts';

/** The watch parser: newline-delimited JSON, whatever the chunk boundaries of the HTTP body. */

async function* chunks(...parts: (string | Uint8Array)[]): AsyncGenerator<string | Uint8Array> {
  for (const p of parts) {
    await Promise.resolve();
    yield p;
  }
}

async function all(body: AsyncIterable<string | Uint8Array>): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  for await (const e of watchEvents(body)) out.push(e);
  return out;
}

const event = (type: string, name: string) => `${JSON.stringify({ type, object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } } })}\n`;
const bytes = (s: string) => new TextEncoder().encode(s);
const names = (events: WatchEvent[]) => events.map((e) => `${e.type} ${e.object.metadata.name}`);

void describe('watchEvents', () => {
  void it('yields one event per line, several lines in one chunk', async () => {
    assert.deepEqual(names(await all(chunks(event('ADDED', 'a') + event('MODIFIED', 'a') + event('DELETED', 'a')))), ['ADDED a', 'MODIFIED a', 'DELETED a']);
  });

  void it('joins a line split across chunks, at every possible cut', async () => {
    const text = event('ADDED', 'a') + event('MODIFIED', 'b');
    for (let cut = 1; cut < text.length; cut++) {
      assert.deepEqual(names(await all(chunks(text.slice(0, cut), text.slice(cut)))), ['ADDED a', 'MODIFIED b'], `cut at ${cut}`);
    }
  });

  void it('decodes a UTF-8 character split across byte chunks', async () => {
    const b = bytes(event('MODIFIED', 'café-☃'));
    const at = b.indexOf(0xe2) + 1; // inside the three bytes of ☃
    assert.deepEqual(names(await all(chunks(b.slice(0, at), b.slice(at, at + 1), b.slice(at + 1)))), ['MODIFIED café-☃']);
  });

  void it('one byte at a time', async () => {
    const b = bytes(event('ADDED', 'x') + event('BOOKMARK', 'y'));
    assert.deepEqual(names(await all(chunks(...Array.from(b, (_, i) => b.slice(i, i + 1))))), ['ADDED x', 'BOOKMARK y']);
  });

  void it('skips blank lines', async () => {
    const e = event('ADDED', 'a');
    assert.deepEqual(names(await all(chunks('\n', '  \n', e.slice(0, 10), e.slice(10), '\n'))), ['ADDED a']);
  });

  void it('drops a last line cut off without its newline (the connection ended mid-event)', async () => {
    const e = event('MODIFIED', 'b');
    assert.deepEqual(names(await all(chunks(event('ADDED', 'a'), e.slice(0, e.length - 5)))), ['ADDED a']);
  });

  void it('a line that is not JSON is an error, not a silent skip', async () => {
    await assert.rejects(all(chunks('{"type":"ADDED"\n')), SyntaxError);
  });

  void it('stopping early closes the body', async () => {
    let closed = false;
    async function* body() {
      try {
        await Promise.resolve();
        yield event('ADDED', 'a');
        yield event('MODIFIED', 'a');
      } finally {
        closed = true;
      }
    }
    for await (const e of watchEvents(body())) if (e.type === 'ADDED') break;
    assert.equal(closed, true);
  });
});
