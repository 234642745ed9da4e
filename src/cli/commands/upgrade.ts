import type { Command } from 'commander';
import { commandIo } from '../context.ts';
import type { UpgradeOptions } from '../../flows/upgrade.ts';
import { withClusterOptions } from './bootstrap.ts';

export function registerUpgrade(program: Command): void {
  withClusterOptions(
    program
      .command('upgrade')
      .summary('upgrade Flux in the repository (gotk-components.yaml) after proving it safe')
      .description(
        'Regenerate flux-system/gotk-components.yaml for another Flux version, with the install options it was generated with. ' +
          'Only that file is written; Flux applies it from Git once you push (bootstrap applies it too). Before writing, a preflight ' +
          'checks the live cluster and the repository, and refuses with every problem and its fix.',
      ),
  )
    .requiredOption('--flux-version <version>', 'the Flux version to upgrade to, e.g. v2.9.5')
    .option('--flux-manifests <dir>', "a Flux release's manifests.tar.gz, unpacked: for air-gapped machines")
    .option('--migrate-storage', "re-write objects stored at versions the new CRDs no longer serve, then trim the CRDs' storedVersions (resumable)")
    .option('--force', 'replace a gotk-components.yaml that was edited by hand')
    .option('--check', 'change nothing: report what would change (exit 3 if anything would)')
    .option('--diff', 'show before/after of each change')
    .option('--timeout <duration>', 'budget of each wait, e.g. 90s, 5m', '5m')
    .addHelpText(
      'after',
      `
What the preflight checks (nothing is written when one fails):
  stored versions     every Flux CRD in the cluster stores only versions the new CRDs serve (else the
                      new CRDs are refused); --migrate-storage fixes it in the cluster
  removed APIs        Flux objects in the cluster path at API versions the new Flux no longer serves
                      (file:line and the apiVersion to use)
  strict substitution upgrading to Flux >= 2.9: \${VAR} with no value and no default in what a
                      Kustomization with postBuild builds (file:line)
  Kubernetes          the cluster's version against the versions the new Flux supports

Exit codes: 0 done, 1 failed, 2 bad usage, 3 --check found changes to make.

Examples:
  fluxstrap upgrade --cluster prod --flux-version v2.9.5 --check
  fluxstrap upgrade --cluster prod --flux-version v2.9.5 --migrate-storage
  fluxstrap upgrade --cluster lab --flux-version v2.9.5 --flux-manifests ./flux-2.9.5`,
    )
    .action(async (opts: UpgradeOptions, cmd: Command) => {
      const { runUpgrade } = await import('../../flows/upgrade.ts');
      process.exitCode = await runUpgrade(opts, commandIo(cmd));
    });
}
