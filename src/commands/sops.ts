import type { Command } from 'commander';
import { FluxstrapError } from '../core/errors.ts';

// PLACEHOLDER: replaced by the issue that owns these commands.
export function registerSops(program: Command): void {
  program.command('sops').description('(not built yet)').action(() => {
    throw new FluxstrapError('E_INTERNAL', 'sops is not built yet');
  });
}
