// age keys and SOPS files made in memory for the unit tests of the tasks that open them.
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { newStanza } from '../../src/sops/datakey.ts';
import { encryptDocument } from '../../src/sops/engine.ts';

/** A new age identity (AGE-SECRET-KEY-1…) and its recipient. */
export async function ageKeyPair(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateIdentity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/** plain as a SOPS file of `format` encrypted for one age recipient, what `sops encrypt` writes for `file`. */
export function encryptedForAge(
  plain: string,
  format: Parameters<typeof encryptDocument>[1],
  file: string,
  recipient: string,
  encryptedRegex?: string,
): Promise<string> {
  return encryptDocument(
    Buffer.from(plain),
    format,
    file,
    { keyGroups: [[newStanza('age', recipient)]], shamirThreshold: 0, rules: encryptedRegex === undefined ? {} : { encryptedRegex } },
    { age: [], pgpFiles: [], gpg: false },
  );
}
