import { z } from 'zod';
import { fileKind } from './file-content.ts';

/** `.gitignore` entries so that private keys are never committed: appended, never reordered. */
export const gitignoreParams = z.object({
  file: z.string().default('.gitignore'),
  entries: z.array(z.string()),
});
export type GitignoreParams = z.infer<typeof gitignoreParams>;

const HEADER = '# fluxstrap: private keys must never be committed';

/** The private key names fluxstrap and age-keygen users write; `*.agekey` is the name Flux's docs use. */
export const PRIVATE_KEY_PATTERNS = ['*.agekey', 'keys.txt', 'age.key'];

export const gitignoreKind = fileKind<GitignoreParams>({
  kind: 'gitignore',
  params: gitignoreParams,
  file: (p) => p.file,
  desired(p, { content }) {
    const present = new Set((content ?? '').split(/\r?\n/).map((l) => l.trim()));
    const missing = p.entries.filter((e) => !present.has(e));
    if (missing.length === 0) return undefined;
    const before = content === undefined || content === '' ? '' : content.endsWith('\n') ? `${content}\n` : `${content}\n\n`;
    const header = present.has(HEADER) ? '' : `${HEADER}\n`;
    return { content: `${before}${header}${missing.map((m) => `${m}\n`).join('')}`, summary: `ignore ${missing.join(', ')}` };
  },
});
