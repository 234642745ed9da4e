import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { yamlValues } from '../core/bounded-yaml.ts';
import { readText } from '../adapters/files.ts';
import { repoFs } from '../adapters/repo-fs.ts';
import { reachOf, reachedSops } from '../flux/reach.ts';
import type { Reach, ReachRoot } from '../flux/reach.ts';
import type { AgeIdentity } from '../keys/age.ts';
import type { PgpKeyFile } from '../sops/pgp.ts';
import type { ClusterPgpKey, TaskContext } from './context.ts';
import { sopsRecipients } from '../sops/recipients.ts';
import type { Format } from '../sops/stores.ts';

/**
 * SOPS-encrypted files: found by their metadata (not by name, since `.sops.yaml` naming is only
 * a convention), with the recipients they were encrypted for.
 */
export interface SopsFile {
  /** Absolute path. */
  file: string;
  /** Relative to the repository root, for messages. */
  name: string;
  text: string;
  format: Format;
  /** age recipients in the metadata. */
  recipients: string[];
}

/** One decrypted Secret, reduced to what may be compared and shown: key names and value hashes. */
export interface SecretDigest {
  file: string;
  namespace: string;
  name: string;
  /** key → sha256 of the value's bytes. The hashes are compared, never printed. */
  hashes: Record<string, string>;
  /** The Kustomization that applies it, for messages. */
  by?: string;
}

/** The YAML files under a folder, recursively, hidden ones left out; none when it does not exist. */
export async function yamlFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await yamlFiles(path)));
    else if (/\.ya?ml$/i.test(e.name)) out.push(path);
  }
  return out.sort();
}

export async function findSopsFiles(dir: string, repoRoot: string, exclude: string[] = []): Promise<SopsFile[]> {
  const out: SopsFile[] = [];
  for (const file of await yamlFiles(dir)) {
    if (exclude.some((x) => file === x || file.startsWith(`${x}/`))) continue;
    const text = await readText(file);
    const recipients = sopsRecipients(text, file);
    if (recipients) out.push({ file, name: relative(repoRoot, file), text, format: 'yaml', recipients });
  }
  return out;
}

/** What a cluster reaches (see src/flux/reach.ts), with the SOPS files read, each once. */
export interface ClusterSops {
  reach: Reach;
  files: SopsFile[];
}

export async function clusterSops(repoRoot: string, root: ReachRoot): Promise<ClusterSops> {
  const reach = await reachOf(repoFs(repoRoot), root);
  const files: SopsFile[] = [];
  for (const s of reachedSops(reach)) {
    const file = join(repoRoot, ...s.file.split('/'));
    files.push({ file, name: s.file, text: await readText(file), format: s.format, recipients: s.recipients });
  }
  return { reach, files };
}

/**
 * Plaintext Secret manifests the cluster reaches outside its own folder (whose creation rule
 * covers those inside): the files `encrypt` will need a rule for before they can be committed.
 */
export async function reachedPlainSecrets(repoRoot: string, { reach, files }: ClusterSops, clusterPath: string): Promise<string[]> {
  const sops = new Set(files.map((f) => f.name));
  const candidates = [...new Set(reach.kustomizations.flatMap((k) => k.files))].filter(
    (f) => !sops.has(f) && !f.startsWith(`${clusterPath}/`) && /\.ya?ml$/.test(f),
  );
  const out: string[] = [];
  for (const f of candidates) {
    const text = await readText(join(repoRoot, ...f.split('/'))).catch(() => '');
    if (/^kind:\s*["']?Secret["']?\s*$/m.test(text)) out.push(f);
  }
  return out.sort();
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * The key a cluster decrypts with, as kustomize-controller will hold it: the age identities of
 * sops-age, or the OpenPGP private key of sops-gpg. Never the user's gpg keyring as a whole: a
 * file only it opens would still fail in the cluster.
 */
export interface ClusterKey {
  type: 'age' | 'pgp';
  /** What .sops.yaml rules list for it: age recipients, or the PGP fingerprint. */
  names: string[];
  /** For messages: `the age key (age1…)`, `the PGP key 0123…`. */
  label: string;
  age: AgeIdentity[];
  pgpFiles: PgpKeyFile[];
}

export function ageClusterKey(identities: AgeIdentity[]): ClusterKey {
  const names = identities.map((i) => i.recipient);
  return { type: 'age', names, label: `the age key (${names.join(', ')})`, age: identities, pgpFiles: [] };
}

/** With the key being rotated out, if any: until `keys rotate --finish` the files may be encrypted for either. */
export function pgpClusterKey(key: ClusterPgpKey): ClusterKey {
  const keys = key.retiring ? [key, key.retiring] : [key];
  return {
    type: 'pgp',
    names: keys.map((k) => k.fingerprint),
    label: key.retiring ? `the PGP keys ${key.fingerprint} and ${key.retiring.fingerprint} (retiring)` : `the PGP key ${key.fingerprint}`,
    age: [],
    pgpFiles: keys.map((k) => ({ armored: k.armored, source: k.source })),
  };
}

/** The cluster key of a run: its PGP key when `sopsKey.pgp` names one, else its age identities. */
export async function readClusterKey(ctx: Pick<TaskContext, 'ageIdentities' | 'pgpKey'>): Promise<ClusterKey> {
  const pgp = await ctx.pgpKey();
  return pgp ? pgpClusterKey(pgp) : ageClusterKey(await ctx.ageIdentities());
}

/**
 * Decrypt with the native SOPS engine (MAC checked). Throws E_DECRYPT when the key does not open it.
 * With `env`, key-service entries are tried too: AWS KMS with this machine's credentials, Vault transit
 * with VAULT_TOKEN (or ~/.vault-token through HOME).
 */
export async function decryptSopsFile(f: SopsFile, key: Pick<ClusterKey, 'age' | 'pgpFiles'>, env?: NodeJS.ProcessEnv): Promise<string> {
  const { decryptDocument } = await import('../sops/engine.ts');
  const out = await decryptDocument(Buffer.from(f.text, 'utf8'), f.format, f.name, {
    age: key.age,
    pgpFiles: key.pgpFiles,
    gpg: false,
    ...(env ? { env } : {}),
  });
  return out.toString('utf8');
}

/** The Secrets in decrypted YAML, as key names and value hashes (`data` base64-decoded, `stringData` as UTF-8). */
export function secretDigests(plain: string, file: string): SecretDigest[] {
  const out: SecretDigest[] = [];
  for (const doc of yamlValues(plain, file)) {
    const obj = doc as {
      kind?: string;
      metadata?: { name?: string; namespace?: string };
      data?: Record<string, string>;
      stringData?: Record<string, string>;
    } | null;
    if (obj?.kind !== 'Secret' || typeof obj.metadata?.name !== 'string') continue;
    // fromEntries defines own keys: a Secret key named `__proto__` is hashed like any other (as the
    // apiserver stores it), where an assignment would drop it. stringData wins, as in the apiserver.
    const hashes = Object.fromEntries([
      ...Object.entries(obj.data ?? {}).map(([k, v]) => [k, sha256(Buffer.from(String(v), 'base64'))]),
      ...Object.entries(obj.stringData ?? {}).map(([k, v]) => [k, sha256(Buffer.from(String(v), 'utf8'))]),
    ]) as Record<string, string>;
    out.push({ file, namespace: obj.metadata.namespace ?? 'default', name: obj.metadata.name, hashes });
  }
  return out;
}

/**
 * The files a key change must cover: those the cluster reaches, and any other SOPS file left in
 * its folder (not applied today, but encrypted for the cluster, and one reference away from it).
 */
export async function clusterKeyedFiles(repoRoot: string, clusterPath: string): Promise<SopsFile[]> {
  const { files } = await clusterSops(repoRoot, { path: clusterPath });
  const inFolder = await findSopsFiles(join(repoRoot, ...clusterPath.split('/')), repoRoot);
  const seen = new Set(files.map((f) => f.name));
  return [...files, ...inFolder.filter((f) => !seen.has(f.name))];
}
