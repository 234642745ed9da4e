/**
 * Builds dist/ for start-up time: a single `fluxstrap encrypt` is benchmarked against the Go sops,
 * process start included, and loading ~190 separate modules (commander, yaml, ours) cost more
 * than the work. Two outputs:
 *  - the SOPS commands (src/cli-sops.ts: encrypt, decrypt, set, …) are one CommonJS file,
 *    dist/cli/sops.cjs, with every package they import statically; the packages they `import()`
 *    stay external and load from node_modules only when used (the tests that trace module URLs
 *    still see their names). Linking ESM modules costs ~0.5 ms each, and the bin runs this file
 *    with a code cache of the functions a run executed (see ENTRY);
 *  - every other command: the CLI, commander and yaml as a few ESM files (dist/main.js), split
 *    where the commands `import()` lazily, other packages external.
 * Node built-ins come from process.getBuiltinModule: an ESM `import` of one builds a facade that
 * reads every export, which for node:crypto loads WebCrypto and for node:fs the streams.
 * Only static imports: an `import()` of a built-in stays Node's own (it is lazy already, and as a
 * split chunk it would export nothing but `default`).
 * Usage: node scripts/build.ts (npm run build)
 */
import { build, type BuildOptions, type Metafile, type OnResolveArgs, type OutputFile, type Plugin } from 'esbuild';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { isBuiltin } from 'node:module';
import { fileURLToPath } from 'node:url';
import { SOPS_GROUP } from '../src/cli/commands/sops.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const BUNDLED = new Set(['commander', 'yaml', '@scure/base']);
const SOPS_BUNDLE = 'cli/sops.cjs';

// The bin is the first file Node evaluates, so it must parse and link on any Node that runs ESM:
// it checks the version before it imports the CLI, whose syntax and APIs need Node 22 (a static
// import of a missing export, or newer syntax, would die with a stack trace before any check
// ran). So it imports nothing by name, has no top-level await, and uses ES2015 syntax only.
// V8's code cache only serves modules compiled after it is enabled, and an ESM file's static
// imports are all compiled before its first line runs: so the bin enables it, then imports the
// CLI. The cache lives in NODE_COMPILE_CACHE or the system temp folder; NODE_DISABLE_COMPILE_CACHE=1
// turns it off. enableCompileCache came in Node 22.1.
// Node's cache holds what V8 compiled with the module, before it ran: the top level only, so
// every function a command calls is compiled again on every run. The SOPS bundle is a script the
// bin compiles itself, and once, at the exit of a successful run, it stores the code cache of
// everything that ran, in Node's cache folder (so the same variables move or disable it), under
// the bundle's hash and the command (encrypt and decrypt run different functions; help runs
// almost none, so it stores nothing). A missing, stale or unwritable cache only costs time; V8
// rejects one that does not match.
const MIN_NODE_MAJOR = minimumNodeMajor();
const entry = (sopsHash: string): string => `#!/usr/bin/env node
import * as nodeModule from 'node:module';
var found = process.versions.node;
if (Number(found.split('.')[0]) < ${MIN_NODE_MAJOR}) {
  process.stderr.write('error: fluxstrap needs Node.js ${MIN_NODE_MAJOR} or newer (found ' + found + ')\\n' +
    'hint: install Node.js ${MIN_NODE_MAJOR} or newer (https://nodejs.org, or nvm install ${MIN_NODE_MAJOR}) and make it the node on your PATH\\n');
  process.exitCode = 1;
} else {
  if (typeof nodeModule.enableCompileCache === 'function') nodeModule.enableCompileCache();
  var command = process.argv.slice(2).filter(function (a) { return a.charAt(0) !== '-'; })[0];
  if (${JSON.stringify(SOPS_GROUP[0])}.indexOf(command) >= 0) runCached(${JSON.stringify(SOPS_BUNDLE)}, ${JSON.stringify(sopsHash)}, command);
  else import('./src/cli.ts');
}

function runCached(bundle, hash, command) {
  var builtin = typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule : nodeModule.createRequire(import.meta.url);
  var fs = builtin('node:fs');
  var path = builtin('node:path');
  var vm = builtin('node:vm');
  var file = path.join(path.dirname(builtin('node:url').fileURLToPath(import.meta.url)), bundle);
  var dir = typeof nodeModule.getCompileCacheDir === 'function' ? nodeModule.getCompileCacheDir() : undefined;
  var cacheFile = dir ? path.join(dir, 'fluxstrap-' + hash + '-' + command) : undefined;
  var help = process.argv.indexOf('--help') >= 0 || process.argv.indexOf('-h') >= 0;
  var cachedData;
  try {
    if (cacheFile) cachedData = fs.readFileSync(cacheFile);
  } catch (e) {}
  var script = new vm.Script('(function (exports, require, module, __filename, __dirname, __import) {' + fs.readFileSync(file, 'utf8') + '\\n})', {
    filename: file,
    cachedData: cachedData,
  });
  if (cacheFile && !help && (cachedData === undefined || script.cachedDataRejected)) {
    process.once('exit', function (code) {
      if (code !== 0) return;
      var temp = cacheFile + '.' + process.pid + '.tmp';
      try {
        fs.writeFileSync(temp, script.createCachedData(), { mode: 384 });
        fs.renameSync(temp, cacheFile);
      } catch (e) {
        try { fs.rmSync(temp, { force: true }); } catch (e2) {}
      }
    });
  }
  var module = { exports: {} };
  script.runInThisContext()(module.exports, nodeModule.createRequire(file), module, file, path.dirname(file), function (specifier) {
    return import(specifier);
  });
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
module.exports = new Proxy({}, { get: (_, key) => (cp ??= __builtin('node:child_process'))[key] });
`;

/**
 * The bin, commander's lazy child_process, built-ins from process.getBuiltinModule (one tiny
 * module per importer, so they add no shared chunk), and which packages are bundled.
 */
function fluxstrapPlugin(bin: string, bundles: (args: OnResolveArgs) => boolean): Plugin {
  return {
    name: 'fluxstrap',
    setup(b) {
      b.onResolve({ filter: /^fluxstrap:bin$/ }, () => ({ path: 'bin', namespace: 'fluxstrap' }));
      b.onLoad({ filter: /^bin$/, namespace: 'fluxstrap' }, () => ({ contents: bin, loader: 'js', resolveDir: root }));
      b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
        /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: 'lazy-child-process', namespace: 'fluxstrap' } : undefined,
      );
      b.onLoad({ filter: /^lazy-child-process$/, namespace: 'fluxstrap' }, () => ({ contents: LAZY_CHILD_PROCESS, loader: 'js' }));
      b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) =>
        isBuiltin(args.path) && args.namespace === 'file' && args.kind !== 'dynamic-import'
          ? { path: `${args.path.replace(/^node:/, '')}|${args.importer}`, namespace: 'builtin' }
          : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({
        contents: `module.exports = __builtin(${JSON.stringify(`node:${args.path.split('|')[0] ?? ''}`)});`,
        loader: 'js',
      }));
      b.onResolve({ filter: /^[^./]/ }, (args) => (bundles(args) ? undefined : { path: args.path, external: true }));
    },
  };
}

const common = {
  absWorkingDir: root,
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node24',
  metafile: true,
  logLevel: 'warning',
} satisfies BuildOptions;

rmSync(`${root}dist`, { recursive: true, force: true });

// The SOPS commands: everything they import statically is in the file (what a lazily imported
// module imports statically runs only when that module does); what they import() stays outside.
// The file sits at the depth of the sources, so their import.meta.url paths hold.
const sops = await build({
  ...common,
  write: false,
  entryPoints: [{ in: './src/cli-sops.ts', out: SOPS_BUNDLE.replace(/\.cjs$/, '') }],
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  define: { 'import.meta.url': '__import_meta_url' },
  banner: {
    js: "'use strict'; const __builtin = (id) => process.getBuiltinModule?.(id) ?? require(id); const __import_meta_url = require('node:url').pathToFileURL(__filename).href;",
  },
  minifyWhitespace: true,
  minifySyntax: true,
  plugins: [fluxstrapPlugin('', ({ path, kind, importer }) => (kind !== 'dynamic-import' || !importer.startsWith(`${root}src/`)) && packageOf(path) !== 'zod')],
});
checkBuild(sops);
const sopsCode = withImportFromBin(sops);
mkdirSync(dirname(`${root}dist/${SOPS_BUNDLE}`), { recursive: true });
writeFileSync(`${root}dist/${SOPS_BUNDLE}`, sopsCode);
const sopsHash = createHash('sha256').update(sopsCode).digest('hex').slice(0, 16);

// Everything else. Each module that a source `import()`s keeps its source path
// (src/flows/init.ts → dist/flows/init.js): the lazily loaded parts have names in traces and
// stacks, and their import.meta.url paths hold.
const options = {
  ...common,
  entryPoints: [
    { in: 'fluxstrap:bin', out: 'cli' },
    { in: './src/cli.ts', out: 'main' },
  ],
  // Shared chunks sit two levels below the package root, as most sources do in src/, so a
  // module's `new URL('../../templates/…', import.meta.url)` finds the same file from dist/.
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  format: 'esm',
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const __builtin = (id) => typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule(id) : __createRequire(import.meta.url)(id);",
  },
  plugins: [fluxstrapPlugin(entry(sopsHash), ({ path }) => BUNDLED.has(packageOf(path)))],
} satisfies BuildOptions;
const first = await build({ ...options, write: false });
const lazy = new Set(
  Object.values(first.metafile.inputs).flatMap((i) => i.imports.filter((d) => d.kind === 'dynamic-import' && d.path.startsWith('src/')).map((d) => d.path)),
);
lazy.delete('src/cli.ts');
checkBuild(
  await build({
    ...options,
    entryPoints: [...options.entryPoints, ...[...lazy].sort().map((path) => ({ in: `./${path}`, out: path.replace(/^src\/(.*)\.ts$/, '$1') }))],
  }),
);
chmodSync(`${root}dist/cli.js`, 0o755);

/**
 * A script's `import()` works only through a vm option Node marks experimental (it prints a
 * warning): the SOPS bundle calls the bin's `import` instead, which resolves packages from the same
 * package root.
 */
function withImportFromBin({ outputFiles, metafile }: { outputFiles: OutputFile[]; metafile: Metafile }): string {
  const [file] = outputFiles;
  const output = metafile.outputs[`dist/${SOPS_BUNDLE}`];
  if (outputFiles.length !== 1 || file === undefined || output === undefined) throw new Error(`build: expected dist/${SOPS_BUNDLE} alone`);
  let code = file.text;
  for (const path of new Set(output.imports.filter((i) => i.kind === 'dynamic-import').map((i) => i.path))) {
    code = code.replaceAll(`import(${JSON.stringify(path)})`, `__import(${JSON.stringify(path)})`);
  }
  const left = /(?<![\w$.])import\(\s*["'`\w]/.exec(code);
  if (left) {
    process.stderr.write(`build: dist/${SOPS_BUNDLE} keeps an import() the bin does not serve: ${code.slice(left.index, left.index + 60)}\n`);
    process.exit(1);
  }
  return code;
}

function checkBuild({ errors, warnings, metafile }: { errors: unknown[]; warnings: unknown[]; metafile: Metafile }): void {
  if (errors.length > 0 || warnings.length > 0) process.exit(1);
  checkImportMetaUrl(metafile);
}

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
