#!/usr/bin/env node
import { COMMAND_GROUPS } from './cli/commands/index.ts';
import { runProgram } from './cli/program.ts';

/** The one executable, with every command. */
await runProgram(COMMAND_GROUPS);
