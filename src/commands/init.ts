import type { Command } from 'commander';
import { FluxstrapError } from '../core/errors.ts';

// PLACEHOLDER: replaced by the issue that owns these commands.
export function registerInit(program: Command): void {
  program.command('init').description('(not built yet)').action(() => {
    throw new FluxstrapError('E_INTERNAL', 'init is not built yet');
  });
}
