/**
 * How `check` and `updatekeys` grow with the size of a repository, against the real sops in the
 * same run: 1,000 / 5,000 / 10,000 SOPS-encrypted Secrets (5 keys each) under one .sops.yaml.
 *  - fluxstrap: one process over the whole set (`check <folders>`, `updatekeys <files>` adding a
 *    second age recipient), wall time and peak memory (max RSS, GNU time) per size, and the cost
 *    per file, which stays flat when growth is linear;
 *  - sops: a loop of `sops filestatus` / `sops updatekeys -y`, one process per file (sops has no
 *    batch form). Above --sample files the loop runs over an evenly spread sample and the total is
 *    the per-file cost times the size; the output says where it did.
 * Usage: npm run build && node bench/scale.ts [--sizes 1000,5000,10000] [--sample 1000]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { x25519RecipientOf } from '../src/keys/age-x25519.ts';
import { loadAgeIdentities } from '../src/keys/identities.ts';
import { newStanza } from '../src/sops/datakey.ts';
import { encryptDocument } from '../src/sops/engine.ts';
import { findSops } from '../test/unit/sops/helpers.ts';
import { timed, type Timed } from './timed.ts';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '1000,5000,10000' }, sample: { type: 'string', default: '1000' } } });
const sizes = values.sizes.split(',').map(Number);
const sample = Number(values.sample);
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const sops = findSops();
const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-bench-scale-'));
const CHUNK = 1000;

const newKey = (): string => {
  const out = spawnSync('age-keygen', { encoding: 'utf8' }).stdout;
  const secret = /AGE-SECRET-KEY-1\S+/.exec(out)?.[0];
  if (!secret) throw new Error('age-keygen is needed (apt-get install age)');
  return secret;
};

try {
  const secret = newKey();
  const recipient = x25519RecipientOf(secret);
  const added = x25519RecipientOf(newKey());
  const keyFile = join(dir, 'keys.txt');
  writeFileSync(keyFile, `${secret}\n`, { mode: 0o600 });
  const env = { SOPS_AGE_KEY_FILE: keyFile, XDG_CONFIG_HOME: join(dir, 'none') };
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  const encryptedRegex = '^(data|stringData)$';
  // The rule names both recipients; the files are made for the first only, so updatekeys has work.
  writeFileSync(
    join(repo, '.sops.yaml'),
    `creation_rules:\n  - path_regex: .*\\.sops\\.yaml$\n    encrypted_regex: "${encryptedRegex}"\n    age: ${recipient},${added}\n`,
  );

  // check reads nested sets (1k ⊂ 5k ⊂ 10k) before anything is rewritten; updatekeys rewrites, so
  // each size gets fresh files for fluxstrap and fresh ones for the sops loop.
  const loopSize = (size: number): number => Math.min(size, sample);
  const chunksFor = (n: number): number => Math.ceil(n / CHUNK);
  const total = Math.max(
    chunksFor(Math.max(...sizes)),
    sizes.reduce((n, size) => n + chunksFor(size) + chunksFor(loopSize(size)), 0),
  );
  const sources = { age: await loadAgeIdentities({ keyFiles: [keyFile], env: {} }), pgpFiles: [], gpg: false };
  const t0 = performance.now();
  for (let c = 0; c < total; c++) {
    mkdirSync(join(repo, `c${c}`));
    for (let i = 0; i < CHUNK; i++) {
      const rel = `c${c}/s${i}.sops.yaml`;
      const data = Array.from({ length: 5 }, (_, k) => `    key${k}: value-${c}-${i}-${k}-${'x'.repeat(16)}`).join('\n');
      const plain = `apiVersion: v1\nkind: Secret\nmetadata:\n    name: app-${c}-${i}\n    namespace: default\ntype: Opaque\nstringData:\n${data}\n`;
      writeFileSync(
        join(repo, rel),
        await encryptDocument(
          Buffer.from(plain),
          'yaml',
          rel,
          { keyGroups: [[newStanza('age', recipient)]], shamirThreshold: 0, rules: { encryptedRegex } },
          sources,
        ),
      );
    }
  }
  process.stderr.write(`generated ${total * CHUNK} files in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);
  const filesOf = (chunks: number[], n: number): string[] =>
    chunks.flatMap((c) => Array.from({ length: CHUNK }, (_, i) => `c${c}/s${i}.sops.yaml`)).slice(0, n);
  const ours = (args: string[]): Promise<Timed> => timed(process.execPath, [cli, ...args], env, () => 0, repo);

  /** One sops process per file over an evenly spread sample of `files` (all of them up to --sample); the total is extrapolated. */
  const sopsLoop = (args: (file: string) => string[], files: string[], size: number) => {
    const picked = Array.from({ length: loopSize(files.length) }, (_, i) => files[Math.floor((i * files.length) / loopSize(files.length))] ?? '');
    let maxRssKb = 0;
    const t = performance.now();
    for (const f of picked) {
      const r = spawnSync('/usr/bin/time', ['-q', '-f', '%M', sops, ...args(f)], { cwd: repo, env: { ...process.env, ...env }, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`sops ${args(f).join(' ')} failed: ${r.stderr}`);
      maxRssKb = Math.max(maxRssKb, Number(r.stderr.trim().split('\n').pop()));
    }
    const perFileMs = (performance.now() - t) / picked.length;
    return { totalMs: perFileMs * size, perFileMs, sampled: picked.length, maxRssKb };
  };

  const s = (ms: number): string => (ms >= 10_000 ? `${(ms / 1000).toFixed(0)} s` : `${(ms / 1000).toFixed(2)} s`);
  const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;
  type Loop = ReturnType<typeof sopsLoop>;
  const row = (what: string, size: number, o: Timed, l: Loop): string[] => [
    `${what}, ${size.toLocaleString('en')} files`,
    s(o.wallMs),
    `${(o.wallMs / size).toFixed(2)} ms`,
    mb(o.maxRssKb),
    `${s(l.totalMs)}${l.sampled < size ? ` (${l.sampled} sampled, extrapolated)` : ''}`,
    `${l.perFileMs.toFixed(1)} ms`,
    mb(l.maxRssKb),
    `${(l.totalMs / o.wallMs).toFixed(0)}x`,
  ];
  const rows: string[][] = [];
  for (const size of sizes) {
    const chunks = range(0, chunksFor(size));
    // Folders, as a hook or CI passes them; a size that is not whole folders names its files.
    const check = await ours(['check', ...(size % CHUNK === 0 ? chunks.map((c) => `c${c}`) : filesOf(chunks, size))]);
    rows.push(
      row(
        'check',
        size,
        check,
        sopsLoop((f) => ['filestatus', f], filesOf(chunks, size), size),
      ),
    );
    process.stderr.write(`check ${size}: ${s(check.wallMs)}\n`);
  }
  let next = 0;
  const fresh = (n: number): string[] => {
    const chunks = range(next, chunksFor(n));
    next += chunks.length;
    return filesOf(chunks, n);
  };
  for (const size of sizes) {
    const files = fresh(size);
    const update = await ours(['updatekeys', ...files]);
    if (!readFileSync(join(repo, files[0] ?? ''), 'utf8').includes(added)) throw new Error('updatekeys did not add the recipient');
    rows.push(
      row(
        'updatekeys',
        size,
        update,
        sopsLoop((f) => ['updatekeys', '-y', f], fresh(loopSize(size)), size),
      ),
    );
    process.stderr.write(`updatekeys ${size}: ${s(update.wallMs)}\n`);
  }
  const version = spawnSync(sops, ['--version', '--disable-version-check'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? '?';
  console.log(`${version}; node ${process.version}; sops: one process per file, its peak memory is that of the largest single run`);
  console.log('| | fluxstrap | per file | peak memory | sops loop | per file | sops peak memory | ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|');
  console.log(rows.map((r) => `| ${r.join(' | ')} |`).join('\n'));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
