// TEMPORARY until the listr2 renderer lands (owned by the bootstrap work): same lines as plain.
import { PlainReporter } from './plain.ts';

export class ListrReporter extends PlainReporter {
  constructor(out: NodeJS.WritableStream) {
    super(out, { color: true, quiet: false });
  }
}
