import { z } from 'zod';
import { ERROR_CODES } from '../core/errors.ts';
import { toJson } from '../playbook/schema.ts';

/**
 * The contract of `--json` (envelope.ts builds the documents): for each command, the fields it
 * adds to `{ command, success, exitCode, error? }`. `scripts/gen-schema.ts` writes it to
 * schema/output.schema.json; test/e2e/json-envelope.test.ts runs every command against it.
 * Only the schema generator and the tests load this module (zod stays off the CLI's start-up).
 *
 * A new command: add an entry to COMMANDS (its name as typed, its fields), call
 * `io.result({ … })` in its flow, and add its success and failure cases to the test.
 */

const ErrorReport = z
  .strictObject({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    where: z.string().optional(),
    hint: z.string().optional(),
    cause: z.string().optional().describe('E_INTERNAL: what was thrown, e.g. `TypeError: …`; the hint says it is a bug to report'),
  })
  .meta({ id: 'ErrorReport' });

const Location = z
  .strictObject({ file: z.string().optional(), line: z.int().optional(), column: z.int().optional(), field: z.string().optional() })
  .meta({ id: 'Location' });

const Recap = z.strictObject({ ok: z.int(), changed: z.int(), wouldChange: z.int(), skipped: z.int(), failed: z.int() }).meta({ id: 'Recap' });

const ChangeView = z
  .strictObject({
    action: z.enum(['create', 'update', 'delete', 'run']),
    target: z.string(),
    summary: z.string(),
    before: z.string().optional(),
    after: z.string().optional(),
    sensitive: z.boolean().optional(),
  })
  .meta({ id: 'ChangeView' });

const TaskResult = z
  .strictObject({
    index: z.int(),
    name: z.string(),
    kind: z.string(),
    location: Location.optional(),
    outcome: z.enum(['ok', 'changed', 'would-change', 'skipped', 'failed']),
    changes: z.array(ChangeView),
    durationMs: z.number(),
    notes: z.array(z.string()),
    error: ErrorReport.optional(),
    ignoredError: z.boolean().optional(),
  })
  .meta({ id: 'TaskResult' });

/** One engine run: what `bootstrap`, `run`, `init` and `keys rotate` add. */
const Run = { title: z.string(), check: z.boolean(), recap: Recap, durationMs: z.number(), tasks: z.array(TaskResult) };

/** Each cluster of several: its run (with its own success), or what kept it from ending. */
const ClusterRun = z
  .union([z.strictObject({ success: z.boolean(), ...Run }), z.strictObject({ success: z.literal(false), error: ErrorReport.optional() })])
  .meta({ id: 'ClusterRun' });

const Listing = {
  playbook: z.string(),
  tasks: z.array(z.strictObject({ name: z.string(), kind: z.string(), tags: z.array(z.string()), location: Location.optional() })),
};

const StatusFinding = z
  .strictObject({ check: z.string(), status: z.enum(['ok', 'warn', 'fail']), message: z.string(), hint: z.string().optional() })
  .meta({ id: 'StatusFinding' });
const Status = {
  cluster: z.string(),
  path: z.string(),
  strict: z.boolean(),
  counts: z.strictObject({ ok: z.int(), warn: z.int(), fail: z.int() }),
  findings: z.array(StatusFinding),
};

const File = z.string();
const Transformed = z
  .strictObject({
    file: File,
    written: z.string().optional().describe('--in-place or --output: the file written'),
    content: z.string().optional().describe('otherwise: what would have gone to stdout'),
    contentBase64: z.string().optional().describe('the same, for bytes (a binary file decrypted)'),
  })
  .meta({ id: 'Transformed' });
const Transform = { files: z.array(Transformed) };

const Recipient = z
  .strictObject({ recipient: z.string(), source: z.string(), line: z.int().optional(), type: z.enum(['age', 'age-pq', 'pgp']) })
  .meta({ id: 'Recipient' });

/** Every command and the shapes of what it adds; a shape's fields are all present when it succeeds. */
export const COMMANDS = {
  bootstrap: [Run, { clusters: z.record(z.string(), ClusterRun) }, Listing, { clusters: z.record(z.string(), z.strictObject(Listing)) }],
  run: [Run, { clusters: z.record(z.string(), ClusterRun) }, Listing, { clusters: z.record(z.string(), z.strictObject(Listing)) }],
  init: [Run],
  upgrade: [Run],
  'keys rotate': [Run],
  'keys new': [
    { recipient: z.string(), file: File },
    { fingerprint: z.string(), file: File, publicKey: z.string() },
  ],
  'keys backup': [{ files: z.array(File), format: z.enum(['age', 'ansible-vault']), recipients: z.array(z.string()), alsoRecipients: z.array(z.string()) }],
  'keys restore': [{ file: File, recipients: z.array(z.string()) }],
  'keys pub': [{ recipients: z.array(Recipient), publicKey: z.string().optional() }],
  status: [Status, { clusters: z.record(z.string(), z.strictObject({ success: z.boolean(), ...Status })) }],
  doctor: [Status, { clusters: z.record(z.string(), z.strictObject({ success: z.boolean(), ...Status })) }],
  check: [
    {
      findings: z.array(z.strictObject({ file: File, line: z.int().optional(), reason: z.string() })),
      warnings: z.array(z.string()).optional().describe('--cluster: what the walk of its Kustomizations could not follow'),
    },
  ],
  encrypt: [Transform],
  decrypt: [Transform],
  rotate: [Transform],
  updatekeys: [{ files: z.array(z.strictObject({ file: File, added: z.array(z.string()), removed: z.array(z.string()) })) }],
  set: [{ file: File, path: z.string(), changed: z.boolean() }],
  unset: [{ file: File, path: z.string(), changed: z.boolean() }],
} satisfies Record<string, z.ZodRawShape[]>;

const head = (command: z.ZodType) => ({ command, success: z.boolean(), exitCode: z.int().min(0), error: ErrorReport.optional() });

/**
 * One strict form per command and shape, plus the form of a command that stopped before it had
 * anything to add (a usage error, a missing file). `fluxstrap` names an argv without a command,
 * `keys` the group without its subcommand.
 */
export function envelopeSchema(): z.ZodType {
  const names = Object.keys(COMMANDS) as (keyof typeof COMMANDS)[];
  const forms = names.flatMap((name) => COMMANDS[name].map((shape: z.ZodRawShape) => z.strictObject({ ...head(z.literal(name)), ...shape })));
  const stopped = z.strictObject({ ...head(z.enum([...names, 'fluxstrap', 'keys'])), success: z.literal(false), error: ErrorReport });
  return z.union([stopped, ...forms]).describe('The one document `fluxstrap --json COMMAND` prints on stdout.');
}

/** schema/output.schema.json, as `scripts/gen-schema.ts` writes it. */
export function outputSchema(): string {
  return toJson(envelopeSchema(), 'output.schema.json');
}
