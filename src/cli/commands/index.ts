import type { Command } from 'commander';
import { registerKeys } from './keys.ts';
import { registerInit } from './init.ts';
import { registerSops } from './sops.ts';
import { registerBootstrap } from './bootstrap.ts';
import { registerStatus } from './status.ts';
import { registerUpgrade } from './upgrade.ts';

/**
 * Every subcommand, by the names each module registers (test/unit/cli/commands/index.test.ts keeps
 * the names true). Each module only declares flags and lazily imports its implementation.
 */
export const COMMAND_GROUPS: ReadonlyArray<readonly [names: readonly string[], register: (program: Command) => void]> = [
  [['keys'], registerKeys],
  [['init'], registerInit],
  [['encrypt', 'decrypt', 'set', 'unset', 'updatekeys', 'rotate', 'check'], registerSops],
  [['bootstrap', 'run'], registerBootstrap],
  [['status', 'doctor'], registerStatus],
  [['upgrade'], registerUpgrade],
];

/**
 * Declares the commands `argv` can reach: only the named command's group when argv names one (declaring
 * all of them is a measurable share of a one-file `encrypt`), every command otherwise (help, typos).
 */
export function registerCommands(program: Command, argv: readonly string[] = []): void {
  const name = argv.find((a) => !a.startsWith('-'));
  const group = COMMAND_GROUPS.find(([names]) => name !== undefined && names.includes(name));
  for (const [, register] of group ? [group] : COMMAND_GROUPS) register(program);
}
