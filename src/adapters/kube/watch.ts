import type { KubeObject } from './port.ts';

/** One event of a watch stream: `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR` (its object a Status). */
export interface WatchEvent {
  type: string;
  object: KubeObject;
}

/**
 * The events of a watch response, one JSON document per line however the body is chunked (a
 * line, or a UTF-8 character, may be split across chunks). A last line without its newline is an
 * event cut off with the connection and is dropped: the waiter reads the object again.
 */
export async function* watchEvents(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<WatchEvent> {
  let buffered = '';
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    buffered += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim() !== '') yield JSON.parse(line) as WatchEvent;
    }
  }
}
