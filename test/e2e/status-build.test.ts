import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { tempDir } from '../helpers/tmp.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';

/** `status` reports a flux-system folder that kustomize cannot build, with kustomize's error, instead of passing over it. */

let home: string;
let r: FluxRepo;

interface Finding {
  check: string;
  status: string;
  message: string;
  hint?: string;
}
const status = () => {
  const res = runCli(['--json', 'status', '--cluster', r.cluster], {
    cwd: r.repo,
    env: { HOME: home, XDG_CONFIG_HOME: undefined, SOPS_AGE_KEY: undefined, SOPS_AGE_KEY_FILE: join(home, 'k.agekey'), KUBECONFIG: join(home, 'kubeconfig') },
  });
  return { code: res.code, findings: (JSON.parse(res.stdout) as { findings: Finding[] }).findings };
};

before(async () => {
  home = await tempDir('status-build');
  r = await fluxRepo();
  await writeFile(join(home, 'kubeconfig'), DEAD_KUBECONFIG);
  const env = { HOME: home, SOPS_AGE_KEY_FILE: join(home, 'k.agekey') };
  assert.equal(runCli(['keys', 'new', '--out', join(home, 'k.agekey')], { env }).code, 0);
  assert.equal(runCli(['init', '--cluster', r.cluster, '--repo', r.repo, '--age-key-file', join(home, 'k.agekey')], { cwd: r.repo, env }).code, 0);
});

void describe('status and a flux-system that does not build', () => {
  void it('a building flux-system gives no such finding', () => {
    assert.equal(
      status().findings.some((f) => f.check === 'flux-system-build'),
      false,
    );
  });

  void it('a broken one is a failing finding carrying the build error', async () => {
    const file = join(r.repo, r.clusterPath, 'flux-system', 'kustomization.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace(/^resources:\n/m, 'resources:\n- does-not-exist.yaml\n'));
    const { code, findings } = status();
    assert.equal(code, 1);
    const f = findings.find((x) => x.check === 'flux-system-build');
    assert.ok(f, JSON.stringify(findings, null, 2));
    assert.equal(f.status, 'fail');
    assert.match(f.message, /flux-system does not build: .*does-not-exist\.yaml/);
    assert.ok(f.hint);
  });
});
