import { writeFile } from 'node:fs/promises';
import { configSchema, playbookSchema } from '../src/playbook/schema.ts';
import { builtinKinds } from '../src/tasks/registry.ts';

/** Regenerate schema/*.json from the zod schemas: `node_modules/.bin/node scripts/gen-schema.ts`. */
const dir = new URL('../schema/', import.meta.url);
await writeFile(new URL('playbook.schema.json', dir), await playbookSchema(builtinKinds));
await writeFile(new URL('fluxstrap.schema.json', dir), configSchema());
process.stdout.write('wrote schema/playbook.schema.json and schema/fluxstrap.schema.json\n');
