import type { Command } from 'commander';
import { globalOptions } from '../cli/context.ts';
import type { InitOptions } from '../init/run.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerInit(program: Command): void {
  program
    .command('init')
    .summary('make a GitOps repository ready for SOPS-encrypted secrets for one cluster')
    .description(
      'Make a GitOps repository ready for SOPS-encrypted secrets for one cluster, idempotently:\n' +
        '  .sops.yaml creation rule for the cluster folder (existing rules, comments and order kept; before any catch-all)\n' +
        '  the public key next to the cluster (clusters/NAME/.sops.pub.age, or .sops.pub.asc for OpenPGP)\n' +
        '  decryption {provider: sops, secretRef: sops-age} as a patch in flux-system/kustomization.yaml, which flux bootstrap\n' +
        '    never overwrites (a block hand-added to gotk-sync.yaml is moved there and the generated file restored)\n' +
        '  flux-system listed in the cluster root kustomization.yaml, a Makefile provision target, .gitignore entries for private keys\n\n' +
        'Exit codes: 0 done or nothing to do, 1 failed, 2 bad usage, 3 --check found changes to make.',
    )
    .requiredOption('--cluster <name>', 'cluster name')
    .option('--path <dir>', 'cluster folder in the repository (default: clusters/<name>)')
    .option('--key-file <file>', 'age key file or armored OpenPGP key to take the public key from (default: as sops finds age keys)')
    .option('--age <recipient>', 'age recipient instead of a key file (repeatable)', collect)
    .option('--repo <dir>', 'repository root (default: the current folder)')
    .option('--check', 'change nothing: show what would change as a diff (exit 3 if anything would)')
    .option('--diff', 'show before/after of each change')
    .addHelpText('after', '\nExamples:\n  fluxstrap init --cluster prod\n  fluxstrap init --cluster prod --key-file ~/.config/sops/age/keys.txt --check\n  fluxstrap init --cluster staging --path clusters/stage --age age1… --repo ~/src/homelab')
    .action(async (opts: InitOptions, cmd: Command) => {
      if (opts.keyFile !== undefined && opts.age !== undefined) {
        const { usageError } = await import('../core/errors.ts');
        throw usageError('--key-file and --age are alternatives: pass one');
      }
      const { runInit } = await import('../init/run.ts');
      process.exitCode = await runInit(opts, globalOptions(cmd));
    });
}
