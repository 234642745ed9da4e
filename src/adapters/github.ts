import type { Octokit } from '@octokit/rest';
import { FluxstrapError } from '../core/errors.ts';

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
  progress?: (message: string) => void;
  /** Base of the retry backoff in ms (octokit's default 1000); tests shorten it. */
  retryAfterBaseMs?: number;
}

const RATE_LIMIT_RETRIES = 3;

export async function connectGitHub(o: GitHubOptions): Promise<Octokit> {
  const [{ Octokit }, { retry }, { throttling }] = await Promise.all([import('@octokit/rest'), import('@octokit/plugin-retry'), import('@octokit/plugin-throttling')]);
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
    ...(token ? { auth: token } : {}),
    retry: { retries: 3, ...(base !== undefined ? { retryAfterBaseValue: base } : {}) },
    throttle: { onRateLimit: onLimit('rate limit'), onSecondaryRateLimit: onLimit('secondary rate limit'), ...(base !== undefined ? { retryAfterBaseValue: base, fallbackSecondaryRateRetryAfter: 1 } : {}) },
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
  const headers = typeof e === 'object' && e !== null && 'response' in e ? (e.response as { headers?: Record<string, unknown> } | undefined)?.headers : undefined;
  const v = headers?.[name];
  return typeof v === 'string' ? v : undefined;
}

/** An Octokit failure as one line: what was asked, GitHub's status and message, never the token. */
export function githubError(e: unknown, what: string, hint?: string): FluxstrapError {
  if (e instanceof FluxstrapError) return e;
  const status = githubStatus(e);
  const message = e instanceof Error ? e.message.split('\n')[0] ?? '' : String(e);
  const accepted = githubHeader(e, 'x-accepted-github-permissions');
  const code = status === 404 ? 'E_NOT_FOUND' : 'E_GITHUB';
  const answer = status === undefined ? message : `GitHub answered ${status}${message ? ` (${message})` : ''}`;
  return new FluxstrapError(code, `${what}: ${answer}${accepted ? `; the permissions GitHub accepts for this: ${accepted}` : ''}`, hint === undefined ? {} : { hint });
}
