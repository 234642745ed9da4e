import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { configSchema, playbookSchema } from '../../../src/playbook/schema.ts';
import { outputSchema } from '../../../src/report/envelope-schema.ts';
import { builtinKinds } from '../../../src/tasks/registry.ts';

const committed = (name: string) => readFile(new URL(`../../../schema/${name}`, import.meta.url), 'utf8');
const STALE = 'schema/ is stale: run `node_modules/.bin/node scripts/gen-schema.ts` and commit the result';

void describe('JSON Schemas for editors', () => {
  void it('schema/playbook.schema.json matches the task kinds', async () => {
    assert.equal(await committed('playbook.schema.json'), await playbookSchema(builtinKinds), STALE);
  });

  void it('schema/fluxstrap.schema.json matches the config schema', async () => {
    assert.equal(await committed('fluxstrap.schema.json'), configSchema(), STALE);
  });

  void it('schema/output.schema.json matches the --json envelope of every command', async () => {
    assert.equal(await committed('output.schema.json'), outputSchema(), STALE);
  });

  void it('offers one task form per registered kind, each closed to unknown keys', async () => {
    const schema = JSON.parse(await playbookSchema(builtinKinds)) as {
      properties: { tasks: { items: { anyOf: { required: string[]; additionalProperties: boolean }[] } } };
    };
    const forms = schema.properties.tasks.items.anyOf;
    assert.deepEqual(forms.map((f) => f.required).flat(), Object.keys(builtinKinds).sort());
    assert.ok(forms.every((f) => f.additionalProperties === false));
  });
});
