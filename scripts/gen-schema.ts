import { writeFile } from 'node:fs/promises';
import { configSchema, playbookSchema } from '../src/playbook/schema.ts';
import { outputSchema } from '../src/report/envelope-schema.ts';
import { builtinKinds } from '../src/tasks/registry.ts';

/** Regenerate schema/*.json from the zod schemas: `node_modules/.bin/node scripts/gen-schema.ts`. */
const dir = new URL('../schema/', import.meta.url);
await writeFile(new URL('playbook.schema.json', dir), await playbookSchema(builtinKinds));
await writeFile(new URL('fluxstrap.schema.json', dir), configSchema());
await writeFile(new URL('output.schema.json', dir), outputSchema());
process.stdout.write('wrote schema/playbook.schema.json, schema/fluxstrap.schema.json and schema/output.schema.json\n');
