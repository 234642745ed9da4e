import { z } from 'zod';
import { configError } from '../core/errors.ts';
import { readHeader } from '../flux/install.ts';
import { fileKind } from './file-content.ts';

/**
 * flux-system/gotk-components.yaml, Flux's own manifests as `flux install --export` writes them.
 * Written when missing; an existing file is the user's Flux and stays unless they ask for a
 * version or options (then a different file is replaced only with --force: it may be hand-edited,
 * and a version change is an upgrade).
 */
export const gotkComponentsParams = z.object({
  file: z.string(),
  /** What fluxstrap generates for the requested version and options. */
  content: z.string(),
  version: z.string(),
  components: z.array(z.string()),
  /** Version or install options were given: the file must be exactly the generation. */
  explicit: z.boolean().default(false),
  force: z.boolean().default(false),
});
export type GotkComponentsParams = z.input<typeof gotkComponentsParams>;

export const gotkComponentsKind = fileKind<z.infer<typeof gotkComponentsParams>>({
  kind: 'gotk-components',
  params: gotkComponentsParams,
  file: (p) => p.file,
  desired(p, { content }) {
    const what = `Flux ${p.version} (${p.components.join(', ')})`;
    if (content === undefined) return { content: p.content, summary: `generate ${what} as flux install --export does` };
    if (content === p.content || !p.explicit) return undefined;
    if (!p.force) {
      const has = readHeader(content);
      const holds =
        has.version === undefined || has.version === p.version
          ? `differs from the generated ${what} (other options, or edited by hand)`
          : `holds Flux ${has.version}, not ${p.version}`;
      throw configError(
        `${p.file} ${holds}`,
        { file: p.file },
        'pass --force to replace it (--check --force shows the change first); Flux applies it once you push',
      );
    }
    return { content: p.content, summary: `replace with the generated ${what}` };
  },
});
