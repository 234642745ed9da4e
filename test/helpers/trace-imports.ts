// Preloaded with `--import` to record every module the process loads, so tests can prove that a
// command never pulls in a heavy client. Writes the list to $FLUXSTRAP_TRACE_IMPORTS at exit.
import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';

const out = process.env.FLUXSTRAP_TRACE_IMPORTS;
if (out) {
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const result = nextResolve(specifier, context);
      appendFileSync(out, `${result.url}\n`);
      return result;
    },
  });
}
