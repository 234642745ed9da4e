import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { runCli, runCliAsync } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { GitHubStandIn, resources } from '../helpers/github-standin.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { runTool } from '../helpers/tools.ts';
import { DEFAULT_FLUX_VERSION, loadManifests } from '../../src/flux/manifests.ts';

/**
 * Flux versions fluxstrap does not ship come from the release on GitHub: found through the
 * releases API (a stand-in validating every request and response against GitHub's OpenAPI
 * description), checked against the release's checksums, cached.
 */

let home: string;
let keyFile: string;
let gh: GitHubStandIn;
const releases = new Map<string, { id: number; assets: Record<string, unknown>[] }>();
const assetBytes = new Map<number, Buffer>();
let nextId = 100;

async function tarGz(files: Map<string, string>): Promise<Buffer> {
  const p = pack();
  for (const [name, text] of files) p.entry({ name, size: Buffer.byteLength(text) }, text);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

/** A release as flux2 publishes one: manifests.tar.gz and flux_<v>_checksums.txt (or a tampered variant). */
async function publish(version: string, opts: { tamper?: boolean; noSums?: boolean } = {}): Promise<void> {
  const { bundle } = await loadManifests(DEFAULT_FLUX_VERSION);
  const files = new Map([...bundle].map(([n, t]) => [n, t.replaceAll('v2.9.5', version)]));
  const archive = await tarGz(files);
  const sums = `${createHash('sha256')
    .update(opts.tamper ? Buffer.from('other') : archive)
    .digest('hex')}  manifests.tar.gz\n${'0'.repeat(64)}  flux_${version.slice(1)}_linux_amd64.tar.gz\n`;
  const author = resources.user('fluxcdbot', 9);
  const assets = [['manifests.tar.gz', archive], ...(opts.noSums ? [] : [[`flux_${version.slice(1)}_checksums.txt`, Buffer.from(sums)]])].map(
    ([name, bytes]) => {
      const id = nextId++;
      assetBytes.set(id, bytes as Buffer);
      return resources.asset(gh.url, 'fluxcd', 'flux2', id, name as string, bytes as Buffer, gh.download(name as string, bytes as Buffer), author);
    },
  );
  releases.set(version, { id: nextId++, assets });
}

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  XDG_CACHE_HOME: join(home, 'cache'),
  FLUXSTRAP_GITHUB_API_URL: gh.url,
  GITHUB_TOKEN: undefined,
  ...extra,
});
async function repo(name: string): Promise<string> {
  const dir = join(home, name);
  await mkdir(join(dir, 'clusters', 'home'), { recursive: true });
  await runTool('git', ['init', '--quiet', dir]);
  return dir;
}
const init = (dir: string, version: string, extra: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
  runCliAsync(['init', '--cluster', 'home', '--repo', dir, '--key-file', keyFile, '--git-url', 'https://git.example/me/fleet.git', '--flux-version', version], {
    cwd: home,
    env: env(extra),
  });

before(async () => {
  home = await tempDir('flux-release');
  keyFile = join(home, 'k.agekey');
  gh = await new GitHubStandIn().start();
  gh.on('GET /repos/{owner}/{repo}/releases/tags/{tag}', ({ params }) => {
    const r = params.owner === 'fluxcd' && params.repo === 'flux2' ? releases.get(params.tag ?? '') : undefined;
    return r
      ? { status: 200, body: resources.release(gh.url, 'fluxcd', 'flux2', r.id, params.tag ?? '', r.assets, resources.user('fluxcdbot', 9)) }
      : {
          status: 404,
          body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest/releases/releases#get-a-release-by-tag-name', status: '404' },
        };
  });
  gh.on('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', ({ params, headers }) => {
    const id = Number(params.asset_id);
    const asset = [...releases.values()].flatMap((r) => r.assets).find((a) => a.id === id);
    if (!asset) return { status: 404, body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' } };
    if (headers.accept === 'application/octet-stream') return { status: 302, headers: { location: String(asset.browser_download_url) } };
    return { status: 200, body: asset };
  });
  assert.equal(runCli(['keys', 'new', '--out', keyFile], { env: env() }).code, 0);
  await publish('v2.8.1');
  await publish('v2.8.2', { tamper: true });
  await publish('v2.8.3', { noSums: true });
});
after(async () => {
  await gh.stop();
  assert.deepEqual(gh.violations, [], "every request and response matched GitHub's OpenAPI description");
});

void describe('Flux release download', () => {
  void it("fetches, verifies and uses the release's manifests, then reuses the cache", async () => {
    const dir = await repo('fetched');
    const r = await init(dir, 'v2.8.1');
    assert.equal(r.code, 0, r.stderr);
    const text = await readFile(join(dir, 'clusters', 'home', 'flux-system', 'gotk-components.yaml'), 'utf8');
    assert.match(text, /^# Flux Version: v2\.8\.1$/m);
    assert.match(text, /app\.kubernetes\.io\/version: v2\.8\.1/);
    assert.ok(gh.requests.some((q) => q.template === 'GET /repos/{owner}/{repo}/releases/tags/{tag}' && q.status === 200));
    assert.deepEqual((await readdir(join(home, 'cache', 'fluxstrap', 'flux', 'v2.8.1'))).sort().slice(0, 2), ['.verified', 'helm-controller.yaml']);

    const calls = gh.requests.length;
    const again = await init(await repo('cached'), 'v2.8.1');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(gh.requests.length, calls, 'the cache answered: no request to GitHub');
  });

  const refused: [string, string, RegExp][] = [
    ['a checksum mismatch', 'v2.8.2', /manifests\.tar\.gz does not match its published checksum/],
    ['a release without checksums', 'v2.8.3', /release v2\.8\.3 has no flux_2\.8\.3_checksums\.txt/],
    ['a version that does not exist', 'v2.99.0', /cannot find Flux v2\.99\.0 on GitHub .*404/],
    ['a malformed version', '../../etc', /invalid --flux-version/],
  ];
  for (const [name, version, text] of refused) {
    void it(`refuses ${name}, writing and caching nothing`, async () => {
      const dir = await repo(`bad-${version.replace(/\W/g, '')}`);
      const before = await snapshot(dir);
      const r = await init(dir, version);
      assert.notEqual(r.code, 0);
      const [first, ...rest] = r.stderr.trimEnd().split('\n');
      assert.match(first ?? '', /^error: /);
      assert.match(first ?? '', text);
      assert.ok(
        rest.every((l) => l.startsWith('hint: ')),
        r.stderr,
      );
      assert.deepEqual(await snapshot(dir), before);
      assert.equal(
        (await readdir(join(home, 'cache', 'fluxstrap', 'flux')).catch(() => [])).some((d) => d.startsWith(version)),
        false,
      );
    });
  }

  void it('an unreachable GitHub is one line naming what was tried', async () => {
    const r = await init(await repo('offline'), 'v2.8.9', { FLUXSTRAP_GITHUB_API_URL: 'http://127.0.0.1:9' });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: cannot find Flux v2\.8\.9 on GitHub \(fluxcd\/flux2 release v2\.8\.9\)/);
  });
});

void describe('the GitHub stand-in itself', () => {
  void it('records a response that breaks the schema', async () => {
    const s = await new GitHubStandIn().start();
    s.on('GET /repos/{owner}/{repo}/releases/tags/{tag}', () => ({ status: 200, body: { id: 'not-a-number' } }));
    s.on('GET /meta', () => ({ status: 418, body: {} }));
    await fetch(`${s.url}/repos/a/b/releases/tags/v1`);
    await fetch(`${s.url}/meta`);
    await fetch(`${s.url}/repos/a/b/releases/tags/v1`, { method: 'PUT' });
    await fetch(`${s.url}/no/such/path`);
    await s.stop();
    assert.equal(s.violations.length, 4, s.violations.join('\n'));
    assert.match(s.violations[0] ?? '', /breaks the schema/);
    assert.match(s.violations[1] ?? '', /status 418 is not declared/);
  });
});
