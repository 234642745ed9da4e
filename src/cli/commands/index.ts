import type { Command } from 'commander';
import { registerKeys } from './keys.ts';
import { registerInit } from './init.ts';
import { registerSops } from './sops.ts';
import { registerBootstrap } from './bootstrap.ts';
import { registerStatus } from './status.ts';
import { registerUpgrade } from './upgrade.ts';

/** Every subcommand; each module only declares flags and lazily imports its implementation. */
export function registerCommands(program: Command): void {
  registerKeys(program);
  registerInit(program);
  registerSops(program);
  registerBootstrap(program);
  registerStatus(program);
  registerUpgrade(program);
}
