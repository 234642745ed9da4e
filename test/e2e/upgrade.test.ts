import assert from 'node:assert/strict';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot, runCli, runCliAsync } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { GitHubStandIn } from '../helpers/github-standin.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { runTool } from '../helpers/tools.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';

/**
 * `fluxstrap upgrade` on bad input, with no cluster: each refusal is one error line naming the
 * file or flag, a hint, and nothing written. (The preflight against a live API server is
 * test/integration/upgrade.test.ts.)
 */

let home: string;
let keyFile: string;
let gh: GitHubStandIn;
let kubeconfig: string;
const COMPONENTS = 'clusters/home/flux-system/gotk-components.yaml';

const env = (): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  XDG_CACHE_HOME: join(home, 'cache'),
  FLUXSTRAP_GITHUB_API_URL: gh.url,
  GITHUB_TOKEN: undefined,
  KUBECONFIG: kubeconfig,
});

/** A repository `init` prepared (Flux v2.9.5 generated, fluxstrap.yaml entry `home`). */
async function repo(name: string): Promise<string> {
  const dir = join(home, name);
  await mkdir(join(dir, 'clusters', 'home'), { recursive: true });
  await runTool('git', ['init', '--quiet', dir]);
  const r = runCli(['init', '--cluster', 'home', '--repo', dir, '--key-file', keyFile, '--git-url', 'https://git.example/me/fleet.git'], {
    cwd: home,
    env: env(),
  });
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

const upgrade = (dir: string, ...args: string[]): Promise<CliResult> =>
  runCliAsync(['upgrade', '--cluster', 'home', '--repo', dir, ...args], { cwd: home, env: env() });

/** One `error:` line (matching `text`), then only hints; the repository as it was. */
async function refused(r: CliResult, text: RegExp, dir: string, before: Awaited<ReturnType<typeof snapshot>>): Promise<void> {
  assert.notEqual(r.code, 0, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  const at = lines.findIndex((l) => l.startsWith('error: '));
  assert.ok(at >= 0, r.stderr);
  assert.match(lines[at] ?? '', text);
  assert.ok(
    lines.slice(at + 1).every((l) => l.startsWith('hint: ')),
    r.stderr,
  );
  assert.ok(!r.stderr.includes('    at '), 'no stack trace');
  assert.deepEqual(await snapshot(dir), before, 'nothing was written');
}

before(async () => {
  home = await tempDir('upgrade');
  keyFile = join(home, 'k.agekey');
  kubeconfig = join(home, 'kubeconfig');
  await writeFile(kubeconfig, DEAD_KUBECONFIG);
  gh = await new GitHubStandIn().start();
  gh.on('GET /repos/{owner}/{repo}/releases/tags/{tag}', () => ({
    status: 404,
    body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest/releases/releases#get-a-release-by-tag-name', status: '404' },
  }));
  assert.equal(runCli(['keys', 'new', '--out', keyFile], { env: env() }).code, 0);
});
after(async () => {
  await gh.stop();
  assert.deepEqual(gh.violations, [], "every request and response matched GitHub's OpenAPI description");
});

void describe('upgrade refuses bad input', () => {
  const cases: [string, string[], RegExp][] = [
    [
      'the version the file already holds',
      ['--flux-version', 'v2.9.5'],
      /^error: clusters\/home\/flux-system\/gotk-components\.yaml is already Flux v2\.9\.5 \(--flux-version\)$/,
    ],
    [
      'an older version',
      ['--flux-version', '2.8.0'],
      /^error: --flux-version v2\.8\.0 is older than Flux v2\.9\.5 in clusters\/home\/flux-system\/gotk-components\.yaml$/,
    ],
    ['a version that is not a release', ['--flux-version', 'latest'], /^error: invalid --flux-version "latest"/],
    ['a version GitHub does not know', ['--flux-version', 'v2.99.0'], /^error: cannot find Flux v2\.99\.0 on GitHub .*404/],
    ["manifests that are not Flux's", ['--flux-version', 'v2.10.0', '--flux-manifests', repoRoot], /^error: not the manifests of a Flux release/],
  ];
  for (const [name, args, text] of cases) {
    void it(`refuses ${name}`, async () => {
      const dir = await repo(`bad-${name.replace(/\W/g, '')}`);
      const before = await snapshot(dir);
      await refused(await upgrade(dir, ...args), text, dir, before);
    });
  }

  void it('refuses a cluster without gotk-components.yaml, naming fluxstrap init', async () => {
    const dir = await repo('missing');
    await rm(join(dir, COMPONENTS));
    const before = await snapshot(dir);
    const r = await upgrade(dir, '--flux-version', 'v2.10.0');
    await refused(r, /^error: clusters\/home\/flux-system\/gotk-components\.yaml is missing: there is no Flux to upgrade/, dir, before);
    assert.match(r.stderr, /hint: run `fluxstrap init --cluster home`/);
  });

  void it("refuses a gotk-components.yaml without flux's header, naming the file", async () => {
    const dir = await repo('headless');
    await writeFile(join(dir, COMPONENTS), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n');
    const before = await snapshot(dir);
    await refused(
      await upgrade(dir, '--flux-version', 'v2.10.0'),
      /^error: no "# Flux Version:" and "# Components:" header.*\(clusters\/home\/flux-system\/gotk-components\.yaml\)$/,
      dir,
      before,
    );
  });

  void it('refuses to replace a hand-edited gotk-components.yaml without --force, showing the diff', async () => {
    const dir = await repo('edited');
    const file = join(dir, COMPONENTS);
    const text = await readFile(file, 'utf8');
    const at = text.lastIndexOf('--log-level=info');
    await writeFile(file, `${text.slice(0, at)}--log-level=debug${text.slice(at + '--log-level=info'.length)}`);
    const manifests = join(home, 'flux-2.10.0');
    await cp(join(repoRoot, 'manifests', 'flux', 'v2.9.5'), manifests, { recursive: true });
    const before = await snapshot(dir);
    const r = await upgrade(dir, '--flux-version', 'v2.10.0', '--flux-manifests', manifests);
    await refused(
      r,
      /^error: edited by hand: Deployment flux-system\/helm-controller not as Flux v2\.9\.5 generates; nothing was written \(clusters\/home\/flux-system\/gotk-components\.yaml\)$/,
      dir,
      before,
    );
    // The diff is the edit alone, not the whole file: what the upgrade would drop.
    const diff = r.stderr.split('\n').filter((l) => /^ {4}[-+](?![-+]{2} file)/.test(l));
    assert.deepEqual(
      diff.map((l) => l.slice(4)),
      ['-            - --log-level=debug', '+            - --log-level=info'],
      r.stderr,
    );
    assert.match(r.stderr, /hint: the diff above shows the edits upgrade would drop.*--force/);
  });
});

void describe('upgrade preflight on the repository', () => {
  void it('names removed API versions and strict-substitution failures by file:line, and writes nothing', async () => {
    const dir = await repo('findings');
    // The real flux-written v2.7.5 file, with the components the shipped v2.9.5 manifests hold.
    const fixture = await readFile(join(repoRoot, 'test', 'fixtures', 'flux', 'gotk-components.yaml'), 'utf8');
    await writeFile(
      join(dir, COMPONENTS),
      fixture.replace(
        '# Components: source-controller,kustomize-controller,helm-controller,notification-controller',
        '# Components: source-controller,kustomize-controller,helm-controller',
      ),
    );
    await writeFile(
      join(dir, 'clusters/home/apps.yaml'),
      [
        'apiVersion: kustomize.toolkit.fluxcd.io/v1',
        'kind: Kustomization',
        'metadata: {name: apps, namespace: flux-system}',
        'spec:',
        '  interval: 10m',
        '  path: ./clusters/home/apps',
        '  sourceRef: {kind: GitRepository, name: flux-system}',
        '  postBuild:',
        '    substitute: {DOMAIN: example.org}',
        '---',
        'apiVersion: helm.toolkit.fluxcd.io/v2beta2',
        'kind: HelmRelease',
        'metadata: {name: podinfo, namespace: apps}',
        'spec: {interval: 10m}',
        '',
      ].join('\n'),
    );
    await mkdir(join(dir, 'clusters/home/apps'), { recursive: true });
    await writeFile(
      join(dir, 'clusters/home/apps/ingress.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata:\n  host: web.${DOMAIN}\n  tls: ${TLS_SECRET}\n  port: ${PORT:=80}\n',
    );
    const before = await snapshot(dir);
    const r = await upgrade(dir, '--flux-version', 'v2.9.5', '--json');
    assert.equal(r.code, 1, r.stderr);
    const doc = JSON.parse(r.stdout) as { tasks: { kind: string; outcome: string; error?: { message: string; hint?: string } }[] };
    assert.deepEqual(
      doc.tasks.map((t) => [t.kind, t.outcome]),
      [
        ['flux-upgrade-preflight', 'failed'],
        ['gotk-components', 'skipped'],
      ],
    );
    const { message = '', hint = '' } = doc.tasks[0]?.error ?? {};
    assert.match(message, /clusters\/home\/apps\.yaml:11 HelmRelease podinfo helm\.toolkit\.fluxcd\.io\/v2beta2 → helm\.toolkit\.fluxcd\.io\/v2/);
    assert.match(
      message,
      /strict post-build substitution \(Flux ≥ 2\.9\) would fail 1 variable\(s\) with no value and no default: clusters\/home\/apps\/ingress\.yaml:6 \$\{TLS_SECRET\} \(Kustomization flux-system\/apps\)/,
    );
    assert.match(message, /the Kubernetes API at https:\/\/127\.0\.0\.1:1 is unreachable/);
    assert.match(hint, /flux migrate -f clusters\/home/);
    assert.match(hint, /\$\$\{VAR\}/);
    assert.deepEqual(await snapshot(dir), before, 'nothing was written');
  });
});
