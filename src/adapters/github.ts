import type { Octokit } from '@octokit/rest';
import { FluxstrapError } from '../core/errors.ts';

/**
 * GitHub's REST API through @octokit/rest, loaded only when a command talks to GitHub. The token
 * comes from the environment (GITHUB_TOKEN unless named otherwise) and never reaches a message;
 * FLUXSTRAP_GITHUB_API_URL points it at GitHub Enterprise Server (or a test stand-in).
 */
export interface GitHubOptions {
  env: NodeJS.ProcessEnv;
  tokenEnv?: string;
  baseUrl?: string;
  userAgent: string;
}

export async function connectGitHub(o: GitHubOptions): Promise<Octokit> {
  const { Octokit } = await import('@octokit/rest');
  const token = o.env[o.tokenEnv ?? 'GITHUB_TOKEN'];
  return new Octokit({
    baseUrl: o.baseUrl ?? o.env.FLUXSTRAP_GITHUB_API_URL ?? 'https://api.github.com',
    userAgent: o.userAgent,
    ...(token ? { auth: token } : {}),
    // Octokit logs request failures with console.warn/error; fluxstrap reports them itself.
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  });
}

/** An Octokit failure as one line: what was asked, GitHub's status and message, never the token. */
export function githubError(e: unknown, what: string, hint?: string): FluxstrapError {
  const status = typeof e === 'object' && e !== null && 'status' in e ? Number((e).status) : undefined;
  const message = e instanceof Error ? e.message.split('\n')[0] ?? '' : String(e);
  const code = status === 404 ? 'E_NOT_FOUND' : 'E_GITHUB';
  return new FluxstrapError(code, `${what}: ${status === undefined ? message : `GitHub answered ${status}${message ? ` (${message})` : ''}`}`, hint === undefined ? {} : { hint });
}
