/**
 * `fluxstrap init` generating Flux (the default, shipped version) on an empty repository, beside
 * `flux install --export` of the real flux CLI, in one run: each a few repetitions, median wall
 * time with process start, and the ratio. init does more than the flux command (gotk-sync.yaml,
 * .sops.yaml, the public key, the decryption patch, Makefile, .gitignore, fluxstrap.yaml), so the
 * ratio is an upper bound of what generating gotk-components.yaml costs; beside them, the floor
 * any Node program pays, `node -e 0`.
 * Usage: npm run build && node bench/init.ts [--reps 11]
 * The flux CLI comes from the test harness cache (npm run cluster:build -- --with-flux-cli).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { binaries } from '../test/cluster/index.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '11' } } });
const reps = Number(values.reps);
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const flux = binaries().flux;
if (flux === undefined || !existsSync(flux)) throw new Error('the flux CLI is not built: npm run cluster:build -- --with-flux-cli');
const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-bench-init-'));

try {
  const env = { ...process.env, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), XDG_CACHE_HOME: join(dir, 'cache'), SOPS_AGE_KEY: '', SOPS_AGE_KEY_FILE: '' };
  const keyFile = join(dir, 'bench.agekey');
  const run = (cmd: string, args: string[], cwd = dir): number => {
    const t = performance.now();
    const r = spawnSync(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString()}`);
    return performance.now() - t;
  };
  run(process.execPath, [cli, 'keys', 'new', '--out', keyFile]);

  const times = { init: [] as number[], flux: [] as number[], bare: [] as number[] };
  for (let i = 0; i < reps; i++) {
    const repo = join(dir, `repo-${i}`);
    mkdirSync(join(repo, 'clusters', 'home'), { recursive: true });
    spawnSync('git', ['init', '--quiet', repo]);
    times.bare.push(run(process.execPath, ['-e', '0']));
    times.init.push(
      run(process.execPath, [cli, 'init', '--cluster', 'home', '--repo', repo, '--age-key-file', keyFile, '--git-url', 'https://git.example/me/fleet.git']),
    );
    times.flux.push(run(flux, ['install', '--export']));
  }

  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const ms = (x: number): string => `${x.toFixed(0)} ms`;
  const [init, fluxInstall, bare] = [median(times.init), median(times.flux), median(times.bare)];
  process.stdout.write(
    [
      `flux: ${spawnSync(flux, ['version', '--client'], { encoding: 'utf8' }).stdout.trim()}; node ${process.version}; median of ${reps}, process start included`,
      `  fluxstrap init (generates Flux v2.9.5 and the rest of the repository): ${ms(init)}`,
      `  flux install --export: ${ms(fluxInstall)}`,
      `  → init takes ${(init / fluxInstall).toFixed(2)}x the time of flux install --export`,
      `  floor: node -e 0 ${ms(bare)} (${(bare / fluxInstall).toFixed(2)}x flux install --export)`,
      '',
    ].join('\n'),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
