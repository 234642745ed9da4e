import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { COMMAND_GROUPS } from '../../../src/cli/commands/index.ts';
import { SOPS_GROUP } from '../../../src/cli/commands/sops.ts';
import { registerCommands } from '../../../src/cli/program.ts';

const names = (program: Command) => program.commands.map((c) => c.name()).sort();

void describe('registerCommands', () => {
  void it('a command named in argv declares only its group', () => {
    const program = new Command();
    registerCommands(program, ['--json', 'encrypt', '--age', 'age1x', 's.yaml'], COMMAND_GROUPS);
    assert.ok(names(program).includes('encrypt'));
    assert.ok(!names(program).includes('bootstrap'));
  });

  void it('no command, or an unknown one, declares them all (help and suggestions need every name)', () => {
    const all = COMMAND_GROUPS.flatMap(([listed]) => listed).sort();
    for (const argv of [[], ['--help'], ['encrpyt'], ['help', 'encrypt']]) {
      const program = new Command();
      registerCommands(program, argv, COMMAND_GROUPS);
      assert.deepEqual(names(program), all, argv.join(' '));
    }
  });

  void it('the SOPS entry declares the SOPS commands, all of them in one group', () => {
    const program = new Command();
    registerCommands(program, ['decrypt', 's.yaml'], [SOPS_GROUP]);
    assert.deepEqual(names(program), [...SOPS_GROUP[0]].sort());
    assert.ok(COMMAND_GROUPS.includes(SOPS_GROUP), 'the full program has the same group');
  });
});
