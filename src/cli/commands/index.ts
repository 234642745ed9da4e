import type { CommandGroup } from '../program.ts';
import { registerKeys } from './keys.ts';
import { registerInit } from './init.ts';
import { SOPS_GROUP } from './sops.ts';
import { registerBootstrap } from './bootstrap.ts';
import { registerStatus } from './status.ts';
import { registerUpgrade } from './upgrade.ts';
import { registerGit } from './git.ts';

/**
 * Every subcommand, by the names each module registers (test/unit/cli/commands/index.test.ts keeps
 * the names true). Each module only declares flags and lazily imports its implementation.
 */
export const COMMAND_GROUPS: readonly CommandGroup[] = [
  [['keys'], registerKeys],
  [['init'], registerInit],
  SOPS_GROUP,
  [['bootstrap', 'run'], registerBootstrap],
  [['status', 'doctor'], registerStatus],
  [['upgrade'], registerUpgrade],
  [['git'], registerGit],
];
