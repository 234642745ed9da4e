// Builds the test cluster's programs from their Go modules into the cache (components.ts).
// Usage: npm run cluster:build [-- --with-flux-cli] [-- --with-local-kms] [-- --with-vault] [-- --with-gitea]
// A component is skipped when its stamp matches the module version, Go version and flags.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMPONENTS, DEFAULT_CONTROLLERS, binaryPath, cacheDir, componentDir, sourceDir, stampPath, type Component } from './components.ts';
import { bundleDir, generateGotkComponents, gotkComponentsPath } from './gotk.ts';
import { commonBuildFlags, downloadModule, goEnv } from './go.ts';
import { run } from './proc.ts';

interface Replace {
  from: string;
  to: string;
}

/** The replace directives of a go.mod, block and single-line forms. */
export function parseReplaces(goMod: string): Replace[] {
  const replaces: Replace[] = [];
  let inBlock = false;
  for (const raw of goMod.split('\n')) {
    const line = raw.replace(/\/\/.*$/, '').trim();
    if (inBlock) {
      if (line === ')') inBlock = false;
      else if (line.includes('=>')) replaces.push(splitReplace(line));
    } else if (line === 'replace (') {
      inBlock = true;
    } else if (line.startsWith('replace ') && line.includes('=>')) {
      replaces.push(splitReplace(line.slice('replace '.length)));
    }
  }
  return replaces;
}

function splitReplace(body: string): Replace {
  const [from = '', to = ''] = body.split('=>').map((s) => s.trim());
  return { from, to };
}

/**
 * Upstream replaces that point at directories cannot work outside the upstream repository.
 * Kubernetes' staging modules are published as k8s.io/X v0.<minor>.<patch>; every other
 * directory replace names a sub-module that the upstream module also requires by version.
 */
export function wrapperReplaces(c: Component, upstreamGoMod: string): string[] {
  const stagingVersion = c.name === 'kubernetes' ? c.version.replace(/^v1\./, 'v0.') : undefined;
  const lines: string[] = [];
  for (const { from, to } of parseReplaces(upstreamGoMod)) {
    const isDirectory = /^(\.{1,2}\/|\/)/.test(to);
    if (!isDirectory) lines.push(`${from} => ${to}`);
    else if (stagingVersion !== undefined && to.startsWith('./staging/')) lines.push(`${from} => ${from} ${stagingVersion}`);
  }
  return lines;
}

function wrapperGoMod(c: Component, upstreamGoMod: string): string {
  const goDirective = /^go (\S+)/m.exec(upstreamGoMod)?.[1] ?? '1.26.0';
  const godebug = /^godebug .*$/m.exec(upstreamGoMod)?.[0];
  return [
    `module fluxstrap.test/${c.name}`,
    '',
    `go ${goDirective}`,
    ...(godebug === undefined ? [] : ['', godebug]),
    '',
    `require ${c.module} ${c.version}`,
    '',
    'tool (',
    ...Object.values(c.binaries).map((p) => `\t${p}`),
    ')',
    '',
    'replace (',
    ...wrapperReplaces(c, upstreamGoMod).map((r) => `\t${r}`),
    ...(c.substitutes ?? []).map((s) => `\t${s.module} => ${s.module} ${s.served}`),
    ')',
    '',
  ].join('\n');
}

async function goVersion(): Promise<string> {
  return (await run('go', ['env', 'GOVERSION'], { env: goEnv })).trim();
}

/** Everything that decides what a build produces; a different recipe means a rebuild. */
function recipe(c: Component, go: string): string {
  return JSON.stringify({
    module: c.module,
    version: c.version,
    go,
    ldflags: c.ldflags,
    substitutes: c.substitutes ?? [],
    binaries: c.binaries,
    flags: commonBuildFlags,
    // The flux CLI embeds the generated bundles: a CLI built with fewer cannot install the set.
    ...(c.name === 'flux' ? { bundles: [...DEFAULT_CONTROLLERS] } : {}),
  });
}

interface Stamp {
  recipe: string;
  builtAt: string;
  seconds: number;
}

function stampMatches(c: Component, go: string): boolean {
  if (!existsSync(stampPath(c))) return false;
  const stamp = JSON.parse(readFileSync(stampPath(c), 'utf8')) as Stamp;
  return stamp.recipe === recipe(c, go) && Object.keys(c.binaries).every((b) => existsSync(binaryPath(c, b)));
}

function logFileFor(c: Component): string {
  const dir = join(cacheDir(), 'logs');
  mkdirSync(dir, { recursive: true });
  return join(dir, `build-${c.name}-${c.version}.log`);
}

/** Prints how far a long `go build -v` got, so a 10-minute build is visibly alive. */
function progress(c: Component): { onStderr: (chunk: string) => void; done: () => void } {
  const started = Date.now();
  let packages = 0;
  const timer = setInterval(() => {
    const s = Math.round((Date.now() - started) / 1000);
    console.log(`[build] ${c.name}: ${packages} packages compiled, ${Math.floor(s / 60)}m${s % 60}s`);
  }, 30_000);
  return {
    onStderr: (chunk) => {
      packages += chunk.split('\n').filter((l) => /^[\w.-]+(\/[\w.~-]+)*$/.test(l.trim())).length;
    },
    done: () => clearInterval(timer),
  };
}

async function buildComponent(c: Component): Promise<void> {
  const log = logFileFor(c);
  writeFileSync(log, `# ${c.module}@${c.version} (${new Date().toISOString()})\n`);
  const binDir = join(componentDir(c), 'bin');
  mkdirSync(binDir, { recursive: true });
  const ldflags = ['-s', '-w', ...c.ldflags].join(' ');
  const tick = progress(c);
  const env: NodeJS.ProcessEnv = {
    ...goEnv,
    ...(c.method === 'install' ? { GOBIN: binDir } : {}),
    ...(c.substitutes === undefined ? {} : { GONOSUMDB: c.substitutes.map((s) => s.module).join(',') }),
  };
  const opts = { env, logFile: log, onStderr: tick.onStderr, interruptible: true };
  const binaries = Object.entries(c.binaries);
  // Several packages in one call share their compiled dependencies; `-o dir/` names each binary
  // after its package. A single package gets an explicit name (etcd's would be "v3").
  const output = binaries.length === 1 ? join(binDir, binaries[0]?.[0] ?? '') : `${binDir}/`;
  try {
    if (c.method === 'install') {
      await run('go', ['install', '-v', ...commonBuildFlags, '-ldflags', ldflags, ...binaries.map(([, pkg]) => `${pkg}@${c.version}`)], opts);
    } else {
      const src = sourceDir(c);
      const upstream = await downloadModule(c.module, c.version);
      if (c.method === 'wrapper') {
        mkdirSync(src, { recursive: true });
        writeFileSync(join(src, 'go.mod'), wrapperGoMod(c, readFileSync(upstream.GoMod, 'utf8')));
      } else {
        await writableCopy(upstream.Dir, src);
        if (c.name === 'flux') fillFluxManifests(src);
      }
      console.log(`[build] ${c.name}: downloading and compiling ${binaries.map(([b]) => b).join(', ')} (log: ${log})`);
      // -mod=mod resolves the build's dependencies only; `go mod tidy` would also fetch test-only
      // modules, some of which the proxy refuses.
      await run('go', ['build', '-v', ...commonBuildFlags, '-mod=mod', '-ldflags', ldflags, '-o', output, ...binaries.map(([, pkg]) => pkg)], {
        ...opts,
        cwd: src,
      });
    }
  } catch (err) {
    throw new Error(`build of ${c.name} (${c.module}@${c.version}) failed: ${(err as Error).message} — full log: ${log}`, { cause: err });
  } finally {
    tick.done();
  }
}

/** The module cache is read-only and a copy keeps its modes: a module built in place gets a writable copy. */
async function writableCopy(moduleDir: string, src: string): Promise<void> {
  rmSync(src, { recursive: true, force: true });
  cpSync(moduleDir, src, { recursive: true });
  await run('chmod', ['-R', 'u+w', src]);
}

/**
 * flux embeds manifests/*.yaml, which upstream generates with `make` from GitHub release
 * assets, so the module zip lacks them. The bundles generated for gotk-components.yaml take
 * their place (Flux's default controllers; `flux install --components-extra` cannot work).
 */
function fillFluxManifests(src: string): void {
  const manifests = join(src, 'cmd', 'flux', 'manifests');
  mkdirSync(manifests, { recursive: true });
  cpSync(bundleDir(), manifests, { recursive: true });
}

export interface BuildOptions {
  withFluxCli?: boolean;
  withLocalKms?: boolean;
  withVault?: boolean;
  withGitea?: boolean;
}

export async function buildAll(opts: BuildOptions = {}): Promise<void> {
  const go = await goVersion().catch((err: unknown) => {
    throw new Error(`the Go toolchain is needed to build the test cluster: ${(err as Error).message}`);
  });
  const requested = {
    flux: opts.withFluxCli === true,
    'local-kms': opts.withLocalKms === true,
    vault: opts.withVault === true,
    gitea: opts.withGitea === true,
  };
  const wanted = COMPONENTS.filter((c) => !c.optional || (requested as Partial<Record<string, boolean>>)[c.name] === true);
  for (const c of wanted) {
    // The flux CLI embeds the generated bundles, so they must exist before it compiles.
    if (c.name === 'flux') await generateGotkComponents();
    if (stampMatches(c, go)) {
      console.log(`[build] ${c.name} ${c.version}: cached`);
      continue;
    }
    console.log(`[build] ${c.name} ${c.version}: building from ${c.module}`);
    const started = Date.now();
    await buildComponent(c);
    const seconds = Math.round((Date.now() - started) / 1000);
    const stamp: Stamp = { recipe: recipe(c, go), builtAt: new Date().toISOString(), seconds };
    writeFileSync(stampPath(c), `${JSON.stringify(stamp, null, 2)}\n`);
    console.log(`[build] ${c.name} ${c.version}: done in ${seconds}s`);
  }
  await generateGotkComponents();
}

/** Files `startCluster()` needs that are not in the cache yet. */
export function missingArtifacts(): string[] {
  return COMPONENTS.filter((c) => !c.optional)
    .flatMap((c) => Object.keys(c.binaries).map((b) => binaryPath(c, b)))
    .concat(gotkComponentsPath())
    .filter((p) => !existsSync(p));
}

if (import.meta.main) {
  const withFluxCli = process.argv.includes('--with-flux-cli');
  const withLocalKms = process.argv.includes('--with-local-kms');
  const withVault = process.argv.includes('--with-vault');
  const withGitea = process.argv.includes('--with-gitea');
  buildAll({ withFluxCli, withLocalKms, withVault, withGitea }).then(
    () => console.log(`[build] all components ready in ${cacheDir()}`),
    (err: unknown) => {
      console.error(`[build] ${(err as Error).message}`);
      process.exitCode = 1;
    },
  );
}
