#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { errorReport, ExitCode, exitCodeFor, INTERNAL_HINT, isFluxstrapError } from './core/errors.ts';
import { redactPrivateKeys } from './core/redact.ts';
import { onSignal } from './cli/interrupt.ts';
import { startJson } from './cli/context.ts';
import { jsonText } from './report/envelope.ts';
import { registerCommands } from './cli/commands/index.ts';
import { version } from './core/version.ts';

/**
 * The one executable. Command modules are light (commander + option parsing); each action imports
 * what it needs when it runs, so `--help`, `keys` and `encrypt` never load the Kubernetes or
 * GitHub clients.
 */
const program = new Command('fluxstrap')
  .description('Bootstrap Flux with SOPS-encrypted secrets: keys, .sops.yaml, a native SOPS engine and an idempotent cluster bootstrap.')
  .version(version, '-V, --version')
  .option('--json', 'machine-readable output on stdout (human progress stays on stderr)')
  .option('-q, --quiet', 'print only errors and results')
  .option('--no-color', 'no colours in human output')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(redactPrivateKeys(str)) });

registerCommands(program, process.argv.slice(2));

// Ctrl-C or a stop signal: every step is idempotent, so say how to converge and exit as a shell
// expects. The listr2 view has its own Ctrl-C handling (it must restore the cursor first).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => onSignal(signal, process.stderr));
}

// Node ignores SIGPIPE, so `fluxstrap decrypt x | head -1` would end in an EPIPE stack trace.
// Stop quietly instead, as sops does there.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(ExitCode.brokenPipe);
  });
}

/** The command an argv names (`keys rotate`), for the --json document; commander has not parsed it yet. */
function commandName(argv: string[]): string {
  const path: string[] = [];
  let at: Command = program;
  for (const arg of argv) {
    if (arg.startsWith('-')) continue;
    const sub = at.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) break;
    path.push(sub.name());
    at = sub;
    if (sub.commands.length === 0) break;
  }
  return path.length > 0 ? path.join(' ') : 'fluxstrap';
}

// A --json consumer parses stdout: every command, whatever becomes of it, prints one envelope.
const json = process.argv.includes('--json') ? startJson(commandName(process.argv.slice(2))) : undefined;

function fail(e: unknown): number {
  if (e instanceof CommanderError) {
    // commander already printed its message (help and version exit through here too)
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return ExitCode.ok;
    // `commander.help`: a command group (or the program) run without its subcommand.
    json?.failUsage(e.code === 'commander.help' ? 'a command is needed (see --help)' : redactPrivateKeys(e.message));
    return ExitCode.usage;
  }
  json?.fail(e);
  if (isFluxstrapError(e)) {
    const error = errorReport(e);
    process.stderr.write(`error: ${error.message}${error.where ? ` (${error.where})` : ''}\n`);
    if (error.hint) process.stderr.write(`hint: ${error.hint}\n`);
    return exitCodeFor(e);
  }
  process.stderr.write(`error: internal error: ${errorReport(e).message}\nhint: ${INTERNAL_HINT}\n`);
  if (process.env.FLUXSTRAP_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${redactPrivateKeys(e.stack)}\n`);
  return ExitCode.failed;
}

let shown = true;
try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.exitCode = fail(e);
  // --help and --version print text, not a command's result.
  shown = !(e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version'));
}
if (json && shown) process.stdout.write(jsonText(json.document(Number(process.exitCode ?? ExitCode.ok))));
