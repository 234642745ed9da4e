import { FluxstrapError } from '../core/errors.ts';

/**
 * A secret typed at the terminal, never echoed: raw mode, one line, backspace works, Ctrl-C and
 * Ctrl-D give up. Only for a TTY on stdin; piped input is read by the caller.
 */
export function promptSecret(question: string, input: NodeJS.ReadStream, out: NodeJS.WritableStream, interrupt: () => void): Promise<string> {
  // Echo off before the question shows: a paste right after it must not land on the screen.
  input.setRawMode(true);
  out.write(question);
  input.resume();
  let value = '';
  return new Promise((resolve, reject) => {
    const done = (err?: FluxstrapError): void => {
      input.removeListener('data', onData);
      input.setRawMode(false);
      input.pause();
      out.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        // Raw mode turns Ctrl-C into a character: restore the terminal, then interrupt as the
        // signal would (the CLI's handler exits at once, so nothing resolves meanwhile).
        if (ch === '\u0003') {
          done(new FluxstrapError('E_USAGE', 'interrupted'));
          interrupt();
          return;
        }
        if (ch === '\u0004') return done(new FluxstrapError('E_USAGE', 'no value given'));
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else value += ch;
      }
    };
    input.on('data', onData);
  });
}

/** A yes/no question at a terminal, answered with a line; anything but y or yes is no. */
export async function confirm(question: string, input: NodeJS.ReadStream, out: NodeJS.WritableStream): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input, output: out, terminal: false });
  try {
    return /^\s*y(es)?\s*$/i.test(await rl.question(question));
  } finally {
    rl.close();
  }
}

/** All of piped stdin as text. */
export async function readStdin(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}
