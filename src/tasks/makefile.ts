import { z } from 'zod';
import { fileKind } from './file-content.ts';

/**
 * A `make provision` entry point (templates/Makefile.provision). A Makefile is the user's own
 * file: we create one when there is none, and otherwise only point at the snippet to paste.
 */
export const makefileParams = z.object({
  file: z.string().default('Makefile'),
  /** The rendered snippet. */
  content: z.string(),
});
export type MakefileParams = z.infer<typeof makefileParams>;

/** Whether a Makefile already has a `provision` target. */
export function hasProvisionTarget(makefile: string): boolean {
  return /^provision\s*:/m.test(makefile);
}

export const makefileKind = fileKind<MakefileParams>({
  kind: 'makefile',
  params: makefileParams,
  file: (p) => p.file,
  desired: (p, { content }) => (content === undefined ? { content: p.content, summary: 'add a provision target' } : undefined),
  notes: (p, { content }) =>
    content !== undefined && !hasProvisionTarget(content) ? [`${p.file} has no provision target: add the snippet from templates/Makefile.provision`] : [],
});
