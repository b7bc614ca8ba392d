import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createActionRunner, type EngineAction } from '../../../src/engine/actions/index.js';
import { VirtualClock } from '../../../src/engine/clock.js';
import { FakeTransport } from '../../../src/engine/testkit/fakeTransport.js';

const SECRET = randomBytes(32).toString('base64');

/** Verification exactly as Vocode documents it: HMAC-SHA256 over the raw body, key = base64-decoded secret, base64 digest. */
function signatureValid(raw: Buffer, header: string | string[] | undefined, secret: string): boolean {
  if (typeof header !== 'string' || header === '') return false;
  const expected = createHmac('sha256', Buffer.from(secret, 'base64')).update(raw).digest();
  const given = Buffer.from(header, 'base64');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

interface Received { path: string; method: string; headers: IncomingHttpHeaders; raw: Buffer; verified: boolean }

let server: Server;
let base: string;
const received: Received[] = [];
const hanging: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const verified = signatureValid(raw, req.headers['x-vocode-signature'], SECRET);
      const path = req.url ?? '/';
      received.push({ path, method: req.method ?? '', headers: req.headers, raw, verified });
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      };
      if (!verified) return json(401, { detail: 'bad signature' });
      const payload = (JSON.parse(raw.toString('utf8')) as { payload: Record<string, unknown> }).payload;
      switch (path) {
        case '/lookup': return json(200, { result: { balance: 42, account: payload.account }, agent_message: 'Your balance is 42 dollars.' });
        case '/bare': return json(200, { balance: 7 });
        case '/fail': return json(500, { detail: 'database down' });
        case '/notjson': return json(200, 'this is not json');
        case '/hang': hanging.push(res); return undefined; // never answers
        default: return json(404, { detail: 'no such route' });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => { received.length = 0; });

function external(path: string, over: Record<string, unknown> = {}): EngineAction {
  return {
    id: `act_${path.slice(1)}`,
    type: 'action_external',
    label: 'Balance lookup',
    config: {
      processing_mode: 'muted', name: 'lookup_balance', description: 'Look up the account balance', url: `${base}${path}`,
      input_schema: { type: 'object', properties: { account: { type: 'string' } }, required: ['account'] },
      speak_on_send: false, speak_on_receive: true, signature_secret: SECRET, ...over,
    },
    trigger: { type: 'action_trigger_function_call' },
  };
}

function runnerFor(a: EngineAction, externalTimeoutMs?: number) {
  const transport = new FakeTransport(new VirtualClock());
  return { transport, runner: createActionRunner({ actions: [a], transport, callId: 'call-123', externalTimeoutMs }) };
}

const call = (args: unknown) => ({ id: 'tc_1', name: 'lookup_balance', arguments: JSON.stringify(args) });
const never = () => new AbortController().signal;

describe('external actions (Vocode webhook)', () => {
  it('POSTs {call_id, payload} with a valid x-vocode-signature over the exact bytes', async () => {
    const { runner, transport } = runnerFor(external('/lookup'));
    const out = await runner.runTool(call({ account: 'A-1' }), never());
    expect(received).toHaveLength(1);
    const r = received[0];
    expect(r.method).toBe('POST');
    expect(r.verified).toBe(true);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.raw.toString('utf8')).toBe('{"call_id":"call-123","payload":{"account":"A-1"}}');
    expect(JSON.parse(r.raw.toString('utf8'))).toEqual({ call_id: 'call-123', payload: { account: 'A-1' } });
    expect(JSON.parse(out.result)).toEqual({ balance: 42, account: 'A-1' });
    expect(out.say).toBe('Your balance is 42 dollars.');
    expect(transport.commands).toEqual([]);
  });

  it('signs non-ASCII payloads over their UTF-8 bytes', async () => {
    const { runner } = runnerFor(external('/lookup'));
    const out = await runner.runTool(call({ account: 'Zoë — 東京 😀' }), never());
    expect(received[0].verified).toBe(true);
    expect(JSON.parse(out.result).account).toBe('Zoë — 東京 😀');
  });

  it('a wrong secret fails verification: the webhook refuses with 401 and the model hears an error', async () => {
    const { runner } = runnerFor(external('/lookup', { signature_secret: randomBytes(32).toString('base64') }));
    const out = await runner.runTool(call({ account: 'A-1' }), never());
    expect(received[0].verified).toBe(false);
    expect(JSON.parse(out.result).error).toMatch(/401/);
    expect(runner.history.at(-1)).toMatchObject({ event_type: 'action_failed', result: { http_status_code: 401 } });
  });

  it('speaks agent_message only with speak_on_receive', async () => {
    const { runner } = runnerFor(external('/lookup', { speak_on_receive: false }));
    const out = await runner.runTool(call({ account: 'A-1' }), never());
    expect(out.say).toBeUndefined();
    expect(JSON.parse(out.result)).toEqual({ balance: 42, account: 'A-1' });
  });

  it('a response without `result` is passed to the model whole', async () => {
    const { runner } = runnerFor(external('/bare'));
    const out = await runner.runTool(call({ account: 'A-1' }), never());
    expect(JSON.parse(out.result)).toEqual({ balance: 7 });
    expect(out.say).toBeUndefined();
  });

  it('speak_on_send: user_message is offered via describe() and never sent to the webhook', async () => {
    const { runner } = runnerFor(external('/lookup', { speak_on_send: true }));
    expect(runner.tools[0].parameters).toMatchObject({ required: ['account', 'user_message'] });
    const c = call({ account: 'A-1', user_message: 'Let me check that for you.' });
    expect(runner.describe(c)).toMatchObject({ sayBeforeRun: 'Let me check that for you.' });
    await runner.runTool(c, never());
    expect(JSON.parse(received[0].raw.toString('utf8'))).toEqual({ call_id: 'call-123', payload: { account: 'A-1' } });
    expect(runner.history[0].parameters).toEqual({ account: 'A-1' });
    // Without speak_on_send there is nothing to say first.
    expect(runnerFor(external('/lookup')).runner.describe(c).sayBeforeRun).toBeUndefined();
  });

  it('history: started then completed, with the JSON answer and the HTTP status', async () => {
    const a = external('/lookup');
    const { runner } = runnerFor(a);
    await runner.runTool(call({ account: 'A-1' }), never());
    expect(runner.history).toHaveLength(2);
    expect(runner.history[0]).toEqual({
      event_type: 'action_started', timestamp: expect.any(String), action_id: a.id, action_type: 'action_external',
      action_label: 'Balance lookup', parameters: { account: 'A-1' }, result: null,
    });
    expect(runner.history[1]).toEqual({
      event_type: 'action_completed', timestamp: expect.any(String), action_id: a.id, action_type: 'action_external',
      action_label: 'Balance lookup', parameters: { account: 'A-1' },
      result: { json: { result: { balance: 42, account: 'A-1' }, agent_message: 'Your balance is 42 dollars.' }, http_status_code: 200 },
    });
    for (const h of runner.history) expect(new Date(h.timestamp).toISOString()).toBe(h.timestamp);
  });

  it('a 500 is a failed outcome with http_status_code 500', async () => {
    const { runner } = runnerFor(external('/fail'));
    const out = await runner.runTool(call({ account: 'A-1' }), never());
    expect(out.say).toBeUndefined();
    expect(JSON.parse(out.result)).toEqual({ error: expect.stringMatching(/HTTP 500/) });
    expect(runner.history.map((h) => h.event_type)).toEqual(['action_started', 'action_failed']);
    expect(runner.history[1].result).toEqual({ error: expect.stringMatching(/500/), http_status_code: 500, json: { detail: 'database down' } });
  });

  it('invalid JSON is a failed outcome', async () => {
    const { runner } = runnerFor(external('/notjson'));
    const out = await runner.runTool(call({ account: 'A-1' }), never());
    expect(JSON.parse(out.result).error).toMatch(/invalid JSON/);
    expect(runner.history[1]).toMatchObject({ event_type: 'action_failed', result: { http_status_code: 200 } });
  });

  it('a server that never answers fails within externalTimeoutMs', async () => {
    const { runner } = runnerFor(external('/hang'), 200);
    const started = performance.now();
    const out = await runner.runTool(call({ account: 'A-1' }), never());
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(1500);
    expect(JSON.parse(out.result).error).toMatch(/did not answer within 200 ms/);
    expect(runner.history[1]).toMatchObject({ event_type: 'action_failed', result: { error: expect.stringMatching(/200 ms/) } });
    expect(runner.history[1].result?.http_status_code).toBeUndefined();
  }, 5000);

  it('a network error (nothing listening) is a failed outcome', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const { runner } = runnerFor({ ...external('/x'), config: { ...external('/x').config, url: `http://127.0.0.1:${port}/x` } });
    const out = await runner.runTool(call({ account: 'A-1' }), never());
    expect(JSON.parse(out.result).error).toMatch(/request to the service failed/);
    expect(runner.history[1].event_type).toBe('action_failed');
  });

  it("aborting the caller's signal rejects promptly and cancels the request", async () => {
    const { runner } = runnerFor(external('/hang')); // default 10 s timeout
    const ac = new AbortController();
    const started = performance.now();
    const pending = runner.runTool(call({ account: 'A-1' }), ac.signal);
    setTimeout(() => ac.abort(new Error('barge-in')), 50);
    await expect(pending).rejects.toThrow('barge-in');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(runner.history.map((h) => h.event_type)).toEqual(['action_started', 'action_failed']);
    expect(runner.history[1].result?.error).toMatch(/cancelled: barge-in/);
  });
});
