import type { Command } from 'commander';
import { commandIo } from '../context.ts';
import { withClusterOptions } from './bootstrap.ts';
import type { GitRotateKeyOptions } from '../../flows/git-rotate-key.ts';

/** `git …`: what fluxstrap does with the Git credentials Flux pulls with. */
export function registerGit(program: Command): void {
  const git = program.command('git').description('manage the Git credentials Flux pulls with');

  withClusterOptions(
    git
      .command('rotate-key')
      .summary('rotate the SSH deploy key Flux pulls with, without a moment Flux holds a refused key')
      .description(
        'Stage a new deploy key at <keyFile>.next (never overwriting a key), register it beside the old one (GitHub: title <standard>-next; ' +
          'other hosts: print it and wait until `git ls-remote` works with it), put it into the flux-system Secret (known_hosts kept), ' +
          'request a reconcile of GitRepository flux-system and wait until it is handled and Ready, then retire the old key on GitHub ' +
          '(the new one under the standard title), re-encrypt git.auth.sopsFile when configured, and move the new key into place ' +
          '(the old one kept as <keyFile>.old). A run stopped at any step is finished by the next run.\n\n' +
          'Exit codes: 0 done, 1 failed, 2 bad usage, 3 --check found changes to make.',
      )
      .option('--check', 'change nothing: show the rotation plan (exit 3)')
      .option('--diff', 'show before/after of each change (secret values masked)')
      .option('--no-wait', 'other Git hosts: fail at once when the server does not accept the new key yet (for scripts), instead of waiting')
      .option('--timeout <duration>', 'budget of each wait, e.g. 90s, 5m', '5m')
      .addHelpText(
        'after',
        '\nExamples:\n  fluxstrap git rotate-key --cluster prod --check\n  fluxstrap git rotate-key --cluster prod\n' +
          '  fluxstrap git rotate-key --cluster prod --no-wait   # another host: add the printed key, then run again',
      ),
  ).action(async (opts: GitRotateKeyOptions, cmd: Command) => {
    const { gitRotateKey } = await import('../../flows/git-rotate-key.ts');
    process.exitCode = await gitRotateKey(opts, commandIo(cmd));
  });
}
