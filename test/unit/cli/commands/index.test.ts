import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { COMMAND_GROUPS, registerCommands } from '../../../../src/cli/commands/index.ts';

const names = (program: Command) => program.commands.map((c) => c.name()).sort();

void describe('registerCommands', () => {
  void it('each group declares exactly the commands it is listed with', () => {
    for (const [listed, register] of COMMAND_GROUPS) {
      const program = new Command();
      register(program);
      assert.deepEqual(names(program), [...listed].sort());
    }
  });

  void it('a command named in argv declares only its group', () => {
    const program = new Command();
    registerCommands(program, ['--json', 'encrypt', '--age', 'age1x', 's.yaml']);
    assert.ok(names(program).includes('encrypt'));
    assert.ok(!names(program).includes('bootstrap'));
  });

  void it('no command, or an unknown one, declares them all (help and suggestions need every name)', () => {
    const all = COMMAND_GROUPS.flatMap(([listed]) => listed).sort();
    for (const argv of [[], ['--help'], ['encrpyt'], ['help', 'encrypt']]) {
      const program = new Command();
      registerCommands(program, argv);
      assert.deepEqual(names(program), all, argv.join(' '));
    }
  });
});
