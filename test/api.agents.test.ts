import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers/server.js';

/** Agent, prompt and number semantics: references, partial updates, transactions, deletes, numbers. */

let s: TestServer;
beforeAll(async () => { s = await startTestServer(); });
afterAll(async () => { await s?.close(); });

type R = { status: number; body: any };
const post = (path: string, body?: unknown): Promise<R> => s.api(path, body === undefined ? { method: 'POST' } : { body });
const get = (path: string): Promise<R> => s.api(path);
const del = (path: string): Promise<R> => s.api(path, { method: 'DELETE' });
const agentGet = async (id: string) => (await get(`/v1/agents?id=${id}`)).body;

const AZURE = { type: 'voice_azure', voice_name: 'en-US-AriaNeural' };
const TWILIO = { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC1', twilio_auth_token: 'tok-12345678' } };
const OPENAI = { type: 'account_connection_openai', credentials: { openai_api_key: 'sk-test-12345678' } };

function created(r: R): any {
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}
function expect422(r: R, ...loc: (string | number)[]) {
  expect(r.status, JSON.stringify(r.body)).toBe(422);
  expect(r.body.detail.map((d: any) => d.loc.join('.')), JSON.stringify(r.body.detail)).toContain(loc.join('.'));
}

/** An agent with every reference set, all inline. */
async function fullAgent(extra: Record<string, unknown> = {}) {
  return created(await post('/v1/agents/create', {
    name: 'Front desk', language: 'es', initial_message: 'Hola', llm_temperature: 0.5,
    prompt: { content: 'Be kind', context_endpoint: 'https://ctx.example.com', tags: ['t'] },
    voice: AZURE,
    actions: [{ type: 'action_end_conversation' }, { type: 'action_transfer_call', config: { phone_number: '+14155550100' } }],
    webhook: { url: 'https://hook.example.com', subscriptions: ['event_message'] },
    vector_database: { type: 'vector_database_pinecone', index: 'kb', api_key: 'pc-12345678', api_environment: 'gcp' },
    openai_account_connection: OPENAI,
    ...extra,
  }));
}

describe('nested objects by id or inline', () => {
  it('every reference by id: the agent expands to exactly those objects', async () => {
    const prompt = created(await post('/v1/prompts/create', { content: 'by id' }));
    const voice = created(await post('/v1/voices/create', AZURE));
    const a1 = created(await post('/v1/actions/create', { type: 'action_dtmf' }));
    const a2 = created(await post('/v1/actions/create', { type: 'action_end_conversation' }));
    const webhook = created(await post('/v1/webhooks/create', { url: 'https://w.example.com', subscriptions: [] }));
    const vdb = created(await post('/v1/vector_databases/create', { type: 'vector_database_pinecone', index: 'i', api_key: 'pc-abcdefgh', api_environment: 'e' }));
    const conn = created(await post('/v1/account_connections/create', OPENAI));
    const agent = created(await post('/v1/agents/create', {
      prompt: prompt.id, voice: voice.id, actions: [a2.id, a1.id], webhook: webhook.id, vector_database: vdb.id, openai_account_connection: conn.id,
    }));
    expect(agent).toMatchObject({ prompt, voice, actions: [a2, a1], webhook, vector_database: vdb, openai_account_connection: conn });
    // A full connection object with its id is a reference too.
    const byObject = created(await post('/v1/agents/create', { prompt: prompt.id, voice: voice.id, openai_account_connection: conn }));
    expect(byObject.openai_account_connection).toEqual(conn);
  });

  it('inline objects are created and owned by the agent\'s user', async () => {
    const agent = await fullAgent();
    for (const [path, obj] of [['prompts', agent.prompt], ['voices', agent.voice], ['webhooks', agent.webhook], ['vector_databases', agent.vector_database],
      ['account_connections', agent.openai_account_connection], ['actions', agent.actions[1]]] as const) {
      expect((await get(`/v1/${path}?id=${obj.id}`)).body, path).toEqual(obj);
    }
    expect(agent.actions.map((a: any) => a.type)).toEqual(['action_end_conversation', 'action_transfer_call']);
  });

  it('ids that are not the user\'s own → 404, and nothing is created', async () => {
    const other = await s.newUser();
    const theirVoice = (await s.api('/v1/voices/create', { body: AZURE, key: other })).body;
    const before = (await get('/v1/prompts/list')).body.total;
    const r = await post('/v1/agents/create', { prompt: { content: 'x' }, voice: theirVoice.id });
    expect(r.status, JSON.stringify(r.body)).toBe(404);
    expect((await post('/v1/agents/create', { prompt: '00000000-0000-4000-8000-000000000000', voice: AZURE })).status).toBe(404);
    expect((await get('/v1/prompts/list')).body.total).toBe(before);
  });
});

describe('partial update', () => {
  it('absent fields stay as they were; an empty body changes nothing', async () => {
    const agent = await fullAgent();
    expect(created(await post(`/v1/agents/update?id=${agent.id}`, {}))).toEqual(agent);
    const upd = created(await post(`/v1/agents/update?id=${agent.id}`, { name: 'Renamed', interrupt_sensitivity: 'high' }));
    expect(upd).toEqual({ ...agent, name: 'Renamed', interrupt_sensitivity: 'high' });
    expect(await agentGet(agent.id)).toEqual(upd);
  });

  it('explicit null clears nullable fields and references', async () => {
    const agent = await fullAgent();
    const upd = created(await post(`/v1/agents/update?id=${agent.id}`, {
      initial_message: null, name: null, webhook: null, vector_database: null, openai_account_connection: null, llm_fallback: null,
    }));
    expect(upd).toEqual({ ...agent, initial_message: null, name: null, webhook: null, vector_database: null, openai_account_connection: null });
    expect(await agentGet(agent.id)).toEqual(upd);
    // The objects themselves are not deleted.
    expect((await get(`/v1/webhooks?id=${agent.webhook.id}`)).status).toBe(200);
  });

  it.each(['language', 'interrupt_sensitivity', 'noise_suppression', 'llm_temperature', 'prompt', 'voice', 'actions', 'skills'])(
    'null on non-nullable %s → 422 and nothing changes', async (field) => {
      const agent = await fullAgent();
      expect422(await post(`/v1/agents/update?id=${agent.id}`, { name: 'changed', [field]: null }), 'body', field);
      expect(await agentGet(agent.id)).toEqual(agent);
    });

  it('an inline prompt edits the agent\'s current prompt in place; an id switches prompts', async () => {
    const agent = await fullAgent();
    const upd = created(await post(`/v1/agents/update?id=${agent.id}`, { prompt: { content: 'Be brief' } }));
    expect(upd.prompt).toEqual({ ...agent.prompt, content: 'Be brief' });
    expect((await get(`/v1/prompts?id=${agent.prompt.id}`)).body.content).toBe('Be brief');
    const other = created(await post('/v1/prompts/create', { content: 'other' }));
    expect(created(await post(`/v1/agents/update?id=${agent.id}`, { prompt: other.id })).prompt).toEqual(other);
    expect((await get(`/v1/prompts?id=${agent.prompt.id}`)).body.content).toBe('Be brief');
  });

  it('an inline voice of the same type edits in place; another type creates a new voice', async () => {
    const agent = await fullAgent();
    const same = created(await post(`/v1/agents/update?id=${agent.id}`, { voice: { type: 'voice_azure', rate: 30 } }));
    expect(same.voice).toEqual({ ...agent.voice, rate: 30 });
    const rime = created(await post(`/v1/agents/update?id=${agent.id}`, { voice: { type: 'voice_rime', speaker: 'young_male' } }));
    expect(rime.voice.id).not.toBe(agent.voice.id);
    expect(rime.voice).toMatchObject({ type: 'voice_rime', speaker: 'young_male' });
    expect((await get(`/v1/voices?id=${agent.voice.id}`)).body).toEqual(same.voice);
    // A new voice must be complete.
    expect422(await post(`/v1/agents/update?id=${agent.id}`, { voice: { type: 'voice_eleven_labs' } }), 'body', 'voice', 'voice_id');
    expect((await agentGet(agent.id)).voice).toEqual(rime.voice);
  });

  it('an inline webhook/vector database edits the current one, or must be complete when there is none', async () => {
    const agent = await fullAgent();
    const upd = created(await post(`/v1/agents/update?id=${agent.id}`, { webhook: { method: 'GET' }, vector_database: { type: 'vector_database_pinecone', index: 'kb2' } }));
    expect(upd.webhook).toEqual({ ...agent.webhook, method: 'GET' });
    expect(upd.vector_database).toEqual({ ...agent.vector_database, index: 'kb2' });
    const bare = created(await post('/v1/agents/create', { prompt: {}, voice: AZURE }));
    expect422(await post(`/v1/agents/update?id=${bare.id}`, { webhook: { method: 'GET' } }), 'body', 'webhook', 'url');
    expect(created(await post(`/v1/agents/update?id=${bare.id}`, { webhook: { url: 'https://n.example.com', subscriptions: [] } })).webhook.url).toBe('https://n.example.com');
  });

  it('actions are replaced as a whole, ids and inline mixed, order kept', async () => {
    const agent = await fullAgent();
    const [a1, a2] = agent.actions;
    const a3 = created(await post('/v1/actions/create', { type: 'action_dtmf' }));
    const upd = created(await post(`/v1/agents/update?id=${agent.id}`, { actions: [a3.id, { type: 'action_set_hold' }, a1.id] }));
    expect(upd.actions.map((a: any) => a.id)).toEqual([a3.id, upd.actions[1].id, a1.id]);
    expect(upd.actions[1].type).toBe('action_set_hold');
    expect((await get(`/v1/agents/list?filters=${encodeURIComponent(JSON.stringify({ id: agent.id }))}`)).body.items[0].actions).toEqual(upd.actions.map((a: any) => a.id));
    expect((await get(`/v1/actions?id=${a2.id}`)).status).toBe(200); // dropped from the agent, not deleted
    expect(created(await post(`/v1/agents/update?id=${agent.id}`, { actions: [] })).actions).toEqual([]);
  });

  it('openai_account_connection must be an OpenAI connection', async () => {
    const agent = await fullAgent();
    const tw = created(await post('/v1/account_connections/create', TWILIO));
    expect422(await post(`/v1/agents/update?id=${agent.id}`, { openai_account_connection: tw.id }), 'body', 'openai_account_connection');
    expect422(await post(`/v1/agents/update?id=${agent.id}`, { openai_account_connection: { id: tw.id, type: 'account_connection_openai' } }), 'body', 'openai_account_connection');
    expect422(await post('/v1/agents/create', { prompt: {}, voice: AZURE, openai_account_connection: tw.id }), 'body', 'openai_account_connection');
    expect(await agentGet(agent.id)).toEqual(agent);
  });
});

describe('transactions', () => {
  it('an update that fails halfway leaves the agent, its prompt and its voice unchanged', async () => {
    const agent = await fullAgent();
    const tw = created(await post('/v1/account_connections/create', TWILIO));
    const changes = { name: 'changed', prompt: { content: 'changed' }, voice: { type: 'voice_azure', voice_name: 'changed' }, webhook: { method: 'GET' } };
    expect422(await post(`/v1/agents/update?id=${agent.id}`, { ...changes, openai_account_connection: tw.id }), 'body', 'openai_account_connection');
    const missing = await post(`/v1/agents/update?id=${agent.id}`, { ...changes, actions: [{ type: 'action_dtmf' }, '00000000-0000-4000-8000-000000000000'] });
    expect(missing.status).toBe(404);
    expect(await agentGet(agent.id)).toEqual(agent);
    expect((await get(`/v1/prompts?id=${agent.prompt.id}`)).body).toEqual(agent.prompt);
    expect((await get(`/v1/voices?id=${agent.voice.id}`)).body).toEqual(agent.voice);
  });

  it('a create that fails leaves no inline objects behind', async () => {
    const count = async () => Promise.all(['prompts', 'voices', 'webhooks', 'actions', 'agents'].map(async (r) => (await get(`/v1/${r}/list`)).body.total));
    const before = await count();
    const tw = created(await post('/v1/account_connections/create', TWILIO));
    const r = await post('/v1/agents/create', {
      prompt: { content: 'x' }, voice: AZURE, webhook: { url: 'https://x.example.com', subscriptions: [] }, actions: [{ type: 'action_dtmf' }], openai_account_connection: tw.id,
    });
    expect(r.status).toBe(422);
    expect(await count()).toEqual(before);
  });
});

describe('delete', () => {
  it('objects still used by an agent → 409 and nothing is deleted; after the agent goes they can be', async () => {
    const agent = await fullAgent();
    const used: [string, string][] = [
      ['prompts', agent.prompt.id], ['voices', agent.voice.id], ['actions', agent.actions[0].id], ['webhooks', agent.webhook.id],
      ['vector_databases', agent.vector_database.id], ['account_connections', agent.openai_account_connection.id],
    ];
    for (const [r, id] of used) {
      const d = await del(`/v1/${r}/delete?id=${id}`);
      expect(d.status, `${r}: ${JSON.stringify(d.body)}`).toBe(409);
      expect((await post(`/v1/${r}/delete?id=${id}`)).status).toBe(409);
      expect((await get(`/v1/${r}?id=${id}`)).status).toBe(200);
    }
    expect(await agentGet(agent.id)).toEqual(agent);
    const gone = await del(`/v1/agents/delete?id=${agent.id}`);
    expect(gone.status).toBe(200);
    expect(gone.body).toEqual(agent);
    expect((await get(`/v1/agents?id=${agent.id}`)).status).toBe(404);
    for (const [r, id] of used) {
      expect((await del(`/v1/${r}/delete?id=${id}`)).status, r).toBe(200);
      expect((await get(`/v1/${r}?id=${id}`)).status).toBe(404);
    }
  });

  it('an agent that is a number\'s inbound agent → 409 until the number lets go', async () => {
    const agent = await fullAgent();
    const tw = created(await post('/v1/account_connections/create', TWILIO));
    created(await post('/v1/numbers/link', { phone_number: '+14155550301', telephony_account_connection: tw.id, inbound_agent: agent.id }));
    expect((await post(`/v1/agents/delete?id=${agent.id}`)).status).toBe(409);
    expect(await agentGet(agent.id)).toEqual(agent);
    expect((await get('/v1/numbers?phone_number=%2B14155550301')).body.inbound_agent).toEqual(agent);
    expect((await del(`/v1/account_connections/delete?id=${tw.id}`)).status).toBe(409);
    created(await post('/v1/numbers/update?phone_number=%2B14155550301', { inbound_agent: null }));
    expect((await post(`/v1/agents/delete?id=${agent.id}`)).status).toBe(201);
  });

  it('unknown ids → 404; another user\'s agent → 404', async () => {
    const agent = await fullAgent();
    expect((await del('/v1/agents/delete?id=00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const other = await s.newUser();
    expect((await s.api(`/v1/agents/delete?id=${agent.id}`, { method: 'DELETE', key: other })).status).toBe(404);
    expect((await s.api(`/v1/agents/update?id=${agent.id}`, { body: { name: 'x' }, key: other })).status).toBe(404);
    expect(await agentGet(agent.id)).toEqual(agent);
  });
});

describe('numbers', () => {
  let tw: any;
  let seq = 400;
  const fresh = () => `+1415555${String(seq++).padStart(4, '0')}`;
  beforeAll(async () => { tw = created(await post('/v1/account_connections/create', TWILIO)); });
  const link = (phone_number: string, extra: Record<string, unknown> = {}) =>
    post('/v1/numbers/link', { phone_number, telephony_account_connection: tw.id, ...extra });

  it('inbound_agent "default" creates a starter agent; inline params create one; an id links one', async () => {
    const d = created(await link(fresh(), { inbound_agent: 'default' }));
    expect(d.inbound_agent).toMatchObject({ name: expect.any(String), voice: expect.objectContaining({ type: expect.any(String) }) });
    expect(d.inbound_agent.prompt.content.length).toBeGreaterThan(0);
    expect(await agentGet(d.inbound_agent.id)).toEqual(d.inbound_agent);
    const inline = created(await link(fresh(), { inbound_agent: { name: 'Inline', prompt: { content: 'inline prompt' }, voice: AZURE } }));
    expect(inline.inbound_agent).toMatchObject({ name: 'Inline', prompt: { content: 'inline prompt' }, voice: AZURE });
    const agent = await fullAgent();
    const byId = created(await link(fresh(), { inbound_agent: agent.id }));
    expect(byId.inbound_agent).toEqual(agent);
    expect(created(await link(fresh())).inbound_agent).toBeNull();
  });

  it('an incomplete inline agent or a non-telephony connection → 422 and no number', async () => {
    const n = fresh();
    expect422(await link(n, { inbound_agent: { prompt: { content: 'x' } } }), 'body', 'inbound_agent', 'voice');
    const oa = created(await post('/v1/account_connections/create', OPENAI));
    expect422(await post('/v1/numbers/link', { phone_number: n, telephony_account_connection: oa.id }), 'body', 'telephony_account_connection');
    expect((await get(`/v1/numbers?phone_number=${encodeURIComponent(n)}`)).status).toBe(404);
  });

  it('update with inline agent params: edits the agent in place, or must be a complete agent when there is none', async () => {
    const n = fresh();
    const q = encodeURIComponent(n);
    created(await link(n));
    for (const partial of [{ initial_message: 'hi' }, { prompt: { content: 'x' } }, { voice: AZURE }]) {
      const r = await post(`/v1/numbers/update?phone_number=${q}`, { label: 'changed', inbound_agent: partial });
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(r.body.detail[0].loc.slice(0, 2)).toEqual(['body', 'inbound_agent']);
    }
    expect((await get(`/v1/numbers?phone_number=${q}`)).body).toMatchObject({ label: '', inbound_agent: null });
    const made = created(await post(`/v1/numbers/update?phone_number=${q}`, { inbound_agent: { prompt: { content: 'x' }, voice: AZURE, initial_message: 'hi' } }));
    expect(made.inbound_agent).toMatchObject({ initial_message: 'hi', prompt: { content: 'x' }, voice: AZURE });
    const edited = created(await post(`/v1/numbers/update?phone_number=${q}`, { inbound_agent: { initial_message: 'hello' } }));
    expect(edited.inbound_agent).toEqual({ ...made.inbound_agent, initial_message: 'hello' });
    // A failure inside the agent edit rolls the number back too.
    const oa = created(await post('/v1/account_connections/create', TWILIO));
    const bad = await post(`/v1/numbers/update?phone_number=${q}`, { label: 'changed', inbound_agent: { prompt: { content: 'changed' }, openai_account_connection: oa.id } });
    expect422(bad, 'body', 'inbound_agent', 'openai_account_connection');
    expect((await get(`/v1/numbers?phone_number=${q}`)).body).toEqual(edited);
    // An id switches agents.
    const agent = await fullAgent();
    expect(created(await post(`/v1/numbers/update?phone_number=${q}`, { inbound_agent: agent.id })).inbound_agent).toEqual(agent);
  });

  it.each([
    ['+14155550190', '+14155550190'],
    ['14155550191', '+14155550191'],
    ['1 (415) 555-0192', '+14155550192'],
    ['+1 415.555.0193', '+14155550193'],
    [' +44 20 7946 0958 ', '+442079460958'],
  ])('phone number %j is stored as %s', async (input, e164) => {
    const r = created(await link(input));
    expect(r.number).toBe(e164);
    expect((await get(`/v1/numbers?phone_number=${encodeURIComponent(e164)}`)).body).toEqual(r);
    expect((await get(`/v1/numbers?phone_number=${encodeURIComponent(input)}`)).body).toEqual(r);
  });

  it.each(['', 'abc', '123', '+0123456789', '+1234567890123456', '415-555-01x0', '+1 415 555 0100 ext 2', '++14155550100x', '14155550100\u0000'])(
    'invalid phone number %j → 422', async (phone) => {
      expect422(await link(phone), 'body', 'phone_number');
    });

  it('linking a number twice → 409, in any format and for any user', async () => {
    created(await link('+14155550380'));
    expect((await link('14155550380')).status).toBe(409);
    expect((await link('1 (415) 555-0380')).status).toBe(409);
    const other = await s.newUser();
    const theirs = (await s.api('/v1/account_connections/create', { body: TWILIO, key: other })).body;
    expect((await s.api('/v1/numbers/link', { body: { phone_number: '+14155550380', telephony_account_connection: theirs.id }, key: other })).status).toBe(409);
    expect((await get('/v1/numbers/list?filters=' + encodeURIComponent(JSON.stringify({ number: '+14155550380' })))).body.total).toBe(1);
  });

  it('cancel sets active=false and keeps the number', async () => {
    const n = fresh();
    created(await link(n));
    const c = await post(`/v1/numbers/cancel?phone_number=${encodeURIComponent(n)}`);
    expect(c.status).toBe(201);
    expect(c.body.active).toBe(false);
    expect((await get(`/v1/numbers?phone_number=${encodeURIComponent(n)}`)).body.active).toBe(false);
  });

  it.each([
    ['POST', '/v1/numbers/detach', 'id', 201],
    ['POST', '/v1/numbers/detach', 'phone_number', 201],
    ['DELETE', '/v1/numbers/delete', 'id', 200],
    ['DELETE', '/v1/numbers/delete', 'phone_number', 200],
    ['POST', '/v1/numbers/delete', 'id', 201],
    ['POST', '/v1/numbers/delete', 'phone_number', 201],
  ] as const)('%s %s by %s', async (method, path, by, status) => {
    const agent = await fullAgent();
    const n = created(await link(fresh(), { inbound_agent: agent.id }));
    const other = await s.newUser();
    const query = by === 'id' ? `id=${n.id}` : `phone_number=${encodeURIComponent(n.number.slice(1))}`;
    expect((await s.api(`${path}?${query}`, { method, key: other })).status).toBe(404);
    const r = await s.api(`${path}?${query}`, { method });
    expect(r.status, JSON.stringify(r.body)).toBe(status);
    expect(r.body).toEqual(n);
    expect((await get(`/v1/numbers?phone_number=${encodeURIComponent(n.number)}`)).status).toBe(404);
    expect((await s.api(`${path}?${query}`, { method })).status).toBe(404);
    expect(await agentGet(agent.id)).toEqual(agent); // the agent stays
    created(await link(n.number)); // and the number can be linked again
  });

  it('detach needs an id or a phone number', async () => {
    expect422(await post('/v1/numbers/detach'), 'query', 'phone_number');
    expect422(await post('/v1/numbers/detach?id=nope'), 'query', 'id');
    expect((await post('/v1/numbers/detach?id=00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });
});

describe('input the database cannot store', () => {
  it.each([
    ['/v1/agents/create', { name: 'a\u0000b', prompt: {}, voice: AZURE }, ['body', 'name']],
    ['/v1/prompts/create', { content: 'a\u0000b' }, ['body', 'content']],
    ['/v1/webhooks/create', { url: 'https://x.example.com', subscriptions: [], label: 'a\u0000b' }, ['body', 'label']],
  ])('%s with a NUL character → 422, not 500', async (path, body, loc) => {
    expect422(await post(path, body), ...loc);
  });
});
