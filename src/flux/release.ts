import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, platform } from 'node:os';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { connectGitHub, githubError } from '../adapters/github.ts';
import { FluxstrapError } from '../core/errors.ts';

/**
 * A Flux release's manifests.tar.gz, found through GitHub's releases API, verified against the
 * release's published checksums (and GitHub's own asset digest), unpacked into the user cache
 * folder and reused from there. Only the YAML files a release holds are taken from the archive.
 */

const OWNER = 'fluxcd';
const REPO = 'flux2';
const MAX_ARCHIVE = 32 * 1024 * 1024;
const MAX_FILE = 8 * 1024 * 1024;
const VERIFIED = '.verified';

/** Where sops-style tools keep caches: XDG_CACHE_HOME, ~/Library/Caches, %LocalAppData%, ~/.cache. */
export function userCacheDir(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, home: string): string {
  if (env.XDG_CACHE_HOME) return env.XDG_CACHE_HOME;
  if (platform === 'darwin') return join(home, 'Library', 'Caches');
  if (platform === 'win32' && env.LOCALAPPDATA) return env.LOCALAPPDATA;
  return join(home, '.cache');
}

export async function releaseManifests(version: string, env: NodeJS.ProcessEnv, userAgent: string): Promise<string> {
  const dir = join(userCacheDir(platform(), env, env.HOME ?? homedir()), 'fluxstrap', 'flux', version);
  if ((await stat(join(dir, VERIFIED)).catch(() => undefined))?.isFile()) return dir;

  const gh = await connectGitHub({ env, userAgent });
  const where = `${OWNER}/${REPO} release ${version}`;
  const release = await gh.repos.getReleaseByTag({ owner: OWNER, repo: REPO, tag: version }).catch((e: unknown) => {
    throw githubError(
      e,
      `cannot find Flux ${version} on GitHub (${where})`,
      'check the version at https://github.com/fluxcd/flux2/releases, or pass --flux-manifests DIR',
    );
  });
  const sumsName = `flux_${version.replace(/^v/, '')}_checksums.txt`;
  const asset = (name: string) => {
    const a = release.data.assets.find((x) => x.name === name);
    if (!a) throw new FluxstrapError('E_NOT_FOUND', `${where} has no ${name}`, { hint: "pass --flux-manifests DIR with the release's manifests, unpacked" });
    return a;
  };
  const archive = asset('manifests.tar.gz');
  const sums = asset(sumsName);
  const download = async (a: { id: number; name: string; size: number }) => {
    if (a.size > MAX_ARCHIVE) throw new FluxstrapError('E_PRECONDITION', `${where}: ${a.name} is ${a.size} bytes, more than a Flux release's manifests`);
    const r = await gh.repos
      .getReleaseAsset({ owner: OWNER, repo: REPO, asset_id: a.id, headers: { accept: 'application/octet-stream' } })
      .catch((e: unknown) => {
        throw githubError(e, `cannot download ${a.name} of ${where}`);
      });
    return Buffer.from(r.data as unknown as ArrayBuffer);
  };
  const bytes = await download(archive);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const listed = (await download(sums))
    .toString('utf8')
    .split('\n')
    .map((l) => /^([0-9a-f]{64})\s+\*?(\S+)$/.exec(l.trim()))
    .find((m) => m?.[2] === 'manifests.tar.gz')?.[1];
  if (listed === undefined)
    throw new FluxstrapError('E_PRECONDITION', `${where}: ${sumsName} lists no checksum for manifests.tar.gz`, {
      hint: 'the release cannot be verified: pass --flux-manifests DIR with manifests you checked',
    });
  const digest = (archive as { digest?: string | null }).digest;
  if (sha !== listed || (digest && digest !== `sha256:${sha}`)) {
    throw new FluxstrapError('E_PRECONDITION', `${where}: manifests.tar.gz does not match its published checksum (sha256 ${sha}, expected ${listed})`, {
      hint: 'nothing was used or cached; try again, or pass --flux-manifests DIR',
    });
  }
  const files = await untarYaml(bytes, where);
  await mkdir(join(dir, '..'), { recursive: true });
  const tmp = await mkdtemp(`${dir}.tmp-`);
  try {
    for (const [name, text] of files) await writeFile(join(tmp, name), text);
    await writeFile(join(tmp, VERIFIED), `${sha}  manifests.tar.gz\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return dir;
}

/** The top-level *.yaml regular files of a gzipped tar (ustar/pax/gnu headers), bounded. */
async function untarYaml(gz: Buffer, where: string): Promise<Map<string, string>> {
  const { extract } = await import('tar-stream');
  const out = new Map<string, string>();
  const ex = extract();
  const bad = (why: string) => new FluxstrapError('E_CONFIG', `${where}: manifests.tar.gz ${why}`);
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const name = header.name.replace(/^\.\//, '');
      const wanted = header.type === 'file' && /^[a-z0-9-]+\.yaml$/.test(name);
      if (header.size !== undefined && header.size > MAX_FILE) return reject(bad(`holds a file of ${header.size} bytes (${name})`));
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        if (wanted && Buffer.isBuffer(c)) chunks.push(c);
      });
      stream.on('end', () => {
        if (wanted) out.set(name, Buffer.concat(chunks).toString('utf8'));
        next();
      });
      stream.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', () => reject(bad('is not a valid archive')));
  });
  const gunzip = createGunzip({ maxOutputLength: MAX_ARCHIVE * 4 });
  gunzip.on('error', () => ex.destroy(bad('is not gzip')));
  Readable.from(gz).pipe(gunzip).pipe(ex);
  await done;
  return out;
}
