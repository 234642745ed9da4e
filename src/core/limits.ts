/**
 * Bounds on what fluxstrap reads. Everything it reads may come from a repository, a pull request
 * or a colleague: cost must stay linear in the input and the input itself bounded.
 */
export const LIMITS = {
  /** Bytes of one file read as text or structured data. */
  inputBytes: 16 * 1024 * 1024,
  /** Levels of maps and lists, aliases expanded. */
  depth: 256,
  /** Nodes that aliases add when expanded (yaml.v3, which sops uses, stops a little above this). */
  aliasNodes: 100_000,
} as const;
