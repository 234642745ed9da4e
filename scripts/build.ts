/**
 * Builds dist/ for start-up time: a single `fluxstrap encrypt` is benchmarked against the Go sops,
 * process start included, and loading ~190 separate modules (commander, yaml, ours) cost more
 * than the work. So the CLI, commander and yaml become a few ESM files, split where the commands
 * `import()` lazily. Every other package stays external: it loads from node_modules only when a
 * command needs it, and the tests that trace module URLs still see its name.
 * Usage: node scripts/build.ts (npm run build)
 */
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const BUNDLED = new Set(['commander', 'yaml']);

// The bin is the first file Node evaluates, so it must parse and link on any Node that runs ESM:
// it checks the version before it imports the CLI, whose syntax and APIs need Node 22 (a static
// import of a missing export, or newer syntax, would die with a stack trace before any check
// ran). So it imports nothing by name, has no top-level await, and uses ES2015 syntax only.
// V8's code cache only serves modules compiled after it is enabled, and an ESM file's static
// imports are all compiled before its first line runs: so the bin enables it, then imports the
// CLI. The cache lives in NODE_COMPILE_CACHE or the system temp folder; NODE_DISABLE_COMPILE_CACHE=1
// turns it off. enableCompileCache came in Node 22.1.
const MIN_NODE_MAJOR = minimumNodeMajor();
const ENTRY = `#!/usr/bin/env node
import * as nodeModule from 'node:module';
var found = process.versions.node;
if (Number(found.split('.')[0]) < ${MIN_NODE_MAJOR}) {
  process.stderr.write('error: fluxstrap needs Node.js ${MIN_NODE_MAJOR} or newer (found ' + found + ')\\n' +
    'hint: install Node.js ${MIN_NODE_MAJOR} or newer (https://nodejs.org, or nvm install ${MIN_NODE_MAJOR}) and make it the node on your PATH\\n');
  process.exitCode = 1;
} else {
  if (typeof nodeModule.enableCompileCache === 'function') nodeModule.enableCompileCache();
  import('./src/cli.ts');
}
`;

/** The major version of package.json's `engines.node` (`>=22`): one place says which Node is needed. */
function minimumNodeMajor(): number {
  const engines = (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { engines?: { node?: string } }).engines?.node ?? '';
  const major = /^>=\s*(\d+)(\.0)*$/.exec(engines)?.[1];
  if (major === undefined) {
    process.stderr.write(`build: package.json engines.node must read ">=MAJOR", not ${JSON.stringify(engines)}\n`);
    process.exit(1);
  }
  return Number(major);
}

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

// commander loads child_process (and with it net, dgram…) on every start, for executable
// subcommands, which fluxstrap has none of: it gets the module when it first touches it.
const LAZY_CHILD_PROCESS = `let cp;
module.exports = new Proxy({}, { get: (_, key) => (cp ??= require('node:child_process'))[key] });
`;

const entryAndExternals: Plugin = {
  name: 'fluxstrap',
  setup(b) {
    b.onResolve({ filter: /^fluxstrap:bin$/ }, () => ({ path: 'bin', namespace: 'fluxstrap' }));
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: 'lazy-child-process', namespace: 'fluxstrap' } : undefined,
    );
    b.onLoad({ filter: /^lazy-child-process$/, namespace: 'fluxstrap' }, () => ({ contents: LAZY_CHILD_PROCESS, loader: 'js', resolveDir: root }));
    b.onLoad({ filter: /^bin$/, namespace: 'fluxstrap' }, () => ({ contents: ENTRY, loader: 'js', resolveDir: root }));
    b.onResolve({ filter: /^[^./]/ }, (args) => (BUNDLED.has(packageOf(args.path)) ? undefined : { path: args.path, external: true }));
  },
};

const options = {
  absWorkingDir: root,
  entryPoints: [
    { in: 'fluxstrap:bin', out: 'cli' },
    { in: './src/cli.ts', out: 'main' },
  ],
  outdir: 'dist',
  // Shared chunks sit two levels below the package root, as most sources do in src/, so a
  // module's `new URL('../../templates/…', import.meta.url)` finds the same file from dist/.
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  metafile: true,
  logLevel: 'warning',
  // commander and yaml are CommonJS: their require() of Node built-ins needs a real `require`.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  plugins: [entryAndExternals],
} satisfies BuildOptions;

// Each module that a source `import()`s keeps its source path (src/flows/sops.ts → dist/flows/sops.js):
// the lazily loaded parts have names in traces and stacks, and their import.meta.url paths hold.
const first = await build({ ...options, write: false });
const lazy = new Set(
  Object.values(first.metafile.inputs).flatMap((i) => i.imports.filter((d) => d.kind === 'dynamic-import' && d.path.startsWith('src/')).map((d) => d.path)),
);
lazy.delete('src/cli.ts');

rmSync(`${root}dist`, { recursive: true, force: true });
const { metafile, errors, warnings } = await build({
  ...options,
  entryPoints: [...options.entryPoints, ...[...lazy].sort().map((path) => ({ in: `./${path}`, out: path.replace(/^src\/(.*)\.ts$/, '$1') }))],
});
if (errors.length > 0 || warnings.length > 0) process.exit(1);
checkImportMetaUrl(metafile);
chmodSync(`${root}dist/cli.js`, 0o755);

/**
 * A source that resolves files relative to `import.meta.url` must land in an output file at the
 * same depth below the package root as the source itself, or its paths point elsewhere.
 */
function checkImportMetaUrl(meta: Metafile): void {
  const depth = (path: string): number => path.split('/').length;
  const bad: string[] = [];
  for (const [output, { inputs }] of Object.entries(meta.outputs)) {
    for (const input of Object.keys(inputs)) {
      if (!input.startsWith('src/') || !readFileSync(`${root}${input}`, 'utf8').includes('import.meta.url')) continue;
      if (depth(input) !== depth(output)) bad.push(`${input} → ${output}`);
    }
  }
  if (bad.length > 0) {
    process.stderr.write(`build: these sources resolve files from import.meta.url but land at another depth in dist/:\n  ${bad.join('\n  ')}\n`);
    process.exit(1);
  }
}
