import type { Command } from 'commander';
import { commandIo } from '../context.ts';
import { withClusterOptions } from './bootstrap.ts';
import type { StatusCommandOptions } from '../../flows/status.ts';

const EXIT = 'Exit codes: 0 healthy, 1 a check failed (or, strict, warned), 2 bad usage.';

/**
 * `status` and `doctor`: the same read-only checks; `doctor` is `status --strict`, for when a
 * warning (a suspended object, a Git server that could not be asked) should fail a script too.
 */
export function registerStatus(program: Command): void {
  withClusterOptions(
    program
      .command('status')
      .summary("report the health of a cluster's Flux + SOPS setup, changing nothing")
      .description(
        'Check, read-only, a cluster of fluxstrap.yaml (or several: --cluster a,b, --all-clusters): the API, the Flux CRDs and controllers, GitRepository and Kustomization ' +
          'flux-system (Ready, revision, remote HEAD, decryption), the sops-age Secret against .sops.yaml and your local key, the ' +
          'SOPS files the cluster reaches (its folder and, per Kustomization, the spec.path it applies) with their recipients, Kustomizations that apply SOPS files without decryption, ' +
          'and every Kustomization that fails to decrypt.\n\n' +
          EXIT,
      )
      .option('--strict', 'warnings fail too (exit 1)')
      .addHelpText(
        'after',
        `
Examples:
  fluxstrap status --cluster prod
  fluxstrap status --cluster prod --kubeconfig ~/.kube/prod --age-key-file prod.agekey
  fluxstrap --json status | jq '.findings[] | select(.status != "ok")'
  fluxstrap status --all-clusters     # every cluster of fluxstrap.yaml, [cluster]-prefixed
  fluxstrap doctor --cluster prod     # in CI: a warning fails too`,
      ),
    true,
  ).action(async (opts: StatusCommandOptions, cmd: Command) => {
    const { runStatusCommand } = await import('../../flows/status.ts');
    process.exitCode = await runStatusCommand(opts, commandIo(cmd));
  });

  withClusterOptions(
    program.command('doctor').summary('status --strict: any warning fails').description(`The checks of \`status\`, where a warning fails as well.\n\n${EXIT}`),
    true,
  ).action(async (opts: StatusCommandOptions, cmd: Command) => {
    const { runStatusCommand } = await import('../../flows/status.ts');
    process.exitCode = await runStatusCommand({ ...opts, strict: true }, commandIo(cmd));
  });
}
