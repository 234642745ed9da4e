import { join } from 'node:path';
import { readBytes, writeAllAtomic, writeAtomic } from '../adapters/files.ts';
import { promptSecret, readStdin } from '../adapters/prompt.ts';
import { configError, exitCodeOf, FluxstrapError, formatLocation, isFluxstrapError, usageError } from '../core/errors.ts';
import { redactPrivateKeys } from '../core/redact.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { checkedPublicKeys, publicKeyError } from '../keys/recipients.ts';
import { keyCommandIdentities, loadAgeIdentities, loadPgpKeyFiles } from '../keys/identities.ts';
import { findConfig, loadConfig, matchRule, type CreationRule, type SopsConfig } from '../sops/config.ts';
import { ARN_HINT, arnProblem, kmsStanza, parseArnSpec, parseContextFlag } from '../sops/aws-kms.ts';
import { newStanza, type KeySources } from '../sops/datakey.ts';
import { decryptDocument, encryptDocument, openDocument, rotate, updateKeys, type EncryptParams } from '../sops/engine.ts';
import { parseJson } from '../sops/json.ts';
import { scalarText } from '../sops/scalars.ts';
import { editValue, type ValueEdit } from '../sops/set.ts';
import { formatTreePath, getAt, parseTreePath, type PathStep } from '../sops/tree-path.ts';
import { Comment, TreeMap, type Branch, type Value } from '../sops/tree.ts';
import { checkRulePatterns, RULE_NAMES, selectionRulesSet, type Rules, type SelectionRule } from '../sops/rules.ts';
import { parseVaultUri, VaultUriError, vaultStanza } from '../sops/hc-vault-uri.ts';
import type { Stanza } from '../sops/metadata.ts';
import { emitPlain, FORMATS, formatForPath, type Format, type StoreOptions } from '../sops/stores.ts';
import { terminalAsk, type AskSecret, type CommandIo } from './io.ts';

/**
 * The file side of the commands: reading inputs, choosing the format and the creation rule,
 * gathering keys, and writing results only where asked (stdout by default; `--in-place` and
 * `--output` through an atomic write that keeps the file's mode). Status lines go to stderr.
 */

export interface CommonOptions {
  inputType?: string;
  outputType?: string;
  keyFile?: string[];
  config?: string;
  inPlace?: boolean;
  output?: string;
  ignoreMac?: boolean;
}

export interface EncryptOptions extends CommonOptions, Partial<Record<SelectionRule, string>> {
  age?: string[];
  pgp?: string[];
  kms?: string[];
  awsProfile?: string;
  encryptionContext?: string;
  hcVaultTransit?: string[];
  macOnlyEncrypted?: boolean;
  shamirSecretSharingThreshold?: number;
}

export interface RotateCliOptions extends CommonOptions {
  addAge?: string[];
  rmAge?: string[];
  addPgp?: string[];
  rmPgp?: string[];
  addKms?: string[];
  rmKms?: string[];
  awsProfile?: string;
  encryptionContext?: string;
  addHcVaultTransit?: string[];
  rmHcVaultTransit?: string[];
}

function formatOption(value: string | undefined, flag: string): Format | undefined {
  if (value === undefined) return undefined;
  const v = value === 'env' ? 'dotenv' : value === 'yml' ? 'yaml' : value;
  if (!(FORMATS as readonly string[]).includes(v)) throw usageError(`${flag} must be one of ${FORMATS.join(', ')}`);
  return v as Format;
}

function readInput(file: string): Promise<Buffer> {
  return readBytes(file);
}

/** Status lines quote recipients from the files themselves, which a hostile file can fill with a private key. */
function status(io: CommandIo, line: string): void {
  if (!io.quiet) io.stderr.write(`${redactPrivateKeys(line)}\n`);
}

/**
 * Results go to stdout unless `--in-place` or `--output` say otherwise. In place, the batch is
 * all-or-nothing: no file is replaced unless every one can be.
 */
async function deliver(io: CommandIo, files: string[], results: (string | Buffer)[], opts: CommonOptions, plaintext: boolean): Promise<void> {
  if (opts.inPlace) {
    await writeAllAtomic(files.map((file, i) => ({ file, content: results[i] ?? '' })));
    io.result({ files: files.map((file) => ({ file, written: file })) });
    return;
  }
  if (opts.output !== undefined) {
    // A new plaintext file is readable by its owner only; an existing one keeps its mode.
    await writeAtomic(opts.output, results[0] ?? '', plaintext ? { mode: 0o600 } : {});
    io.result({ files: files.map((file) => ({ file, written: opts.output })) });
    return;
  }
  // With --json, what would have been stdout is in the document: stdout holds one JSON value.
  io.result({ files: files.map((file, i) => ({ file, ...contentField(results[i] ?? '') })) });
  if (!io.json) for (const r of results) io.stdout.write(r);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text as it is; bytes that are not UTF-8 (a binary file decrypted) in base64, which JSON can carry. */
function contentField(result: string | Buffer): { content: string } | { contentBase64: string } {
  if (typeof result === 'string') return { content: result };
  try {
    return { content: utf8.decode(result) };
  } catch {
    return { contentBase64: result.toString('base64') };
  }
}

function checkOutputFlags(opts: CommonOptions): void {
  if (opts.inPlace && opts.output !== undefined) throw usageError('use either --in-place or --output, not both');
}

/** sops runs `$SOPS_GPG_EXEC` in place of gpg when it is set. */
function gpgExec(env: NodeJS.ProcessEnv): { gpgExec?: string } {
  return env.SOPS_GPG_EXEC ? { gpgExec: env.SOPS_GPG_EXEC } : {};
}

/**
 * Identities from the environment, the default key file, SSH keys and `--key-file`; gpg as sops
 * uses it. `ask` types an encrypted identity file's passphrase at a terminal.
 */
export async function keySources(opts: { keyFile?: string[] }, env: NodeJS.ProcessEnv, gpg = true, ask?: AskSecret): Promise<KeySources> {
  const keyFiles = opts.keyFile ?? [];
  let age: AgeIdentity[];
  try {
    age = await loadAgeIdentities({ keyFiles, env, keyCmdPerRecipient: true, ssh: true, ...(ask ? { ask } : {}) });
  } catch (e) {
    // A broken environment source must not block a file that PGP opens; explicit files must parse, and a wrong passphrase stops.
    if (keyFiles.length > 0 || !isFluxstrapError(e) || e.code === 'E_DECRYPT') throw e;
    age = [];
  }
  const ageFor = keyCommandIdentities(env);
  return { age, pgpFiles: await loadPgpKeyFiles(keyFiles), gpg, ...gpgExec(env), env, ...(ageFor ? { ageFor } : {}) };
}

async function configFor(io: CommandIo, opts: CommonOptions, required: boolean): Promise<SopsConfig | undefined> {
  const file = await findConfig(io.cwd, io.env, opts.config);
  if (!file) {
    if (required)
      throw new FluxstrapError('E_NOT_FOUND', 'no .sops.yaml found in this folder or above', { hint: 'create one (fluxstrap init) or name one with --config' });
    return undefined;
  }
  return loadConfig(file);
}

function ruleFor(config: SopsConfig, file: string, cwd: string): CreationRule {
  const rule = matchRule(config, file, cwd);
  if (!rule) {
    throw new FluxstrapError('E_CONFIG', `no creation rule matches ${file}`, {
      location: { file: config.file },
      hint: 'add a creation rule whose path_regex matches the file, or give --age/--pgp',
    });
  }
  if (rule.invalidRecipient) {
    const { type, id, line } = rule.invalidRecipient;
    throw publicKeyError(type, id, { file: config.file, line }, 'E_CONFIG');
  }
  if (rule.invalidVaultUri) {
    // The URI itself is not repeated: it may carry credentials (user information).
    const { reason, location } = rule.invalidVaultUri;
    throw configError(`malformed hc_vault_transit_uri: ${reason}`, location, 'write it as https://vault.example.com:8200/v1/<engine>/keys/<name>');
  }
  return rule;
}

function storeOptions(config: SopsConfig | undefined, format: Format): StoreOptions {
  const indent =
    format === 'yaml' ? config?.indent.yaml : format === 'json' ? config?.indent.json : format === 'binary' ? config?.indent.jsonBinary : undefined;
  return indent === undefined ? {} : { indent };
}

function flagRules(opts: EncryptOptions): Rules {
  const rules: Rules = {};
  for (const k of Object.keys(RULE_NAMES) as SelectionRule[]) {
    const v = opts[k];
    if (v !== undefined) rules[k] = v;
  }
  if (opts.macOnlyEncrypted) rules.macOnlyEncrypted = true;
  const flag = (k: SelectionRule) => `--${RULE_NAMES[k].replaceAll('_', '-')}`;
  checkRulePatterns(rules, (k) => ({ field: flag(k) }), flag);
  return rules;
}

function splitList(values: string[] | undefined, envValue: string | undefined): string[] {
  const all = values && values.length > 0 ? values : envValue ? [envValue] : [];
  return all
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

function encryptParams(io: CommandIo, file: string, opts: EncryptOptions, config: SopsConfig | undefined): EncryptParams {
  const age = checkedPublicKeys('age', splitList(opts.age, io.env.SOPS_AGE_RECIPIENTS), opts.age ? '--age' : 'SOPS_AGE_RECIPIENTS');
  const pgp = checkedPublicKeys('pgp', splitList(opts.pgp, io.env.SOPS_PGP_FP), opts.pgp ? '--pgp' : 'SOPS_PGP_FP');
  const vault = vaultStanzas(splitList(opts.hcVaultTransit, io.env.SOPS_VAULT_URIS), opts.hcVaultTransit ? '--hc-vault-transit' : 'SOPS_VAULT_URIS');
  const kms = kmsFlagStanzas(splitList(opts.kms, io.env.SOPS_KMS_ARN), opts.kms ? '--kms' : 'SOPS_KMS_ARN', opts);
  const fromFlags = flagRules(opts);
  // Flags win over the creation rule, as in sops; without key flags the rule's key groups apply.
  if (age.length > 0 || pgp.length > 0 || kms.length > 0 || vault.length > 0) {
    return {
      keyGroups: [[...age.map((r) => newStanza('age', r)), ...pgp.map((f) => newStanza('pgp', f)), ...kms, ...vault]],
      shamirThreshold: opts.shamirSecretSharingThreshold ?? 0,
      rules: fromFlags,
    };
  }
  if (!config) {
    throw usageError('no recipients: give --age, --pgp, --kms or --hc-vault-transit, or add a .sops.yaml creation rule', 'fluxstrap encrypt --age age1… FILE');
  }
  const rule = ruleFor(config, file, io.cwd);
  const rules =
    selectionRulesSet(fromFlags).length > 0
      ? { ...fromFlags, ...(rule.rules.macOnlyEncrypted ? { macOnlyEncrypted: true } : {}) }
      : { ...rule.rules, ...fromFlags };
  return { keyGroups: rule.keyGroups, shamirThreshold: opts.shamirSecretSharingThreshold ?? rule.shamirThreshold, rules };
}

/** Transit key URIs from a flag or variable, each a stanza whose Vault errors name `field`. */
function vaultStanzas(uris: string[], field: string): Stanza[] {
  return uris.map((uri) => {
    try {
      return { ...vaultStanza(parseVaultUri(uri)), origin: { field } };
    } catch (e) {
      if (!(e instanceof VaultUriError)) throw e;
      throw new FluxstrapError('E_USAGE', `malformed Vault transit URI: ${e.message}`, {
        location: { field },
        hint: 'write it as https://vault.example.com:8200/v1/<engine>/keys/<name>',
      });
    }
  });
}

/**
 * `--kms` ARNs (`arn[+roleArn]`) with `--aws-profile` and `--encryption-context`, as sops builds
 * them from its flags; a malformed ARN or context is refused here, before any file is read.
 */
function kmsFlagStanzas(specs: string[], from: string, opts: { awsProfile?: string; encryptionContext?: string }): Stanza[] {
  const context = opts.encryptionContext === undefined || opts.encryptionContext === '' ? {} : parseContextFlag(opts.encryptionContext);
  if (context === undefined)
    throw new FluxstrapError('E_USAGE', 'invalid encryption context: pairs are key:value, separated by commas', {
      location: { field: '--encryption-context' },
      hint: '--encryption-context app:web,env:prod',
    });
  return specs.map((spec) => {
    const key = { ...parseArnSpec(spec), context, profile: opts.awsProfile ?? '' };
    const problem = arnProblem(key);
    if (problem !== undefined) throw new FluxstrapError('E_USAGE', problem, { location: { field: from }, hint: ARN_HINT });
    return { ...kmsStanza(key), origin: { field: from } };
  });
}

interface Job {
  file: string;
  format: Format;
  bytes: Buffer;
  config: SopsConfig | undefined;
}

/**
 * The shared shape of encrypt, decrypt and rotate: every input read and turned into its result by
 * `work`, and only then each delivered to stdout, `--output` or in place (with a status line for
 * in-place runs). A bad file anywhere in a batch stops it before any file is written, and a write
 * that fails undoes the others.
 */
async function transformEach(
  io: CommandIo,
  files: string[],
  opts: CommonOptions,
  work: (job: Job) => Promise<string | Buffer>,
  done: (file: string) => string,
  plaintext = false,
): Promise<void> {
  checkOutputFlags(opts);
  if (opts.output !== undefined && files.length > 1) throw usageError('--output takes a single input file');
  const config = await configFor(io, opts, false);
  const results: (string | Buffer)[] = [];
  for (const file of files) {
    const format = formatOption(opts.inputType, '--input-type') ?? formatForPath(file);
    results.push(await work({ file, format, bytes: await readInput(file), config }));
  }
  await deliver(io, files, results, opts, plaintext);
  if (opts.inPlace) for (const file of files) status(io, done(file));
}

export async function runEncrypt(files: string[], opts: EncryptOptions, io: CommandIo): Promise<void> {
  const sources: KeySources = { age: [], pgpFiles: await loadPgpKeyFiles(opts.keyFile ?? []), gpg: true, ...gpgExec(io.env), env: io.env };
  await transformEach(
    io,
    files,
    opts,
    ({ file, format, bytes, config }) => {
      const outputFormat = formatOption(opts.outputType, '--output-type') ?? format;
      return encryptDocument(bytes, format, file, encryptParams(io, file, opts, config), sources, storeOptions(config, outputFormat), outputFormat);
    },
    (file) => `encrypted ${file}`,
  );
}

export async function runDecrypt(files: string[], opts: CommonOptions & { extract?: string }, io: CommandIo): Promise<void> {
  const sources = await keySources(opts, io.env, true, terminalAsk(io));
  const extract = opts.extract === undefined ? undefined : parseTreePath(opts.extract);
  if (extract && opts.inPlace) throw usageError('--extract prints one value: it does not go with --in-place');
  await transformEach(
    io,
    files,
    opts,
    async ({ file, format, bytes, config }) => {
      const outputFormat = formatOption(opts.outputType, '--output-type') ?? (opts.output !== undefined ? formatForPath(opts.output) : format);
      const open = { ...(opts.ignoreMac ? { ignoreMac: true } : {}) };
      if (extract)
        return extractValue((await openDocument(bytes, format, file, sources, open)).branches, extract, file, outputFormat, storeOptions(config, outputFormat));
      return decryptDocument(bytes, format, file, sources, { ...open, outputFormat, store: storeOptions(config, outputFormat) });
    },
    (file) => `decrypted ${file}`,
    true,
  );
}

/** As `sops decrypt --extract`: a string as it is, a map in the output format, other scalars as a line. */
function extractValue(branches: Branch[], path: PathStep[], file: string, format: Format, store: StoreOptions): string | Buffer {
  const [doc] = branches;
  let value;
  try {
    value = getAt(doc ?? new TreeMap(), path);
  } catch (e) {
    if (isFluxstrapError(e)) throw new FluxstrapError(e.code, e.message, { location: { file } });
    throw e;
  }
  if (value instanceof TreeMap) return emitPlain(format, [value], store);
  if (Array.isArray(value)) throw usageError(`${formatTreePath(path)} is a list: extract one element, e.g. ${formatTreePath([...path, 0])}`);
  if (value === null) return '';
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (typeof value === 'string') return value;
  if (value instanceof Comment) return value.text;
  // Other scalars go through the output store's emitter in sops, which ends the line.
  return `${typeof value === 'boolean' ? String(value) : scalarText(value)}\n`;
}

export interface SetOptions {
  config?: string;
  inputType?: string;
  keyFile?: string[];
  jsonValue?: boolean;
  allowEmpty?: boolean;
}

/**
 * The value for `set`: piped stdin (one final newline dropped), or typed at the terminal unseen.
 * Empty is refused unless asked for: `pwgen 32 1 | fluxstrap set …` with pwgen missing pipes
 * nothing, and a secret silently set to "" is worse than an error.
 */
async function valueFromStdin(io: CommandIo, path: string, opts: SetOptions): Promise<Value> {
  const tty = io.stdin.isTTY;
  const raw = tty
    ? await promptSecret(`value for ${path} (not shown): `, io.stdin, io.stderr, () => io.interrupt())
    : (await readStdin(io.stdin)).replace(/\r?\n$/, '');
  if (raw === '' && !opts.allowEmpty) {
    throw new FluxstrapError('E_USAGE', `empty value for ${path}: ${tty ? 'nothing was typed' : 'standard input was empty'}`, {
      location: { field: tty ? 'the prompt' : 'stdin' },
      hint: tty
        ? 'type the value, or pass --allow-empty to set an empty string'
        : 'did the command before | fail? pass --allow-empty to set an empty string on purpose',
    });
  }
  if (!opts.jsonValue) return raw;
  try {
    // Through the JSON store, so that key order and the int/float types are those of sops.
    return parseJson(`{"v":${raw}}`).get('v') ?? null;
  } catch {
    throw usageError('--json-value: the value on stdin is not JSON', 'a string is "text", a number 42, a map {"k": "v"}');
  }
}

export async function runSet(file: string, pathText: string, opts: SetOptions, io: CommandIo): Promise<void> {
  const path = parseTreePath(pathText);
  await editInPlace(
    io,
    file,
    opts,
    async () => ({ path, value: await valueFromStdin(io, formatTreePath(path), opts) }),
    (changed) => (changed ? `set ${formatTreePath(path)} in ${file}` : `${file}: ${formatTreePath(path)} already has this value; nothing to do`),
  );
}

export async function runUnset(file: string, pathText: string, opts: SetOptions, io: CommandIo): Promise<void> {
  const path = parseTreePath(pathText);
  await editInPlace(
    io,
    file,
    opts,
    () => Promise.resolve({ path, unset: true }),
    (changed) => (changed ? `removed ${formatTreePath(path)} from ${file}` : `${file}: has no ${formatTreePath(path)}; nothing to do`),
  );
}

/** `edit` is asked for once the file and the keys are at hand: nobody types a secret for a typo'd path. */
async function editInPlace(io: CommandIo, file: string, opts: SetOptions, edit: () => Promise<ValueEdit>, done: (changed: boolean) => string): Promise<void> {
  const format = formatOption(opts.inputType, '--input-type') ?? formatForPath(file);
  const bytes = await readInput(file);
  const config = await configFor(io, opts, false);
  const sources = await keySources(opts, io.env, true, terminalAsk(io));
  const change = await edit();
  const { output } = await editValue(bytes, format, file, sources, change, storeOptions(config, format));
  if (output !== undefined) await writeAtomic(file, output);
  io.result({ file, path: formatTreePath(change.path), changed: output !== undefined });
  status(io, done(output !== undefined));
}

export async function runRotate(files: string[], opts: RotateCliOptions, io: CommandIo): Promise<void> {
  const sources = await keySources(opts, io.env, true, terminalAsk(io));
  const changes = {
    addAge: checkedPublicKeys('age', opts.addAge ?? [], '--add-age'),
    rmAge: checkedPublicKeys('age', opts.rmAge ?? [], '--rm-age'),
    addPgp: checkedPublicKeys('pgp', opts.addPgp ?? [], '--add-pgp'),
    rmPgp: checkedPublicKeys('pgp', opts.rmPgp ?? [], '--rm-pgp'),
    addKms: kmsFlagStanzas(splitList(opts.addKms, undefined), '--add-kms', opts),
    rmKms: kmsFlagStanzas(splitList(opts.rmKms, undefined), '--rm-kms', opts),
    addVault: vaultStanzas(opts.addHcVaultTransit ?? [], '--add-hc-vault-transit'),
    rmVault: vaultStanzas(opts.rmHcVaultTransit ?? [], '--rm-hc-vault-transit'),
  };
  await transformEach(
    io,
    files,
    opts,
    async ({ file, format, bytes, config }) =>
      (await rotate(bytes, format, file, sources, { ...(opts.ignoreMac ? { ignoreMac: true } : {}), ...changes }, storeOptions(config, format))).output,
    (file) => `rotated the data key of ${file}`,
  );
}

export async function runUpdateKeys(
  given: string[],
  opts: CommonOptions & { shamirSecretSharingThreshold?: number; cluster?: string; repo?: string },
  io: CommandIo,
): Promise<void> {
  let files = given;
  if (opts.cluster !== undefined) {
    if (given.length > 0)
      throw usageError('--cluster and files are alternatives: pass one', 'with --cluster, the files are the SOPS files the cluster reaches');
    const { repo, clusterPath } = await clusterOf(opts.cluster, opts.repo, io);
    const { clusterKeyedFiles } = await import('../tasks/sops-files.ts');
    files = (await clusterKeyedFiles(repo, clusterPath)).map((f) => f.file);
    opts = { ...opts, config: opts.config ?? join(repo, '.sops.yaml') };
    if (files.length === 0) status(io, `cluster ${opts.cluster} (${clusterPath}) reaches no SOPS-encrypted file: nothing to update`);
  } else if (given.length === 0) {
    throw usageError('no files given', 'pass the files, or --cluster NAME for every SOPS file the cluster reaches');
  }
  const config = await configFor(io, opts, true);
  if (!config) return;
  const sources = await keySources(opts, io.env, true, terminalAsk(io));
  // Every file re-keyed in memory first: one that cannot be opened stops the batch before any write.
  const results = [];
  for (const file of files) {
    const format = formatOption(opts.inputType, '--input-type') ?? formatForPath(file);
    const rule = ruleFor(config, file, io.cwd);
    results.push({
      file,
      res: await updateKeys(
        await readInput(file),
        format,
        file,
        rule.keyGroups,
        opts.shamirSecretSharingThreshold ?? rule.shamirThreshold,
        sources,
        storeOptions(config, format),
      ),
    });
  }
  const keyed = results.map(({ file, res }) => ({
    file,
    output: res.output,
    added: res.after.filter((k) => !res.before.includes(k)),
    removed: res.before.filter((k) => !res.after.includes(k)),
  }));
  const changed = keyed.filter((k) => k.added.length > 0 || k.removed.length > 0);
  await writeAllAtomic(changed.map(({ file, output }) => ({ file, content: output })));
  io.result({ files: keyed.map(({ file, added, removed }) => ({ file, added, removed })) });
  for (const { file, added, removed } of keyed) {
    if (added.length === 0 && removed.length === 0) status(io, `${file}: keys already match the creation rule`);
    else status(io, `${file}: keys updated${added.length ? `; added ${added.join(', ')}` : ''}${removed.length ? `; removed ${removed.join(', ')}` : ''}`);
  }
}

/** Print the findings, one `FILE: reason` line each (or one JSON document); the exit code. */
export async function runCheck(
  paths: string[],
  opts: { config?: string; keyFile?: string[]; cluster?: string; repo?: string },
  io: CommandIo,
): Promise<number> {
  if (opts.cluster !== undefined && paths.length > 0)
    throw usageError('--cluster and paths are alternatives: pass one', 'with --cluster, the files are those the cluster reaches');
  const { check } = await import('../sops/check.ts');
  // No gpg here: a pre-commit hook must not wait on a passphrase prompt.
  const sources = await keySources(opts, io.env, false);
  const cluster = opts.cluster !== undefined ? await clusterCheck(opts.cluster, opts.repo, io) : undefined;
  const files = cluster ? cluster.files : paths;
  const found =
    files.length === 0 && cluster
      ? []
      : await check(files, {
          ...(opts.config !== undefined ? { config: opts.config } : {}),
          strictKeys: (opts.keyFile ?? []).length > 0,
          sources,
          // A cluster's files are named from its repository's root, as its Kustomizations name them.
          cwd: cluster ? cluster.repo : io.cwd,
          env: io.env,
        });
  // Reasons quote the recipients a file names, and a hostile file can name a private key there.
  const findings = [...found.map((f) => ({ ...f, reason: `${f.reason}${cluster?.by.get(f.file) ?? ''}` })), ...(cluster?.findings ?? [])].map((f) => ({
    ...f,
    file: redactPrivateKeys(f.file),
    reason: redactPrivateKeys(f.reason),
  }));
  for (const w of cluster?.warnings ?? []) io.stderr.write(`warning: ${redactPrivateKeys(w)}\n`);
  io.result({ findings, ...(cluster ? { warnings: cluster.warnings.map(redactPrivateKeys) } : {}) });
  if (!io.json) for (const f of findings) io.stdout.write(`${f.file}${f.line !== undefined ? `:${f.line}` : ''}: ${f.reason}\n`);
  return exitCodeOf({ failed: findings.length > 0 });
}

/** A cluster of the repository, resolved as every cluster command resolves it. */
async function clusterOf(name: string, repoFlag: string | undefined, io: CommandIo): Promise<{ repo: string; clusterPath: string }> {
  // Loaded here: encrypt and decrypt must not pay for fluxstrap.yaml's schema (zod).
  const { resolveClusterFlags } = await import('../cluster/resolve.ts');
  const cluster = await resolveClusterFlags({ cluster: name, ...(repoFlag !== undefined ? { repo: repoFlag } : {}) }, io.env, io.cwd);
  return { repo: cluster.repoDir, clusterPath: cluster.path };
}

/**
 * `check --cluster`: the SOPS files the cluster reaches (src/flux/reach.ts) instead of folders,
 * each named with the Kustomizations that apply it, and the Kustomizations that apply SOPS files
 * without decryption. What the walk cannot follow is a warning, never a silent pass.
 */
async function clusterCheck(name: string, repoFlag: string | undefined, io: CommandIo) {
  const { clusterSops } = await import('../tasks/sops-files.ts');
  const { reachRoot, splitBuild } = await import('../tasks/source.ts');
  const { kustomizeBuild } = await import('../adapters/kustomize.ts');
  const { childDecryptionCommand, decryptionFindings, describeKustomization, reachersOf } = await import('../flux/reach.ts');
  const { repo, clusterPath } = await clusterOf(name, repoFlag, io);
  const build = await kustomizeBuild(join(repo, ...clusterPath.split('/'), 'flux-system')).then(splitBuild, () => undefined);
  const { reach, files } = await clusterSops(repo, reachRoot(clusterPath, build));
  const by = new Map(
    files.map((f) => [
      f.name,
      ` (applied by ${reachersOf(reach, f.name)
        .map((k) => describeKustomization(k))
        .join(', ')})`,
    ]),
  );
  const findings = decryptionFindings(reach).map((d): { file: string; line?: number; reason: string } => ({
    file: d.kustomization.at?.file ?? clusterPath,
    ...(d.kustomization.at?.line !== undefined ? { line: d.kustomization.at.line } : {}),
    reason: `Kustomization ${d.kustomization.namespace}/${d.kustomization.name} applies SOPS-encrypted ${d.files.join(', ')} without decryption.provider sops (fix: ${childDecryptionCommand(name)})`,
  }));
  const warnings = [...reach.notChecked, ...reach.issues].map((u) => `${u.what} (${formatLocation(u.at)})`);
  if (files.length === 0)
    warnings.push(`cluster ${name} (${clusterPath}) reaches no SOPS-encrypted file through its ${reach.kustomizations.length} Kustomization(s)`);
  return { repo, files: files.map((f) => f.file), by, findings, warnings };
}
