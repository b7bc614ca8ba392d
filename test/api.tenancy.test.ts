import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Two users on one server: B must not read, change, delete, list, count or reference anything of A's,
 * on any endpoint, and A's objects must come out of all of B's attempts unchanged.
 */

let s: TestServer;
let keyB: string;
const A: Record<string, any> = {};
const B: Record<string, any> = {};
/** A's objects as A read them before B started. */
const before: Record<string, any> = {};

const RESOURCES = ['account_connections', 'actions', 'voices', 'webhooks', 'vector_databases', 'prompt_templates', 'prompts', 'agents'] as const;
const A_NUMBER = '+14155550142';
const B_NUMBER = '+14155550143';
const TWILIO = { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC-A', twilio_auth_token: 'tok-aaaa1111' } };

const asA = (path: string, init: Parameters<TestServer['api']>[1] = {}) => s.api(path, init);
const asB = (path: string, init: Parameters<TestServer['api']>[1] = {}) => s.api(path, { ...init, key: keyB });

async function ok(r: Promise<{ status: number; body: any }>, status = 201) {
  const res = await r;
  expect(res.status, JSON.stringify(res.body).slice(0, 400)).toBe(status);
  return res.body;
}

/** One object of every kind for a user, with every nested reference filled. */
async function seed(call: typeof asA, tag: string, number: string, callSeconds: number) {
  const o: Record<string, any> = {};
  o.twilio = await ok(call('/v1/account_connections/create', { body: { ...TWILIO, label: `${tag} twilio` } }));
  o.openai = await ok(call('/v1/account_connections/create', { body: { type: 'account_connection_openai', credentials: { openai_api_key: `sk-${tag}-secret` }, label: `${tag} openai` } }));
  o.action = await ok(call('/v1/actions/create', { body: { type: 'action_transfer_call', config: { phone_number: '+14155550100' }, label: `${tag} action` } }));
  o.voice = await ok(call('/v1/voices/create', { body: { type: 'voice_azure', voice_name: 'en-US-AriaNeural', label: `${tag} voice` } }));
  o.webhook = await ok(call('/v1/webhooks/create', { body: { url: `https://example.com/${tag}`, subscriptions: ['event_message'], label: `${tag} webhook` } }));
  o.vdb = await ok(call('/v1/vector_databases/create', { body: { type: 'vector_database_pinecone', index: tag, api_key: `pc-${tag}-key`, api_environment: 'gcp', label: `${tag} vdb` } }));
  o.template = await ok(call('/v1/prompt_templates/create', { body: { required_context_keys: ['name'], label: `${tag} template` } }));
  o.prompt = await ok(call('/v1/prompts/create', { body: { content: `${tag} prompt`, prompt_template: o.template.id, label: `${tag} prompt` } }));
  o.agent = await ok(call('/v1/agents/create', {
    body: {
      name: `${tag} agent`, prompt: o.prompt.id, voice: o.voice.id, actions: [o.action.id], webhook: o.webhook.id,
      vector_database: o.vdb.id, openai_account_connection: o.openai.id,
    },
  }));
  o.number = await ok(call('/v1/numbers/link', { body: { phone_number: number, telephony_account_connection: o.twilio.id, inbound_agent: o.agent.id, label: `${tag} number` } }));
  o.twilio = await ok(call(`/v1/account_connections/add_to_steering_pool?id=${o.twilio.id}`, { body: { phone_number: `${number.slice(0, -1)}9` } }));
  const store = s.running.store;
  const started = new Date(Date.now() - callSeconds * 1000 - 1000);
  o.call = await store.calls.insert(store.db, o.agent.user_id, {
    agentId: o.agent.id, toNumber: '+14155550001', fromNumber: number, telephonyProvider: 'twilio', agentPhoneNumber: number,
    status: 'ended', startTime: started, endTime: new Date(started.getTime() + callSeconds * 1000), transcript: `${tag}: hello`,
    telephonyAccountConnectionId: o.twilio.id,
  });
  return o;
}

/** Each resource's A object, B's object of the same kind, and the body B sends to update A's. */
const kinds = () => [
  { r: 'account_connections', obj: A.twilio, mine: B.twilio, update: { type: 'account_connection_twilio', label: 'pwned', credentials: { twilio_account_sid: 'AC-B', twilio_auth_token: 'tok-bbbb' } } },
  { r: 'account_connections', obj: A.openai, mine: B.openai, update: { type: 'account_connection_openai', label: 'pwned' } },
  { r: 'actions', obj: A.action, mine: B.action, update: { type: 'action_transfer_call', config: { phone_number: '+19995550100' }, label: 'pwned' } },
  { r: 'voices', obj: A.voice, mine: B.voice, update: { type: 'voice_azure', voice_name: 'pwned', label: 'pwned' } },
  { r: 'webhooks', obj: A.webhook, mine: B.webhook, update: { url: 'https://attacker.example/hook', label: 'pwned' } },
  { r: 'vector_databases', obj: A.vdb, mine: B.vdb, update: { type: 'vector_database_pinecone', index: 'pwned', label: 'pwned' } },
  { r: 'prompt_templates', obj: A.template, mine: B.template, update: { required_context_keys: [], label: 'pwned' } },
  { r: 'prompts', obj: A.prompt, mine: B.prompt, update: { content: 'pwned', label: 'pwned' } },
  { r: 'agents', obj: A.agent, mine: B.agent, update: { name: 'pwned', initial_message: 'pwned' } },
];

/** Every one of A's objects as A sees it now, and A's lists. */
async function snapshotA() {
  const snap: Record<string, any> = {};
  for (const { r, obj } of kinds()) snap[`${r}/${obj.id}`] = (await asA(`/v1/${r}?id=${obj.id}`)).body;
  snap.number = (await asA(`/v1/numbers?phone_number=${encodeURIComponent(A_NUMBER)}`)).body;
  snap.call = (await asA(`/v1/calls?id=${A.call.id}`)).body;
  for (const r of [...RESOURCES, 'numbers', 'calls']) snap[`list ${r}`] = (await asA(`/v1/${r}/list?size=100`)).body;
  snap.usage = (await asA('/v1/usage')).body;
  return snap;
}

function expectNotFound(res: { status: number; body: any }, what: string) {
  const ctx = `${what}: ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`;
  expect(res.status, ctx).toBe(404);
  expect(res.body, ctx).toMatchObject({ message: expect.stringMatching(/not found/), error: 'Not Found', statusCode: 404 });
  // The answer gives away nothing of A's object.
  expect(JSON.stringify(res.body), ctx).not.toMatch(/A (twilio|openai|action|voice|webhook|vdb|template|prompt|agent|number)|aaaa1111|sk-A/);
}

beforeAll(async () => {
  s = await startTestServer();
  keyB = await s.newUser();
  Object.assign(A, await seed(asA, 'A', A_NUMBER, 250));
  Object.assign(B, await seed(asB, 'B', B_NUMBER, 61));
  Object.assign(before, await snapshotA());
});
afterAll(async () => { await s?.close(); });

describe("B cannot touch A's objects by id", () => {
  it('the two users are different users', () => {
    expect(A.agent.user_id).not.toBe(B.agent.user_id);
  });

  it.each(RESOURCES.map((r) => ({ r })))('$r: get, update and both deletes of A\'s object are 404s', async ({ r }) => {
    for (const { obj, mine, update } of kinds().filter((k) => k.r === r)) {
      expectNotFound(await asB(`/v1/${r}?id=${obj.id}`), `GET ${r}`);
      expectNotFound(await asB(`/v1/${r}/update?id=${obj.id}`, { body: update }), `update ${r}`);
      expectNotFound(await asB(`/v1/${r}/delete?id=${obj.id}`, { method: 'DELETE' }), `DELETE ${r}`);
      expectNotFound(await asB(`/v1/${r}/delete?id=${obj.id}`, { method: 'POST' }), `POST delete ${r}`);
      // B's own object of the same kind is there for B: the 404 is about ownership, not the route.
      expect((await asB(`/v1/${r}?id=${mine.id}`)).status).toBe(200);
    }
  });

  it("steering pool changes on A's connection are 404s", async () => {
    expectNotFound(await asB(`/v1/account_connections/add_to_steering_pool?id=${A.twilio.id}`, { body: { phone_number: '+14155550177' } }), 'add_to_steering_pool');
    expectNotFound(await asB(`/v1/account_connections/add_to_steering_pool?id=${A.twilio.id}`, { method: 'POST' }), 'add_to_steering_pool without a body');
    expectNotFound(await asB(`/v1/account_connections/remove_from_steering_pool?id=${A.twilio.id}`, { body: { phone_number: A.twilio.steering_pool[0] } }), 'remove_from_steering_pool');
  });

  it("every number operation on A's number is a 404, by number (any spelling) and by id", async () => {
    for (const n of [A_NUMBER, '14155550142', '1 (415) 555-0142']) {
      const q = `phone_number=${encodeURIComponent(n)}`;
      expectNotFound(await asB(`/v1/numbers?${q}`), `GET numbers ${n}`);
      expectNotFound(await asB(`/v1/numbers/update?${q}`, { body: { label: 'pwned', inbound_agent: B.agent.id } }), 'numbers/update');
      expectNotFound(await asB(`/v1/numbers/update?${q}`, { body: { inbound_agent: { name: 'pwned' } } }), 'numbers/update with inline agent changes');
      expectNotFound(await asB(`/v1/numbers/cancel?${q}`, { method: 'POST' }), 'numbers/cancel');
      expectNotFound(await asB(`/v1/numbers/detach?${q}`, { method: 'POST' }), 'numbers/detach');
      expectNotFound(await asB(`/v1/numbers/delete?${q}`, { method: 'DELETE' }), 'DELETE numbers/delete');
      expectNotFound(await asB(`/v1/numbers/delete?${q}`, { method: 'POST' }), 'POST numbers/delete');
    }
    for (const [method, path] of [['POST', 'detach'], ['DELETE', 'delete'], ['POST', 'delete']]) {
      expectNotFound(await asB(`/v1/numbers/${path}?id=${A.number.id}`, { method }), `${method} numbers/${path} by id`);
    }
  });

  it("A's call is a 404", async () => {
    expectNotFound(await asB(`/v1/calls?id=${A.call.id}`), 'GET calls');
  });
});

describe("B's lists and usage hold only B's objects", () => {
  const listed = [...RESOURCES, 'numbers', 'calls'];
  const aIds = () => new Set([...kinds().map((k) => k.obj.id), A.number.id, A.call.id]);

  it.each(listed.map((r) => ({ r })))('$r/list: none of A\'s objects, and a total that counts B\'s own', async ({ r }) => {
    const own = (await asB(`/v1/${r}/list?size=100`)).body;
    expect(own.items.length).toBeGreaterThan(0);
    expect(own.total).toBe(own.items.length);
    for (const item of own.items) {
      expect(item.user_id).toBe(B.agent.user_id);
      expect(aIds().has(item.id), `${r}: A's ${item.id} in B's list`).toBe(false);
    }
    // Counts match what B created: one of each (two connections), plus the number and the call.
    const expected: Record<string, number> = { account_connections: 2 };
    expect(own.total).toBe(expected[r] ?? 1);
    // Paging, sorting and filtering cannot reach A's rows either.
    const pages = await Promise.all([
      asB(`/v1/${r}/list?size=1&page=2`), asB(`/v1/${r}/list?size=100&sort_column=created_at&sort_desc=true`),
      asB(`/v1/${r}/list?filters=${encodeURIComponent(JSON.stringify({ id: { in: [...aIds()] } }))}`),
      asB(`/v1/${r}/list?filters=${encodeURIComponent(JSON.stringify({ label: { contains: 'A ' } }))}`),
    ]);
    for (const p of pages) {
      expect(p.status, JSON.stringify(p.body)).toBe(200);
      expect(p.body.total).toBe(p === pages[0] || p === pages[1] ? own.total : 0);
      for (const item of p.body.items) expect(aIds().has(item.id)).toBe(false);
    }
  });

  it("filters naming A's nested ids find nothing", async () => {
    const f = (o: object) => encodeURIComponent(JSON.stringify(o));
    const probes: [string, object][] = [
      ['agents', { prompt: A.prompt.id }], ['agents', { voice: A.voice.id }], ['agents', { openai_account_connection: A.openai.id }],
      ['prompts', { prompt_template: A.template.id }], ['numbers', { inbound_agent: A.agent.id }],
      ['numbers', { telephony_account_connection: A.twilio.id }], ['numbers', { number: A_NUMBER }],
      ['calls', { agent: A.agent.id }], ['calls', { telephony_account_connection: A.twilio.id }],
    ];
    for (const [r, filter] of probes) {
      const res = await asB(`/v1/${r}/list?filters=${f(filter)}`);
      expect(res.status).toBe(200);
      expect(res.body, `${r} ${JSON.stringify(filter)}`).toMatchObject({ items: [], total: 0 });
    }
  });

  it("usage is B's own", async () => {
    const thisMonth = (c: any) => c.startTime.getUTCMonth() === new Date().getUTCMonth();
    const u = (await asB('/v1/usage')).body;
    expect(u).toMatchObject({ user_id: B.agent.user_id, monthly_usage_minutes: thisMonth(B.call) ? 2 : 0 });
    expect(before.usage).toMatchObject({ user_id: A.agent.user_id, monthly_usage_minutes: thisMonth(A.call) ? 5 : 0 });
  });
});

describe("B cannot reference A's objects inside B's own", () => {
  const AGENT = () => ({ prompt: B.prompt.id, voice: B.voice.id });
  const refs = () => ({
    agentCreate: [
      ['prompt', { ...AGENT(), prompt: A.prompt.id }],
      ['voice', { ...AGENT(), voice: A.voice.id }],
      ['actions', { ...AGENT(), actions: [B.action.id, A.action.id] }],
      ['webhook', { ...AGENT(), webhook: A.webhook.id }],
      ['vector_database', { ...AGENT(), vector_database: A.vdb.id }],
      ['openai_account_connection by id', { ...AGENT(), openai_account_connection: A.openai.id }],
      ['openai_account_connection as an object with id', { ...AGENT(), openai_account_connection: { id: A.openai.id, type: 'account_connection_openai' } }],
      ['inline prompt with A\'s template id', { ...AGENT(), prompt: { content: 'x', prompt_template: A.template.id } }],
      ['inline prompt with A\'s template as an object', { ...AGENT(), prompt: { content: 'x', prompt_template: { id: A.template.id } } }],
    ] as [string, object][],
    agentUpdate: [
      ['prompt', { prompt: A.prompt.id }], ['voice', { voice: A.voice.id }], ['actions', { actions: [A.action.id] }],
      ['webhook', { webhook: A.webhook.id }], ['vector_database', { vector_database: A.vdb.id }],
      ['openai_account_connection', { openai_account_connection: A.openai.id }],
      ['inline prompt with A\'s template', { prompt: { prompt_template: A.template.id } }],
    ] as [string, object][],
  });

  async function countsB() {
    return Object.fromEntries(await Promise.all([...RESOURCES, 'numbers'].map(async (r) => [r, (await asB(`/v1/${r}/list?size=1`)).body.total])));
  }

  it("agent create with any of A's ids is a 404, and leaves nothing behind", async () => {
    const start = await countsB();
    for (const [what, body] of refs().agentCreate) expectNotFound(await asB('/v1/agents/create', { body }), `agent create, ${what}`);
    expect(await countsB()).toEqual(start);
  });

  it("agent update with any of A's ids is a 404, and B's agent stays as it was", async () => {
    const mine = (await asB(`/v1/agents?id=${B.agent.id}`)).body;
    for (const [what, body] of refs().agentUpdate) expectNotFound(await asB(`/v1/agents/update?id=${B.agent.id}`, { body: { name: 'changed', ...body } }), `agent update, ${what}`);
    expect((await asB(`/v1/agents?id=${B.agent.id}`)).body).toEqual(mine);
  });

  it("the transcriber's account_connection must be B's own connection too", async () => {
    const start = await countsB();
    const transcriber = { type: 'transcriber_deepgram', model: 'nova-2', account_connection: A.openai.id };
    expectNotFound(await asB('/v1/agents/create', { body: { ...AGENT(), transcriber } }), 'agent create, transcriber.account_connection');
    expect(await countsB()).toEqual(start);
    expectNotFound(await asB(`/v1/agents/update?id=${B.agent.id}`, { body: { transcriber } }), 'agent update, transcriber.account_connection');
    expect((await asB(`/v1/agents?id=${B.agent.id}`)).body.transcriber).toBeNull();
  });

  it("prompt create and update with A's template are 404s", async () => {
    expectNotFound(await asB('/v1/prompts/create', { body: { content: 'x', prompt_template: A.template.id } }), 'prompt create');
    expectNotFound(await asB('/v1/prompts/create', { body: { content: 'x', prompt_template: { id: A.template.id, required_context_keys: [] } } }), 'prompt create, object');
    expectNotFound(await asB(`/v1/prompts/update?id=${B.prompt.id}`, { body: { prompt_template: A.template.id } }), 'prompt update');
    expect((await asB(`/v1/prompts?id=${B.prompt.id}`)).body.prompt_template.id).toBe(B.template.id);
  });

  it("number link and update with A's connection or agent are 404s", async () => {
    const start = await countsB();
    expectNotFound(await asB('/v1/numbers/link', { body: { phone_number: '+14155550150', telephony_account_connection: A.twilio.id } }), 'link with A\'s connection');
    expectNotFound(await asB('/v1/numbers/link', { body: { phone_number: '+14155550150', telephony_account_connection: B.twilio.id, inbound_agent: A.agent.id } }), 'link with A\'s agent');
    expectNotFound(await asB('/v1/numbers/link', { body: { phone_number: '+14155550150', telephony_account_connection: B.twilio.id, inbound_agent: { prompt: A.prompt.id, voice: B.voice.id } } }), 'link with an inline agent on A\'s prompt');
    expectNotFound(await asB(`/v1/numbers/update?phone_number=${encodeURIComponent(B_NUMBER)}`, { body: { inbound_agent: A.agent.id } }), 'update to A\'s agent');
    expectNotFound(await asB(`/v1/numbers/update?phone_number=${encodeURIComponent(B_NUMBER)}`, { body: { inbound_agent: { voice: A.voice.id } } }), 'update B\'s agent to A\'s voice');
    expect(await countsB()).toEqual(start);
    const mine = (await asB(`/v1/numbers?phone_number=${encodeURIComponent(B_NUMBER)}`)).body;
    expect(mine.inbound_agent.id).toBe(B.agent.id);
    expect(mine.inbound_agent.voice.id).toBe(B.voice.id);
  });

  it("linking A's phone number is a 409 (numbers are unique across users) that rolls back B's inline agent", async () => {
    const start = await countsB();
    for (const n of [A_NUMBER, '1 (415) 555-0142']) {
      for (const inbound_agent of [undefined, 'default', { prompt: { content: 'mine' }, voice: { type: 'voice_vocode', voice_id: 'joe' } }]) {
        const r = await asB('/v1/numbers/link', { body: { phone_number: n, telephony_account_connection: B.twilio.id, inbound_agent } });
        expect(r.status, JSON.stringify(r.body)).toBe(409);
        expect(r.body).toMatchObject({ message: expect.stringMatching(/already/), error: 'Conflict', statusCode: 409 });
        expect(JSON.stringify(r.body)).not.toMatch(/A number|A agent|aaaa1111/);
      }
    }
    expect(await countsB()).toEqual(start);
    expectNotFound(await asB(`/v1/numbers?phone_number=${encodeURIComponent(A_NUMBER)}`), 'A\'s number after the conflict');
    expect((await asA(`/v1/numbers?phone_number=${encodeURIComponent(A_NUMBER)}`)).body).toEqual(before.number);
  });
});

describe("A's objects afterwards", () => {
  it('are exactly as they were, and still work for A', async () => {
    const after = await snapshotA();
    expect(after).toEqual(before);
    expect(after.number).toMatchObject({ number: A_NUMBER, active: true, label: 'A number', inbound_agent: { id: A.agent.id } });
    expect(after['agents/' + A.agent.id]).toMatchObject({ name: 'A agent', prompt: { id: A.prompt.id }, voice: { id: A.voice.id } });
    expect(after['list numbers'].items.map((n: any) => n.id)).toEqual([A.number.id]);
    // A can still change and delete what B could not.
    expect((await asA(`/v1/voices/update?id=${A.voice.id}`, { body: { type: 'voice_azure', label: 'A voice 2' } })).status).toBe(201);
    expect((await asA(`/v1/numbers/detach?phone_number=${encodeURIComponent(A_NUMBER)}`, { method: 'POST' })).status).toBe(201);
    expect((await asA(`/v1/agents/delete?id=${A.agent.id}`, { method: 'DELETE' })).status).toBe(200);
  });
});
