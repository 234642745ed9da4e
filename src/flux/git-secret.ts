import { stringify } from 'yaml';
import type { GitCredentials } from '../adapters/git.ts';
import { yamlValues } from '../core/bounded-yaml.ts';
import { FluxstrapError } from '../core/errors.ts';
import type { AgeIdentity } from '../keys/age.ts';
import { publicKeyOfPrivate } from '../keys/ssh.ts';
import { newStanza } from '../sops/datakey.ts';
import { decryptDocument, encryptDocument } from '../sops/engine.ts';

/**
 * The flux-system Git credential Secret kept SOPS-encrypted in the repository (`git.auth.sopsFile`),
 * so that a fresh machine with a checkout and the age key can bootstrap without any other secret.
 * Plaintext exists only in memory: encrypted from the credentials, decrypted into them.
 */

/** What the encrypted file holds: a token or a deploy key. */
export type StoredGitCredentials = Extract<GitCredentials, { type: 'https' | 'ssh' }>;

/** Where Flux looks for it: GitRepository flux-system's secretRef as flux bootstrap writes it. */
export const GIT_SECRET = { namespace: 'flux-system', name: 'flux-system' };

/** What `sops edit` shows and source-controller reads; only the values are encrypted, so the file says what it is. */
function manifest(creds: StoredGitCredentials): string {
  const stringData =
    creds.type === 'https'
      ? { username: creds.username, password: creds.password }
      : { identity: creds.identity, 'identity.pub': publicKeyOfPrivate(creds.identity, 'the deploy key'), known_hosts: creds.knownHosts };
  return stringify({ apiVersion: 'v1', kind: 'Secret', metadata: GIT_SECRET, type: 'Opaque', stringData });
}

/** The credentials as an encrypted Secret manifest for the age recipients (sops' own YAML, any sops opens it). */
export async function encryptGitSecret(creds: StoredGitCredentials, recipients: string[], file: string): Promise<string> {
  return encryptDocument(
    Buffer.from(manifest(creds), 'utf8'),
    'yaml',
    file,
    { keyGroups: [recipients.map((r) => newStanza('age', r))], shamirThreshold: 0, rules: { encryptedRegex: '^(data|stringData)$', macOnlyEncrypted: true } },
    { age: [], pgpFiles: [], gpg: false },
  );
}

const unusable = (file: string, what: string) =>
  new FluxstrapError('E_CONFIG', `${file} holds no usable Git credentials: ${what}`, {
    location: { file },
    hint: 'it must be a Secret with stringData (or data) username/password (HTTPS) or identity/known_hosts (SSH): write it again with `fluxstrap init --git-sops-file`',
  });

/** Decrypt (MAC checked) and read the credentials; an error names `file` only, never a value. */
export async function decryptGitSecret(bytes: Buffer, file: string, identities: AgeIdentity[]): Promise<GitCredentials> {
  const plain = await decryptDocument(bytes, 'yaml', file, { age: identities, pgpFiles: [], gpg: false });
  const secret = yamlValues(plain.toString('utf8'), file).find((d) => (d as { kind?: unknown } | null)?.kind === 'Secret') as
    { data?: Record<string, unknown>; stringData?: Record<string, unknown> } | undefined;
  if (secret === undefined) throw unusable(file, 'no Secret in it');
  const value = (key: string): string | undefined => {
    const s = secret.stringData?.[key];
    if (typeof s === 'string' && s !== '') return s;
    const d = secret.data?.[key];
    return typeof d === 'string' && d !== '' ? Buffer.from(d, 'base64').toString('utf8') : undefined;
  };
  const [username, password, identity, knownHosts] = ['username', 'password', 'identity', 'known_hosts'].map(value);
  if (identity !== undefined) {
    if (knownHosts === undefined) throw unusable(file, 'identity without known_hosts');
    return { type: 'ssh', identity, knownHosts };
  }
  if (password !== undefined) return { type: 'https', username: username ?? 'git', password };
  throw unusable(file, 'neither password nor identity');
}
