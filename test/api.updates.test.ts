import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { ensureBootstrapKey, openStore } from '../src/server.js';
import { startTestServer, usingPostgres, type TestServer } from './helpers/server.js';
import { vocodeErrors } from './helpers/vocodeSpec.js';

let s: TestServer;
beforeAll(async () => { s = await startTestServer(); });
afterAll(async () => { await s?.close(); });

const OPENAI = { type: 'account_connection_openai', credentials: { openai_api_key: 'sk-live-original-1111', openai_organization: 'org-42' } };
const EXTERNAL = { type: 'action_external', config: { name: 'lookup', description: 'Look up', url: 'https://example.com/x', input_schema: { type: 'object' }, speak_on_send: false, speak_on_receive: true } };

describe('partial updates of nested config objects', () => {
  it('a credentials patch changes only the fields it names', async () => {
    const c = await s.api('/v1/account_connections/create', { body: OPENAI });
    const u = await s.api(`/v1/account_connections/update?id=${c.body.id}`, { body: { type: OPENAI.type, credentials: { openai_api_key: 'sk-live-rotated-2222' } } });
    expect(u.status).toBe(201);
    expect(u.body.credentials).toEqual({ openai_api_key: '****2222', openai_organization: 'org-42' });
    const tw = await s.api('/v1/account_connections/create', { body: { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC1', twilio_auth_token: 'tok-abcdef' } } });
    const sidOnly = await s.api(`/v1/account_connections/update?id=${tw.body.id}`, { body: { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC2' } } });
    expect(sidOnly.status).toBe(201);
    expect(sidOnly.body.credentials).toEqual({ twilio_account_sid: 'AC2', twilio_auth_token: '****cdef' });
  });

  it('an action config patch keeps the other config fields and the signing secret', async () => {
    const a = await s.api('/v1/actions/create', { body: EXTERNAL });
    const u = await s.api(`/v1/actions/update?id=${a.body.id}`, { body: { type: 'action_external', config: { description: 'Look up an order' } } });
    expect(u.status).toBe(201);
    expect(u.body.config).toEqual({ ...a.body.config, description: 'Look up an order' });
  });
});

describe('masked secrets are never stored as secrets', () => {
  it('creating with a masked value answers 422 naming the field', async () => {
    const r = await s.api('/v1/account_connections/create', { body: { type: 'account_connection_openai', credentials: { openai_api_key: '****1111' } } });
    expect(r.status).toBe(422);
    expect(r.body.message).toContain('body.credentials.openai_api_key');
    const v = await s.api('/v1/agents/create', { body: { prompt: {}, voice: { type: 'voice_eleven_labs', voice_id: 'v', api_key: '****abcd' } } });
    expect(v.status).toBe(422);
    expect(v.body.message).toContain('body.voice.api_key');
  });

  it("an agent read back with GET and sent to update keeps its objects and secrets", async () => {
    const created = await s.api('/v1/agents/create', {
      body: { prompt: { content: 'p' }, voice: { type: 'voice_eleven_labs', voice_id: 'v', api_key: 'xi-real-key-9999' }, actions: [EXTERNAL], openai_account_connection: OPENAI },
    });
    expect(created.status).toBe(201);
    const { id, user_id, ...agent } = created.body;
    const actionsBefore = (await s.api('/v1/actions/list')).body.total;
    const round = await s.api(`/v1/agents/update?id=${id}`, { body: agent });
    expect(round.status, JSON.stringify(round.body)).toBe(201);
    expect(round.body).toEqual(created.body);
    const store = s.running.store;
    const voice = await store.voices.get(store.db, user_id, created.body.voice.id);
    expect(store.voices.reveal(voice).api_key).toBe('xi-real-key-9999');
    const conn = await store.connections.get(store.db, user_id, created.body.openai_account_connection.id);
    expect(store.connections.reveal(conn).credentials).toMatchObject({ openai_api_key: 'sk-live-original-1111' });
    expect((await s.api('/v1/actions/list')).body.total).toBe(actionsBefore);
    expect((await s.api('/v1/account_connections/list?size=100&filters=' + encodeURIComponent('{"type":"account_connection_openai"}'))).body.items
      .filter((c: any) => c.id === created.body.openai_account_connection.id)).toHaveLength(1);
  });

  it('an inline OpenAI connection on update edits the attached one instead of adding another', async () => {
    const a = await s.api('/v1/agents/create', { body: { prompt: {}, voice: { type: 'voice_vocode', voice_id: 'joe' }, openai_account_connection: OPENAI } });
    const before = (await s.api('/v1/account_connections/list?size=100')).body.total;
    const u = await s.api(`/v1/agents/update?id=${a.body.id}`, { body: { openai_account_connection: { type: OPENAI.type, credentials: { openai_api_key: 'sk-live-next-3333' } } } });
    expect(u.body.openai_account_connection).toMatchObject({ id: a.body.openai_account_connection.id, credentials: { openai_api_key: '****3333', openai_organization: 'org-42' } });
    expect((await s.api('/v1/account_connections/list?size=100')).body.total).toBe(before);
  });
});

describe('the external action signing secret', () => {
  it('is returned in full but sealed at rest', async () => {
    const a = await s.api('/v1/actions/create', { body: EXTERNAL });
    const secret = a.body.config.signature_secret as string;
    const rows = await s.running.store.db.execute(sql`select data::text as t from actions where id = ${a.body.id}`);
    const text = ((rows as unknown as { rows?: { t: string }[] }).rows ?? (rows as unknown as { t: string }[]))[0].t;
    expect(text).not.toContain(secret);
    expect(text).toContain('enc:v1:');
    expect((await s.api(`/v1/actions?id=${a.body.id}`)).body.config.signature_secret).toBe(secret);
  });
});

describe('Vocode SDK parsing of values Switchboard fills in', () => {
  it('a number with the "default" inbound agent parses as a Vocode PhoneNumber', async () => {
    const tw = await s.api('/v1/account_connections/create', { body: { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC9', twilio_auth_token: 'tok-zzzz' } } });
    const n = await s.api('/v1/numbers/link', { body: { phone_number: '+14155550177', telephony_account_connection: tw.body.id, inbound_agent: 'default' } });
    expect(n.status).toBe(201);
    expect(vocodeErrors('PhoneNumber', n.body)).toEqual([]);
  });

  it('a prompt template label given as null reads back as ""', async () => {
    const p = await s.api('/v1/prompts/create', { body: { content: 'x', prompt_template: { label: null, required_context_keys: ['a'] } } });
    expect(p.body.prompt_template.label).toBe('');
    expect(vocodeErrors('Prompt', p.body)).toEqual([]);
  });
});

describe('list parameters that name object internals', () => {
  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('%s is an unknown column, not a crash', async (name) => {
    const sort = await s.api(`/v1/agents/list?sort_column=${name}`);
    expect(sort.status).toBe(422);
    expect(sort.body.message).toContain('sort_column');
    const filter = await s.api(`/v1/agents/list?filters=${encodeURIComponent(JSON.stringify({ [name]: 1 }))}`);
    expect(filter.status).toBe(422);
  });

  it('a time filter must look like a date', async () => {
    const r = await s.api(`/v1/calls/list?filters=${encodeURIComponent('{"start_time":{"gte":"1"}}')}`);
    expect(r.status).toBe(422);
  });
});

describe('concurrent writers', () => {
  it('parallel additions to a steering pool all land', async () => {
    const tw = await s.api('/v1/account_connections/create', { body: { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC3', twilio_auth_token: 'tok-yyyy' } } });
    const numbers = Array.from({ length: 8 }, (_, i) => `+1415555020${i}`);
    const results = await Promise.all(numbers.map((n) => s.api(`/v1/account_connections/add_to_steering_pool?id=${tw.body.id}`, { body: { phone_number: n } })));
    expect(results.map((r) => r.status)).toEqual(numbers.map(() => 201));
    const after = await s.api(`/v1/account_connections?id=${tw.body.id}`);
    expect([...after.body.steering_pool].sort()).toEqual(numbers);
  });

  it('parallel agent updates of different fields all land', async () => {
    const a = await s.api('/v1/agents/create', { body: { prompt: {}, voice: { type: 'voice_vocode', voice_id: 'joe' } } });
    await Promise.all([
      s.api(`/v1/agents/update?id=${a.body.id}`, { body: { language: 'de' } }),
      s.api(`/v1/agents/update?id=${a.body.id}`, { body: { name: 'Zed' } }),
      s.api(`/v1/agents/update?id=${a.body.id}`, { body: { initial_message: 'Hallo' } }),
    ]);
    expect((await s.api(`/v1/agents?id=${a.body.id}`)).body).toMatchObject({ language: 'de', name: 'Zed', initial_message: 'Hallo' });
  });

  it.runIf(usingPostgres())('nodes starting together on one database create exactly one first key', async () => {
    // A fresh database per run: the test server's own database already has its key.
    const admin = process.env.TEST_DATABASE_URL!;
    const name = `sb_boot_${Date.now().toString(36)}`;
    const pg = (await import('pg')).default;
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`CREATE DATABASE ${name}`);
    const u = new URL(admin);
    u.pathname = `/${name}`;
    const config = loadConfig({ DATABASE_URL: u.toString(), SWITCHBOARD_SECRET_KEY: 'x'.repeat(32), LOG_LEVEL: 'silent' });
    const stores = await Promise.all([0, 1, 2].map(() => openStore(config)));
    try {
      const printed: string[] = [];
      await Promise.all(stores.map((st) => ensureBootstrapKey(st, config, (l) => printed.push(l))));
      expect(await stores[0].users.countKeys(stores[0].db)).toBe(1);
      expect(printed.filter((l) => l.includes('shown once'))).toHaveLength(1);
    } finally {
      await Promise.all(stores.map((st) => st.close()));
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    }
  });
});
