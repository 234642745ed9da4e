// The layering of DEVELOPERS.md, checked by `npm run lint`. Each entry is a tier, top first: a
// folder may import from the tiers below its own, never from a tier above nor from a peer in its
// own tier. There is no exception list: a module that needs something from above is in the wrong
// folder, or needs it handed down.
const TIERS = [
  ['cli'], // src/cli.ts and src/cli/: flags, environment, cwd, renderer, exit code
  ['report'], // renderers: views of the event stream, picked by the CLI
  ['flows'], // one module per command
  ['playbook', 'status'], // playbook loading and compiling; cluster observation for status
  ['tasks'], // task kinds
  ['cluster', 'flux'], // fluxstrap.yaml and cluster resolution; Flux manifests, releases and what a cluster reaches
  ['sops'], // the native SOPS engine: it knows files and keys, nothing of Flux or clusters
  ['keys'], // age and PGP keys
  ['adapters'], // kube, git, files, processes, prompt, bounded YAML
  ['core'], // pure: engine, task, change, events, errors
];

const folder = (name) => (name === 'cli' ? '^src/cli(\\.ts$|/)' : `^src/${name}/`);
const any = (names) => `(${names.map(folder).join('|')})`;

const layerRules = TIERS.flatMap((tier, i) => {
  const above = TIERS.slice(0, i).flat();
  return tier
    .map((name) => {
      const forbidden = [...above, ...tier.filter((peer) => peer !== name)];
      return {
        name: `layer-${name}`,
        comment: `src/${name} may import only from the tiers below it (${TIERS.slice(i + 1)
          .flat()
          .join(', ')})`,
        severity: 'error',
        from: { path: folder(name) },
        to: { path: any(forbidden) },
      };
    })
    .filter((rule) => rule.to.path !== '()');
});

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'a module cycle makes the load order (and the layering) ambiguous',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'in-a-layer',
      comment: 'every source belongs to a tier of .dependency-cruiser.mjs',
      severity: 'error',
      from: { path: '^src/', pathNot: any(TIERS.flat()) },
      to: {},
    },
    {
      name: 'only-cli-touches-process',
      comment:
        "the process (argv, env, cwd, streams, exit) is the CLI layer's; the rest get what they need handed down (ESLint forbids the `process` global likewise)",
      severity: 'error',
      from: { path: '^src/', pathNot: folder('cli') },
      to: { path: '^(node:)?process$' },
    },
    ...layerRules,
  ],
  options: {
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
  },
};
