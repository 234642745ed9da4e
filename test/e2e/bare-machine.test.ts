import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { requireTool, runTool } from '../helpers/tools.ts';

// `bootstrap` without a checkout, short of a cluster (test/integration/recovery.test.ts plays the
// whole recovery): from a folder that holds no fluxstrap.yaml and is no Git work tree, the
// branch is cloned into a temporary folder under TMPDIR, the cluster comes from the clone's
// fluxstrap.yaml, and the folder is gone afterwards, whatever the outcome.

let dir: string;
let bare: string;
let tmp: string;
let url: string;

const gitEnv = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.invalid' };
const cli = (args: string[], cwd = bare) =>
  runCli(args, {
    cwd,
    env: {
      HOME: join(dir, 'home'),
      TMPDIR: tmp,
      FLUXSTRAP_REPO: undefined,
      FLUXSTRAP_CLUSTER: undefined,
      SOPS_AGE_KEY: undefined,
      SOPS_AGE_KEY_FILE: undefined,
    },
  });
const leftovers = () => readdirSync(tmp).filter((n) => n.startsWith('fluxstrap-'));

void before(async () => {
  requireTool('git');
  dir = await tempDir('bare-machine');
  const work = join(dir, 'work');
  bare = join(dir, 'empty');
  tmp = join(dir, 'tmp');
  for (const d of [work, bare, tmp]) mkdirSync(d);
  writeFileSync(join(work, 'fluxstrap.yaml'), 'defaultCluster: production\nclusters:\n  production:\n    path: clusters/production\n  lab: {}\n');
  const git = (args: string[], cwd = work) => runTool('git', args, { cwd, env: gitEnv });
  await git(['init', '--quiet', '--initial-branch=main']);
  await git(['add', '-A']);
  await git(['commit', '--quiet', '-m', 'fleet']);
  await git(['init', '--quiet', '--bare', '--initial-branch=main', join(dir, 'fleet.git')], dir);
  url = `file://${join(dir, 'fleet.git')}`;
  await git(['push', '--quiet', url, 'main']);
});

void describe('bootstrap from a bare machine', () => {
  void it("reads the cluster from the clone's fluxstrap.yaml and removes the clone", () => {
    const r = cli(['bootstrap', '--git-url', url, '--list-tasks']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Bootstrap Flux on production\n/, 'defaultCluster of the cloned fluxstrap.yaml');
    // A flag still wins over the file.
    assert.match(cli(['bootstrap', '--git-url', url, '--cluster', 'lab', '--list-tasks']).stdout, /^Bootstrap Flux on lab\n/);
    assert.deepEqual(leftovers(), []);
  });

  void it("names the clone's fluxstrap.yaml for a cluster it lacks, and removes the clone on errors too", () => {
    const r = cli(['bootstrap', '--git-url', url, '--cluster', 'nope', '--list-tasks']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: cluster "nope" is not in .*fluxstrap\.yaml\nhint: known clusters: production, lab\n$/);
    const branch = cli(['bootstrap', '--git-url', url, '--branch', 'gone', '--list-tasks']);
    assert.match(
      branch.stderr,
      /^error: cannot clone branch gone of file:.*: Remote branch gone not found in upstream origin\nhint: name an existing branch with --branch/,
    );
    assert.deepEqual(leftovers(), []);
  });

  void it('clones nothing inside a Git work tree or with --repo: the checkout there is the repository', async () => {
    const tree = join(dir, 'tree');
    mkdirSync(tree);
    await runTool('git', ['init', '--quiet'], { cwd: tree });
    const r = cli(['bootstrap', '--git-url', url, '--list-tasks'], tree);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: no cluster named/);
    assert.match(cli(['bootstrap', '--git-url', url, '--repo', bare, '--list-tasks']).stderr, /^error: no cluster named/);
  });
});
