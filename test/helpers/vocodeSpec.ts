import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

/** Validates a response against a schema of Vocode's published spec, as its generated SDKs would parse it. */
const spec = JSON.parse(readFileSync(new URL('../fixtures/vocode-openapi.json', import.meta.url), 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
ajv.addSchema(spec, 'vocode.json');

export function vocodeErrors(schemaName: string, value: unknown): string[] {
  const validate = ajv.getSchema(`vocode.json#/components/schemas/${schemaName}`);
  if (!validate) throw new Error(`no schema ${schemaName} in the Vocode spec`);
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
}

export const vocodeSpec = spec as { paths: Record<string, Record<string, { operationId: string; parameters?: { name: string; required?: boolean }[] }>>; components: { schemas: Record<string, any> } };
