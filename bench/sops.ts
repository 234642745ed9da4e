/**
 * fluxstrap's native SOPS engine against the real sops, in the same run:
 *  1. batch: N generated Kubernetes Secrets (5 keys each) encrypted then decrypted by fluxstrap in
 *     one process, and by a loop of `sops encrypt` + `sops decrypt` processes;
 *  2. one small file, process start included: `node dist/cli.js encrypt|decrypt` vs `sops …`,
 *     a few repetitions, median; beside them the floor any Node program pays before its first
 *     line of work: `node -e 0`, and Node loading `node:crypto`.
 * Usage: npm run build && node bench/sops.ts [--count 1000] [--reps 11]
 * sops comes from FLUXSTRAP_SOPS, the test harness cache, or PATH (as the interop tests find it).
 */
// The timed runs use spawnSync: a synchronous spawn adds no event-loop turn to what is measured.
// Setup and version lookups are plain shell-outs, written with zx.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { x25519RecipientOf } from '../src/keys/age-x25519.ts';
import { newStanza } from '../src/sops/datakey.ts';
import { decryptDocument, encryptDocument } from '../src/sops/engine.ts';
import { loadAgeIdentities } from '../src/keys/identities.ts';
import { $ } from 'zx';
import { findSops } from '../test/unit/sops/helpers.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '1000' }, reps: { type: 'string', default: '11' } } });
const count = Number(values.count);
const reps = Number(values.reps);
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const sops = findSops();
const dir = mkdtempSync(join(tmpdir(), 'fluxstrap-bench-'));

try {
  const age = await $({ nothrow: true, quiet: true })`age-keygen`;
  const secret = /AGE-SECRET-KEY-1\S+/.exec(age.stdout)?.[0];
  if (!secret) throw new Error('age-keygen is needed (apt-get install age)');
  const recipient = x25519RecipientOf(secret);
  const keyFile = join(dir, 'keys.txt');
  writeFileSync(keyFile, `${secret}\n`, { mode: 0o600 });
  const env = { ...process.env, SOPS_AGE_KEY_FILE: keyFile };

  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const f = join(dir, `secret-${i}.yaml`);
    const data = Array.from({ length: 5 }, (_, k) => `    key${k}: value-${i}-${k}-${'x'.repeat(16)}`).join('\n');
    writeFileSync(f, `apiVersion: v1\nkind: Secret\nmetadata:\n    name: app-${i}\n    namespace: default\ntype: Opaque\nstringData:\n${data}\n`);
    files.push(f);
  }
  const rules = { encryptedRegex: '^(data|stringData)$' };

  // 1. batch, fluxstrap in one process
  const sources = { age: await loadAgeIdentities({ keyFiles: [keyFile], env: {} }), pgpFiles: [], gpg: false };
  const t0 = performance.now();
  for (const f of files) {
    const enc = await encryptDocument(readFileSync(f), 'yaml', f, { keyGroups: [[newStanza('age', recipient)]], shamirThreshold: 0, rules }, sources);
    const plain = await decryptDocument(Buffer.from(enc), 'yaml', f, sources);
    if (plain.length === 0) throw new Error('empty decryption');
  }
  const ours = performance.now() - t0;

  // 1. batch, a loop of sops processes
  const t1 = performance.now();
  for (const f of files) {
    const enc = spawnSync(sops, ['encrypt', '--age', recipient, '--encrypted-regex', rules.encryptedRegex, f], { env });
    if (enc.status !== 0) throw new Error(`sops encrypt failed: ${enc.stderr.toString()}`);
    const out = `${f}.enc.yaml`;
    writeFileSync(out, enc.stdout);
    const dec = spawnSync(sops, ['decrypt', out], { env });
    if (dec.status !== 0) throw new Error(`sops decrypt failed: ${dec.stderr.toString()}`);
  }
  const theirs = performance.now() - t1;

  // 2. one small file with process start
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const time = (cmd: string, args: string[]): number => {
    const t = performance.now();
    const r = spawnSync(cmd, args, { env: { ...env, XDG_CONFIG_HOME: join(dir, 'none') } });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString()}`);
    return performance.now() - t;
  };
  const small = files[0] ?? '';
  const smallEnc = `${small}.enc.yaml`;
  const single = {
    ourEnc: [] as number[],
    sopsEnc: [] as number[],
    ourDec: [] as number[],
    sopsDec: [] as number[],
    bare: [] as number[],
    crypto: [] as number[],
  };
  for (let i = 0; i < reps; i++) {
    single.bare.push(time(process.execPath, ['-e', '0']));
    single.crypto.push(time(process.execPath, ['-e', 'require("node:crypto")']));
    single.ourEnc.push(time(process.execPath, [cli, 'encrypt', '--age', recipient, small]));
    single.sopsEnc.push(time(sops, ['encrypt', '--age', recipient, small]));
    single.ourDec.push(time(process.execPath, [cli, 'decrypt', smallEnc]));
    single.sopsDec.push(time(sops, ['decrypt', smallEnc]));
  }

  const ms = (x: number): string => `${x.toFixed(0)} ms`;
  const sopsVersion = (await $({ quiet: true })`${sops} --version --disable-version-check`).stdout.split('\n')[0] ?? '?';
  process.stdout.write(
    [
      `sops: ${sopsVersion}; node ${process.version}`,
      `batch of ${count} Secrets (5 keys each), encrypt + decrypt:`,
      `  fluxstrap, one process: ${ms(ours)} (${(ours / count).toFixed(2)} ms per file)`,
      `  sops, one process per step: ${ms(theirs)} (${(theirs / count).toFixed(1)} ms per file)`,
      `  fluxstrap is ${(theirs / ours).toFixed(1)}x faster (target: at least 20x)`,
      `single small file, process start included, median of ${reps}:`,
      `  encrypt: fluxstrap ${ms(median(single.ourEnc))}, sops ${ms(median(single.sopsEnc))} → ${(median(single.ourEnc) / median(single.sopsEnc)).toFixed(2)}x sops' time`,
      `  decrypt: fluxstrap ${ms(median(single.ourDec))}, sops ${ms(median(single.sopsDec))} → ${(median(single.ourDec) / median(single.sopsDec)).toFixed(2)}x sops' time (target: at most 1.5x)`,
      `  floor: node -e 0 ${ms(median(single.bare))} (${(median(single.bare) / median(single.sopsDec)).toFixed(2)}x sops decrypt), node loading node:crypto ${ms(median(single.crypto))} (${(median(single.crypto) / median(single.sopsDec)).toFixed(2)}x)`,
      '',
    ].join('\n'),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
