// Disaster recovery as a user meets it: a new laptop with a clone of the repository and the age
// key file, nothing else (a new HOME, no SOPS key, no Git password in the environment).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cli, must, sh } from '../../scripts/example-repo.ts';
import type { ExampleRepo } from '../../scripts/example-repo.ts';
import { gitEnv } from '../../src/adapters/git.ts';
import type { Cluster } from './index.ts';

export interface FreshBootstrap {
  checkout: string;
  /** The run's TMPDIR, its HOME and the checkout's parent: where to look for anything left behind. */
  tmp: string;
  home: string;
  laptop: string;
  run: { code: number; stdout: string; stderr: string };
}

/** Clone `example` onto a fresh machine under `work` and run `bootstrap --cluster demo` there with only the age key file. */
export async function bootstrapOnFreshMachine(cluster: Cluster, work: string, example: ExampleRepo, name: string): Promise<FreshBootstrap> {
  const laptop = join(work, 'new-laptop');
  const home = join(work, 'new-home');
  const tmp = join(work, 'tmp');
  for (const d of [laptop, home, tmp]) mkdirSync(d);
  const checkout = join(laptop, name);
  await must('git', ['clone', '--quiet', '--branch', 'main', example.gitUrl, checkout], {
    env: gitEnv({ kind: 'basic', username: cluster.git.username, password: cluster.git.password }),
    quiet: true,
  });
  const env: NodeJS.ProcessEnv = {
    HOME: home,
    TMPDIR: tmp,
    XDG_CONFIG_HOME: undefined,
    SOPS_AGE_KEY: undefined,
    SOPS_AGE_KEY_FILE: undefined,
    DEMO_GIT_PASSWORD: undefined,
    CI: '1',
    NO_COLOR: '1',
  };
  const run = await sh(process.execPath, [cli, 'bootstrap', '--cluster', 'demo', '--age-key-file', example.keyFile, '--timeout', '3m'], {
    cwd: checkout,
    env,
    quiet: true,
  });
  return { checkout, tmp, home, laptop, run };
}
