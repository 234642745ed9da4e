import type { Command } from 'commander';
import type { Reporter } from '../core/events.ts';

/** Flags every command understands, read from the root program. */
export interface GlobalOptions {
  json: boolean;
  quiet: boolean;
  color: boolean;
}

export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals<{ json?: boolean; quiet?: boolean; color?: boolean }>();
  return {
    json: o.json === true,
    quiet: o.quiet === true,
    color: o.color !== false && !process.env.NO_COLOR && process.stderr.isTTY === true,
  };
}

/** How help texts name sops' default age key file, whose folder depends on the OS (sopsAgeKeyFile in keys/age.ts). */
export const DEFAULT_AGE_KEY_FILE = 'sops/age/keys.txt in the user config folder ($XDG_CONFIG_HOME, else ~/.config; macOS ~/Library/Application Support unless XDG_CONFIG_HOME is set; Windows %AppData%)';

/** CI systems set CI; a pipe or file is not a person watching. */
export function isInteractive(): boolean {
  return process.stderr.isTTY === true && !process.env.CI;
}

/** listr2 redraws in place: only for a person at a terminal who asked for neither --json nor --quiet. */
export function showsTaskList(opts: GlobalOptions): boolean {
  return !opts.json && !opts.quiet && isInteractive();
}

/**
 * Pick the renderer for an engine run: JSON (final document on stdout) with --json, listr2 on an
 * interactive terminal, plain lines otherwise. Renderers are imported lazily, so commands that
 * never run the engine do not load listr2.
 */
export async function createReporter(opts: GlobalOptions, view: { diff?: boolean } = {}): Promise<Reporter> {
  if (opts.json) {
    const { JsonReporter } = await import('../report/json.ts');
    return new JsonReporter(process.stdout);
  }
  if (showsTaskList(opts)) {
    const { ListrReporter } = await import('../report/listr.ts');
    return new ListrReporter(process.stderr, { diff: view.diff === true });
  }
  const { PlainReporter } = await import('../report/plain.ts');
  return new PlainReporter(process.stderr, { color: opts.color, quiet: opts.quiet, diff: view.diff === true });
}

/** Human status goes to stderr so stdout stays clean for results and pipes. */
export function info(opts: GlobalOptions, line: string): void {
  if (!opts.quiet && !opts.json) process.stderr.write(`${line}\n`);
}
