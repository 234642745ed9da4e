import { isAlias, isMap } from 'yaml';
import { z } from 'zod';
import { CONFIG_FILE, parseConfig } from '../cluster/config.ts';
import { configError } from '../core/errors.ts';
import { fileKind } from './file-content.ts';
import { locate, parseEditable, rootMap } from './yaml-edit.ts';

/**
 * The cluster's `sopsKey.pgp` in fluxstrap.yaml set to one value: `keys rotate` points it at the
 * new key with the old one as `retiring` (phase 1), then drops `retiring` (--finish), so that
 * bootstrap puts into the sops-gpg Secret exactly the keys the files may be encrypted for. The
 * rest of the file stays as written.
 */

const source = z.union([z.strictObject({ file: z.string().min(1) }), z.strictObject({ fingerprint: z.string().min(1) })]);

export const pgpKeyConfigParams = z.object({
  cluster: z.string(),
  pgp: z.intersection(source, z.object({ retiring: source.optional() })),
});
export type PgpKeyConfigParams = z.infer<typeof pgpKeyConfigParams>;

const describe = (s: z.infer<typeof source>) => ('file' in s ? s.file : s.fingerprint);

export const pgpKeyConfigKind = fileKind<PgpKeyConfigParams>({
  kind: 'pgp-key-config',
  params: pgpKeyConfigParams,
  file: () => CONFIG_FILE,
  desired(p, { content }) {
    if (content === undefined) throw configError(`no ${CONFIG_FILE}`, { file: CONFIG_FILE }, 'run fluxstrap init first');
    const y = parseEditable(content, CONFIG_FILE);
    const at = ['clusters', p.cluster, 'sopsKey'];
    const sopsKey = rootMap(y, CONFIG_FILE, CONFIG_FILE)?.getIn(at, true);
    // A shared (anchored or aliased) sopsKey would change the other clusters that use it too.
    if (!isMap(sopsKey) || isAlias(sopsKey.get('pgp', true)) || typeof sopsKey.anchor === 'string') {
      throw configError(
        `clusters.${p.cluster}.sopsKey.pgp cannot be edited in place`,
        { ...locate(y, CONFIG_FILE, sopsKey), field: `${at.join('.')}.pgp` },
        `set it by hand to ${JSON.stringify(p.pgp)}`,
      );
    }
    const { retiring, ...key } = p.pgp;
    const pgp = y.doc.createNode(retiring ? { ...key, retiring } : key);
    pgp.flow = false;
    sopsKey.set('pgp', pgp);
    const text = y.toString();
    if (text === content) return undefined;
    parseConfig(text, CONFIG_FILE);
    const before = parseConfig(content, CONFIG_FILE).clusters[p.cluster]?.sopsKey?.pgp;
    if (JSON.stringify(before) === JSON.stringify(p.pgp)) return undefined;
    const summary = retiring
      ? `set clusters.${p.cluster}.sopsKey.pgp to ${describe(key)}, retiring ${describe(retiring)}`
      : `set clusters.${p.cluster}.sopsKey.pgp to ${describe(key)} (no key retiring)`;
    return { content: text, summary };
  },
});
