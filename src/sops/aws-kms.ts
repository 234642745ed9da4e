import { hostname } from 'node:os';
import { FluxstrapError, type Location } from '../core/errors.ts';
import { kmsContext, stanzaField, type Stanza } from './metadata.ts';
import { TreeMap } from './tree.ts';
import type { KMSClient as KmsClient } from '@aws-sdk/client-kms';

/**
 * sops' `kms` master keys through the AWS SDK: the ARN (with `+role` for an assumed role), the
 * encryption context and `aws_profile`, read and written as sops 3.13 does. The SDK is imported
 * only when a KMS key is really used, so age-only runs never load it.
 */

/** sops' ARN check (kms/keysource.go); the region is its first group. Linear: one `.+` before fixed text. */
const ARN = /^arn:aws[\w-]*:kms:(.+):[0-9]+:(key|alias)\/.+$/;
/** ARNs are short; a longer one is not a key, whatever it matches. */
const MAX_ARN = 2048;

export interface KmsKey {
  arn: string;
  role: string;
  context: Record<string, string>;
  profile: string;
}

/** The region an ARN names, or undefined for something sops would refuse as "no valid ARN". */
export function arnRegion(arn: string): string | undefined {
  return arn.length <= MAX_ARN ? ARN.exec(arn)?.[1] : undefined;
}

/** `arn[+roleArn]` as `--kms`, `SOPS_KMS_ARN` and flat rules give it: spaces dropped, the role after `+arn:`. */
export function parseArnSpec(spec: string): { arn: string; role: string } {
  const s = spec.replaceAll(' ', '');
  const at = s.indexOf('+arn:');
  return at > 0 ? { arn: s.slice(0, at), role: s.slice(at + 1) } : { arn: s, role: '' };
}

/** `--encryption-context k:v,k2:v2`; undefined where sops gives up on it (a pair without exactly one colon). */
export function parseContextFlag(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const kv = pair.split(':');
    if (kv.length !== 2) return undefined;
    out[kv[0] ?? ''] = kv[1] ?? '';
  }
  return out;
}

/** A new stanza (no `enc` yet); the fields sops writes for it, `aws_profile` even when empty. */
export function kmsStanza(key: KmsKey): Stanza {
  const fields = new TreeMap([{ key: 'arn', value: key.arn }]);
  if (key.role !== '') fields.set('role', key.role);
  const ctx = Object.entries(key.context);
  if (ctx.length > 0) fields.set('context', new TreeMap(ctx.map(([k, v]) => ({ key: k, value: v }))));
  fields.set('aws_profile', key.profile);
  return { type: 'kms', fields };
}

export function kmsKeyOf(s: Stanza): KmsKey {
  return { arn: stanzaField(s, 'arn'), role: stanzaField(s, 'role'), context: Object.fromEntries(kmsContext(s)), profile: stanzaField(s, 'aws_profile') };
}

export const ARN_HINT = 'an ARN looks like arn:aws:kms:eu-west-1:111122223333:key/1234abcd-…, optionally +arn:aws:iam::111122223333:role/NAME';

/** The ARN problem of a key, if it has one: what `encrypt` refuses before any request. */
export function arnProblem(key: Pick<KmsKey, 'arn' | 'role'>): string | undefined {
  if (arnRegion(key.arn) === undefined) return `not an AWS KMS key ARN: ${cut(key.arn)}`;
  if (key.role !== '' && !/^arn:aws[\w-]*:iam::[0-9]+:role\/\S+$/.test(key.role)) return `not an IAM role ARN: ${cut(key.role)}`;
  return undefined;
}

const cut = (s: string): string => (s.length > 100 ? `${s.slice(0, 97)}...` : s);

/** What the AWS calls need from the environment, handed down by the CLI. */
export interface AwsEnv {
  env: NodeJS.ProcessEnv;
}

// One client per region, profile, role and endpoint: a batch of files assumes a role once.
const clients = new Map<string, Promise<KmsClient>>();

/** Static credentials from the environment; the SDK's own chain (profiles, IRSA, IMDS…) otherwise. */
function envCredentials(env: NodeJS.ProcessEnv): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_SESSION_TOKEN: sessionToken } = env;
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

/** `AWS_ENDPOINT_URL_<SERVICE>` then `AWS_ENDPOINT_URL`, as the SDKs read them. */
function endpointFor(service: 'KMS' | 'STS', env: NodeJS.ProcessEnv): string | undefined {
  return env[`AWS_ENDPOINT_URL_${service}`] || env.AWS_ENDPOINT_URL || undefined;
}

function sessionName(): string {
  return `fluxstrap@${hostname().replace(/[^\w+=,.@-]/g, '')}`.slice(0, 64);
}

// A blackholed endpoint must fail in seconds, not after the SDK's defaults (no timeout, 3 attempts).
const transport = { maxAttempts: 2, requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 } };

async function clientFor(key: KmsKey, region: string, aws: AwsEnv): Promise<KmsClient> {
  const id = JSON.stringify([region, key.profile, key.role, endpointFor('KMS', aws.env), endpointFor('STS', aws.env)]);
  let client = clients.get(id);
  if (!client) {
    client = makeClient(key, region, aws.env);
    clients.set(id, client);
    // A failure (no credentials, role refused) is not kept: the next file tries again.
    client.catch(() => clients.delete(id));
  }
  return client;
}

async function makeClient(key: KmsKey, region: string, env: NodeJS.ProcessEnv): Promise<KmsClient> {
  const { KMSClient } = await import('@aws-sdk/client-kms');
  // sops: a profile named on the key wins over the environment's credentials.
  const fromEnv = key.profile === '' ? envCredentials(env) : undefined;
  const base = { region, ...transport, ...(key.profile !== '' ? { profile: key.profile } : {}), ...(fromEnv ? { credentials: fromEnv } : {}) };
  const kmsEndpoint = endpointFor('KMS', env);
  if (key.role === '') return new KMSClient({ ...base, ...(kmsEndpoint ? { endpoint: kmsEndpoint } : {}) });
  const { STSClient, AssumeRoleCommand } = await import('@aws-sdk/client-sts');
  const stsEndpoint = endpointFor('STS', env);
  const sts = new STSClient({ ...base, ...(stsEndpoint ? { endpoint: stsEndpoint } : {}) });
  let assumed;
  try {
    assumed = await sts.send(new AssumeRoleCommand({ RoleArn: key.role, RoleSessionName: sessionName() }));
  } finally {
    sts.destroy();
  }
  const c = assumed.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey) throw new AwsCallError('STS AssumeRole returned no credentials', 'NoCredentials');
  return new KMSClient({
    region,
    ...transport,
    ...(kmsEndpoint ? { endpoint: kmsEndpoint } : {}),
    credentials: { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, ...(c.SessionToken ? { sessionToken: c.SessionToken } : {}) },
  });
}

class AwsCallError extends Error {
  readonly kind: string;
  constructor(message: string, kind: string) {
    super(message);
    this.kind = kind;
  }
}

/** Every credential value the environment holds, so that no SDK message can carry one out. */
function redactCredentials(text: string, env: NodeJS.ProcessEnv): string {
  let out = text;
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
    const v = env[name];
    if (v && v.length >= 4) out = out.replaceAll(v, '[redacted]');
  }
  return out.replace(/\s+/g, ' ').trim();
}

const NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'TimeoutError', 'RequestTimeout']);

/** One line for an SDK failure: what went wrong with which key, and how to fix it. */
function kmsError(e: unknown, key: KmsKey, region: string, doing: string, where: Location, env: NodeJS.ProcessEnv): FluxstrapError {
  const err = e as { name?: string; code?: string; message?: string; kind?: string; $metadata?: { httpStatusCode?: number } };
  const name = err.kind ?? err.name ?? 'Error';
  const raw = redactCredentials(err.message ?? String(e), env);
  const subject = `AWS KMS key ${key.arn}`;
  const fail = (code: 'E_PRECONDITION' | 'E_NOT_FOUND' | 'E_DECRYPT', message: string, hint: string): FluxstrapError =>
    new FluxstrapError(code, message, { location: where, hint });
  if (name === 'CredentialsProviderError' || name === 'NoCredentials') {
    return fail(
      'E_PRECONDITION',
      `no AWS credentials to ${doing} with ${subject}${key.profile ? ` (profile ${key.profile})` : ''}`,
      "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE (or the key's aws_profile), or run where an IAM role gives them (IRSA, instance profile)",
    );
  }
  if (NETWORK.has(name) || NETWORK.has(err.code ?? '')) {
    const endpoint = endpointFor('KMS', env) ?? `the ${region} endpoint`;
    return fail(
      'E_PRECONDITION',
      `cannot reach AWS KMS (${endpoint}) to ${doing} with ${subject}: ${raw}`,
      'check the network, AWS_ENDPOINT_URL_KMS or AWS_ENDPOINT_URL',
    );
  }
  if (name === 'NotFoundException') {
    return fail(
      'E_NOT_FOUND',
      `${subject} does not exist in region ${region}`,
      'a KMS key lives in the region and account its ARN names: check both, and that the key is not pending deletion',
    );
  }
  if (
    name === 'AccessDeniedException' ||
    name === 'UnrecognizedClientException' ||
    name === 'InvalidSignatureException' ||
    name === 'ExpiredTokenException' ||
    name === 'InvalidClientTokenId'
  ) {
    return fail(
      'E_PRECONDITION',
      `AWS refused to let these credentials ${doing} with ${subject}: ${name}`,
      "check the credentials and the key policy (kms:Encrypt, kms:Decrypt) or the role's trust policy",
    );
  }
  if (name === 'InvalidCiphertextException' || name === 'IncorrectKeyException') {
    return fail('E_DECRYPT', `${subject} does not open this data key (${name})`, 'the entry was made with another key or encryption context');
  }
  if (name === 'DisabledException' || name === 'KMSInvalidStateException') {
    return fail('E_PRECONDITION', `${subject} cannot be used now: ${name}`, 'enable the key (or cancel its deletion) in AWS KMS');
  }
  return fail('E_PRECONDITION', `cannot ${doing} with ${subject}: ${name}: ${raw}`, 'check the key, the credentials and AWS_ENDPOINT_URL_KMS');
}

function regionOf(key: KmsKey, where: Location): string {
  const problem = arnProblem(key);
  const region = arnRegion(key.arn);
  if (problem !== undefined || region === undefined) {
    throw new FluxstrapError('E_CONFIG', problem ?? `not an AWS KMS key ARN: ${cut(key.arn)}`, {
      location: where,
      hint: ARN_HINT,
    });
  }
  return region;
}

/** The data key encrypted with the KMS key, base64 as sops stores it. */
export async function kmsEncrypt(key: KmsKey, dataKey: Uint8Array, aws: AwsEnv, where: Location): Promise<string> {
  const region = regionOf(key, where);
  try {
    const { EncryptCommand } = await import('@aws-sdk/client-kms');
    const client = await clientFor(key, region, aws);
    const out = await client.send(new EncryptCommand({ KeyId: key.arn, Plaintext: dataKey, EncryptionContext: key.context }));
    if (!out.CiphertextBlob) throw new AwsCallError('KMS returned no ciphertext', 'EmptyResponse');
    return Buffer.from(out.CiphertextBlob).toString('base64');
  } catch (e) {
    throw kmsError(e, key, region, 'encrypt', where, aws.env);
  }
}

export async function kmsDecrypt(key: KmsKey, enc: string, aws: AwsEnv, where: Location): Promise<Uint8Array> {
  const region = regionOf(key, where);
  try {
    const { DecryptCommand } = await import('@aws-sdk/client-kms');
    const client = await clientFor(key, region, aws);
    const out = await client.send(new DecryptCommand({ KeyId: key.arn, CiphertextBlob: Buffer.from(enc, 'base64'), EncryptionContext: key.context }));
    if (!out.Plaintext) throw new AwsCallError('KMS returned no plaintext', 'EmptyResponse');
    return out.Plaintext;
  } catch (e) {
    throw kmsError(e, key, region, 'decrypt', where, aws.env);
  }
}
