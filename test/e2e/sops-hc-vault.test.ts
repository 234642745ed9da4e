import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { startVault, type VaultDev } from '../cluster/vault.ts';
import { allowSecretsIn, registerCanary } from '../helpers/canary.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { fluxRepo } from '../helpers/flux-repo.ts';
import { tracedRun } from '../helpers/imports.ts';
import { snapshot, tempDir } from '../helpers/tmp.ts';
import { runTool } from '../helpers/tools.ts';
import { findSops, generatedDir } from '../unit/sops/helpers.ts';

/**
 * Vault transit against a real Vault dev server (`npm run cluster:build -- --with-vault`) and the
 * real sops: what fluxstrap encrypts sops opens with the Vault key alone and the reverse, through
 * flags, `.sops.yaml` rules, updatekeys and rotate; the token comes from VAULT_TOKEN or
 * ~/.vault-token; bad input (unreachable Vault, a token without permission, a malformed URI) is
 * one line naming the rule or flag, writes nothing and never shows the token.
 */

const keyFile = join(generatedDir, 'key-a.txt');
const recipient = /public key: (age1\S+)/.exec(readFileSync(keyFile, 'utf8'))?.[1] ?? '';
const SECRET = 'apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\nstringData:\n    password: hunter2-vault\n';

let vault: VaultDev;
let sops: string;
let dir: string;
let token: string;
let otherToken: string;
let uri: string;

void before(async () => {
  sops = findSops();
  dir = await tempDir('hc-vault');
  vault = await startVault(dir);
  await vault.createKey('sops');
  await vault.createKey('other');
  token = await vault.tokenFor(['transit/sops']);
  otherToken = await vault.tokenFor(['transit/other']);
  registerCanary(token);
  registerCanary(otherToken);
  uri = `${vault.address}/v1/transit/keys/sops`;
});

void after(async () => {
  await vault?.stop();
});

/** Only the Vault token: no age identity reaches either tool unless a test passes one. */
function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { HOME: join(dir, 'home-none'), XDG_CONFIG_HOME: join(dir, 'no-config'), SOPS_AGE_KEY_FILE: '', SOPS_AGE_KEY: '', VAULT_TOKEN: token, ...extra };
}

function runSops(args: string[], env: NodeJS.ProcessEnv = {}, cwd = dir): CliResult {
  const r = spawnSync(sops, args, { cwd, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...baseEnv(env) } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function ours(args: string[], env: NodeJS.ProcessEnv = {}, cwd = dir): CliResult {
  return runCli(args, { cwd, env: baseEnv(env), revealsSecrets: args[0] === 'decrypt' });
}

function ok(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r.stdout;
}

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  allowSecretsIn(file);
  return file;
}

/** One line `error: …` naming `where`, a hint, and never a token. */
function assertOneLineError(r: CliResult, where: RegExp, reason: RegExp): void {
  assert.notEqual(r.code, 0);
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0] ?? '', /^error: /, r.stderr);
  assert.match(lines[0] ?? '', where, r.stderr);
  assert.match(r.stderr, reason);
  assert.ok(lines.length <= 2 && lines.slice(1).every((l) => l.startsWith('hint: ')), r.stderr);
  for (const t of [token, otherToken, vault.rootToken]) assert.ok(!r.stderr.includes(t) && !r.stdout.includes(t), 'a token was printed');
}

/** The file with the values that change every run masked: what must match sops line for line. */
const layout = (text: string): string =>
  text
    .replace(/-----BEGIN AGE ENCRYPTED FILE-----[\s\S]*?-----END AGE ENCRYPTED FILE-----/g, 'AGE')
    .replace(/ENC\[[^\]]*\]/g, 'ENC')
    .replace(/vault:v\d+:\S+/g, 'VAULT')
    .replace(/\d{4}-\d{2}-\d{2}T[\d:.]+Z/g, 'TIME')
    .replace(/^(\s*version:).*$/m, '$1');

void describe('hc_vault with a real Vault and the real sops', () => {
  void it("--hc-vault-transit: sops opens ours and we open sops', with the same metadata layout", () => {
    const plain = write('flag.yaml', SECRET);
    const mine = ok(ours(['encrypt', '--hc-vault-transit', uri, plain]), 'fluxstrap encrypt');
    const theirs = ok(runSops(['encrypt', '--hc-vault-transit', uri, plain]), 'sops encrypt');
    assert.equal(layout(mine), layout(theirs));
    // sops 3.13 writes every metadata map's keys in byte order.
    assert.match(
      mine,
      new RegExp(
        `hc_vault:\\n        - created_at: "?\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ"?\\n          enc: vault:v1:\\S+\\n          engine_path: transit\\n          key_name: sops\\n          vault_address: ${vault.address.replace(/[.]/g, '\\.')}\\n`,
      ),
    );
    const ourFile = write('flag.ours.yaml', mine);
    const theirFile = write('flag.sops.yaml', theirs);
    assert.equal(ok(runSops(['decrypt', ourFile]), 'sops decrypts ours'), SECRET);
    assert.equal(ok(ours(['decrypt', theirFile]), "we decrypt sops'"), SECRET);
  });

  void it('.sops.yaml hc_vault_transit_uri with age: either key opens the file, in both tools', () => {
    const project = join(dir, 'project');
    spawnSync('mkdir', ['-p', join(project, 'secrets')]);
    writeFileSync(
      join(project, '.sops.yaml'),
      `creation_rules:\n  - path_regex: secrets/\n    encrypted_regex: ^(data|stringData)$\n    age: ${recipient}\n    hc_vault_transit_uri: ${uri}\n`,
    );
    const plain = join(project, 'secrets', 'db.yaml');
    writeFileSync(plain, SECRET);
    allowSecretsIn(plain);
    const mine = ok(ours(['encrypt', 'secrets/db.yaml'], {}, project), 'fluxstrap encrypt with the rule');
    const theirs = ok(runSops(['encrypt', 'secrets/db.yaml'], {}, project), 'sops encrypt with the rule');
    assert.equal(layout(mine), layout(theirs));
    const ourFile = write('rule.ours.yaml', mine);
    const theirFile = write('rule.sops.yaml', theirs);
    // Vault alone
    assert.equal(ok(runSops(['decrypt', ourFile]), 'sops with Vault only'), SECRET);
    assert.equal(ok(ours(['decrypt', theirFile]), 'we with Vault only'), SECRET);
    // age alone: no token at all
    const ageOnly = { VAULT_TOKEN: '', SOPS_AGE_KEY_FILE: keyFile };
    assert.equal(ok(runSops(['decrypt', ourFile], ageOnly), 'sops with age only'), SECRET);
    assert.equal(ok(ours(['decrypt', theirFile], ageOnly), 'we with age only'), SECRET);
  });

  void it('the token from ~/.vault-token when VAULT_TOKEN is unset, as sops and the vault CLI keep it', async () => {
    const home = await tempDir('hc-vault-home');
    const tokenFile = join(home, '.vault-token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    allowSecretsIn(tokenFile);
    const env = { HOME: home, VAULT_TOKEN: '' };
    const file = write('home.yaml', ok(ours(['encrypt', '--hc-vault-transit', uri, write('home.plain.yaml', SECRET)], env), 'encrypt with the token file'));
    assert.equal(ok(runSops(['decrypt', file], env), 'sops with the token file'), SECRET);
    assert.equal(ok(ours(['decrypt', file], env), 'we with the token file'), SECRET);
  });

  void it('updatekeys adds the Vault key to an age file and rotate moves it: sops opens each with Vault alone', () => {
    const project = join(dir, 'rekey');
    spawnSync('mkdir', ['-p', project]);
    const file = join(project, 'app.yaml');
    writeFileSync(file, ok(runSops(['encrypt', '--age', recipient, write('rekey.plain.yaml', SECRET)]), 'sops encrypt for age'));
    writeFileSync(join(project, '.sops.yaml'), `creation_rules:\n  - age: ${recipient}\n    hc_vault_transit_uri: ${uri}\n`);
    const ageOnly = { SOPS_AGE_KEY_FILE: keyFile, VAULT_TOKEN: token };
    assert.match(ours(['updatekeys', 'app.yaml'], ageOnly, project).stderr, /added hc_vault:/);
    assert.equal(ok(runSops(['decrypt', file], { VAULT_TOKEN: token }), 'sops opens the updated file with Vault'), SECRET);
    // rotate: drop the Vault key, then add it back; the data key changes each time
    ok(ours(['rotate', '-i', '--rm-hc-vault-transit', uri, 'app.yaml'], ageOnly, project), 'rotate --rm');
    assert.doesNotMatch(readFileSync(file, 'utf8'), /hc_vault/);
    ok(ours(['rotate', '-i', '--add-hc-vault-transit', uri, 'app.yaml'], ageOnly, project), 'rotate --add');
    assert.equal(ok(runSops(['decrypt', file], { VAULT_TOKEN: token }), 'sops opens the rotated file with Vault'), SECRET);
  });

  void it('the Vault client costs no import: an age-only and a Vault encrypt load the same modules, no package', async () => {
    // The SOPS commands run from one bundle (dist/cli/sops.cjs) that holds the Vault client, a few
    // lines over fetch: what would cost start-up is a module or package loaded for it.
    const plain = write('lazy.yaml', SECRET);
    const age = await tracedRun(['encrypt', '--age', recipient, plain], { env: baseEnv() });
    assert.equal(age.code, 0, age.stderr);
    assert.ok(
      age.modules.some((m) => m.endsWith('/dist/cli.js')),
      'the trace recorded the imports',
    );
    const withVault = await tracedRun(['encrypt', '--hc-vault-transit', uri, plain], { env: baseEnv() });
    assert.equal(withVault.code, 0, withVault.stderr);
    assert.match(withVault.stdout, /hc_vault:/, 'the Vault key was used');
    const files = (modules: string[]) => [...new Set(modules.filter((m) => !m.startsWith('node:')))].sort();
    assert.deepEqual(files(withVault.modules), files(age.modules));
    assert.deepEqual(
      files(withVault.modules).filter((m) => m.includes('/node_modules/')),
      [],
    );
  });
});

void describe('hc_vault bad input', () => {
  void it('an unreachable Vault: one line naming the flag; -i writes nothing', async () => {
    // A port just released: nothing listens there (fetch refuses well-known ports like 9 outright).
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    server.close();
    const closed = `http://127.0.0.1:${port}/v1/transit/keys/sops`;
    const file = write('unreachable.yaml', SECRET);
    const r = ours(['encrypt', '-i', '--hc-vault-transit', closed, file]);
    assertOneLineError(r, /--hc-vault-transit/, /cannot reach Vault at http:\/\/127\.0\.0\.1:\d+ \(connection refused\)/);
    assert.equal(readFileSync(file, 'utf8'), SECRET);
    assert.deepEqual(await import('node:fs/promises').then((fs) => fs.readdir(dir)).then((l) => l.filter((n) => n.includes('.tmp'))), []);
  });

  void it("a token without permission for the key: Vault's refusal, naming the .sops.yaml rule line", () => {
    const project = join(dir, 'denied');
    spawnSync('mkdir', ['-p', project]);
    writeFileSync(join(project, '.sops.yaml'), `creation_rules:\n  - path_regex: \\.yaml$\n    hc_vault_transit_uri: ${uri}\n`);
    const file = join(project, 'x.yaml');
    writeFileSync(file, SECRET);
    allowSecretsIn(file);
    const r = ours(['encrypt', '-i', 'x.yaml'], { VAULT_TOKEN: otherToken }, project);
    assertOneLineError(r, /\.sops\.yaml:3\b/, /permission denied \(HTTP 403\)/);
    assert.equal(readFileSync(file, 'utf8'), SECRET);
  });

  void it("decrypting with a token without permission names the Vault key and Vault's reason", () => {
    const file = write('denied-decrypt.yaml', ok(ours(['encrypt', '--hc-vault-transit', uri, write('dd.plain.yaml', SECRET)]), 'encrypt'));
    const r = ours(['decrypt', file], { VAULT_TOKEN: otherToken });
    assertOneLineError(
      r,
      /^error: Vault refused .*transit\/decrypt\/sops: permission denied \(HTTP 403\) .*\(.*denied-decrypt\.yaml at sops\.hc_vault\)$/,
      /hint: /,
    );
  });

  void it('a malformed URI: in .sops.yaml its line, as a flag the flag; nothing contacted, nothing written', () => {
    const project = join(dir, 'malformed');
    spawnSync('mkdir', ['-p', project]);
    writeFileSync(
      join(project, '.sops.yaml'),
      `creation_rules:\n  - path_regex: \\.yaml$\n    hc_vault_transit_uri: ${vault.address}/prefix/v1/transit/keys/sops\n`,
    );
    const file = join(project, 'x.yaml');
    writeFileSync(file, SECRET);
    allowSecretsIn(file);
    assertOneLineError(ours(['encrypt', '-i', 'x.yaml'], {}, project), /\.sops\.yaml:3\b.*|malformed hc_vault_transit_uri/, /path prefix/);
    assert.match(ours(['encrypt', '-i', 'x.yaml'], {}, project).stderr, /^error: malformed hc_vault_transit_uri: .* \(.*\.sops\.yaml:3\)/);
    assertOneLineError(
      ours(['encrypt', '--hc-vault-transit', 'https://s.not-a-token@vault:8200/v1/transit/keys/sops', file]),
      /--hc-vault-transit/,
      /user information/,
    );
    assert.equal(readFileSync(file, 'utf8'), SECRET);
  });
});

void describe('init --sops-backend vault', () => {
  const vaultInit = (repo: string, ...args: string[]) => ours(['init', '--cluster', 'production', '--repo', repo, '--sops-backend', 'vault', ...args]);

  void it('writes the transit key into the rule, sopsKey.vault into fluxstrap.yaml and sops-hcvault into the decryption; the rule encrypts for Vault', async () => {
    const r = await fluxRepo();
    ok(vaultInit(r.repo, '--vault-transit-uri', uri, '--vault-token-env', 'FLUX_VAULT_TOKEN'), 'init');
    const rules = (parse(readFileSync(join(r.repo, '.sops.yaml'), 'utf8')) as { creation_rules: Record<string, unknown>[] }).creation_rules;
    assert.deepEqual(
      rules.map((rule) => [rule.path_regex, rule.hc_vault_transit_uri, rule.age]),
      [['^clusters/production/.*\\.ya?ml$', uri, undefined]],
    );
    const config = parse(readFileSync(join(r.repo, 'fluxstrap.yaml'), 'utf8')) as { clusters: Record<string, { sopsKey?: unknown; ageKey?: unknown }> };
    assert.deepEqual(config.clusters.production, { sopsKey: { vault: { address: vault.address, tokenEnv: 'FLUX_VAULT_TOKEN' } } });
    // What Flux applies: the real kustomize build of flux-system (the seed's hand-added block, naming sops-age, moved and renamed).
    const built = parseAllDocuments((await runTool('kubectl', ['kustomize', join(r.repo, r.clusterPath, 'flux-system')])).stdout).map(
      (d) => d.toJSON() as { kind: string; metadata: { name: string }; spec?: { decryption?: unknown } },
    );
    assert.deepEqual(built.find((o) => o.kind === 'Kustomization' && o.metadata.name === 'flux-system')?.spec?.decryption, {
      provider: 'sops',
      secretRef: { name: 'sops-hcvault' },
    });
    // The rule is what encrypt uses: the file opens with the Vault token alone, in sops too.
    const secret = join(r.repo, r.clusterPath, 'db.yaml');
    writeFileSync(secret, SECRET);
    allowSecretsIn(secret);
    ok(ours(['encrypt', '-i', `${r.clusterPath}/db.yaml`], {}, r.repo), 'encrypt with the rule init wrote');
    assert.match(readFileSync(secret, 'utf8'), new RegExp(`hc_vault:\\n(\\s+\\S.*\\n)*?\\s+vault_address: ${vault.address.replace(/[.]/g, '\\.')}\\n`));
    assert.equal(ok(runSops(['decrypt', secret]), 'sops opens it with Vault'), SECRET);
    // A second run finds everything in place.
    const again = vaultInit(r.repo, '--vault-transit-uri', uri, '--vault-token-env', 'FLUX_VAULT_TOKEN');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /nothing to do/);
  });

  void it('an age repository switched to Vault: the rule gets the transit key beside the age key, the decryption names sops-hcvault', async () => {
    const r = await fluxRepo();
    // --age, not --key-file: a cluster has one key in fluxstrap.yaml, so ageKey and sopsKey exclude each other.
    ok(ours(['init', '--cluster', 'production', '--repo', r.repo, '--age', recipient]), 'init with age');
    ok(vaultInit(r.repo, '--vault-transit-uri', uri, '--vault-token-env', 'FLUX_VAULT_TOKEN'), 'init with vault');
    const [rule] = (parse(readFileSync(join(r.repo, '.sops.yaml'), 'utf8')) as { creation_rules: Record<string, unknown>[] }).creation_rules;
    assert.deepEqual([rule?.age, rule?.hc_vault_transit_uri], [recipient, uri]);
    assert.match(readFileSync(join(r.repo, r.clusterPath, 'flux-system', 'kustomization.yaml'), 'utf8'), /secretRef:\n\s+name: sops-hcvault\n/);
  });

  void it('bad flags: one line naming the flag, nothing written, a token given for its variable never echoed', async () => {
    const r = await fluxRepo();
    const before = await snapshot(r.repo);
    const refused = (args: string[], flag: RegExp, reason: RegExp) => {
      const res = vaultInit(r.repo, ...args);
      assert.equal(res.code, 2, res.stderr);
      assertOneLineError(res, flag, reason);
    };
    refused(
      ['--vault-transit-uri', `${vault.address}/transit/keys/sops`, '--vault-token-env', 'FLUX_VAULT_TOKEN'],
      /\(--vault-transit-uri\)/,
      /\/v1\/<engine>\/keys\/<name>/,
    );
    refused(
      ['--vault-transit-uri', uri, '--vault-transit-uri', 'https://other.example:8200/v1/transit/keys/sops', '--vault-token-env', 'FLUX_VAULT_TOKEN'],
      /\(--vault-transit-uri\)/,
      /different Vaults/,
    );
    refused(['--vault-token-env', 'FLUX_VAULT_TOKEN'], /needs --vault-transit-uri/, /hint: /);
    refused(['--vault-transit-uri', uri], /needs --vault-token-env/, /hint: /);
    refused(['--vault-transit-uri', uri, '--vault-token-env', token], /\(--vault-token-env\)/, /not the token/);
    refused(['--vault-transit-uri', uri, '--vault-token-env', 'FLUX_VAULT_TOKEN', '--decryption', 'controller'], /--decryption controller/, /sops-hcvault/);
    assert.deepEqual(await snapshot(r.repo), before);
  });
});
