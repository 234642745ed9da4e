import { FluxstrapError } from '../core/errors.ts';

/**
 * The one Vault call sops makes (`client.Logical().Write`): POST a JSON body to `/v1/<path>` with
 * the token in `X-Vault-Token`, and read `data` from the answer. Failures become one-line errors
 * that name the address and path, never the token, with the codes AWS KMS uses (sops/aws-kms.ts):
 * E_NOT_FOUND for a key Vault does not have, E_DECRYPT for a ciphertext the key does not open,
 * E_PRECONDITION for everything that stops the call (unreachable, refused token, no such engine).
 */

export interface VaultWrite {
  address: string;
  /** Below `/v1/`, e.g. `transit/encrypt/sops`. */
  path: string;
  token: string | undefined;
  namespace?: string | undefined;
  body: Record<string, unknown>;
  timeoutMs?: number;
}

const MAX_RESPONSE = 1 << 20;
const DEFAULT_TIMEOUT_MS = 30_000;

function vaultError(message: string, hint: string, code: 'E_PRECONDITION' | 'E_NOT_FOUND' | 'E_DECRYPT' = 'E_PRECONDITION'): FluxstrapError {
  return new FluxstrapError(code, message, { hint });
}

/** Transit's 400 answers about the key and the ciphertext, as Vault words them (builtin/logical/transit). */
function refusalCode(status: number, reason: string): 'E_PRECONDITION' | 'E_NOT_FOUND' | 'E_DECRYPT' {
  if (status !== 400) return 'E_PRECONDITION';
  if (/encryption key not found/i.test(reason)) return 'E_NOT_FOUND';
  return /invalid ciphertext|message authentication failed|unable to decrypt/i.test(reason) ? 'E_DECRYPT' : 'E_PRECONDITION';
}

/** What Vault said went wrong: its `errors` list, flattened to one bounded line. */
function vaultReason(text: string): string {
  let errors: unknown;
  try {
    errors = (JSON.parse(text) as { errors?: unknown }).errors;
  } catch {
    errors = undefined;
  }
  const said = Array.isArray(errors) ? errors.filter((e): e is string => typeof e === 'string').join('; ') : '';
  // Vault wraps multierrors as "1 error occurred:\n\t* permission denied\n\n".
  const line = said
    .replace(/\d+ errors? occurred:/g, '')
    .replace(/[\s*]+/g, ' ')
    .trim();
  return line === '' ? 'no reason given' : line.slice(0, 300);
}

async function boundedText(res: Response): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > MAX_RESPONSE) throw new Error(`the answer is larger than ${MAX_RESPONSE} bytes`);
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_RESPONSE) throw new Error(`the answer is larger than ${MAX_RESPONSE} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function networkReason(e: unknown): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return 'no answer in time';
  const cause = err.cause;
  if (cause?.code !== undefined) return cause.code === 'ECONNREFUSED' ? 'connection refused' : cause.code;
  return cause?.message ?? err.message ?? String(e);
}

export async function vaultWrite(req: VaultWrite): Promise<Record<string, unknown>> {
  const url = `${req.address.replace(/\/+$/, '')}/v1/${req.path}`;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (req.token !== undefined && req.token !== '') headers['x-vault-token'] = req.token;
  if (req.namespace) headers['x-vault-namespace'] = req.namespace;
  let res: Response;
  let text: string;
  try {
    // No redirects: a redirect elsewhere would carry the token to another host.
    res = await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify(req.body),
      redirect: 'manual',
      signal: AbortSignal.timeout(req.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    });
    text = await boundedText(res);
  } catch (e) {
    throw vaultError(`cannot reach Vault at ${req.address} (${networkReason(e)})`, 'check the address and that Vault is running and reachable from here');
  }
  if (res.status >= 300 && res.status < 400) {
    throw vaultError(`Vault at ${req.address} answered ${url} with a redirect (HTTP ${res.status})`, 'give the address of the active Vault node itself');
  }
  if (!res.ok) {
    // A server that echoes the request must not make the token part of an error line.
    const reason = req.token ? vaultReason(text).split(req.token).join('[token]') : vaultReason(text);
    const hint =
      res.status === 403
        ? 'the token lacks the transit policy for this key, or it expired: check VAULT_TOKEN or ~/.vault-token (`vault token lookup`)'
        : res.status === 400 && /missing client token/i.test(reason)
          ? 'set VAULT_TOKEN or log in with `vault login` (it writes ~/.vault-token)'
          : 'check the engine path and key name against `vault list <engine>/keys`';
    throw vaultError(`Vault refused ${url}: ${reason} (HTTP ${res.status})`, hint, refusalCode(res.status, reason));
  }
  let data: unknown;
  try {
    data = (JSON.parse(text) as { data?: unknown }).data;
  } catch {
    data = undefined;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw vaultError(`Vault at ${req.address} gave no data for ${url}`, 'is this address a Vault server, and the path a transit engine?');
  }
  return data as Record<string, unknown>;
}
