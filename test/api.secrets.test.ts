import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { ACCOUNT_CONNECTION_TYPES, CREDENTIAL_FIELDS } from '../src/domain/accountConnections.js';
import { createLogger } from '../src/log.js';
import { startServer } from '../src/server.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Credentials: masked in every answer, sealed at rest, kept when the mask is sent back, and never in a
 * response body or a log line. Every plaintext secret here contains MARK, so one substring search finds any leak.
 */

// The production logger (its redaction paths included), writing into an array instead of stdout.
const LOG = vi.hoisted(() => ({ lines: [] as string[] }));
vi.mock('pino', async (importOriginal) => {
  const mod = await importOriginal<typeof import('pino')>();
  const capture = Object.assign((opts: any) => mod.pino(opts, { write: (line: string) => { LOG.lines.push(line); } }), mod.pino);
  return { ...mod, pino: capture, default: capture };
});

const MARK = 'S3CR3T';
const secret = (name: string) => `${MARK}-${name}-${randomBytes(6).toString('hex')}`;
const mask = (plain: string) => `****${plain.slice(-4)}`;

let s: TestServer;
/** Every response body this file saw, to search for plaintext at the end. */
const seen: string[] = [];
async function api(path: string, init: { method?: string; body?: unknown; raw?: string; key?: string | null } = {}) {
  const r = await s.api(path, init);
  seen.push(typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
  return r;
}
beforeAll(async () => { s = await startTestServer(); });
afterAll(async () => { await s?.close(); });

type Cred = { name: string; secret: boolean; required: boolean };
const fieldsOf = (type: string) => (CREDENTIAL_FIELDS as Record<string, Cred[]>)[type];
function credentialsFor(type: string): Record<string, string> {
  return Object.fromEntries(fieldsOf(type).map((f) => [f.name, f.secret ? secret(f.name) : `plain-${f.name}`]));
}
/** What a response must show for these credentials. */
function masked(type: string, creds: Record<string, string>): Record<string, string> {
  return Object.fromEntries(fieldsOf(type).map((f) => [f.name, f.secret ? mask(creds[f.name]) : creds[f.name]]));
}

async function rawRows(table: string): Promise<{ id: string; data: string }[]> {
  const res = (await s.running.store.db.execute(sql.raw(`select id::text as id, data::text as data from ${table}`))) as any;
  return res.rows;
}
async function revealConnection(userId: string, id: string) {
  const store = s.running.store;
  return store.connections.reveal(await store.connections.get(store.db, userId, id)) as any;
}

describe('account connections: every type', () => {
  it('covers the 20 connection types', () => {
    expect(ACCOUNT_CONNECTION_TYPES).toHaveLength(22);
  });

  it.each(ACCOUNT_CONNECTION_TYPES)('%s: masked in create/get/list/update, sealed at rest, mask sent back keeps the secret', async (type) => {
    const creds = credentialsFor(type);
    const c = await api('/v1/account_connections/create', { body: { type, credentials: creds, label: 'l1' } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    expect(c.body.credentials).toEqual(masked(type, creds));

    const got = await api(`/v1/account_connections?id=${c.body.id}`);
    expect(got.body).toEqual(c.body);
    const listed = await api(`/v1/account_connections/list?filters=${encodeURIComponent(JSON.stringify({ id: c.body.id }))}`);
    expect(listed.body.items).toEqual([c.body]);

    // Sealed at rest: no plaintext, every secret field "enc:v1:…".
    const [row] = (await rawRows('account_connections')).filter((r) => r.id === c.body.id);
    expect(row.data).not.toContain(MARK);
    const stored = JSON.parse(row.data).credentials;
    for (const f of fieldsOf(type)) {
      if (f.secret) expect(stored[f.name]).toMatch(/^enc:v1:[A-Za-z0-9+/=]+$/);
      else expect(stored[f.name]).toBe(creds[f.name]);
    }

    // Credentials left out, or the masked form sent back, mean "unchanged".
    const absent = await api(`/v1/account_connections/update?id=${c.body.id}`, { body: { type, label: 'l2' } });
    expect(absent.status, JSON.stringify(absent.body)).toBe(201);
    expect(absent.body).toEqual({ ...c.body, label: 'l2' });
    const same = await api(`/v1/account_connections/update?id=${c.body.id}`, { body: { type, credentials: c.body.credentials, label: 'l3' } });
    expect(same.status, JSON.stringify(same.body)).toBe(201);
    expect(same.body).toEqual({ ...c.body, label: 'l3' });
    expect((await revealConnection(c.body.user_id, c.body.id)).credentials).toEqual(creds);
    if (type === 'account_connection_twilio' || type === 'account_connection_telnyx') {
      const pool = await api(`/v1/account_connections/add_to_steering_pool?id=${c.body.id}`, { body: { phone_number: '+14155550123' } });
      expect(pool.status, JSON.stringify(pool.body)).toBe(201);
      expect(pool.body.credentials).toEqual(masked(type, creds));
      const out = await api(`/v1/account_connections/remove_from_steering_pool?id=${c.body.id}`, { body: { phone_number: '+14155550123' } });
      expect(out.body.credentials).toEqual(masked(type, creds));
    }

    // A new value replaces the secret.
    if (fieldsOf(type).length) {
      const next = credentialsFor(type);
      const upd = await api(`/v1/account_connections/update?id=${c.body.id}`, { body: { type, credentials: next } });
      expect(upd.status, JSON.stringify(upd.body)).toBe(201);
      expect(upd.body.credentials).toEqual(masked(type, next));
      expect((await revealConnection(c.body.user_id, c.body.id)).credentials).toEqual(next);
    }
  });

  const required = ACCOUNT_CONNECTION_TYPES.flatMap((type) => fieldsOf(type).filter((f) => f.required).map((f) => [type, f.name] as const));
  it.each(required)('%s without %s → 422 naming body.credentials.<field>', async (type, field) => {
    const { [field]: _gone, ...rest } = credentialsFor(type);
    const r = await api('/v1/account_connections/create', { body: { type, credentials: rest } });
    expect(r.status, JSON.stringify(r.body)).toBe(422);
    expect(r.body.detail.map((d: any) => d.loc.join('.'))).toContain(`body.credentials.${field}`);
  });

  it('google needs one of its keys; credentials themselves are required', async () => {
    const g = await api('/v1/account_connections/create', { body: { type: 'account_connection_google', credentials: { project_id: 'p' } } });
    expect(g.status).toBe(422);
    expect(g.body.detail[0].loc.slice(0, 2)).toEqual(['body', 'credentials']);
    const none = await api('/v1/account_connections/create', { body: { type: 'account_connection_twilio' } });
    expect(none.status).toBe(422);
    expect(none.body.detail[0].loc).toEqual(['body', 'credentials']);
  });

  it.each(ACCOUNT_CONNECTION_TYPES)('%s: an unknown credential key → 422 on create and update', async (type) => {
    const creds = { ...credentialsFor(type), bogus_key: secret('bogus') };
    const r = await api('/v1/account_connections/create', { body: { type, credentials: creds } });
    expect(r.status, JSON.stringify(r.body)).toBe(422);
    expect(r.body.detail.map((d: any) => d.loc.join('.'))).toContain('body.credentials.bogus_key');
    const ok = await api('/v1/account_connections/create', { body: { type, credentials: credentialsFor(type) } });
    const u = await api(`/v1/account_connections/update?id=${ok.body.id}`, { body: { type, credentials: { ...ok.body.credentials, bogus_key: 'x' } } });
    expect(u.status, JSON.stringify(u.body)).toBe(422);
  });

  it('the same secret twice gives two different ciphertexts (random IV)', async () => {
    const key = secret('dup');
    const a = await api('/v1/account_connections/create', { body: { type: 'account_connection_openai', credentials: { openai_api_key: key } } });
    const b = await api('/v1/account_connections/create', { body: { type: 'account_connection_openai', credentials: { openai_api_key: key } } });
    const rows = await rawRows('account_connections');
    const ct = (id: string) => JSON.parse(rows.find((r) => r.id === id)!.data).credentials.openai_api_key as string;
    expect(ct(a.body.id)).toMatch(/^enc:v1:/);
    expect(ct(a.body.id)).not.toBe(ct(b.body.id));
    expect((await revealConnection(a.body.user_id, a.body.id)).credentials.openai_api_key).toBe(key);
    expect((await revealConnection(b.body.user_id, b.body.id)).credentials.openai_api_key).toBe(key);
  });
});

describe('secrets that look sealed', () => {
  it.each([
    ['/v1/account_connections/create', (k: string) => ({ type: 'account_connection_openai', credentials: { openai_api_key: k } }), (b: any) => b.credentials.openai_api_key],
    ['/v1/voices/create', (k: string) => ({ type: 'voice_eleven_labs', voice_id: 'v', api_key: k }), (b: any) => b.api_key],
  ])('%s: a plaintext that starts with "enc:v1:" is sealed and masked like any other', async (path, body, field) => {
    const key = `enc:v1:${MARK}-${randomBytes(4).toString('hex')}`;
    const r = await api(path, { body: body(key) });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(field(r.body)).toBe(mask(key));
    expect(field((await api(`${path.replace('/create', '')}?id=${r.body.id}`)).body)).toBe(mask(key));
  });
});

describe('secrets inside other objects', () => {
  it.each([
    ['voice_eleven_labs', { voice_id: 'v1' }],
    ['voice_play_ht', { voice_id: 's3://v', api_user_id: 'u1' }],
  ])('%s api_key: masked everywhere, sealed, mask sent back keeps it', async (type, extra) => {
    const key = secret(type);
    const c = await api('/v1/voices/create', { body: { type, ...extra, api_key: key } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    expect(c.body.api_key).toBe(mask(key));
    expect((await api(`/v1/voices?id=${c.body.id}`)).body).toEqual(c.body);
    expect((await api('/v1/voices/list?size=100')).body.items.find((v: any) => v.id === c.body.id)).toEqual(c.body);
    const row = (await rawRows('voices')).find((r) => r.id === c.body.id)!;
    expect(JSON.parse(row.data).api_key).toMatch(/^enc:v1:/);
    const same = await api(`/v1/voices/update?id=${c.body.id}`, { body: { ...c.body, label: 'x' } });
    expect(same.status, JSON.stringify(same.body)).toBe(201);
    expect(same.body.api_key).toBe(mask(key));
    const store = s.running.store;
    expect(store.voices.reveal(await store.voices.get(store.db, c.body.user_id, c.body.id)).api_key).toBe(key);
    const next = secret(type);
    expect((await api(`/v1/voices/update?id=${c.body.id}`, { body: { type, api_key: next } })).body.api_key).toBe(mask(next));
    expect(store.voices.reveal(await store.voices.get(store.db, c.body.user_id, c.body.id)).api_key).toBe(next);
  });

  it('pinecone api_key: masked everywhere, sealed, mask sent back keeps it', async () => {
    const key = secret('pinecone');
    const c = await api('/v1/vector_databases/create', { body: { type: 'vector_database_pinecone', index: 'kb', api_key: key, api_environment: 'gcp' } });
    expect(c.body.api_key).toBe(mask(key));
    expect((await api(`/v1/vector_databases?id=${c.body.id}`)).body).toEqual(c.body);
    expect((await api('/v1/vector_databases/list?size=100')).body.items.find((v: any) => v.id === c.body.id)).toEqual(c.body);
    expect(JSON.parse((await rawRows('vector_databases')).find((r) => r.id === c.body.id)!.data).api_key).toMatch(/^enc:v1:/);
    const same = await api(`/v1/vector_databases/update?id=${c.body.id}`, { body: { type: 'vector_database_pinecone', api_key: c.body.api_key, index: 'kb2' } });
    expect(same.body).toMatchObject({ api_key: mask(key), index: 'kb2' });
    const store = s.running.store;
    expect(store.vectorDatabases.reveal(await store.vectorDatabases.get(store.db, c.body.user_id, c.body.id)).api_key).toBe(key);
  });

  it('an agent shows its connection, voice and vector database masked; a GET→update round trip keeps every secret', async () => {
    const keys = { openai: secret('openai'), voice: secret('xi'), pc: secret('pc'), byId: secret('openai2') };
    const body = {
      prompt: { content: 'p' },
      voice: { type: 'voice_eleven_labs', voice_id: 'v', api_key: keys.voice },
      vector_database: { type: 'vector_database_pinecone', index: 'kb', api_key: keys.pc, api_environment: 'gcp' },
      openai_account_connection: { type: 'account_connection_openai', credentials: { openai_api_key: keys.openai } },
    };
    const c = await api('/v1/agents/create', { body });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const expectMasked = (a: any, openai = keys.openai) => {
      expect(a.openai_account_connection.credentials.openai_api_key).toBe(mask(openai));
      expect(a.voice.api_key).toBe(mask(keys.voice));
      expect(a.vector_database.api_key).toBe(mask(keys.pc));
    };
    expectMasked(c.body);
    const got = await api(`/v1/agents?id=${c.body.id}`);
    expectMasked(got.body);
    const round = await api(`/v1/agents/update?id=${c.body.id}`, { body: got.body });
    expect(round.status, JSON.stringify(round.body)).toBe(201);
    expectMasked(round.body);
    const store = s.running.store;
    const u = c.body.user_id;
    expect(store.voices.reveal(await store.voices.get(store.db, u, round.body.voice.id)).api_key).toBe(keys.voice);
    expect(store.vectorDatabases.reveal(await store.vectorDatabases.get(store.db, u, round.body.vector_database.id)).api_key).toBe(keys.pc);
    expect((await revealConnection(u, round.body.openai_account_connection.id)).credentials.openai_api_key).toBe(keys.openai);

    const conn = await api('/v1/account_connections/create', { body: { type: 'account_connection_openai', credentials: { openai_api_key: keys.byId } } });
    const byId = await api(`/v1/agents/update?id=${c.body.id}`, { body: { openai_account_connection: conn.body.id } });
    expectMasked(byId.body, keys.byId);
    expectMasked((await api(`/v1/agents?id=${c.body.id}`)).body, keys.byId);

    // A call's snapshot of the agent is masked too, in the API and in the database.
    const call = await store.calls.insert(store.db, u, { agentId: c.body.id, toNumber: '+14155550100', fromNumber: '+14155550101', telephonyProvider: 'twilio', agentPhoneNumber: '+14155550101' });
    expectMasked((await api(`/v1/calls?id=${call.id}`)).body.agent, keys.byId);
  });

  it.each(['account_connection_twilio', 'account_connection_telnyx'])('a number shows its %s connection masked', async (type) => {
    const creds = credentialsFor(type);
    const conn = await api('/v1/account_connections/create', { body: { type, credentials: creds } });
    const openai = secret('openai');
    const phone = type === 'account_connection_twilio' ? '+14155550177' : '+14155550178';
    const linked = await api('/v1/numbers/link', {
      body: { phone_number: phone, telephony_account_connection: conn.body.id, inbound_agent: { prompt: { content: 'p' }, voice: { type: 'voice_vocode', voice_id: 'joe' }, openai_account_connection: { type: 'account_connection_openai', credentials: { openai_api_key: openai } } } },
    });
    expect(linked.status, JSON.stringify(linked.body)).toBe(201);
    const check = (n: any) => {
      expect(n.telephony_account_connection.credentials).toEqual(masked(type, creds));
      expect(n.inbound_agent.openai_account_connection.credentials.openai_api_key).toBe(mask(openai));
    };
    check(linked.body);
    const p = encodeURIComponent(phone);
    check((await api(`/v1/numbers?phone_number=${p}`)).body);
    check((await api(`/v1/numbers/update?phone_number=${p}`, { body: { label: 'x', inbound_agent: { name: 'n' } } })).body);
    check((await api(`/v1/numbers/cancel?phone_number=${p}`, { method: 'POST' })).body);
    const store = s.running.store;
    const call = await store.calls.insert(store.db, conn.body.user_id, {
      agentId: linked.body.inbound_agent.id, toNumber: '+14155550100', fromNumber: phone, telephonyProvider: 'twilio', agentPhoneNumber: phone,
      telephonyAccountConnectionId: conn.body.id,
    });
    expect((await api(`/v1/calls?id=${call.id}`)).body.telephony_account_connection.credentials).toEqual(masked(type, creds));
    check((await api(`/v1/numbers/detach?phone_number=${p}`, { method: 'POST' })).body);
  });
});

describe('failures leak nothing', () => {
  let log: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    // A second server on the same store and database, logging at trace into LOG.
    const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'trace', DATA_DIR: 'memory://', API_KEY_CACHE_SECONDS: '0' });
    log = await startServer(config, { store: s.running.store, log: createLogger('trace'), print: () => {} });
  });
  afterAll(async () => { await log?.close(); });

  async function call(path: string, init: { method?: string; body?: unknown; raw?: string; auth?: string } = {}, record = true) {
    const res = await fetch(log.url + path, {
      method: init.method ?? 'POST',
      headers: { authorization: init.auth ?? `Bearer ${s.key}`, 'content-type': 'application/json' },
      body: init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body)),
    });
    const text = await res.text();
    if (record) seen.push(text);
    return { status: res.status, text };
  }

  it('failing requests at LOG_LEVEL=trace: no plaintext secret or API key in any log line', async () => {
    const other = await s.newUser();
    const tw = (extra: object) => ({ type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC1', twilio_auth_token: secret('tw'), ...extra } });
    const failing: [string, { method?: string; body?: unknown; raw?: string; auth?: string }][] = [
      ['/v1/account_connections/create', { body: { type: 'account_connection_openai', credentials: { openai_api_key: secret('oa'), bogus: secret('b') } } }],
      ['/v1/account_connections/create', { body: { type: 'account_connection_twilio', credentials: { twilio_auth_token: secret('tw') } } }],
      ['/v1/account_connections/create', { body: { type: 'account_connection_openai', credentials: { openai_api_key: secret('long').padEnd(3000, 'x') } } }],
      ['/v1/account_connections/create', { body: { ...tw({}), label: 'bad\u0000label' } }],
      ['/v1/account_connections/create', { body: { ...tw({ twilio_account_sid: 'AC\u0000' }) } }],
      ['/v1/account_connections/create', { body: { type: 'account_connection_nope', credentials: { api_key: secret('x') } } }],
      ['/v1/account_connections/create', { body: { type: 'account_connection_openai', credentials: secret('str') } }],
      [`/v1/account_connections/update?id=${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, { body: tw({}) }],
      ['/v1/voices/create', { body: { type: 'voice_eleven_labs', api_key: secret('xi'), stability: 9 } }],
      ['/v1/voices/create', { body: { type: 'voice_eleven_labs', voice_id: 'v\u0000', api_key: secret('xi') } }],
      ['/v1/vector_databases/create', { body: { type: 'vector_database_pinecone', api_key: secret('pc') } }],
      ['/v1/agents/create', { body: { prompt: { content: 'p' }, voice: { type: 'voice_play_ht', voice_id: 'v', api_key: secret('ph') }, openai_account_connection: { type: 'account_connection_openai', credentials: { openai_api_key: secret('oa') } }, language: 'xx' } }],
      ['/v1/agents/create', { body: { name: 'n\u0000', prompt: { content: 'p' }, voice: { type: 'voice_play_ht', voice_id: 'v', api_key: secret('ph') }, openai_account_connection: { type: 'account_connection_openai', credentials: { openai_api_key: secret('oa') } } } }],
      ['/v1/account_connections/list', { method: 'GET', auth: `Bearer ${s.key}x` }],
      ['/v1/account_connections/list', { method: 'GET', auth: `Token ${other}` }],
      ['/v1/account_connections/create', { raw: `{"type":"account_connection_openai","credentials":{"openai_api_key":"${secret('raw')}"` }],
    ];
    LOG.lines.length = 0;
    for (const [path, init] of failing) {
      const r = await call(path, init);
      expect(r.status, `${path} ${r.text}`).toBeGreaterThanOrEqual(400);
    }
    const text = LOG.lines.join('');
    expect(LOG.lines.filter((l) => JSON.parse(l).msg === 'request').length).toBeGreaterThanOrEqual(failing.length); // trace logging is on
    expect(text).not.toContain(MARK);
    expect(text).not.toContain(s.key);
    expect(text).not.toContain(other);
  });

  it('a malformed JSON body is not echoed with the secret in it', async () => {
    const key = `${MARK}x`;
    const r = await call('/v1/account_connections/create', { raw: `{"type":"account_connection_openai","credentials":{"openai_api_key": ${key}}}` }, false);
    expect(r.status).toBe(400);
    expect(r.text).not.toContain(MARK);
  });
});

describe('at the end', () => {
  it('no response body in this file carried a plaintext secret', () => {
    expect(seen.length).toBeGreaterThan(100);
    const leaks = seen.filter((b) => b.includes(MARK));
    expect(leaks, leaks.join('\n').slice(0, 2000)).toEqual([]);
  });

  it('no table holds a plaintext secret', async () => {
    const tables = ['prompt_templates', 'actions', 'voices', 'webhooks', 'vector_databases', 'account_connections', 'prompts', 'agents', 'numbers', 'calls'];
    for (const t of tables) {
      const res = (await s.running.store.db.execute(sql.raw(`select row_to_json(t)::text as j from ${t} t`))) as any;
      const leaked = res.rows.filter((r: any) => r.j.includes(MARK));
      expect(leaked, `${t}: ${JSON.stringify(leaked).slice(0, 500)}`).toEqual([]);
    }
  });
});
