import { execFile } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { isMap, isScalar } from 'yaml';
import { FormatError, parseYamlBounded } from '../core/bounded-yaml.ts';
import type { ScalarTag } from 'yaml';
import { readText } from '../adapters/files.ts';
import { FluxstrapError, configError, fsError } from '../core/errors.ts';

/**
 * A native reader of Ansible Vault files (format 1.1 and 1.2, cipher AES256), so the seed's way of
 * keeping the age key (`sops_age_private_key` in a vaulted group_vars file) works without Python.
 * Writing is for `fluxstrap keys backup --ansible-vault` (format 1.1, as `ansible-vault encrypt`
 * without a vault ID). The layout and constants are Ansible's `VaultAES256` (the format
 * ansible-vault documents as 1.1/1.2); the plaintext never leaves memory.
 */

const pbkdf2Async = promisify(pbkdf2);
const HEADER = '$ANSIBLE_VAULT';

export interface VaultEnvelope {
  version: '1.1' | '1.2';
  /** Only selects which secret Ansible tries first; it is not authenticated. */
  vaultId?: string;
  salt: Buffer;
  hmac: Buffer;
  ciphertext: Buffer;
}

export function isVaultText(text: string): boolean {
  return text.trimStart().startsWith(`${HEADER};`);
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})+$/;

/** Split the envelope: a `;` header line, then hex wrapped at any width (CRLF tolerated). */
export function parseVaultEnvelope(text: string, file: string): VaultEnvelope {
  const lines = text
    .trim()
    .split(/\r?\n/)
    .map((l) => l.trim());
  const header = (lines.shift() ?? '').split(';');
  const malformed = (why: string) => configError(`not a readable Ansible Vault file: ${why}`, { file, line: 1 });
  if (header[0] !== HEADER) throw malformed('the first line does not start with $ANSIBLE_VAULT');
  const version = header[1];
  if (version !== '1.1' && version !== '1.2') throw malformed(`unsupported format version ${version ?? '(none)'}`);
  if (header[2] !== 'AES256') throw malformed(`unsupported cipher ${header[2] ?? '(none)'}; Ansible only writes AES256`);
  const outer = lines.join('');
  if (!HEX_RE.test(outer)) throw malformed('the body is not hexadecimal');
  // The payload is hex-encoded twice: "hex(salt)\nhex(hmac)\nhex(ciphertext)", then hex again.
  const parts = Buffer.from(outer, 'hex').toString('latin1').split('\n');
  if (parts.length !== 3 || !parts.every((p) => HEX_RE.test(p))) throw malformed('the body does not hold salt, HMAC and ciphertext');
  const [salt, hmac, ciphertext] = parts.map((p) => Buffer.from(p, 'hex')) as [Buffer, Buffer, Buffer];
  if (hmac.length !== 32 || ciphertext.length === 0 || ciphertext.length % 16 !== 0) throw malformed('bad HMAC or ciphertext length');
  const vaultId = header[3];
  return { version, salt, hmac, ciphertext, ...(vaultId ? { vaultId } : {}) };
}

/** AES key, HMAC key and CTR counter block, derived from the password as Ansible does. */
async function vaultKeys(password: string, salt: Buffer): Promise<{ key: Buffer; hmacKey: Buffer; iv: Buffer }> {
  const dk = await pbkdf2Async(Buffer.from(password, 'utf8'), salt, 10000, 80, 'sha256');
  return { key: dk.subarray(0, 32), hmacKey: dk.subarray(32, 64), iv: dk.subarray(64, 80) };
}

/** Width Ansible wraps the hex body at. */
const VAULT_LINE = 80;

/** A whole-file vault (format 1.1, AES256) of `plaintext`, as `ansible-vault encrypt` writes it. */
export async function encryptVault(plaintext: string, password: string): Promise<string> {
  const salt = randomBytes(32);
  const { key, hmacKey, iv } = await vaultKeys(password, salt);
  const data = Buffer.from(plaintext, 'utf8');
  // PKCS#7 to the AES block size, as Ansible pads (CTR itself would not need it).
  const pad = 16 - (data.length % 16);
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  const ciphertext = Buffer.concat([cipher.update(Buffer.concat([data, Buffer.alloc(pad, pad)])), cipher.final()]);
  const hmac = createHmac('sha256', hmacKey).update(ciphertext).digest();
  const body = Buffer.from([salt, hmac, ciphertext].map((b) => b.toString('hex')).join('\n'), 'latin1').toString('hex');
  const lines: string[] = [];
  for (let i = 0; i < body.length; i += VAULT_LINE) lines.push(body.slice(i, i + VAULT_LINE));
  return `${HEADER};1.1;AES256\n${lines.join('\n')}\n`;
}

/** Decrypt vault text with a password; a wrong password and a modified file both fail the HMAC. */
export async function decryptVault(text: string, password: string, file: string): Promise<string> {
  const env = parseVaultEnvelope(text, file);
  const { key, hmacKey, iv } = await vaultKeys(password, env.salt);
  const expected = createHmac('sha256', hmacKey).update(env.ciphertext).digest();
  if (!timingSafeEqual(expected, env.hmac)) {
    throw new FluxstrapError('E_DECRYPT', 'Ansible Vault HMAC verification failed: wrong vault password, or the file was modified', {
      location: { file },
      hint: 'check the vault password file (ansible-vault view --vault-password-file FILE should open it)',
    });
  }
  const decipher = createDecipheriv('aes-256-ctr', key, iv);
  const padded = Buffer.concat([decipher.update(env.ciphertext), decipher.final()]);
  // Ansible pads with PKCS#7 although CTR needs no padding; a valid HMAC makes bad padding a writer bug.
  const pad = padded.at(-1) ?? 0;
  if (pad < 1 || pad > 16 || padded.length < pad) throw configError('Ansible Vault payload has invalid padding', { file });
  return padded.subarray(0, padded.length - pad).toString('utf8');
}

/**
 * Read a password file the way Ansible does: an executable file is a script whose stdout is the
 * password (e.g. one that asks a password manager); surrounding whitespace is not part of it.
 */
export async function readVaultPassword(file: string): Promise<string> {
  let executable: boolean;
  try {
    executable = ((await stat(file)).mode & 0o111) !== 0;
  } catch (e) {
    throw fsError(e, file, 'read the vault password file');
  }
  const password = (executable ? await runPasswordScript(file) : await readText(file)).trim();
  if (password === '') throw configError('the vault password file is empty', { file });
  return password;
}

function runPasswordScript(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // No shell and no arguments; stderr stays with the user (a script may prompt there).
    execFile(file, [], { encoding: 'utf8', timeout: 120_000, maxBuffer: 1024 * 1024 }, (e, stdout) => {
      if (!e) return resolve(stdout);
      const how = typeof e.code === 'number' ? `exit ${e.code}` : (e.signal ?? e.code ?? 'failed');
      reject(
        new FluxstrapError('E_PROCESS', `the vault password script failed (${how})`, {
          location: { file },
          hint: 'it is executable, so it is run as Ansible does and its output is the password; chmod -x it if it holds the password itself',
        }),
      );
    });
  });
}

/** A scalar tagged `!vault` (from `ansible-vault encrypt_string`) stays the envelope text. */
const vaultTag: ScalarTag = {
  tag: '!vault',
  resolve: (value) => value,
};

/**
 * Get one variable from an Ansible vars file: either a whole-file vault whose plaintext is YAML,
 * or a plain YAML file with an inline `!vault |` value. Without a variable name, a whole-file
 * vault's plaintext is returned as is (e.g. an age key file kept in the vault).
 */
export async function readVaultVariable(vaultFile: string, passwordFile: string, variable?: string): Promise<string> {
  const text = await readText(vaultFile);
  const password = await readVaultPassword(passwordFile);
  const whole = isVaultText(text);
  const yamlText = whole ? await decryptVault(text, password, vaultFile) : text;
  if (variable === undefined) {
    if (!whole)
      throw configError(
        'not an Ansible Vault file, and no variable was named',
        { file: vaultFile },
        'name the variable that holds the age key (ansibleVault.variable)',
      );
    return yamlText;
  }
  const where = { file: vaultFile, field: variable };
  const notVariables = () => configError('the vault content is not a YAML mapping of variables', where);
  let docs;
  try {
    ({ docs } = parseYamlBounded(yamlText, { customTags: [vaultTag] }));
  } catch (e) {
    // Line numbers of a decrypted file would point into the plaintext, which the user cannot see; the field names it.
    if (e instanceof FormatError) throw notVariables();
    throw e;
  }
  const doc = docs[0];
  if (docs.length !== 1 || !doc || !isMap(doc.contents)) throw notVariables();
  const node = doc.contents.get(variable, true);
  if (!isScalar(node) || typeof node.value !== 'string') {
    throw configError(`variable ${variable} is not set to a string`, where, 'the variable must hold the age key (AGE-SECRET-KEY-1…)');
  }
  const value = node.tag === '!vault' || isVaultText(node.value) ? await decryptVault(node.value, password, vaultFile) : node.value;
  if (value.includes('{{')) throw configError(`variable ${variable} is a Jinja template; fluxstrap reads literal values only`, where);
  return value;
}
