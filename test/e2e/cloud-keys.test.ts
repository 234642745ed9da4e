import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gitEnv } from '../../src/adapters/git.ts';
import { startGitServer } from '../cluster/git-server.ts';
import type { GitServer } from '../cluster/git-server.ts';
import { allowSecretsIn, canary } from '../helpers/canary.ts';
import { runCli, runCliAsync } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import type { FluxRepo } from '../helpers/flux-repo.ts';
import { DEAD_KUBECONFIG } from '../helpers/kubeconfig.ts';
import { LOCAL_KMS_ACCOUNT, LOCAL_KMS_REGION, startLocalKms } from '../helpers/local-kms.ts';
import type { LocalKms } from '../helpers/local-kms.ts';
import { tempDir } from '../helpers/tmp.ts';
import { requireTool, runTool } from '../helpers/tools.ts';

/**
 * A cluster that decrypts through its cloud identity (fluxstrap.yaml `sopsKey`), from `init` to
 * `bootstrap --check` and `status`, against the harness' Git server, a real KMS API (local-kms)
 * and a Kubernetes API that refuses connections: what preflight and status say about the key is
 * real (the rule, the files, the identity patches in the pushed commit, AWS KMS opening the file),
 * and no age key is needed anywhere.
 */

const TOKEN_ENV = 'FLUXSTRAP_TEST_GIT_TOKEN';
const ROLE = `arn:aws:iam::${LOCAL_KMS_ACCOUNT}:role/flux-sops`;
let server: GitServer;
let kms: LocalKms;
let home: string;
let kubeconfig: string;
const value = canary('cloud-keys');

/** No age key and no AWS settings of the caller's own: each test decides them. */
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HOME: home,
  XDG_CONFIG_HOME: undefined,
  SOPS_AGE_KEY: undefined,
  SOPS_AGE_KEY_FILE: join(home, 'no-age-key'),
  AWS_CONFIG_FILE: join(home, 'no-aws-config'),
  AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
  AWS_PROFILE: '',
  AWS_ENDPOINT_URL: '',
  AWS_ACCESS_KEY_ID: '',
  AWS_SECRET_ACCESS_KEY: '',
  AWS_SESSION_TOKEN: '',
  AWS_EC2_METADATA_DISABLED: 'true',
  KUBECONFIG: kubeconfig,
  [TOKEN_ENV]: server.password,
  ...extra,
});

before(async () => {
  requireTool('git');
  home = await tempDir('cloud-keys-home');
  [server, kms] = await Promise.all([startGitServer(await tempDir('cloud-keys-git')), startLocalKms()]);
  kubeconfig = join(home, 'kubeconfig');
  await writeFile(kubeconfig, DEAD_KUBECONFIG);
});
after(async () => {
  await server.stop();
  await kms.stop();
});

/** A repository whose cluster folder applies one plaintext Secret, then init with `flags`. */
async function initRepo(cluster: string, flags: string[] | ((r: FluxRepo) => string[])): Promise<FluxRepo> {
  const r = await fluxRepo({
    cluster,
    gotkSync: 'pristine',
    seedRoot: false,
    files: {
      [`clusters/${cluster}/kustomization.yaml`]: 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - secret.yaml\n',
      [`clusters/${cluster}/secret.yaml`]: `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\nstringData:\n  password: ${value}\n`,
    },
  });
  allowSecretsIn(join(r.repo, r.clusterPath, 'secret.yaml'));
  const init = runCli(
    [
      'init',
      '--cluster',
      cluster,
      '--repo',
      r.repo,
      '--git-url',
      server.httpUrl(`${cluster}.git`),
      '--branch',
      'main',
      '--git-username',
      server.username,
      '--git-token-env',
      TOKEN_ENV,
      ...(typeof flags === 'function' ? flags(r) : flags),
    ],
    { cwd: home, env: env() },
  );
  assert.equal(init.code, 0, init.stderr);
  return r;
}

async function push(r: FluxRepo, message: string): Promise<void> {
  await r.git('add', '-A');
  await r.git('commit', '--quiet', '-m', message);
  await runTool('git', ['push', '--quiet', '--force', server.httpUrl(`${r.cluster}.git`), 'HEAD:main'], {
    cwd: r.repo,
    env: gitEnv({ kind: 'basic', username: server.username, password: server.password }),
  });
}

/** `bootstrap --check --json`: preflight fails (the API is down) with every other problem it found. */
async function preflight(r: FluxRepo, extra: NodeJS.ProcessEnv): Promise<{ message: string; hint: string; output: string }> {
  const run = await runCliAsync(['bootstrap', '--check', '--json', '--cluster', r.cluster], { cwd: r.repo, env: env(extra) });
  assert.equal(run.code, 1, run.stderr);
  const doc = JSON.parse(run.stdout) as { tasks: { kind: string; outcome: string; error?: { message: string; hint?: string } }[] };
  const task = doc.tasks[0];
  assert.deepEqual([task?.kind, task?.outcome], ['preflight', 'failed'], run.stdout);
  return { message: task?.error?.message ?? '', hint: task?.error?.hint ?? '', output: run.stdout + run.stderr };
}

/** `status --json`: the findings of the key (the API is down, so only what the checkout shows). */
async function keyFindings(r: FluxRepo, extra: NodeJS.ProcessEnv): Promise<{ check: string; status: string; message: string }[]> {
  const run = await runCliAsync(['status', '--json', '--cluster', r.cluster], { cwd: r.repo, env: env(extra) });
  const doc = JSON.parse(run.stdout) as { findings: { check: string; status: string; message: string }[] };
  return doc.findings.filter((f) => f.check === 'sops-key');
}

void describe('AWS KMS as the cluster key (sopsKey.awsKms)', () => {
  let r: FluxRepo;
  before(async () => {
    r = await initRepo('eks', ['--sops-backend', 'aws-kms', '--kms-arn', kms.keys[0], '--aws-role-arn', ROLE]);
    const enc = runCli(['encrypt', '-i', join(r.clusterPath, 'secret.yaml')], { cwd: r.repo, env: env(kms.env) });
    assert.equal(enc.code, 0, enc.stderr);
    await push(r, 'init for AWS KMS, the Secret encrypted for the key');
  });

  void it('init wrote sopsKey, the rule and the IRSA patch; preflight finds nothing wrong with the key, and needs no age key', async () => {
    assert.match(
      await readFile(join(r.repo, 'fluxstrap.yaml'), 'utf8'),
      new RegExp(`sopsKey:\\n {6}awsKms:\\n {8}arn: ${kms.keys[0]}\\n {8}roleArn: ${ROLE}\\n`),
    );
    const { message, output } = await preflight(r, kms.env);
    // The fixture's gotk-sync.yaml pulls from elsewhere: those problems are the layout's, none is the key's.
    assert.match(message, /^preflight found 3 problems: \(1\) cannot read the server version: the Kubernetes API at https:\/\/127\.0\.0\.1:1 is unreachable/);
    assert.doesNotMatch(message, /AWS|KMS|age key|sops|decrypt/i);
    for (const secret of [value, kms.env.AWS_SECRET_ACCESS_KEY ?? '', kms.env.AWS_ACCESS_KEY_ID ?? '']) assert.ok(!output.includes(secret));
    assert.deepEqual(
      (await keyFindings(r, kms.env)).map((f) => [f.status, f.message]),
      [
        ['ok', `the .sops.yaml rule for each of the 1 SOPS file(s) the cluster reaches lists the AWS KMS key ${kms.keys[0]}`],
        ['ok', 'the flux-system build gives kustomize-controller the aws-irsa identity'],
        ['ok', `AWS KMS key ${kms.keys[0]} opens the 1 SOPS file(s) the cluster reaches`],
      ],
    );
  });

  void it('credentials missing: one problem naming the key and the file, no credential shown', async () => {
    const { message, hint, output } = await preflight(r, { AWS_ENDPOINT_URL_KMS: kms.endpoint, AWS_REGION: LOCAL_KMS_REGION });
    assert.match(message, new RegExp(`no AWS credentials to decrypt with AWS KMS key ${kms.keys[0]} \\(${r.clusterPath}/secret\\.yaml`));
    assert.match(hint, /AWS_ACCESS_KEY_ID/);
    assert.ok(!output.includes(value));
    const [, , reach] = await keyFindings(r, { AWS_ENDPOINT_URL_KMS: kms.endpoint });
    assert.equal(reach?.status, 'fail');
  });

  void it("a key in another region than the configured one: one line at fluxstrap.yaml's line, before anything runs", async () => {
    const config = join(r.repo, 'fluxstrap.yaml');
    const before = await readFile(config, 'utf8');
    await writeFile(config, before.replace(`roleArn: ${ROLE}\n`, `roleArn: ${ROLE}\n        region: us-east-1\n`));
    try {
      const run = await runCliAsync(['bootstrap', '--check', '--cluster', r.cluster], { cwd: r.repo, env: env(kms.env) });
      assert.equal(run.code, 1, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(
          `^error: the KMS key ${kms.keys[0]} is in region ${LOCAL_KMS_REGION}, not in the cluster's region us-east-1 \\(\\S+/fluxstrap\\.yaml:15:17 at clusters\\.eks\\.sopsKey\\.awsKms\\.region\\)\\nhint: .*regional`,
        ),
      );
      assert.equal(run.stderr.trim().split('\n').length, 2);
      assert.equal(run.stdout, '');
    } finally {
      await writeFile(config, before);
    }
  });

  void it('with nothing encrypted yet, status asks KMS to encrypt with the key; an unknown key is named', async () => {
    const fresh = await initRepo('eks-fresh', ['--sops-backend', 'aws-kms', '--kms-arn', kms.keys[1]]);
    const found = await keyFindings(fresh, kms.env);
    // No roleArn: a warning that the controller must get its credentials another way.
    assert.deepEqual(
      found.map((f) => f.status),
      ['ok', 'ok', 'warn'],
    );
    assert.match(found[2]?.message ?? '', /^sopsKey names no identity for kustomize-controller/);
    assert.equal(found[1]?.message, `AWS KMS key ${kms.keys[1]} encrypts with this machine's credentials (no file is encrypted for it yet)`);
    const config = join(fresh.repo, 'fluxstrap.yaml');
    const gone = kms.keys[1].replace(/key\/.*$/, 'key/00000000-0000-0000-0000-000000000000');
    await writeFile(config, (await readFile(config, 'utf8')).replace(kms.keys[1], gone));
    const [, missing] = await keyFindings(fresh, kms.env);
    assert.equal(missing?.status, 'fail');
    assert.match(missing?.message ?? '', new RegExp(`^AWS KMS key ${gone} does not exist in region ${LOCAL_KMS_REGION} \\(sopsKey\\.awsKms\\.arn\\)$`));
  });

  void it('a file not encrypted for the key, and the IRSA patch gone: preflight names both', async () => {
    const other = await initRepo('eks-other', ['--sops-backend', 'aws-kms', '--kms-arn', kms.keys[1]]);
    const enc = runCli(['encrypt', '-i', join(other.clusterPath, 'secret.yaml')], { cwd: other.repo, env: env(kms.env) });
    assert.equal(enc.code, 0, enc.stderr);
    // fluxstrap.yaml says the cluster uses the first key through IRSA; the repository has neither.
    const config = join(other.repo, 'fluxstrap.yaml');
    await writeFile(
      config,
      (await readFile(config, 'utf8')).replace(kms.keys[1], kms.keys[0]).replace(`arn: ${kms.keys[0]}\n`, `arn: ${kms.keys[0]}\n        roleArn: ${ROLE}\n`),
    );
    await push(other, 'the wrong key');
    const { message } = await preflight(other, kms.env);
    assert.match(
      message,
      new RegExp(`the \\.sops\\.yaml rule at \\.sops\\.yaml:\\d+ \\(for ${other.clusterPath}/secret\\.yaml\\) does not list the AWS KMS key ${kms.keys[0]}`),
    );
    assert.match(message, new RegExp(`1 of the 1 SOPS file\\(s\\) the cluster reaches are not encrypted for the AWS KMS key ${kms.keys[0]}`));
    assert.match(message, new RegExp(`ServiceAccount kustomize-controller lacks the annotation eks\\.amazonaws\\.com/role-arn: ${ROLE}`));
  });
});

void describe('Google Cloud KMS and Azure Key Vault: no client, the static wiring checked', () => {
  void it('azure-kv with a Service Principal: status says it cannot reach Key Vault and checks the envFrom patch', async () => {
    const r = await initRepo('aks', (repo) => [
      '--sops-backend',
      'azure-kv',
      '--azure-kv-key',
      'https://v.vault.azure.net/keys/sops/0123',
      '--azure-identity',
      'service-principal',
      '--azure-credentials-file',
      join(repo.repo, 'clusters/aks/azure-sp.env'),
    ]);
    assert.match(
      await readFile(join(r.repo, 'fluxstrap.yaml'), 'utf8'),
      /servicePrincipal:\n {10}secretName: sops-azure-credentials\n {10}file: clusters\/aks\/azure-sp\.env\n/,
    );
    const findings = await keyFindings(r, {});
    assert.deepEqual(
      findings.map((f) => f.status),
      ['ok', 'ok', 'warn'],
    );
    assert.equal(findings[1]?.message, 'the flux-system build gives kustomize-controller the azure-service-principal identity');
    assert.match(findings[2]?.message ?? '', /^fluxstrap cannot reach Azure Key Vault \(it has no client for it\): the key was not tried/);
  });

  void it('malformed keys on the command line: one line naming the flag, nothing written', async () => {
    const dir = await tempDir('cloud-keys-bad');
    await mkdir(join(dir, 'clusters', 'c'), { recursive: true });
    for (const [flags, line] of [
      [
        ['--sops-backend', 'gcp-kms', '--gcp-kms-key', 'projects/p/keyRings/r'],
        /^error: not a Cloud KMS key resource id: projects\/p\/keyRings\/r \(--gcp-kms-key\)\nhint: /,
      ],
      [
        ['--sops-backend', 'azure-kv', '--azure-kv-key', 'https://v.vault.azure.net/keys/sops'],
        /^error: not a Key Vault key URL with its version: https:\/\/v\.vault\.azure\.net\/keys\/sops \(--azure-kv-key\)\nhint: /,
      ],
      [
        [
          '--sops-backend',
          'azure-kv',
          '--azure-kv-key',
          'https://v.vault.azure.net/keys/sops/1',
          '--azure-client-id',
          'c',
          '--azure-credentials-file',
          'sp.env',
        ],
        /^error: --azure-credentials-file is for --azure-identity service-principal\n/,
      ],
    ] as const) {
      const run = runCli(['init', '--cluster', 'c', '--repo', dir, '--git-url', 'https://git.example/f.git', ...flags], { cwd: dir, env: env() });
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, line);
    }
    assert.deepEqual(await readdir(dir), ['clusters'], 'nothing written');
  });
});
