import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers/server.js';

/** Pagination, sorting and filters of the `/list` endpoints. */

let s: TestServer;
beforeAll(async () => { s = await startTestServer(); });
afterAll(async () => { await s?.close(); });

type Api = (path: string, init?: { method?: string; body?: unknown }) => Promise<{ status: number; body: any }>;

/** A fresh user, so every scenario counts its own rows. */
async function user(): Promise<Api> {
  const key = await s.newUser();
  return (path, init = {}) => s.api(path, { ...init, key });
}

const q = (o: Record<string, unknown>) =>
  Object.entries(o).map(([k, v]) => `${k}=${encodeURIComponent(typeof v === 'string' ? v : JSON.stringify(v))}`).join('&');

/** Creates n webhooks labelled w00.. in a shuffled order; returns them in creation order. */
async function webhooks(api: Api, n: number): Promise<any[]> {
  const order = Array.from({ length: n }, (_, i) => (i * 7) % n); // a permutation when gcd(7, n) = 1
  const out: any[] = [];
  for (const i of order) {
    const r = await api('/v1/webhooks/create', {
      body: { url: `https://h${String(n - i).padStart(2, '0')}.example.com/x`, subscriptions: ['event_message'], label: `w${String(i).padStart(2, '0')}` },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    out.push(r.body);
  }
  return out;
}

async function allPages(api: Api, path: string, params: Record<string, unknown>, size: number) {
  const pages: any[] = [];
  for (let page = 1; page < 50; page++) {
    const r = await api(`${path}?${q({ ...params, page, size })}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    pages.push(r.body);
    if (!r.body.has_more) break;
  }
  return pages;
}

function expect422(r: { status: number; body: any }, ...loc: string[]) {
  expect(r.status, JSON.stringify(r.body)).toBe(422);
  expect(r.body.detail[0].loc.slice(0, loc.length + 1), JSON.stringify(r.body.detail)).toEqual(['query', ...loc]);
}

describe('pagination', () => {
  it('empty list: defaults page 1, size 10, nothing more', async () => {
    const api = await user();
    const r = await api('/v1/webhooks/list');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ items: [], page: 1, size: 10, has_more: false, total: 0, total_is_estimated: false });
  });

  it.each([
    // [rows, query, items on the page, has_more]
    [10, {}, 10, false], // exactly one default page
    [11, {}, 10, true], // size + 1
    [11, { page: 2 }, 1, false], // last partial page
    [11, { page: 3 }, 0, false], // beyond the end
    [11, { page: 1000 }, 0, false],
    [5, { size: 5 }, 5, false],
    [5, { size: 4, page: 2 }, 1, false],
    [6, { size: 100 }, 6, false],
  ] as const)('%i rows, %j → %i items, has_more %s', async (rows, query, n, more) => {
    const api = await user();
    const made = await webhooks(api, rows);
    const r = await api(`/v1/webhooks/list?${q(query)}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const page = (query as any).page ?? 1;
    const size = (query as any).size ?? 10;
    expect(r.body).toMatchObject({ page, size, has_more: more, total: rows, total_is_estimated: false });
    // Default order is oldest first.
    expect(r.body.items.map((w: any) => w.id)).toEqual(made.slice((page - 1) * size, page * size).map((w) => w.id));
  });

  it('size 100 returns 100 of 101 rows; size 101 and other bad page/size values are 422', async () => {
    const api = await user();
    for (let i = 0; i < 101; i++) await api('/v1/prompt_templates/create', { body: { required_context_keys: [] } });
    const r = await api('/v1/prompt_templates/list?size=100');
    expect(r.body).toMatchObject({ size: 100, has_more: true, total: 101 });
    expect(r.body.items).toHaveLength(100);
    const last = await api('/v1/prompt_templates/list?size=100&page=2');
    expect(last.body).toMatchObject({ page: 2, has_more: false, total: 101 });
    expect(last.body.items).toHaveLength(1);
    for (const [param, v] of [['size', 101], ['size', 0], ['size', -1], ['size', 'ten'], ['size', 2.5], ['page', 0], ['page', 'x']] as const) {
      expect422(await api(`/v1/prompt_templates/list?${param}=${v}`), param);
    }
  });

  it('25 rows paged by 7: every row exactly once, whatever the sort (ties broken stably)', async () => {
    const api = await user();
    const made = await webhooks(api, 25);
    const ids = made.map((w) => w.id).sort();
    for (const params of [{}, { sort_desc: true }, { sort_column: 'label' }, { sort_column: 'method' }, { sort_column: 'method', sort_desc: true },
      { sort_column: 'url', sort_desc: '1' }, { sort_column: 'updated_at' }, { sort_column: 'description' }]) {
      const pages = await allPages(api, '/v1/webhooks/list', params, 7);
      expect(pages.map((p) => p.items.length), JSON.stringify(params)).toEqual([7, 7, 7, 4]);
      expect(pages.map((p) => p.has_more)).toEqual([true, true, true, false]);
      expect(pages.every((p) => p.total === 25)).toBe(true);
      const seen = pages.flatMap((p) => p.items.map((w: any) => w.id));
      expect([...seen].sort(), JSON.stringify(params)).toEqual(ids);
    }
  });
});

describe('sorting', () => {
  let api: Api;
  let made: any[];
  beforeAll(async () => { api = await user(); made = await webhooks(api, 13); });
  const list = async (params: Record<string, unknown>) => {
    const r = await api(`/v1/webhooks/list?${q({ size: 100, ...params })}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.items as any[];
  };

  it.each([
    [{ sort_column: 'created_at' }, false],
    [{ sort_column: 'created_at', sort_desc: true }, true],
    [{ sort_column: 'created_at', sort_desc: 'true' }, true],
    [{ sort_column: 'created_at', sort_desc: '1' }, true],
    [{ sort_column: 'created_at', sort_desc: '0' }, false],
    [{ sort_column: 'created_at', sort_desc: 'false' }, false],
    [{ sort_desc: '1' }, true],
  ])('typed column created_at %j', async (params, desc) => {
    const ids = made.map((w) => w.id);
    expect((await list(params)).map((w) => w.id)).toEqual(desc ? ids.reverse() : ids);
  });

  it.each([['label', false], ['label', true], ['url', false], ['url', true]] as const)('%s, desc %s', async (col, desc) => {
    const items = await list({ sort_column: col, sort_desc: desc });
    const values = items.map((w) => w[col]);
    const sorted = [...values].sort();
    expect(values).toEqual(desc ? sorted.reverse() : sorted);
    expect(values).not.toEqual(made.map((w) => w[col])); // the creation order differs from the sort
  });

  it('agents sort on the name data field; nulls first ascending, last descending', async () => {
    const a = await user();
    for (const name of ['delta', null, 'alpha', 'charlie', 'bravo']) {
      expect((await a('/v1/agents/create', { body: { name, prompt: { content: 'p' }, voice: { type: 'voice_vocode', voice_id: 'joe' } } })).status).toBe(201);
    }
    const names = async (desc: boolean) => (await a(`/v1/agents/list?sort_column=name&sort_desc=${desc}`)).body.items.map((x: any) => x.name);
    expect(await names(false)).toEqual([null, 'alpha', 'bravo', 'charlie', 'delta']);
    expect(await names(true)).toEqual(['delta', 'charlie', 'bravo', 'alpha', null]);
  });

  it('unknown sort column or sort_desc value is a 422', async () => {
    expect422(await api('/v1/webhooks/list?sort_column=nope'), 'sort_column');
    expect422(await api('/v1/agents/list?sort_column=actions'), 'sort_column');
    expect422(await api('/v1/webhooks/list?sort_desc=yes'), 'sort_desc');
  });
});

describe('filters', () => {
  let api: Api;
  let userId: string;
  let agent: any;
  let calls: any[];
  const T0 = Date.parse('2024-03-01T12:00:00Z');
  beforeAll(async () => {
    api = await user();
    agent = (await api('/v1/agents/create', { body: { name: 'Front desk', language: 'es', prompt: { content: 'p' }, voice: { type: 'voice_vocode', voice_id: 'joe' } } })).body;
    userId = agent.user_id;
    await api('/v1/agents/create', { body: { name: 'Back office', language: 'fr', prompt: { content: 'p' }, voice: { type: 'voice_vocode', voice_id: 'joe' } } });
    await api('/v1/agents/create', { body: { prompt: { content: 'p' }, voice: { type: 'voice_vocode', voice_id: 'joe' } } });
    const store = s.running.store;
    const spec: [string, number | null, number | null][] = [
      ['ended', 0, 60], ['ended', 3600, 3700], ['error', 7200, null], ['in_progress', 10_800, null], ['not_started', null, null],
    ];
    calls = [];
    for (const [i, [status, start, end]] of spec.entries()) {
      calls.push(await store.calls.insert(store.db, userId, {
        agentId: agent.id, toNumber: `+1415555000${i}`, fromNumber: '+14155559999', telephonyProvider: 'twilio', agentPhoneNumber: '+14155559999',
        status, startTime: start === null ? null : new Date(T0 + start * 1000), endTime: end === null ? null : new Date(T0 + end * 1000),
      }));
    }
  });

  const ids = async (path: string, filters: unknown) => {
    const r = await api(`${path}?${q({ size: 100, filters })}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.total).toBe(r.body.items.length);
    return r.body.items.map((x: any) => x.id).sort();
  };
  const callIds = (...idx: number[]) => idx.map((i) => calls[i].id).sort();

  it.each([
    [{ status: 'ended' }, [0, 1]],
    [{ status: ['error', 'in_progress'] }, [2, 3]],
    [{ status: { eq: 'error' } }, [2]],
    [{ status: { ne: 'ended' } }, [2, 3, 4]],
    [{ status: { in: ['ended', 'not_started'] } }, [0, 1, 4]],
    [{ status: { nin: ['ended', 'not_started'] } }, [2, 3]],
    [{ start_time: { gte: new Date(T0 + 3600_000).toISOString() } }, [1, 2, 3]],
    [{ start_time: { gt: new Date(T0 + 3600_000).toISOString() } }, [2, 3]],
    [{ start_time: { lt: (T0 + 3600_000) / 1000 } }, [0]], // epoch seconds
    [{ start_time: { lte: (T0 + 3600_000) / 1000 } }, [0, 1]],
    [{ start_time: { gte: new Date(T0).toISOString(), lt: new Date(T0 + 7200_000).toISOString() } }, [0, 1]],
    [{ start_time: null }, [4]],
    [{ end_time: { is_null: true } }, [2, 3, 4]],
    [{ end_time: { is_null: false } }, [0, 1]],
    [{ to_number: { contains: '50003' } }, [3]],
    [{ status: 'ended', end_time: { gt: new Date(T0 + 60_000).toISOString() } }, [1]],
    [{ status: 'missing' }, []],
  ])('calls %j', async (filters, expected) => {
    expect(await ids('/v1/calls/list', filters)).toEqual(callIds(...expected));
  });

  it('calls by agent (uuid column)', async () => {
    expect(await ids('/v1/calls/list', { agent: agent.id })).toEqual(callIds(0, 1, 2, 3, 4));
    expect(await ids('/v1/calls/list', { agent: '00000000-0000-4000-8000-000000000000' })).toEqual([]);
  });

  it.each([
    [{ language: 'es' }, ['Front desk']],
    [{ language: ['es', 'fr'] }, ['Back office', 'Front desk']],
    [{ language: { ne: 'es' } }, [null, 'Back office']],
    [{ language: { nin: ['es'] } }, [null, 'Back office']],
    [{ name: { contains: 'DESK' } }, ['Front desk']],
    [{ name: { gt: 'C' } }, ['Front desk']],
    [{ name: { is_null: true } }, [null]],
    [{ name: null }, [null]],
    [{ name: { is_null: false } }, ['Back office', 'Front desk']],
  ])('agents %j (data fields)', async (filters, names) => {
    const r = await api(`/v1/agents/list?${q({ filters, sort_column: 'name' })}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.items.map((a: any) => a.name)).toEqual(names);
    expect(r.body.total).toBe(names.length);
  });

  it('a null filter never reaches another user\'s rows', async () => {
    const other = await user();
    await other('/v1/agents/create', { body: { prompt: { content: 'theirs' }, voice: { type: 'voice_vocode', voice_id: 'joe' } } });
    for (const filters of [{ name: null }, { name: { is_null: true } }, { name: { eq: null } }, { idle_time_seconds: { is_null: true } }]) {
      const r = await api(`/v1/agents/list?${q({ filters, size: 100 })}`);
      expect(r.status).toBe(200);
      expect(r.body.items.every((a: any) => a.user_id === userId), `${JSON.stringify(filters)} leaked ${JSON.stringify(r.body.items.map((a: any) => a.user_id))}`).toBe(true);
    }
  });

  it('numbers by active (bool column) and inbound_agent (uuid column)', async () => {
    const conn = (await api('/v1/account_connections/create', { body: { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC1', twilio_auth_token: 'tok-123456' } } })).body;
    const nums: string[] = [];
    for (const [i, withAgent] of [true, false, true].entries()) {
      const r = await api('/v1/numbers/link', { body: { phone_number: `+1650555010${i}`, telephony_account_connection: conn.id, ...(withAgent ? { inbound_agent: agent.id } : {}) } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      nums.push(r.body.id);
    }
    expect((await api('/v1/numbers/cancel?phone_number=%2B16505550101', { method: 'POST' })).status).toBe(201);
    expect(await ids('/v1/numbers/list', { active: false })).toEqual([nums[1]]);
    expect(await ids('/v1/numbers/list', { active: { eq: true } })).toEqual([nums[0], nums[2]].sort());
    expect(await ids('/v1/numbers/list', { inbound_agent: agent.id })).toEqual([nums[0], nums[2]].sort());
    expect(await ids('/v1/numbers/list', { inbound_agent: { is_null: true } })).toEqual([nums[1]]);
    expect(await ids('/v1/numbers/list', { number: { contains: '0102' } })).toEqual([nums[2]]);
  });

  it('webhooks: id, label range, url contains, literal % and _ in contains', async () => {
    const a = await user();
    const made = await webhooks(a, 5);
    const labels = async (filters: unknown) => (await a(`/v1/webhooks/list?${q({ filters, sort_column: 'label' })}`)).body.items.map((w: any) => w.label);
    expect(await labels({ label: { gte: 'w01', lt: 'w03' } })).toEqual(['w01', 'w02']);
    expect(await labels({ url: { contains: 'h05' } })).toHaveLength(1);
    expect((await a(`/v1/webhooks/list?${q({ filters: { id: made[3].id } })}`)).body.items.map((w: any) => w.id)).toEqual([made[3].id]);
    for (const label of ['50%', '50x', 'a_b', 'axb']) await a('/v1/webhooks/create', { body: { url: 'https://x.example.com', subscriptions: [], label } });
    expect(await labels({ label: { contains: '%' } })).toEqual(['50%']);
    expect(await labels({ label: { contains: 'a_b' } })).toEqual(['a_b']);
  });

  it('created_at gte a time between two batches', async () => {
    const a = await user();
    await webhooks(a, 3);
    await new Promise((r) => setTimeout(r, 20));
    const mid = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    const second = await webhooks(a, 2);
    const r = await a(`/v1/webhooks/list?${q({ filters: { created_at: { gte: mid } } })}`);
    expect(r.body.items.map((w: any) => w.id)).toEqual(second.map((w) => w.id));
    expect(r.body.total).toBe(2);
  });

  it('a filtered page beyond the end still reports the filtered total', async () => {
    const r = await api(`/v1/calls/list?${q({ filters: { status: 'ended' }, page: 5, size: 1 })}`);
    expect(r.body).toMatchObject({ items: [], page: 5, size: 1, has_more: false, total: 2 });
    const p1 = await api(`/v1/calls/list?${q({ filters: { status: 'ended' }, size: 1 })}`);
    expect(p1.body).toMatchObject({ has_more: true, total: 2 });
  });

  it.each([
    ['invalid JSON', '{status:ended}', ['filters']],
    ['an array', '[]', ['filters']],
    ['a string', '"ended"', ['filters']],
    ['a number', '5', ['filters']],
    ['null', 'null', ['filters']],
    ['unknown field', { nope: 1 }, ['filters', 'nope']],
    ['unknown operator', { status: { like: 'x' } }, ['filters', 'status', 'like']],
    ['empty operator object', { status: {} }, ['filters', 'status']],
    ['number for a text column', { status: 5 }, ['filters', 'status']],
    ['bad uuid', { agent: 'not-a-uuid' }, ['filters', 'agent']],
    ['bad uuid inside in', { agent: { in: ['x'] } }, ['filters', 'agent']],
    ['string for a bool column', { recording_available: 'true' }, ['filters', 'recording_available']],
    ['bad time', { start_time: 'yesterday' }, ['filters', 'start_time']],
    ['object for a time column', { start_time: { gte: { a: 1 } } }, ['filters', 'start_time']],
    ['in with a non-array', { status: { in: 'ended' } }, ['filters', 'status', 'in']],
    ['empty any-of array', { status: [] }, ['filters', 'status']],
    ['is_null with a non-boolean', { end_time: { is_null: 'yes' } }, ['filters', 'end_time', 'is_null']],
    ['contains with a number', { to_number: { contains: 5 } }, ['filters', 'to_number', 'contains']],
    ['gt null', { start_time: { gt: null } }, ['filters', 'start_time', 'gt']],
    ['time out of range', { start_time: { gte: 8.64e12 } }, ['filters', 'start_time']],
    ['NUL byte in a text value', { status: 'end\u0000ed' }, ['filters', 'status']],
  ])('calls: %s → 422 naming filters', async (_name, filters, loc) => {
    const raw = typeof filters === 'string' ? filters : JSON.stringify(filters);
    expect422(await api(`/v1/calls/list?filters=${encodeURIComponent(raw)}`), ...loc);
  });

  it('bad filters on other resources name filters too', async () => {
    expect422(await api(`/v1/numbers/list?${q({ filters: { active: 'yes' } })}`), 'filters', 'active');
    expect422(await api(`/v1/agents/list?${q({ filters: { prompt: 'nope' } })}`), 'filters', 'prompt');
    expect422(await api(`/v1/agents/list?${q({ filters: { created_at: 'nope' } })}`), 'filters', 'created_at');
    expect422(await api(`/v1/voices/list?${q({ filters: { api_key: 'x' } })}`), 'filters', 'api_key');
  });
});

describe('normalized items, expanded reads', () => {
  it('agents, prompts, numbers and calls list nested objects as ids; GET expands them', async () => {
    const api = await user();
    const conn = (await api('/v1/account_connections/create', { body: { type: 'account_connection_twilio', credentials: { twilio_account_sid: 'AC2', twilio_auth_token: 'tok-abcdef' } } })).body;
    const agent = (await api('/v1/agents/create', {
      body: {
        prompt: { content: 'c', prompt_template: { required_context_keys: ['k'] } }, voice: { type: 'voice_vocode', voice_id: 'joe' },
        actions: [{ type: 'action_end_conversation' }, { type: 'action_dtmf' }], webhook: { url: 'https://w.example.com', subscriptions: [] },
      },
    })).body;
    const a = (await api('/v1/agents/list')).body.items[0];
    expect(a).toMatchObject({ id: agent.id, prompt: agent.prompt.id, voice: agent.voice.id, webhook: agent.webhook.id, vector_database: null, openai_account_connection: null });
    expect(a.actions).toEqual(agent.actions.map((x: any) => x.id));
    expect({ ...a, prompt: agent.prompt, voice: agent.voice, webhook: agent.webhook, actions: agent.actions }).toEqual(agent);
    expect((await api(`/v1/agents?id=${agent.id}`)).body).toEqual(agent);

    const p = (await api('/v1/prompts/list')).body.items[0];
    expect(p).toEqual({ ...agent.prompt, prompt_template: agent.prompt.prompt_template.id });
    expect((await api(`/v1/prompts?id=${agent.prompt.id}`)).body).toEqual(agent.prompt);

    const num = (await api('/v1/numbers/link', { body: { phone_number: '+16505550199', telephony_account_connection: conn.id, inbound_agent: agent.id } })).body;
    const n = (await api('/v1/numbers/list')).body.items[0];
    expect(n).toMatchObject({ id: num.id, inbound_agent: agent.id, telephony_account_connection: conn.id });
    expect(num.inbound_agent).toEqual(agent);
    expect(num.telephony_account_connection).toEqual(conn);

    const store = s.running.store;
    const start = new Date('2024-05-01T10:00:00.250Z');
    const call = await store.calls.insert(store.db, agent.user_id, {
      agentId: agent.id, toNumber: '+16505550100', fromNumber: '+16505550199', telephonyProvider: 'twilio', agentPhoneNumber: '+16505550199',
      status: 'ended', startTime: start, endTime: new Date(start.getTime() + 5000), telephonyAccountConnectionId: conn.id,
    });
    const c = (await api('/v1/calls/list')).body.items[0];
    expect(c).toMatchObject({ id: call.id, agent: agent.id, start_time: start.getTime() / 1000, end_time: start.getTime() / 1000 + 5, telephony_account_connection: conn.id });
    const got = (await api(`/v1/calls?id=${call.id}`)).body;
    expect(got).toMatchObject({ id: call.id, agent: agent, start_time: start.toISOString(), telephony_account_connection: conn });
  });

  it('lists never show another user\'s rows', async () => {
    const a = await user();
    const b = await user();
    await webhooks(a, 3);
    expect((await b('/v1/webhooks/list')).body).toMatchObject({ items: [], total: 0 });
  });
});
