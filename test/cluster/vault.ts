// A real Vault dev server (in-memory storage, unsealed) with the transit engine, for the hc_vault
// tests. Built by `npm run cluster:build -- --with-vault` (components.ts). The root token and
// the listen address reach it through its environment, never argv; HOME is the server's own
// directory so that nothing is written to the user's ~/.vault-token.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { binaryPath, component } from './components.ts';
import { PortAllocator } from './ports.ts';
import { Service, tail, waitFor } from './proc.ts';

export interface VaultDev {
  /** `http://127.0.0.1:<port>` */
  readonly address: string;
  readonly rootToken: string;
  /** A Vault API call as root (or with `token`); the parsed answer, or an error with Vault's reason. */
  api(method: string, path: string, body?: unknown, token?: string): Promise<Record<string, unknown>>;
  /** A transit key named `name` in the engine mounted at `transit`. */
  createKey(name: string, engine?: string): Promise<void>;
  /** A token whose only policy allows encrypt and decrypt with these keys (`engine/name`). */
  tokenFor(keys: readonly string[]): Promise<string>;
  logTail(): string;
  stop(): Promise<void>;
}

export function vaultBinary(): string {
  const bin = binaryPath(component('vault'), 'vault');
  if (!existsSync(bin)) throw new Error(`the Vault dev server is not built (missing ${bin}): run \`npm run cluster:build -- --with-vault\``);
  return bin;
}

export async function startVault(dir: string): Promise<VaultDev> {
  const bin = vaultBinary();
  const ports = new PortAllocator(`vault ${dir}`);
  const port = await ports.take();
  const address = `http://127.0.0.1:${port}`;
  const rootToken = `root-${randomBytes(12).toString('hex')}`;
  const home = join(dir, 'vault-home');
  const pids = join(dir, 'vault-pids');
  mkdirSync(home, { recursive: true });
  mkdirSync(pids, { recursive: true });
  const server = new Service({
    name: 'vault',
    cmd: bin,
    args: ['server', '-dev', '-dev-no-store-token'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: home,
      VAULT_DEV_ROOT_TOKEN_ID: rootToken,
      VAULT_DEV_LISTEN_ADDRESS: `127.0.0.1:${port}`,
      VAULT_DISABLE_USER_LOCKOUT: 'true',
    },
    logsDir: dir,
    pidsDir: pids,
  });
  const onExit = (): void => server.kill();
  process.once('exit', onExit);

  const api = async (method: string, path: string, body?: unknown, token = rootToken): Promise<Record<string, unknown>> => {
    const res = await fetch(`${address}/v1/${path}`, {
      method,
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  };

  const stop = async (): Promise<void> => {
    process.removeListener('exit', onExit);
    await server.stop();
    ports.release();
  };
  try {
    await waitFor(
      'the Vault dev server to answer /v1/sys/health',
      async () => {
        const res = await fetch(`${address}/v1/sys/health`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      { timeoutMs: 60_000, abort: () => (server.alive ? undefined : `vault exited:\n${tail(server.logFile)}`) },
    );
    await api('POST', 'sys/mounts/transit', { type: 'transit' });
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    address,
    rootToken,
    api,
    createKey: async (name, engine = 'transit') => {
      await api('POST', `${engine}/keys/${name}`, {});
    },
    tokenFor: async (keys) => {
      const policy = `sops-${randomBytes(4).toString('hex')}`;
      const rules = keys
        .map((k) => {
          const [engine, name] = [k.slice(0, k.lastIndexOf('/')), k.slice(k.lastIndexOf('/') + 1)];
          return `path "${engine}/encrypt/${name}" { capabilities = ["update"] }\npath "${engine}/decrypt/${name}" { capabilities = ["update"] }`;
        })
        .join('\n');
      await api('PUT', `sys/policies/acl/${policy}`, { policy: rules });
      const created = await api('POST', 'auth/token/create', { policies: [policy], no_default_policy: true, ttl: '1h' });
      const token = (created.auth as { client_token?: string } | undefined)?.client_token;
      if (!token) throw new Error('Vault created no token');
      return token;
    },
    logTail: () => tail(server.logFile),
    stop,
  };
}
