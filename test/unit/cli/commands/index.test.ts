import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { COMMAND_GROUPS } from '../../../../src/cli/commands/index.ts';

const names = (program: Command) => program.commands.map((c) => c.name()).sort();

void describe('COMMAND_GROUPS', () => {
  void it('each group declares exactly the commands it is listed with', () => {
    for (const [listed, register] of COMMAND_GROUPS) {
      const program = new Command();
      register(program);
      assert.deepEqual(names(program), [...listed].sort());
    }
  });
});
