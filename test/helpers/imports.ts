import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from './cli.ts';
import type { CliOptions, CliResult } from './cli.ts';
import { tempDir } from './tmp.ts';

const hook = fileURLToPath(new URL('./trace-imports.ts', import.meta.url));

/** Run the built CLI recording every module it resolves, to prove a command stays light. */
export async function tracedRun(args: string[], opts: CliOptions = {}): Promise<CliResult & { modules: string[] }> {
  const trace = join(await tempDir('trace'), 'modules.txt');
  const r = runCli(args, { ...opts, nodeArgs: ['--import', hook, ...(opts.nodeArgs ?? [])], env: { ...opts.env, FLUXSTRAP_TRACE_IMPORTS: trace } });
  const modules = (await readFile(trace, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { ...r, modules };
}

/** The modules among `modules` that belong to one of the named packages. */
export function loadedPackages(modules: readonly string[], packages: readonly string[]): string[] {
  return packages.filter((p) => modules.some((m) => m.includes(`/node_modules/${p}`)));
}
