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
  // Built-ins taken with process.getBuiltinModule (dist/ does) pass no hook: Node's own list of
  // the built-in modules it loaded records them, as node:<name>.
  process.on('exit', () => {
    const builtins = (process as unknown as { moduleLoadList: string[] }).moduleLoadList
      .filter((m) => m.startsWith('NativeModule ') && !m.startsWith('NativeModule internal/'))
      .map((m) => `node:${m.slice('NativeModule '.length)}\n`);
    appendFileSync(out, builtins.join(''));
  });
}
