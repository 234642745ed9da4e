// A Git server on loopback for source-controller and for tests: smart HTTP with Basic auth
// (git http-backend as CGI) and SSH with one deploy key (ssh2, spawning git upload-pack /
// receive-pack). Pushing to a repository path that does not exist yet creates it.
import { spawn } from 'node:child_process';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { run } from './proc.ts';

export interface GitServerInfo {
  /** http://127.0.0.1:PORT — repositories are at `${httpBase}/<path>`. */
  httpBase: string;
  username: string;
  password: string;
  /** ssh://git@127.0.0.1:PORT — repositories are at `${sshBase}/<path>`. */
  sshBase: string;
  /** OpenSSH private key of the deploy key the SSH server accepts. */
  sshPrivateKeyPath: string;
  sshPublicKey: string;
  /** One known_hosts line: `[127.0.0.1]:PORT ssh-ed25519 AAAA…`. */
  knownHosts: string;
  reposDir: string;
}

export interface GitServer extends GitServerInfo {
  httpUrl: (repo: string) => string;
  sshUrl: (repo: string) => string;
  /** Accept one more deploy key (an authorized_keys line), as a forge does once a key is registered. */
  authorize: (publicKey: string) => void;
  /**
   * Also accept the keys `registered` holds at each connection (`type base64` lines), as a forge
   * accepts the deploy keys registered through its API at that moment: a key deleted there is refused.
   */
  acceptRegistered: (registered: () => readonly string[]) => void;
  /**
   * Accept more HTTP basic-auth credentials, as a forge accepts the tokens it issued (GitHub: an
   * App installation token as the password of `x-access-token`): `verify` sees the user name, the
   * password and the repository path (`acme/fleet.git`).
   */
  acceptBasic: (verify: BasicVerifier) => void;
  /** Each HTTP request let in by an acceptBasic verifier: who, with what, where, and which client (User-Agent). */
  readonly verifiedLogins: readonly VerifiedLogin[];
  stop: () => Promise<void>;
  /** Takes both listeners down (connections refused) until up(), to fault a run. */
  down: () => Promise<void>;
  /** Listens again on the same ports, so URLs and known_hosts stay valid. */
  up: () => Promise<void>;
}

export type BasicVerifier = (username: string, password: string, repo: string) => boolean;
export interface VerifiedLogin {
  username: string;
  password: string;
  repo: string;
  userAgent: string;
}

const SERVICE_SUFFIX = /^\/(.+?)\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const SSH_COMMAND = /^(git-upload-pack|git-receive-pack) '?\/?([^']+?)'?$/;

/** Repository paths are plain relative names like `fleet.git` or `org/fleet`. */
function safeRepoPath(path: string): string | undefined {
  const segments = path.split('/');
  return segments.every((s) => /^[\w.-]+$/.test(s) && s !== '.' && s !== '..') ? segments.join('/') : undefined;
}

async function ensureRepo(reposDir: string, repo: string, create: boolean): Promise<string | undefined> {
  const dir = join(reposDir, repo);
  if (existsSync(join(dir, 'HEAD'))) return dir;
  if (!create) return undefined;
  mkdirSync(dir, { recursive: true });
  await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', dir]);
  return dir;
}

export async function startGitServer(dir: string): Promise<GitServer> {
  const reposDir = join(dir, 'repos');
  const keysDir = join(dir, 'ssh');
  mkdirSync(reposDir, { recursive: true });
  mkdirSync(keysDir, { recursive: true });
  const username = 'fluxstrap';
  const password = randomBytes(16).toString('hex');

  const keygen = (file: string, comment: string): Promise<string> =>
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', join(keysDir, file)]);
  await Promise.all([keygen('host_ed25519', 'fluxstrap-test-git-host'), keygen('deploy_ed25519', 'fluxstrap-test-deploy-key')]);
  const hostKey = readFileSync(join(keysDir, 'host_ed25519'));
  const hostPublic = readFileSync(join(keysDir, 'host_ed25519.pub'), 'utf8').trim();
  const deployPublic = readFileSync(join(keysDir, 'deploy_ed25519.pub'), 'utf8').trim();

  const verifiers: BasicVerifier[] = [];
  const verifiedLogins: VerifiedLogin[] = [];
  const login: Login = { username, password, verifiers, verifiedLogins };
  const http = createServer((req, res) => {
    handleHttp(req, res, reposDir, login).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  const deployKey = ssh2.utils.parseKey(deployPublic);
  if (deployKey instanceof Error) throw deployKey;
  const allowed: ssh2.ParsedKey[] = [deployKey];
  let registered: () => readonly string[] = () => [];
  const acceptedKeys = (): ssh2.ParsedKey[] => [
    ...allowed,
    ...registered().flatMap((line) => {
      const parsed = ssh2.utils.parseKey(line);
      return parsed instanceof Error ? [] : [parsed];
    }),
  ];
  const ssh = new ssh2.Server({ hostKeys: [hostKey] }, (client) => handleSshClient(client, reposDir, acceptedKeys));
  // A client that drops mid-handshake must not take the test process down.
  ssh.on('error', () => undefined);

  const listen = (server: HttpServer | ssh2.Server, port = 0): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  const close = async (): Promise<void> => {
    http.closeAllConnections();
    await Promise.all([new Promise<void>((resolve) => http.close(() => resolve())), new Promise<void>((resolve) => ssh.close(() => resolve()))]);
  };
  const [httpPort, sshPort] = await Promise.all([listen(http), listen(ssh)]);
  const httpBase = `http://127.0.0.1:${httpPort}`;
  const sshBase = `ssh://git@127.0.0.1:${sshPort}`;
  const [keyType = '', keyData = ''] = hostPublic.split(' ');
  return {
    httpBase,
    username,
    password,
    sshBase,
    sshPrivateKeyPath: join(keysDir, 'deploy_ed25519'),
    sshPublicKey: deployPublic,
    knownHosts: `[127.0.0.1]:${sshPort} ${keyType} ${keyData}`,
    reposDir,
    httpUrl: (repo) => `${httpBase}/${repo}`,
    sshUrl: (repo) => `${sshBase}/${repo}`,
    authorize: (publicKey) => {
      const parsed = ssh2.utils.parseKey(publicKey);
      if (parsed instanceof Error) throw parsed;
      allowed.push(parsed);
    },
    acceptRegistered: (keys) => {
      registered = keys;
    },
    acceptBasic: (verify) => verifiers.push(verify),
    verifiedLogins,
    stop: close,
    down: close,
    up: async () => {
      await Promise.all([listen(http, httpPort), listen(ssh, sshPort)]);
    },
  };
}

interface Login {
  username: string;
  password: string;
  verifiers: readonly BasicVerifier[];
  verifiedLogins: VerifiedLogin[];
}

/** The cluster's own user and password, else any acceptBasic verifier (its login recorded). */
function authorized(req: IncomingMessage, login: Login, repo: string): boolean {
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return false;
  const given = Buffer.from(header.slice(6), 'base64');
  const expected = Buffer.from(`${login.username}:${login.password}`);
  if (given.length === expected.length && timingSafeEqual(given, expected)) return true;
  const text = given.toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return false;
  const [user, pass] = [text.slice(0, colon), text.slice(colon + 1)];
  if (!login.verifiers.some((v) => v(user, pass, repo))) return false;
  login.verifiedLogins.push({ username: user, password: pass, repo, userAgent: String(req.headers['user-agent'] ?? '') });
  return true;
}

async function handleHttp(req: IncomingMessage, res: ServerResponse, reposDir: string, login: Login): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const match = SERVICE_SUFFIX.exec(url.pathname);
  const repo = match?.[1] === undefined ? undefined : safeRepoPath(match[1]);
  if (!authorized(req, login, repo ?? '')) {
    res.writeHead(401, { 'www-authenticate': 'Basic realm="fluxstrap-test-git"' });
    res.end();
    return;
  }
  if (match === null || repo === undefined) {
    res.writeHead(404).end();
    return;
  }
  const pushing = url.searchParams.get('service') === 'git-receive-pack' || match[2] === 'git-receive-pack';
  if ((await ensureRepo(reposDir, repo, pushing)) === undefined) {
    res.writeHead(404).end();
    return;
  }
  const cgi = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: reposDir,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: `/${repo}/${match[2]}`,
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      // Git compresses large push bodies; http-backend inflates them when told.
      HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
      HTTP_GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      // http-backend only enables receive-pack for authenticated users.
      REMOTE_USER: login.username,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  // A client that hangs up, or a backend that exits early, must not crash the test process.
  cgi.stdin.on('error', () => undefined);
  cgi.on('error', (err) => {
    if (!res.headersSent) res.writeHead(500);
    res.end(String(err));
  });
  req.pipe(cgi.stdin);
  await pipeCgiResponse(cgi.stdout, res);
}

/** Splits the CGI header block from the body and streams the body. */
function pipeCgiResponse(out: NodeJS.ReadableStream, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let headersDone = false;
    out.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'status') status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    out.on('end', () => {
      if (!headersDone) res.writeHead(502);
      res.end();
      resolve();
    });
    out.on('error', reject);
  });
}

function handleSshClient(client: ssh2.Connection, reposDir: string, acceptedKeys: () => readonly ssh2.ParsedKey[]): void {
  client.on('error', () => undefined);
  client.on('authentication', (ctx) => {
    const allowed =
      ctx.method === 'publickey'
        ? acceptedKeys().find(
            (k) => ctx.key.algo === k.type && ctx.key.data.length === k.getPublicSSH().length && timingSafeEqual(ctx.key.data, k.getPublicSSH()),
          )
        : undefined;
    if (ctx.method !== 'publickey' || ctx.username !== 'git' || allowed === undefined) {
      ctx.reject(['publickey']);
      return;
    }
    // Without a signature the client only asks whether this key would be accepted.
    if (ctx.signature !== undefined && allowed.verify(ctx.blob ?? Buffer.alloc(0), ctx.signature, ctx.hashAlgo) !== true) {
      ctx.reject(['publickey']);
      return;
    }
    ctx.accept();
  });
  client.on('ready', () => {
    client.on('session', (acceptSession) => {
      const session = acceptSession();
      session.on('exec', (accept, reject, info) => {
        const match = SSH_COMMAND.exec(info.command);
        const repo = match?.[2] === undefined ? undefined : safeRepoPath(match[2]);
        if (match?.[1] === undefined || repo === undefined) {
          reject();
          return;
        }
        const command = match[1];
        const stream = accept();
        ensureRepo(reposDir, repo, command === 'git-receive-pack').then(
          (dir) => {
            if (dir === undefined) {
              stream.stderr.write(`fatal: repository '${repo}' does not exist\n`);
              stream.exit(128);
              stream.end();
              return;
            }
            const git = spawn('git', [command.slice('git-'.length), dir], { stdio: ['pipe', 'pipe', 'pipe'] });
            git.stdin.on('error', () => undefined);
            stream.on('error', () => undefined);
            stream.pipe(git.stdin);
            git.stdout.pipe(stream, { end: false });
            git.stderr.pipe(stream.stderr, { end: false });
            git.on('error', (err) => stream.stderr.write(`fatal: ${err.message}\n`));
            git.on('close', (code) => {
              stream.exit(code ?? 1);
              stream.end();
            });
          },
          (err: unknown) => {
            stream.stderr.write(`fatal: ${String(err)}\n`);
            stream.exit(1);
            stream.end();
          },
        );
      });
    });
  });
}
