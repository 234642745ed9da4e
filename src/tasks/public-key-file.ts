import { z } from 'zod';
import { fileKind } from './file-content.ts';

/**
 * The cluster's public key next to its manifests (`.sops.pub.age` / `.sops.pub.asc`), so a team
 * member can encrypt without asking for anything: `age -R` reads the recipients file, `gpg
 * --import` the armored key. Public data only.
 */
export const publicKeyFileParams = z.object({
  file: z.string(),
  content: z.string(),
});
export type PublicKeyFileParams = z.infer<typeof publicKeyFileParams>;

export const publicKeyFileKind = fileKind<PublicKeyFileParams>({
  kind: 'public-key-file',
  params: publicKeyFileParams,
  file: (p) => p.file,
  desired: (p, { content }) => ({ content: p.content, summary: content === undefined ? 'export the public key for team members' : 'the public key changed' }),
});

/** An age recipients file: one recipient a line, `#` comments (the format `age -R` reads). */
export function ageRecipientsFile(clusterPath: string, recipients: readonly string[]): string {
  return `# age public key for ${clusterPath}: sops uses it through .sops.yaml; age -R ${clusterPath}/.sops.pub.age works too\n${recipients.map((r) => `${r}\n`).join('')}`;
}
