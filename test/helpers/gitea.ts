import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { binaryPath, component, sourceDir } from '../cluster/components.ts';
import { PortAllocator } from '../cluster/ports.ts';
import { registerCanary } from './canary.ts';
import { tempDir } from './tmp.ts';

/**
 * A real Gitea (built from its Go module into the test cache by `npm run cluster:build --
 * --with-gitea`) on 127.0.0.1: SQLite, its built-in SSH server, an admin user and a write:repository
 * token made with its own CLI. Gitea refuses to run as root unless told, as on CI machines.
 */

export interface Gitea {
  apiUrl: string;
  /** `ssh://git@127.0.0.1:PORT/<owner>/<repo>.git`, served by Gitea's built-in SSH server to registered keys. */
  sshUrl(repo: string): string;
  user: string;
  /** A write:repository access token of `user` (a canary). */
  token: string;
  /** Call the API as `user`. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** The binary, and the module copy it was built in: built without bindata, it reads its locales and templates there. */
export function giteaBuild(): { bin: string; staticRoot: string } {
  const c = component('gitea');
  const bin = binaryPath(c, 'gitea');
  const staticRoot = sourceDir(c);
  for (const p of [bin, join(staticRoot, 'options', 'locale')]) assert.ok(existsSync(p), `${p} is missing: run npm run cluster:build -- --with-gitea`);
  return { bin, staticRoot };
}

export async function startGitea(): Promise<Gitea> {
  const { bin, staticRoot } = giteaBuild();
  const dir = await tempDir('gitea');
  const ports = new PortAllocator('gitea');
  const port = await ports.take();
  const sshPort = await ports.take();
  const config = join(dir, 'app.ini');
  writeFileSync(
    config,
    [
      'APP_NAME = fluxstrap-test',
      'RUN_MODE = prod',
      `WORK_PATH = ${dir}`,
      '[server]',
      `STATIC_ROOT_PATH = ${staticRoot}`,
      'HTTP_ADDR = 127.0.0.1',
      `HTTP_PORT = ${port}`,
      `ROOT_URL = http://127.0.0.1:${port}/`,
      'START_SSH_SERVER = true',
      'SSH_LISTEN_HOST = 127.0.0.1',
      'SSH_DOMAIN = 127.0.0.1',
      `SSH_PORT = ${sshPort}`,
      `SSH_LISTEN_PORT = ${sshPort}`,
      'BUILTIN_SSH_SERVER_USER = git',
      'OFFLINE_MODE = true',
      `APP_DATA_PATH = ${join(dir, 'data')}`,
      '[database]',
      'DB_TYPE = sqlite3',
      `PATH = ${join(dir, 'data', 'gitea.db')}`,
      '[repository]',
      `ROOT = ${join(dir, 'repos')}`,
      '[security]',
      'INSTALL_LOCK = true',
      `SECRET_KEY = ${randomBytes(24).toString('hex')}`,
      '[service]',
      'DISABLE_REGISTRATION = true',
      '[log]',
      'MODE = file',
      `ROOT_PATH = ${join(dir, 'log')}`,
      '[cron]',
      'ENABLED = false',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const env = { PATH: process.env.PATH, HOME: dir, GITEA_WORK_DIR: dir, GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT: 'true' };
  const cli = async (...args: string[]): Promise<string> =>
    (await promisify(execFile)(bin, [...args, '--config', config], { env, cwd: dir, timeout: 120_000 })).stdout.trim();
  await cli('migrate');
  const user = 'fleet-admin';
  await cli(
    'admin',
    'user',
    'create',
    '--admin',
    '--username',
    user,
    '--password',
    randomBytes(12).toString('hex'),
    '--email',
    'fleet@example.test',
    '--must-change-password=false',
  );
  const token =
    (await cli('admin', 'user', 'generate-access-token', '--username', user, '--token-name', 'fluxstrap', '--scopes', 'write:repository,write:user', '--raw'))
      .split('\n')
      .at(-1)
      ?.trim() ?? '';
  registerCanary(token);
  const child = spawn(bin, ['web', '--config', config], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-2000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const apiUrl = `http://127.0.0.1:${port}/api/v1`;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${apiUrl}${path}`, {
      method,
      headers: { authorization: `token ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gitea web exited (${String(child.exitCode)}): ${output}`);
    if (
      (await fetch(`${apiUrl}/version`).then(
        (r) => r.status,
        () => 0,
      )) === 200
    )
      break;
    if (Date.now() > deadline) throw new Error(`gitea did not answer in 60 s: ${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    apiUrl,
    sshUrl: (repo) => `ssh://git@127.0.0.1:${sshPort}/${user}/${repo}.git`,
    user,
    token,
    api,
    stop: async () => {
      running.delete(child);
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      ports.release();
    },
  };
}
