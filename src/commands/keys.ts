import type { Command } from 'commander';
import { FluxstrapError } from '../core/errors.ts';

// PLACEHOLDER: replaced by the issue that owns these commands.
export function registerKeys(program: Command): void {
  program.command('keys').description('(not built yet)').action(() => {
    throw new FluxstrapError('E_INTERNAL', 'keys is not built yet');
  });
}
