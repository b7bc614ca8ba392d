import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VENDORS } from '../../src/providers/vendors.js';
import { CREDENTIAL_FIELDS } from '../../src/domain/accountConnections.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README vendor table', () => {
  it.each(Object.entries(VENDORS))('%s: its connection type, env default and base-URL variable are documented', (_id, v) => {
    expect(readme).toContain(`\`${v.connection}\``);
    expect(readme).toContain(`\`${v.keyEnv}\``);
    expect(readme).toContain(`\`${v.baseUrlEnv}\``);
    for (const x of Object.values(v.extras ?? {})) if (x.env) expect(readme).toContain(`\`${x.env}\``);
  });

  it.each(Object.entries(VENDORS))('%s: the credential fields it reads exist on its connection type', (_id, v) => {
    const fields = (CREDENTIAL_FIELDS as Record<string, { name: string }[]>)[v.connection].map((f) => f.name);
    expect(fields).toContain(v.keyField);
    for (const x of Object.values(v.extras ?? {})) expect(fields).toContain(x.field);
    if (v.baseUrlField) expect(fields).toContain(v.baseUrlField);
  });
});
