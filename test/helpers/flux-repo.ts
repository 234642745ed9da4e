import { cp, copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from './cli.ts';
import { tempDir } from './tmp.ts';
import { runTool } from './tools.ts';

export const FLUX_FIXTURES = join(repoRoot, 'test', 'fixtures', 'flux');

/** The seed homelab's cluster root: it lists its apps but not flux-system (the seed's mistake). */
export const SEED_ROOT_RESOURCES = ['infrastructure.yaml', 'monitoring.yaml', 'services.yaml', 'policies.yaml'];

export interface FluxRepo {
  repo: string;
  cluster: string;
  /** `clusters/<cluster>`, relative to the repository. */
  clusterPath: string;
  git(...args: string[]): Promise<string>;
}

export interface FluxRepoOptions {
  cluster?: string;
  /** gotk-sync.yaml as the seed has it (hand-added decryption, the default) or as flux wrote it. */
  gotkSync?: 'hand-edited' | 'pristine';
  /** Write the seed's root kustomization.yaml (default) with a small manifest for each resource. */
  seedRoot?: boolean;
  /** Extra files, relative to the repository. */
  files?: Record<string, string>;
}

/**
 * A temp Git repository laid out like the seed homelab: the real Flux files from
 * test/fixtures/flux/ in `clusters/<cluster>/flux-system/`, committed, so tests can check
 * `git status` and build it with `kubectl kustomize`.
 */
export async function fluxRepo(opts: FluxRepoOptions = {}): Promise<FluxRepo> {
  const cluster = opts.cluster ?? 'production';
  const repo = await tempDir('repo');
  const clusterPath = `clusters/${cluster}`;
  const fluxSystem = join(repo, clusterPath, 'flux-system');
  await mkdir(fluxSystem, { recursive: true });
  await copyFile(join(FLUX_FIXTURES, 'gotk-components.yaml'), join(fluxSystem, 'gotk-components.yaml'));
  await copyFile(join(FLUX_FIXTURES, opts.gotkSync === 'pristine' ? 'gotk-sync.pristine.yaml' : 'gotk-sync.yaml'), join(fluxSystem, 'gotk-sync.yaml'));
  await copyFile(join(FLUX_FIXTURES, 'kustomization.yaml'), join(fluxSystem, 'kustomization.yaml'));
  if (opts.seedRoot !== false) {
    await writeFile(
      join(repo, clusterPath, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n${SEED_ROOT_RESOURCES.map((r) => `  - ${r}\n`).join('')}`,
    );
    for (const r of SEED_ROOT_RESOURCES) {
      const name = r.replace(/\.yaml$/, '');
      await writeFile(
        join(repo, clusterPath, r),
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: default\ndata:\n  part: ${name}\n`,
      );
    }
  }
  for (const [file, content] of Object.entries(opts.files ?? {})) {
    await mkdir(join(repo, file, '..'), { recursive: true });
    await writeFile(join(repo, file), content);
  }
  return { repo, cluster, clusterPath, git: await committed(repo, 'the seed repository') };
}

async function committed(repo: string, message: string): Promise<FluxRepo['git']> {
  const git = async (...args: string[]) =>
    (await runTool('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', '-c', 'init.defaultBranch=main', ...args], { cwd: repo })).stdout;
  await git('init', '--quiet');
  await git('add', '.');
  await git('commit', '--quiet', '-m', message);
  return git;
}

/**
 * A temp Git repository holding a vendored real layout (test/fixtures/<name>/repo, see its
 * SOURCES.md), with the vendored Flux v2.7.5 gotk-components.yaml in every cluster's flux-system/
 * that lists it, committed.
 */
export async function fixtureRepo(
  name: 'homelab' | 'flux2-kustomize-helm-example',
  cluster = 'production',
  files: Record<string, string> = {},
): Promise<FluxRepo> {
  const repo = await tempDir(name);
  await cp(join(repoRoot, 'test', 'fixtures', name, 'repo'), repo, { recursive: true });
  for (const c of await readdir(join(repo, 'clusters'))) {
    await copyFile(join(FLUX_FIXTURES, 'gotk-components.yaml'), join(repo, 'clusters', c, 'flux-system', 'gotk-components.yaml'));
  }
  for (const [file, content] of Object.entries(files)) {
    await mkdir(join(repo, file, '..'), { recursive: true });
    await writeFile(join(repo, file), content);
  }
  return { repo, cluster, clusterPath: `clusters/${cluster}`, git: await committed(repo, `vendored ${name}`) };
}
