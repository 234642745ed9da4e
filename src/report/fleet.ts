import { Writable } from 'node:stream';
import { prefixLines } from '../core/events.ts';
import type { ClusterRun, FleetView, Reporter } from '../core/events.ts';
import { recapLine } from './format.ts';
import type { JsonFields } from '../flows/io.ts';
import { jsonDocument } from './json.ts';
import { PlainReporter } from './plain.ts';
import type { PlainOptions } from './plain.ts';

/** The end of a human fleet view: a recap line per cluster, or what kept it from running its playbook. */
export function fleetRecap(runs: ClusterRun[]): string {
  const lines = runs.map((r) => {
    if (r.end) return `  ${recapLine(r.name, r.end.recap, r.end.durationMs)}`;
    return `  ${r.name}: failed ${r.started ? 'while' : 'before'} its playbook ran: ${r.error?.message ?? 'unknown error'}`;
  });
  return `recap of ${runs.length} clusters:\n${lines.join('\n')}\n`;
}

/** Plain lines with a `[cluster]` prefix, for CI logs, pipes and --quiet. */
export class PrefixedView implements FleetView {
  private readonly out: NodeJS.WritableStream;
  private readonly opts: PlainOptions;

  constructor(out: NodeJS.WritableStream, opts: PlainOptions) {
    this.out = out;
    this.opts = opts;
  }

  cluster(name: string): Reporter {
    const prefix = `[${name}] `;
    // PlainReporter writes whole lines, so each chunk can be prefixed on its own.
    const lines = new Writable({
      write: (chunk: Buffer | string, _enc, done) => {
        this.out.write(prefixLines(chunk.toString(), prefix));
        done();
      },
    });
    return new PlainReporter(lines, this.opts);
  }

  close(runs: ClusterRun[]): Promise<void> {
    this.out.write(fleetRecap(runs));
    return Promise.resolve();
  }
}

/** `--json`: the envelope gets `clusters: { <name>: <the single-cluster document> }`. */
export class JsonFleetView implements FleetView {
  private readonly add: (fields: JsonFields) => void;

  constructor(add: (fields: JsonFields) => void) {
    this.add = add;
  }

  cluster(): Reporter {
    // The document is built from every cluster's run-end at close; nothing to show meanwhile.
    return { emit: () => undefined, close: () => Promise.resolve() };
  }

  close(runs: ClusterRun[]): Promise<void> {
    const clusters = Object.fromEntries(runs.map((r) => [r.name, r.end ? jsonDocument(r.end) : { success: false, error: r.error }]));
    this.add({ clusters });
    return Promise.resolve();
  }
}
