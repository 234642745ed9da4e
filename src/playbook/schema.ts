import { z } from 'zod';
import { FluxstrapConfigSchema } from '../cluster/config.ts';
import type { KindRegistry } from '../tasks/registry.ts';
import { loadKind } from '../tasks/registry.ts';
import { PlaybookEnvelopeSchema, TaskOptionsSchema, strictParams } from './loader.ts';

/**
 * JSON Schemas for editors (yaml-language-server), generated from the same zod schemas the
 * loaders check with, so completion and red squiggles agree with what fluxstrap accepts.
 * `scripts/gen-schema.ts` writes them to schema/; a test fails when the committed ones are stale.
 */

const SCHEMA_BASE = 'https://fluxstrap.dev/schema';

/** A zod schema as the JSON Schema text committed under schema/ (also the `--json` contract's, report/envelope-schema.ts). */
export function toJson(schema: z.ZodType, id: string): string {
  // `input`: what a person writes (fields with defaults are optional), not what the loader returns.
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  return `${JSON.stringify({ ...json, $id: `${SCHEMA_BASE}/${id}` }, null, 2)}\n`;
}

export async function playbookSchema(registry: KindRegistry): Promise<string> {
  const names = Object.keys(registry).sort();
  const variants = await Promise.all(
    names.map(async (name) => {
      const kind = await loadKind(registry, name);
      if (!kind) throw new Error(`kind ${name} is registered but did not load`);
      // The loader reads an empty value (`preflight:`) as no params.
      return TaskOptionsSchema.extend({ [name]: strictParams(kind.params).nullable() }).describe(`Task of kind ${name}.`);
    }),
  );
  const [first, second, ...rest] = variants;
  const task = first && second ? z.union([first, second, ...rest]) : (first ?? TaskOptionsSchema);
  const envelope = PlaybookEnvelopeSchema.extend({ tasks: z.array(task).min(1), handlers: z.array(task).optional() });
  return toJson(envelope.describe('A fluxstrap playbook.'), 'playbook.schema.json');
}

export function configSchema(): string {
  return toJson(FluxstrapConfigSchema, 'fluxstrap.schema.json');
}
