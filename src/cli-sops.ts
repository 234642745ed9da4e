import { SOPS_GROUP } from './cli/commands/sops.ts';
import { runProgram } from './cli/program.ts';

/**
 * The executable when argv names a SOPS command (the bin in dist/ picks it): those commands only,
 * so the build makes them one bundle, and a one-file `encrypt` or `decrypt` starts as fast as a
 * Node program that links one module can.
 */
void runProgram([SOPS_GROUP]);
