import type { Octokit } from '@octokit/rest';
import { readText } from '../adapters/files.ts';
import type { GitHubAppAuth } from '../cluster/config.ts';
import { FluxstrapError } from '../core/errors.ts';
import { version } from '../core/version.ts';

/**
 * GitHub App authentication, as source-controller does it with `provider: github`: a JWT signed
 * with the App's key (RS256, by @octokit/auth-app) buys an installation access token
 * (`POST /app/installations/{id}/access_tokens`), which then reads the repository. With
 * `installationOwner` the installation is the one GitHub names for the repository, and it must
 * belong to that owner. Each refusal names the setting to fix; the key and the tokens never
 * reach a message.
 */

export interface AppSession {
  /** Connected with the installation token. */
  gh: Octokit;
  installationId: string;
  /** Secret: the password of `x-access-token` for git over HTTPS. */
  token: string;
  permissions: Record<string, string>;
  /** How messages name who is calling: `GitHub App 123 (installation 456)`. */
  who: string;
}

export interface AppTarget {
  owner: string;
  repo: string;
  /** REST API; default the App's baseUrl, else api.github.com. */
  apiUrl?: string;
  env: NodeJS.ProcessEnv;
  log?: (message: string) => void;
}

const FIELD = 'git.auth.githubApp';

export async function githubAppSession(auth: GitHubAppAuth, t: AppTarget): Promise<AppSession> {
  const { checkAppPrivateKey, connectGitHub, githubError, githubStatus, mintInstallationToken } = await import('../adapters/github.ts');
  const privateKey = checkAppPrivateKey(await readText(auth.privateKeyFile, 'read the GitHub App private key'), {
    file: auth.privateKeyFile,
    field: `${FIELD}.privateKeyFile`,
  });
  const connect = (o: { token?: string; installationId?: string }) =>
    connectGitHub({
      env: t.env,
      userAgent: `fluxstrap/${version}`,
      ...((t.apiUrl ?? auth.baseUrl) ? { baseUrl: t.apiUrl ?? auth.baseUrl } : {}),
      ...(o.token !== undefined
        ? { token: o.token }
        : { app: { appId: auth.appId, privateKey, ...(o.installationId !== undefined ? { installationId: o.installationId } : {}) } }),
      ...(t.log ? { progress: t.log } : {}),
      ...(t.env.FLUXSTRAP_GITHUB_RETRY_BASE_MS ? { retryAfterBaseMs: Number(t.env.FLUXSTRAP_GITHUB_RETRY_BASE_MS) } : {}),
    });
  const app = `GitHub App ${auth.appId}`;
  const full = `${t.owner}/${t.repo}`;
  const refused = (e: unknown, what: string): FluxstrapError =>
    githubStatus(e) === 401
      ? githubError(
          e,
          `GitHub refused the JWT of ${app} (${what})`,
          `check ${FIELD}.appId (App settings → About → App ID) and that ${FIELD}.privateKeyFile is a current private key of that App`,
        )
      : githubError(e, `${app}: ${what}`, `check ${FIELD} and the App's installations (github.com/settings/installations)`);
  const unseen = (installation: string) =>
    new FluxstrapError('E_PRECONDITION', `${app}${installation} cannot see ${full}`, {
      location: { field: FIELD },
      hint: `give the installation access to ${full} (its settings → Repository access), or install the App on ${t.owner}`,
    });

  const asApp = await connect({});
  let installationId = auth.installationId;
  if (installationId === undefined) {
    const found = await asApp.rest.apps.getRepoInstallation({ owner: t.owner, repo: t.repo }).then(
      (r) => r.data,
      (e: unknown) => {
        if (githubStatus(e) === 404) throw unseen(' (no installation)');
        throw refused(e, `find the installation for ${full} (GET /repos/${full}/installation)`);
      },
    );
    const login = found.account !== null && 'login' in found.account ? found.account.login : undefined;
    if (login?.toLowerCase() !== auth.installationOwner?.toLowerCase()) {
      throw new FluxstrapError(
        'E_PRECONDITION',
        `${app} sees ${full} through its installation on ${login ?? 'another account'}, not on ${auth.installationOwner ?? ''}`,
        {
          location: { field: `${FIELD}.installationOwner` },
          hint: `set installationOwner: ${login ?? ''} (or installationId: ${found.id})`,
        },
      );
    }
    installationId = String(found.id);
  }
  const minted = await mintInstallationToken(asApp, installationId).catch((e: unknown) => {
    if (githubStatus(e) === 404) {
      throw new FluxstrapError('E_NOT_FOUND', `${app} has no installation ${installationId ?? ''}`, {
        location: { field: `${FIELD}.installationId` },
        hint: "the number ending the installation's settings URL (github.com/settings/installations/NUMBER), or set installationOwner instead",
      });
    }
    throw refused(e, `mint an installation token (POST /app/installations/${installationId ?? ''}/access_tokens)`);
  });
  const who = `${app} (installation ${installationId})`;
  const gh = await connect({ token: minted.token });
  await gh.rest.repos.get({ owner: t.owner, repo: t.repo }).catch((e: unknown) => {
    if (githubStatus(e) === 404) throw unseen(` (installation ${installationId ?? ''})`);
    throw githubError(
      e,
      `${who} may not read ${full}`,
      `grant the App Contents (read) and Metadata (read), then accept the new permissions on the installation`,
    );
  });
  const contents = minted.permissions.contents;
  if (contents !== 'read' && contents !== 'write') {
    throw new FluxstrapError('E_PRECONDITION', `${who} has no Contents permission on ${full}; Flux pulls need contents: read`, {
      hint: 'App settings → Permissions → Repository permissions → Contents: Read-only, then accept the new permissions on the installation',
    });
  }
  return { gh, installationId, token: minted.token, permissions: minted.permissions, who };
}
