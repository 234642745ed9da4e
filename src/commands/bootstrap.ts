import type { Command } from 'commander';
import { FluxstrapError } from '../core/errors.ts';

// PLACEHOLDER: replaced by the issue that owns these commands.
export function registerBootstrap(program: Command): void {
  program.command('bootstrap').description('(not built yet)').action(() => {
    throw new FluxstrapError('E_INTERNAL', 'bootstrap is not built yet');
  });
}
