import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { binaryPath, component } from '../cluster/components.ts';
import { registerCanary } from './canary.ts';
import { tempDir } from './tmp.ts';

/**
 * local-kms (built from its Go module into the test cache by `npm run cluster:build --
 * --with-local-kms`): a real AWS KMS API on 127.0.0.1 for fluxstrap, sops and kustomize-controller,
 * reached through AWS_ENDPOINT_URL_KMS. It checks no signature, so any credentials pass; the
 * environment gives random ones registered as canaries, so a test sees any that leak.
 */

export const LOCAL_KMS_REGION = 'eu-west-2';
export const LOCAL_KMS_ACCOUNT = '111122223333';

export interface LocalKms {
  endpoint: string;
  /** ARNs of the seeded AES keys, and of an alias to the first. */
  keys: [string, string];
  alias: string;
  /** What a client needs: endpoint, region and (random, unchecked) static credentials. */
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export function localKmsBinary(): string {
  const bin = binaryPath(component('local-kms'), 'local-kms');
  assert.ok(existsSync(bin), `${bin} is missing: run npm run cluster:build -- --with-local-kms`);
  return bin;
}

export async function startLocalKms(): Promise<LocalKms> {
  const bin = localKmsBinary();
  const dir = await tempDir('local-kms');
  const ids = [randomUUID(), randomUUID()] as const;
  const seed = [
    'Keys:',
    '  Symmetric:',
    '    Aes:',
    ...ids.flatMap((id) => ['      - Metadata:', `          KeyId: ${id}`, '        BackingKeys:', `          - ${randomBytes(32).toString('hex')}`]),
    'Aliases:',
    '  - AliasName: alias/fluxstrap-test',
    `    TargetKeyId: ${ids[0]}`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'seed.yaml'), seed);
  const child = spawn(bin, [], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      KMS_REGION: LOCAL_KMS_REGION,
      KMS_ACCOUNT_ID: LOCAL_KMS_ACCOUNT,
      KMS_SEED_PATH: join(dir, 'seed.yaml'),
      KMS_DATA_PATH: join(dir, 'data'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const port = await new Promise<string>((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`local-kms did not start in 20 s: ${log.slice(-500)}`)), 20_000);
    const onData = (d: Buffer): void => {
      log += d.toString();
      const m = /Local KMS started on 0\.0\.0\.0:(\d+)/.exec(log);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`local-kms exited (${String(code)}): ${log.slice(-500)}`));
    });
  });
  const arn = (id: string): string => `arn:aws:kms:${LOCAL_KMS_REGION}:${LOCAL_KMS_ACCOUNT}:key/${id}`;
  const accessKeyId = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(20).toString('base64url');
  registerCanary(accessKeyId);
  registerCanary(secretAccessKey);
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    keys: [arn(ids[0]), arn(ids[1])],
    alias: `arn:aws:kms:${LOCAL_KMS_REGION}:${LOCAL_KMS_ACCOUNT}:alias/fluxstrap-test`,
    env: {
      AWS_ENDPOINT_URL_KMS: endpoint,
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
      AWS_REGION: LOCAL_KMS_REGION,
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    stop: async () => {
      running.delete(child);
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
