import { relative, isAbsolute } from 'node:path';
import { z } from 'zod';
import { readTextIfExists, writeAtomic } from '../adapters/files.ts';
import { scanHostKeys } from '../adapters/ssh-scan.ts';
import { isGitHubUrl } from '../cluster/config.ts';
import type { ResolvedCluster } from '../cluster/config.ts';
import type { Change } from '../core/change.ts';
import { FluxstrapError } from '../core/errors.ts';
import { version } from '../core/version.ts';
import type { TaskKind } from '../core/task.ts';
import { sshPublicKeyOf } from '../keys/ssh.ts';

/**
 * The known_hosts file Flux checks the Git server with. A missing file is filled from a source
 * that needs no trust on first use (GitHub's `GET /meta`, over HTTPS) or from a scan whose key
 * the user confirmed by fingerprint (--accept-host-key); nothing is trusted silently. An existing
 * file is checked against what the server offers now, so a changed host key stops the run before
 * anything changes, as ssh itself would refuse to connect.
 */
const Params = z.strictObject({
  file: z.string().min(1).optional().describe("known_hosts file; default the cluster's git.auth.ssh.knownHostsFile."),
  url: z.string().min(1).optional().describe("ssh:// URL of the Git server; default the cluster's git.url."),
  acceptHostKey: z.string().min(1).optional().describe("Fingerprint (SHA256:…) of the scanned host key to trust, as confirmed with the server's admin."),
  verify: z.boolean().default(true).describe('Check an existing file against the key the server offers now.'),
});
type Params = z.infer<typeof Params>;

export interface KnownHostsContext {
  readonly cluster?: ResolvedCluster;
  readonly env: NodeJS.ProcessEnv;
  readonly paths: { readonly repo: string };
}

type Facts = { none: true } | { file: string; host: string; content?: string; want?: string; source: string };

/** Host and port of an ssh:// URL; undefined for anything else. */
export function sshHostOf(url: string): { host: string; port: number } | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'ssh:' || u.hostname === '') return undefined;
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? 22 : Number(u.port) };
}

const hostEntry = (host: string, port: number) => (port === 22 ? host : `[${host}]:${port}`);
const bare = (fp: string) => fp.replace(/^SHA256:/, '').replace(/=+$/, '');

/** What the server offers, as known_hosts lines, and whether that source is trusted as is. */
async function offered(url: string, host: string, port: number, ctx: KnownHostsContext): Promise<{ lines: string[]; trusted: boolean; source: string }> {
  const github = ctx.cluster?.git.github;
  if (isGitHubUrl(url) || (github !== undefined && ctx.cluster?.git.url === url)) {
    const { connectGitHub, githubError } = await import('../adapters/github.ts');
    const gh = await connectGitHub({
      env: ctx.env,
      userAgent: `fluxstrap/${version}`,
      ...(github ? { baseUrl: github.apiUrl, tokenEnv: github.tokenEnv } : {}),
    });
    try {
      const { data } = await gh.rest.meta.get();
      return { lines: (data.ssh_keys ?? []).map((k) => `${hostEntry(host, port)} ${k}`), trusted: true, source: "GitHub's /meta" };
    } catch (e) {
      throw githubError(e, "GitHub's SSH host keys (GET /meta)", 'check the network, or give a known_hosts file with --git-known-hosts');
    }
  }
  return { lines: await scanHostKeys(host, port, 15_000), trusted: false, source: 'ssh-keyscan' };
}

const describeKeys = (lines: string[]) =>
  lines
    .map((l) => sshPublicKeyOf(l))
    .filter((k) => k !== undefined)
    .map((k) => `${k.fingerprint} (${k.type})`)
    .join(', ');

export const knownHostsKind: TaskKind<Params, Facts, KnownHostsContext> = {
  kind: 'known-hosts',
  params: Params,
  async observe(p, ctx) {
    const auth = ctx.cluster?.git.auth;
    const file = p.file ?? (auth?.type === 'ssh' ? auth.knownHostsFile : undefined);
    const url = p.url ?? ctx.cluster?.git.url;
    const at = url === undefined ? undefined : sshHostOf(url);
    if (file === undefined || url === undefined || at === undefined) return { none: true };
    const { host, port } = at;
    const content = await readTextIfExists(file, 'read the known_hosts file');
    if (content !== undefined && !p.verify) return { file, host, content, source: 'file' };
    const server = await offered(url, host, port, ctx);
    if (content !== undefined) {
      const known = new Set(
        content
          .split('\n')
          .map((l) => sshPublicKeyOf(l)?.blob.toString('base64'))
          .filter((b) => b !== undefined),
      );
      if (!server.lines.some((l) => known.has(sshPublicKeyOf(l)?.blob.toString('base64') ?? ''))) {
        throw new FluxstrapError(
          'E_PRECONDITION',
          `the SSH host key of ${hostEntry(host, port)} changed: it offers ${describeKeys(server.lines)}, none of them in known_hosts`,
          {
            location: { file },
            hint: "someone may be intercepting the connection; if the server's key was replaced on purpose, confirm the new fingerprint with its admin, remove the old line and pass --accept-host-key FINGERPRINT",
          },
        );
      }
      return { file, host, content, source: server.source };
    }
    let lines = server.lines;
    if (!server.trusted) {
      const accepted = p.acceptHostKey === undefined ? [] : lines.filter((l) => bare(sshPublicKeyOf(l)?.fingerprint ?? '') === bare(p.acceptHostKey ?? ''));
      if (accepted.length === 0) {
        throw new FluxstrapError('E_PRECONDITION', `the SSH host key of ${hostEntry(host, port)} is not confirmed: it offers ${describeKeys(lines)}`, {
          hint:
            p.acceptHostKey === undefined
              ? "check the fingerprint with the server's admin (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on it), then pass --accept-host-key SHA256:…, or give a known_hosts file with --git-known-hosts"
              : `--accept-host-key ${p.acceptHostKey} is none of them: the server is not the one you checked, or the fingerprint was mistyped`,
        });
      }
      lines = accepted;
    }
    return {
      file,
      host,
      want: lines.map((l) => `${l}\n`).join(''),
      source: server.trusted ? server.source : `the scanned key ${p.acceptHostKey ?? ''} you accepted`,
    };
  },
  plan(_p, facts): Change[] {
    if ('none' in facts || facts.want === undefined) return [];
    return [{ action: 'create', target: `file ${facts.file}`, summary: `SSH host keys of ${facts.host} from ${facts.source}`, after: facts.want, data: facts }];
  },
  async apply(change, _p, ctx) {
    const facts = change.data as { file: string; want: string };
    const rel = relative(ctx.paths.repo, facts.file);
    const inRepo = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
    await writeAtomic(facts.file, facts.want, { exclusive: true, ...(inRepo ? { within: ctx.paths.repo } : {}) });
  },
};
