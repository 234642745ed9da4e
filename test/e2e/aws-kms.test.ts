import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { allowSecretsIn, canary, registerCanary } from '../helpers/canary.ts';
import { runCli, runCliAsync, type CliResult } from '../helpers/cli.ts';
import { loadedPackages, tracedRun } from '../helpers/imports.ts';
import { LOCAL_KMS_ACCOUNT, startLocalKms, type LocalKms } from '../helpers/local-kms.ts';
import { tempDir } from '../helpers/tmp.ts';
import { findSops } from '../unit/sops/helpers.ts';

/**
 * AWS KMS entries against a real KMS API (local-kms) and the real sops: each opens what the other
 * wrote, with an encryption context, a profile, an assumed role and several keys; the metadata has
 * sops' fields in sops' layout. Bad ARNs, a key of another region, missing credentials and an
 * unreachable endpoint fail in one line naming the flag or rule, write nothing and show no credential.
 */

let kms: LocalKms;
let dir: string;
let sops: string;
const secret = canary('kms');
const AGE_RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const plain = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: ${secret}\n`;

/** The environment with nothing AWS from the caller's own, so a test decides every credential. */
function awsEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    HOME: dir,
    AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
    AWS_PROFILE: '',
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_SESSION_TOKEN: '',
    AWS_ENDPOINT_URL: '',
    AWS_ENDPOINT_URL_STS: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    SOPS_AGE_KEY_FILE: join(dir, 'no-age-key'),
    SOPS_KMS_ARN: '',
    ...kms.env,
    ...extra,
  };
}

function sopsRun(args: string[], env: NodeJS.ProcessEnv, cwd = dir): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(sops, args, { cwd, env: { ...process.env, ...env } }, (e, stdout, stderr) => resolve({ code: e ? Number(e.code ?? 1) : 0, stdout, stderr }));
  });
}

/** A file of the test folder; plaintext ones hold the canary on purpose. */
function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  if (content.includes(secret)) allowSecretsIn(p);
  return p;
}

function ok(r: CliResult): string {
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

type KmsEntry = Record<string, unknown>;
const kmsEntries = (text: string): KmsEntry[] => (parse(text) as { sops: { kms: KmsEntry[] } }).sops.kms;

/** The metadata block with what differs between two runs (enc, times, MAC, version) blanked. */
function metadataShape(text: string): string {
  const block = text.slice(text.indexOf('\nsops:\n'));
  return block.replace(/(enc|created_at|lastmodified|mac|version): .*/g, '$1: X');
}

before(async () => {
  sops = findSops();
  kms = await startLocalKms();
  dir = await tempDir('aws-kms');
});
after(() => kms.stop());

void describe("fluxstrap and sops open each other's kms entries", () => {
  void it('--kms with an encryption context: same metadata layout, each decrypts the other', async () => {
    const input = file('secret.yaml', plain);
    const flags = ['--kms', kms.keys[0], '--encryption-context', 'app:web,env:prod'];
    const ours = ok(runCli(['encrypt', ...flags, input], { env: awsEnv(), cwd: dir }));
    const theirs = (await sopsRun(['encrypt', ...flags, input], awsEnv())).stdout;
    assert.equal(metadataShape(ours), metadataShape(theirs), "the kms entry has sops' fields in sops' order");
    assert.deepEqual(kmsEntries(ours)[0]?.context, { app: 'web', env: 'prod' });
    assert.equal(kmsEntries(ours)[0]?.aws_profile, '', 'sops writes aws_profile even when empty');
    const oursFile = file('ours.enc.yaml', ours);
    const theirsFile = file('theirs.enc.yaml', theirs);
    const bySops = await sopsRun(['decrypt', oursFile], awsEnv());
    assert.equal(bySops.code, 0, bySops.stderr);
    assert.equal(bySops.stdout, (await sopsRun(['decrypt', theirsFile], awsEnv())).stdout);
    assert.match(bySops.stdout, new RegExp(secret));
    assert.match(ok(runCli(['decrypt', theirsFile], { env: awsEnv(), cwd: dir, revealsSecrets: true })), new RegExp(secret));
  });

  void it('key groups of .sops.yaml (arn, context, aws_profile) and a flat rule: sops opens ours', async () => {
    const sub = await tempDir('aws-kms-rules');
    const cfg = join(sub, 'aws-config');
    const creds = join(sub, 'aws-credentials');
    // Credentials only under a profile: the entries' aws_profile must be what finds them.
    writeFileSync(cfg, '[profile fluxstrap-test]\nregion = eu-west-2\n');
    allowSecretsIn(creds);
    writeFileSync(
      creds,
      `[fluxstrap-test]\naws_access_key_id = ${kms.env.AWS_ACCESS_KEY_ID ?? ''}\naws_secret_access_key = ${kms.env.AWS_SECRET_ACCESS_KEY ?? ''}\n`,
    );
    writeFileSync(
      join(sub, '.sops.yaml'),
      [
        'creation_rules:',
        '  - path_regex: groups/.*',
        '    key_groups:',
        '      - kms:',
        `          - arn: ${kms.keys[0]}`,
        '            aws_profile: fluxstrap-test',
        '            context:',
        '              cluster: prod',
        `          - arn: ${kms.alias}`,
        '            aws_profile: fluxstrap-test',
        '  - path_regex: flat/.*',
        `    kms: ${kms.keys[1]}`,
        '    aws_profile: fluxstrap-test',
        '',
      ].join('\n'),
    );
    const env = awsEnv({ AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_CONFIG_FILE: cfg, AWS_SHARED_CREDENTIALS_FILE: creds });
    for (const name of ['groups/secret.yaml', 'flat/secret.yaml']) {
      const path = join(sub, name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, plain);
      allowSecretsIn(path);
      ok(runCli(['encrypt', '-i', name], { env, cwd: sub }));
      const ours = readFileSync(path, 'utf8');
      assert.ok(
        kmsEntries(ours).every((e) => e.aws_profile === 'fluxstrap-test'),
        name,
      );
      const bySops = await sopsRun(['decrypt', path], env, sub);
      assert.equal(bySops.code, 0, `${name}: ${bySops.stderr}`);
      assert.match(bySops.stdout, new RegExp(secret));
    }
    const groups = kmsEntries(readFileSync(join(sub, 'groups/secret.yaml'), 'utf8'));
    assert.deepEqual(
      groups.map((e) => [e.arn, e.context]),
      [
        [kms.keys[0], { cluster: 'prod' }],
        [kms.alias, undefined],
      ],
    );
  });

  void it('updatekeys keeps the kms entry as it is; rotate --add-kms gives a file sops opens with either key', async () => {
    const sub = await tempDir('aws-kms-rekey');
    writeFileSync(join(sub, '.sops.yaml'), `creation_rules:\n  - kms: ${kms.keys[0]}\n    age: ${AGE_RECIPIENT}\n`);
    const path = join(sub, 'secret.yaml');
    writeFileSync(path, plain);
    writeFileSync(path, (await sopsRun(['encrypt', '--kms', kms.keys[0], path], awsEnv(), sub)).stdout);
    const before = kmsEntries(readFileSync(path, 'utf8'));
    assert.match(ok(runCli(['updatekeys', path], { env: awsEnv(), cwd: sub })), /^$/);
    const after = readFileSync(path, 'utf8');
    assert.deepEqual(kmsEntries(after), before, 'same data key: the kms entry is kept byte for byte');
    assert.match(after, /recipient: age1ql3z7/);
    ok(runCli(['rotate', '-i', '--add-kms', kms.keys[1], path], { env: awsEnv(), cwd: sub }));
    const rotated = kmsEntries(readFileSync(path, 'utf8'));
    assert.deepEqual(
      rotated.map((e) => e.arn),
      [kms.keys[0], kms.keys[1]],
    );
    assert.notEqual(rotated[0]?.enc, before[0]?.enc, 'a new data key, encrypted again');
    const bySops = await sopsRun(['decrypt', path], awsEnv(), sub);
    assert.equal(bySops.code, 0, bySops.stderr);
    assert.match(bySops.stdout, new RegExp(secret));
    ok(runCli(['rotate', '-i', '--rm-kms', kms.keys[0], path], { env: awsEnv(), cwd: sub }));
    assert.deepEqual(
      kmsEntries(readFileSync(path, 'utf8')).map((e) => e.arn),
      [kms.keys[1]],
    );
  });

  void it('JSON files: sops opens ours', async () => {
    const input = file('secret.json', `{"password": "${secret}"}\n`);
    const out = file('secret.enc.json', ok(runCli(['encrypt', '--kms', kms.keys[1], input], { env: awsEnv(), cwd: dir })));
    const bySops = await sopsRun(['decrypt', out], awsEnv());
    assert.equal(bySops.code, 0, bySops.stderr);
    assert.equal((JSON.parse(bySops.stdout) as { password: string }).password, secret);
  });
});

/** An STS stand-in (local-kms has none) and a proxy before local-kms recording the access key each request is signed with. */
async function stsAndRecordingProxy(): Promise<{ sts: string; kmsProxy: string; roles: string[]; keyIds: string[]; assumedKeyId: string; close: () => void }> {
  const assumedKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
  const assumedSecret = randomBytes(20).toString('base64url');
  registerCanary(assumedKeyId);
  registerCanary(assumedSecret);
  const roles: string[] = [];
  const keyIds: string[] = [];
  const listen = (s: Server): Promise<string> =>
    new Promise((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)));
  const sts = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      roles.push(`${form.get('RoleArn') ?? ''} ${form.get('RoleSessionName') ?? ''}`);
      res.setHeader('content-type', 'text/xml');
      res.end(
        `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>${assumedKeyId}</AccessKeyId><SecretAccessKey>${assumedSecret}</SecretAccessKey><SessionToken>token-${assumedKeyId}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::${LOCAL_KMS_ACCOUNT}:assumed-role/sops/s</Arn><AssumedRoleId>AROA1:s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>`,
      );
    });
  });
  const target = new URL(kms.endpoint);
  const proxy = createServer((req, res) => {
    keyIds.push(/Credential=([^/]+)\//.exec(req.headers.authorization ?? '')?.[1] ?? 'unsigned');
    const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 500, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  const [stsUrl, proxyUrl] = await Promise.all([listen(sts), listen(proxy)]);
  return {
    sts: stsUrl,
    kmsProxy: proxyUrl,
    roles,
    keyIds,
    assumedKeyId,
    close: () => {
      sts.close();
      proxy.close();
    },
  };
}

void describe('ARN+role: the role is assumed through STS and KMS is called with its credentials', () => {
  void it('fluxstrap writes role like sops, sops opens it through the same role', async () => {
    const stand = await stsAndRecordingProxy();
    try {
      const role = `arn:aws:iam::${LOCAL_KMS_ACCOUNT}:role/sops-decrypt`;
      const env = awsEnv({ AWS_ENDPOINT_URL_STS: stand.sts, AWS_ENDPOINT_URL_KMS: stand.kmsProxy });
      const input = file('role.yaml', plain);
      const r = await runCliAsync(['encrypt', '--kms', `${kms.keys[0]}+${role}`, input], { env, cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const entry = kmsEntries(r.stdout)[0];
      assert.deepEqual([entry?.arn, entry?.role], [kms.keys[0], role]);
      assert.match(stand.roles[0] ?? '', new RegExp(`^${role} fluxstrap@`));
      assert.deepEqual(stand.keyIds, [stand.assumedKeyId], "the Encrypt call is signed with the assumed role's key");
      const bySops = await sopsRun(['decrypt', file('role.enc.yaml', r.stdout)], env);
      assert.equal(bySops.code, 0, bySops.stderr);
      assert.match(stand.roles[1] ?? '', new RegExp(`^${role} sops@`), 'sops assumed the role the entry names');
    } finally {
      stand.close();
    }
  });
});

void describe('bad input: one line naming the flag or rule, nothing written, no credential shown', () => {
  const leaksNothing = (r: CliResult): void => {
    for (const v of [kms.env.AWS_SECRET_ACCESS_KEY, kms.env.AWS_ACCESS_KEY_ID, secret])
      assert.ok(!`${r.stdout}${r.stderr}`.includes(v ?? '\0'), 'no credential or secret in the output');
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  };
  const failsWith = (r: CliResult, pattern: RegExp): void => {
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[0] ?? '', pattern);
    assert.ok(lines.length <= 2 && (lines.length < 2 || lines[1]?.startsWith('hint: ')), r.stderr);
    leaksNothing(r);
  };

  void it('a malformed ARN in --kms, in SOPS_KMS_ARN, or a role that is not an IAM role', () => {
    const input = file('bad.yaml', plain);
    failsWith(
      runCli(['encrypt', '-i', '--kms', 'arn:aws:kms:eu-west-2:key/nope', input], { env: awsEnv(), cwd: dir }),
      /^error: not an AWS KMS key ARN: arn:aws:kms:eu-west-2:key\/nope \(--kms\)$/,
    );
    failsWith(
      runCli(['encrypt', '-i', input], { env: awsEnv({ SOPS_KMS_ARN: 'alias/short' }), cwd: dir }),
      /^error: not an AWS KMS key ARN: alias\/short \(SOPS_KMS_ARN\)$/,
    );
    failsWith(
      runCli(['encrypt', '-i', '--kms', `${kms.keys[0]}+arn:aws:iam::1:user/bob`, input], { env: awsEnv(), cwd: dir }),
      /^error: not an IAM role ARN: .* \(--kms\)$/,
    );
    failsWith(
      runCli(['encrypt', '-i', '--kms', kms.keys[0], '--encryption-context', 'a:b:c', input], { env: awsEnv(), cwd: dir }),
      /^error: invalid encryption context.*\(--encryption-context\)$/,
    );
    assert.equal(readFileSync(input, 'utf8'), plain, 'nothing written');
  });

  void it('a malformed ARN in .sops.yaml names the file and line of the rule', async () => {
    const sub = await tempDir('aws-kms-bad-rule');
    writeFileSync(
      join(sub, '.sops.yaml'),
      `creation_rules:\n  - path_regex: ok/.*\n    age: ${AGE_RECIPIENT}\n  - path_regex: .*\n    kms: arn:aws:kms:eu-west-2:111122223333:nokey\n`,
    );
    const path = join(sub, 's.yaml');
    writeFileSync(path, plain);
    allowSecretsIn(path);
    failsWith(
      runCli(['encrypt', '-i', path], { env: awsEnv(), cwd: sub }),
      /^error: not an AWS KMS key ARN: arn:aws:kms:eu-west-2:111122223333:nokey \(.*\.sops\.yaml:5\)$/,
    );
    assert.equal(readFileSync(path, 'utf8'), plain);
  });

  void it('a key in another region: not found there, the region named', () => {
    const input = file('region.yaml', plain);
    const elsewhere = kms.keys[0].replace(':eu-west-2:', ':us-east-1:');
    const r = runCli(['encrypt', '-i', '--kms', elsewhere, input], { env: awsEnv(), cwd: dir });
    failsWith(r, /^error: AWS KMS key arn:aws:kms:us-east-1:\S+ does not exist in region us-east-1 \(--kms\)$/);
    assert.equal(readFileSync(input, 'utf8'), plain);
  });

  void it('missing credentials, when encrypting and when decrypting', () => {
    const input = file('nocreds.yaml', plain);
    const env = awsEnv({ AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' });
    failsWith(
      runCli(['encrypt', '-i', '--kms', kms.keys[0], input], { env, cwd: dir, timeout: 60_000 }),
      /^error: no AWS credentials to encrypt with AWS KMS key \S+ \(--kms\)$/,
    );
    assert.equal(readFileSync(input, 'utf8'), plain);
    const enc = file('nocreds.enc.yaml', ok(runCli(['encrypt', '--kms', kms.keys[0], input], { env: awsEnv(), cwd: dir })));
    failsWith(
      runCli(['decrypt', enc], { env, cwd: dir, timeout: 60_000 }),
      /^error: no AWS credentials to decrypt with AWS KMS key \S+ \(.*nocreds\.enc\.yaml at sops\.kms\)$/,
    );
  });

  void it('an unreachable endpoint fails in seconds, naming it', () => {
    const input = file('unreachable.yaml', plain);
    const started = Date.now();
    const r = runCli(['encrypt', '-i', '--kms', kms.keys[0], input], {
      env: awsEnv({ AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:1' }),
      cwd: dir,
      timeout: 60_000,
    });
    failsWith(r, /^error: cannot reach AWS KMS \(http:\/\/127\.0\.0\.1:1\) to encrypt with AWS KMS key \S+: .*\(--kms\)$/);
    assert.ok(Date.now() - started < 30_000, 'no long retry loop');
    assert.equal(readFileSync(input, 'utf8'), plain);
  });

  void it('a file with a Google Cloud KMS entry: a command that needs the service says it cannot reach it', () => {
    const enc = ok(runCli(['encrypt', '--age', AGE_RECIPIENT, file('gcp.yaml', plain)], { env: awsEnv(), cwd: dir }));
    const withGcp = enc.replace(
      '\nsops:\n',
      '\nsops:\n    gcp_kms:\n        - resource_id: projects/p/locations/global/keyRings/r/cryptoKeys/k\n          created_at: "2024-01-01T00:00:00Z"\n          enc: CiQAbc=\n',
    );
    const path = file('gcp.enc.yaml', withGcp);
    const r = runCli(['decrypt', path], { env: awsEnv(), cwd: dir });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /fluxstrap cannot reach Google Cloud KMS: decrypt with sops/);
    leaksNothing(r);
  });
});

void describe('the AWS SDK loads only for kms entries', () => {
  void it('encrypt --age and --help do not load it; encrypt --kms does', async () => {
    const input = file('light.yaml', plain);
    for (const args of [
      ['encrypt', '--age', AGE_RECIPIENT, input],
      ['encrypt', '--help'],
    ]) {
      const r = await tracedRun(args, { env: awsEnv(), cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(
        r.modules.some((m) => m.endsWith('/dist/main.js')),
        'the trace recorded the imports',
      );
      assert.deepEqual(loadedPackages(r.modules, ['@aws-sdk/', '@smithy/']), [], args.join(' '));
    }
    const r = await tracedRun(['encrypt', '--kms', kms.keys[0], input], { env: awsEnv(), cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(loadedPackages(r.modules, ['@aws-sdk/client-kms']), ['@aws-sdk/client-kms'], 'the trace sees the SDK when it is used');
  });
});
