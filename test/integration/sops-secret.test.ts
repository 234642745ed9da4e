// sops-secret on a real API server: an extra bootstrap Secret kept SOPS-encrypted in the
// repository (bootstrap/<cluster>/…, encrypted here by the real sops for the cluster's age key)
// is applied by `fluxstrap run` with a playbook naming it: decrypted in memory, its values in the
// cluster, no kubectl last-applied annotation (values in clear), written by fluxstrap's field
// manager; a second run changes nothing; a changed file is drift, refused without
// --rotate-secrets and applied with it. The token is in no output and no file left behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { connectKube } from '../../src/adapters/kube.ts';
import { cli, tempDir } from '../cluster/bootstrap-kit.ts';
import { clusterForFile } from '../cluster/testing.ts';
import { registerCanary } from '../helpers/canary.ts';

const c = clusterForFile({ flux: 'off' });
const FILE = 'bootstrap/lab/registry.sops.yaml';

void describe('sops-secret: an extra bootstrap Secret from a SOPS file in the repository', () => {
  void it('run applies it decrypted in memory; again nothing changes; a changed file needs --rotate-secrets', () =>
    c.run(async () => {
      const cluster = c.cluster;
      const repo = tempDir('sops-secret');
      const keyFile = join(repo, 'lab.agekey');
      const keys = await cli(['keys', 'new', '--out', keyFile]);
      assert.equal(keys.code, 0, keys.stderr);
      const recipient = /age1[0-9a-z]+/.exec(readFileSync(keyFile, 'utf8'))?.[0] ?? '';
      writeFileSync(
        join(repo, 'fluxstrap.yaml'),
        stringify({ clusters: { lab: { path: 'clusters/lab', kube: { kubeconfig: cluster.kubeconfig }, ageKey: { file: keyFile } } } }),
      );
      mkdirSync(join(repo, 'clusters/lab'), { recursive: true });
      mkdirSync(join(repo, 'bootstrap/lab'), { recursive: true });
      const playbook = join(repo, 'extra-secrets.yaml');
      writeFileSync(playbook, `name: Extra bootstrap Secrets\ntasks:\n  - name: registry credentials\n    sops-secret: { file: ${FILE} }\n`);
      await cluster.kubectl(['create', 'namespace', 'apps']);

      // The real sops encrypts the manifest from stdin: the plaintext never touches the disk.
      const encrypt = (token: string) => {
        registerCanary(token);
        const manifest = stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'registry', namespace: 'apps' },
          type: 'Opaque',
          stringData: { username: 'robot', token },
        });
        // Through cat: /dev/stdin on node's socket pair cannot be opened, on a pipe it can.
        const r = spawnSync(
          'sh',
          [
            '-c',
            'cat | "$0" "$@"',
            cluster.binaries.sops,
            'encrypt',
            '--age',
            recipient,
            '--encrypted-regex',
            '^(data|stringData)$',
            '--input-type',
            'yaml',
            '--output-type',
            'yaml',
            '--filename-override',
            FILE,
            '/dev/stdin',
          ],
          { input: manifest, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: repo } },
        );
        assert.equal(r.status, 0, r.stderr);
        writeFileSync(join(repo, FILE), r.stdout);
      };
      const run = (extra: string[] = []) => cli(['--json', 'run', playbook, '--cluster', 'lab', '--repo', repo, ...extra], { cwd: repo });
      const outcome = (r: { stdout: string }) => (JSON.parse(r.stdout) as { tasks: { outcome: string; changes: { action: string }[] }[] }).tasks[0];

      const first = 'registry-token-first-0001';
      encrypt(first);
      const applied = await run();
      assert.equal(applied.code, 0, `${applied.stderr}\n${applied.stdout}`);
      assert.equal(outcome(applied)?.changes[0]?.action, 'create');
      const kube = await connectKube({ kubeconfig: cluster.kubeconfig });
      const read = async () => {
        const s = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'apps', name: 'registry' });
        return {
          s,
          data: Object.fromEntries(Object.entries((s?.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()])),
        };
      };
      const { s, data } = await read();
      assert.deepEqual(data, { username: 'robot', token: first });
      assert.equal(s?.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], undefined, 'no values in clear in an annotation');
      const managers = ((s?.metadata.managedFields as { manager?: string }[] | undefined) ?? []).map((m) => m.manager);
      assert.ok(managers.includes('fluxstrap'), `written by fluxstrap (managers: ${managers.join(', ')})`);

      const again = await run();
      assert.equal(again.code, 0, again.stderr);
      assert.equal(outcome(again)?.outcome, 'ok');
      assert.deepEqual(outcome(again)?.changes, []);

      const second = 'registry-token-second-0002';
      encrypt(second);
      const drift = await run();
      assert.notEqual(drift.code, 0, 'a different value is drift');
      assert.match(drift.stdout, /Secret apps\/registry differs from what this bootstrap would write \(changed token\)/);
      assert.equal((await read()).data.token, first, 'left as it was');
      const rotated = await run(['--rotate-secrets']);
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.equal((await read()).data.token, second);
    }));
});
