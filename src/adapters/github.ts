import { createPrivateKey } from 'node:crypto';
import type { Octokit } from '@octokit/rest';
import { FluxstrapError } from '../core/errors.ts';
import type { Location } from '../core/errors.ts';

/**
 * GitHub's REST API through @octokit/rest, loaded only when a command talks to GitHub. The token
 * comes from the environment (GITHUB_TOKEN unless named otherwise) and never reaches a message;
 * FLUXSTRAP_GITHUB_API_URL points it at GitHub Enterprise Server (or a test stand-in).
 * Rate limits (primary and secondary) and 5xx answers are retried with backoff by octokit's
 * throttling and retry plugins; each wait is reported through `progress`.
 */
export interface GitHubOptions {
  env: NodeJS.ProcessEnv;
  tokenEnv?: string;
  baseUrl?: string;
  userAgent: string;
  /** A token obtained otherwise (a GitHub App installation token); wins over tokenEnv. */
  token?: string;
  /** Authenticate as a GitHub App (a JWT signed with its key; an installation token once installationId is known). */
  app?: GitHubAppCredentials;
  progress?: (message: string) => void;
  /** Base of the retry backoff in ms (octokit's default 1000); tests shorten it. */
  retryAfterBaseMs?: number;
}

const RATE_LIMIT_RETRIES = 3;
const REQUEST_TIMEOUT_MS = 60_000;

export interface GitHubAppCredentials {
  appId: string;
  /** PEM text. Secret: never in a message. */
  privateKey: string;
  installationId?: string;
}

export async function connectGitHub(o: GitHubOptions): Promise<Octokit> {
  const [{ Octokit }, { retry }, { throttling }, appAuth] = await Promise.all([
    import('@octokit/rest'),
    import('@octokit/plugin-retry'),
    import('@octokit/plugin-throttling'),
    o.app && o.token === undefined ? import('@octokit/auth-app') : undefined,
  ]);
  const token = o.token ?? o.env[o.tokenEnv ?? 'GITHUB_TOKEN'];
  const progress = o.progress ?? (() => undefined);
  const onLimit = (kind: string) => (retryAfter: number, options: { method: string; url: string }, _octokit: unknown, retryCount: number) => {
    if (retryCount >= RATE_LIMIT_RETRIES) return false;
    progress(`GitHub ${kind} on ${options.method} ${options.url}: retrying in ${retryAfter}s`);
    return true;
  };
  const base = o.retryAfterBaseMs;
  return new (Octokit.plugin(retry, throttling))({
    baseUrl: o.baseUrl ?? o.env.FLUXSTRAP_GITHUB_API_URL ?? 'https://api.github.com',
    userAgent: o.userAgent,
    ...(appAuth && o.app
      ? {
          authStrategy: appAuth.createAppAuth,
          auth: { appId: o.app.appId, privateKey: o.app.privateKey, ...(o.app.installationId !== undefined ? { installationId: o.app.installationId } : {}) },
        }
      : token
        ? { auth: token }
        : {}),
    // Each request gives up after REQUEST_TIMEOUT_MS: a server that never answers must not hang a run.
    request: { fetch: (url: string, init?: RequestInit) => fetch(url, { ...init, signal: init?.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS) }) },
    retry: { retries: 3, ...(base !== undefined ? { retryAfterBaseValue: base } : {}) },
    throttle: {
      onRateLimit: onLimit('rate limit'),
      onSecondaryRateLimit: onLimit('secondary rate limit'),
      ...(base !== undefined ? { retryAfterBaseValue: base, fallbackSecondaryRateRetryAfter: 1 } : {}),
    },
    // Octokit logs request failures with console.warn/error; fluxstrap reports them itself.
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  });
}

/** The HTTP status of an Octokit failure, undefined for a network error. */
export function githubStatus(e: unknown): number | undefined {
  return typeof e === 'object' && e !== null && 'status' in e ? Number(e.status) : undefined;
}

/** A response header of an Octokit failure (GitHub's `x-accepted-github-permissions`, …). */
export function githubHeader(e: unknown, name: string): string | undefined {
  const headers =
    typeof e === 'object' && e !== null && 'response' in e ? (e.response as { headers?: Record<string, unknown> } | undefined)?.headers : undefined;
  const v = headers?.[name];
  return typeof v === 'string' ? v : undefined;
}

/** An installation access token minted for the App's installation (`POST /app/installations/{id}/access_tokens`). */
export interface InstallationToken {
  /** Secret: never in a message. */
  token: string;
  permissions: Record<string, string>;
  expiresAt: string;
}

/** Mint an installation token through an Octokit connected with `app` (auth-app signs the JWT). */
export async function mintInstallationToken(gh: Octokit, installationId: string): Promise<InstallationToken> {
  const a = (await gh.auth({ type: 'installation', installationId, refresh: true })) as {
    token: string;
    permissions?: Record<string, string>;
    expiresAt: string;
  };
  return { token: a.token, permissions: a.permissions ?? {}, expiresAt: a.expiresAt };
}

/**
 * A GitHub App private key as GitHub hands it out: an RSA key in PEM (PKCS#1 or PKCS#8). Checked
 * before anything is asked of GitHub, so a wrong file is one line naming the file, never its content.
 */
export function checkAppPrivateKey(text: string, location: Location): string {
  const hint = 'name the .pem file GitHub generated for the App (App settings → Private keys → Generate a private key)';
  if (!/^-----BEGIN (RSA )?PRIVATE KEY-----/m.test(text))
    throw new FluxstrapError('E_CONFIG', 'the GitHub App private key is not a PEM private key', { location, hint });
  let type: string | undefined;
  try {
    type = createPrivateKey(text).asymmetricKeyType;
  } catch {
    throw new FluxstrapError('E_CONFIG', 'the GitHub App private key is not a valid PEM private key', { location, hint });
  }
  if (type !== 'rsa')
    throw new FluxstrapError('E_CONFIG', `the GitHub App private key is ${type ?? 'an unknown'} key; GitHub Apps sign with RSA`, { location, hint });
  return text;
}

/** An Octokit failure as one line: what was asked, GitHub's status and message, never the token. */
export function githubError(e: unknown, what: string, hint?: string): FluxstrapError {
  if (e instanceof FluxstrapError) return e;
  const status = githubStatus(e);
  const message = e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e);
  const accepted = githubHeader(e, 'x-accepted-github-permissions');
  const code = status === 404 ? 'E_NOT_FOUND' : 'E_GITHUB';
  const answer = status === undefined ? message : `GitHub answered ${status}${message ? ` (${message})` : ''}`;
  // Verbatim, as GitHub wrote it: alternatives separated by `;`, each a `,`-separated set.
  const needs = accepted !== undefined && (status === 403 || status === 404) ? `; GitHub's X-Accepted-GitHub-Permissions: ${accepted}` : '';
  return new FluxstrapError(code, `${what}: ${answer}${needs}`, hint === undefined ? {} : { hint });
}
