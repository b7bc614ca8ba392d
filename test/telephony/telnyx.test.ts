/**
 * The Telnyx adapter against the loopback Telnyx (test/fakes/telnyx.ts): the REST client method by method with
 * its error typing (and the API key never in an error), webhook signature verification, the media codec, and a
 * whole inbound call driven by a small app built from these modules — verify webhook → answer with a stream →
 * caller audio at real-time pace → play + mark → mark back after playback → clear → DTMF → hangup webhook —
 * plus outbound dials (AMD, busy, no answer) and the conference-based hold.
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { decodeMuLaw, encodeMuLaw } from '../../src/engine/audio/g711.js';
import { telnyxMediaCodec, TelnyxMediaFormatError } from '../../src/telephony/telnyx/media.js';
import { TelnyxClient, telnyxCallControl } from '../../src/telephony/telnyx/rest.js';
import {
  decodeClientState, encodeClientState, parseTelnyxEvent, verifyTelnyxWebhook, type TelnyxEvent,
} from '../../src/telephony/telnyx/webhooks.js';
import { CarrierError, type MediaInbound } from '../../src/telephony/types.js';
import { startFakeServer, type FakeServer } from '../fakes/server.js';
import { startTelnyxFake, type TelnyxFake } from '../fakes/telnyx.js';
import { sleep, until } from '../providers/helpers.js';

const KEY = 'KEY0123456789ABCDEF_telnyx_test_secret';

async function failure(p: Promise<unknown>): Promise<CarrierError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CarrierError);
    const e = err as CarrierError;
    expect(e.message).not.toContain(KEY);
    expect(e.provider).toBe('telnyx');
    return e;
  }
  throw new Error('expected a CarrierError');
}

function tone(ms: number, hz = 440, amp = 8000): Int16Array {
  const n = (8000 * ms) / 1000;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amp * Math.sin((2 * Math.PI * hz * i) / 8000));
  return out;
}

// ---------------- a small app built from the modules under test ----------------

interface AppStream {
  ws: WebSocket;
  start?: Extract<MediaInbound, { type: 'start' }>;
  frames: { at: number; payload: Buffer }[];
  marks: { name: string; at: number }[];
  dtmf: string[];
  other: MediaInbound[];
  stopped: boolean;
  closed: boolean;
}

interface App {
  server: FakeServer;
  eventsUrl: string;
  mediaUrl: string;
  events: TelnyxEvent[];
  rejected: string[];
  streams: AppStream[];
  errors: unknown[];
  answer: boolean;
  clientState: string;
  /** Plays PCM16 8 kHz as 20 ms μ-law media messages, as fast as the socket takes them (Telnyx queues). */
  play(s: AppStream, pcm: Int16Array): void;
  send(s: AppStream, text: string): void;
  event<T extends TelnyxEvent['type']>(type: T, callControlId: string): Promise<Extract<TelnyxEvent, { type: T }>>;
}

async function startApp(fake: TelnyxFake, client: TelnyxClient): Promise<App> {
  const app = {} as App;
  Object.assign(app, { events: [], rejected: [], streams: [], errors: [], answer: true, clientState: encodeClientState({ agent: 'agent-1', n: 7 }) });
  const server = await startFakeServer({
    http: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
      if (req.method !== 'POST' || req.url !== '/telnyx/events') { res.writeHead(404); res.end(); return; }
      const r = verifyTelnyxWebhook(body.toString('utf8'), req.headers, fake.publicKeyBase64);
      if (!r.ok) { app.rejected.push(r.reason); res.writeHead(403); res.end(); return; }
      app.events.push(r.event);
      res.writeHead(200); res.end();
      const e = r.event;
      if (e.type === 'call.initiated' && e.direction === 'incoming' && app.answer) {
        client.answer(e.callControlId, { streamUrl: app.mediaUrl, clientState: app.clientState }).catch((err) => app.errors.push(err));
      }
    },
    connection: (ws) => {
      const s: AppStream = { ws, frames: [], marks: [], dtmf: [], other: [], stopped: false, closed: false };
      app.streams.push(s);
      ws.on('message', (data) => {
        let m: MediaInbound;
        try { m = telnyxMediaCodec.parse(String(data)); } catch (err) { app.errors.push(err); return; }
        if (m.type === 'start') s.start = m;
        else if (m.type === 'media') s.frames.push({ at: performance.now(), payload: m.payload });
        else if (m.type === 'mark') s.marks.push({ name: m.name, at: performance.now() });
        else if (m.type === 'dtmf') s.dtmf.push(m.digit);
        else if (m.type === 'stop') s.stopped = true;
        else s.other.push(m);
      });
      ws.on('close', () => { s.closed = true; });
    },
  });
  app.server = server;
  app.eventsUrl = `${server.url}/telnyx/events`;
  app.mediaUrl = `${server.wsUrl}/telnyx/media`;
  app.send = (s, text) => s.ws.send(text);
  app.play = (s, pcm) => {
    const bytes = Buffer.from(encodeMuLaw(pcm));
    for (let i = 0; i < bytes.length; i += 160) s.ws.send(telnyxMediaCodec.media(s.start!.streamId, bytes.subarray(i, i + 160)));
  };
  app.event = (type, callControlId) => until(
    () => app.events.find((e) => e.type === type && e.callControlId === callControlId) as Extract<TelnyxEvent, { type: typeof type }> | undefined,
    `${type} webhook`, 8000,
  );
  return app;
}

// ---------------- REST client ----------------

describe('Telnyx REST client', () => {
  let fake: TelnyxFake;
  let client: TelnyxClient;
  let app: App;
  beforeAll(async () => {
    fake = await startTelnyxFake(KEY);
    client = new TelnyxClient({ apiKey: KEY, baseUrl: fake.url, timeoutMs: 2000, orderPollMs: 20, orderTimeoutMs: 2000 });
    app = await startApp(fake, client);
  });
  afterAll(async () => { await fake.close(); await app.server.close(); });

  it('searches numbers with Telnyx filters and maps them to AvailableNumber', async () => {
    const found = await client.searchNumbers({ country: 'US', areaCode: '415', limit: 5 });
    const req = fake.requests.at(-1)!;
    expect(req.method).toBe('GET');
    expect(req.path).toBe('/v2/available_phone_numbers');
    expect(req.authorization).toBe(`Bearer ${KEY}`);
    expect(req.query.get('filter[country_code]')).toBe('US');
    expect(req.query.get('filter[national_destination_code]')).toBe('415');
    expect(req.query.getAll('filter[features][]')).toEqual(['voice']);
    expect(req.query.get('filter[limit]')).toBe('5');
    // +14155550177 has no voice and is filtered out by Telnyx.
    expect(found.map((n) => n.phone_number)).toEqual(['+14155550101', '+14155550102', '+14155557788']);
    expect(found[0]).toEqual({
      phone_number: '+14155550101', friendly_name: null, locality: 'SAN FRANCISCO', region: 'CA', country_code: 'US',
      capabilities: { voice: true, sms: true, mms: false },
    });
    const tollFree = await client.searchNumbers({ country: 'US', tollFree: true, contains: '0199', limit: 10 });
    expect(fake.requests.at(-1)!.query.get('filter[phone_number_type]')).toBe('toll_free');
    expect(fake.requests.at(-1)!.query.get('filter[phone_number][contains]')).toBe('0199');
    expect(tollFree.map((n) => n.phone_number)).toEqual(['+18665550199']);
    expect(await client.searchNumbers({ country: 'US', areaCode: '999', limit: 5 })).toEqual([]);
  });

  it('finds, creates and updates our Call Control application by name', async () => {
    const id = await client.ensureCallControlApp(app.eventsUrl, 'switchboard-test');
    expect(fake.apps.get(id)).toMatchObject({ application_name: 'switchboard-test', webhook_event_url: app.eventsUrl, webhook_api_version: '2', active: true });
    const posts = fake.requests.filter((r) => r.path === '/v2/call_control_applications' && r.method === 'POST').length;
    expect(await client.ensureCallControlApp(app.eventsUrl, 'switchboard-test')).toBe(id);
    expect(fake.requests.filter((r) => r.path === '/v2/call_control_applications' && r.method === 'POST').length).toBe(posts);
    expect(fake.requests.some((r) => r.method === 'PATCH')).toBe(false);
    expect(fake.requests.at(-1)!.query.get('filter[application_name][contains]')).toBe('switchboard-test');
    // A moved PUBLIC_URL: same application, new webhook URL.
    const moved = `${app.server.url}/moved`;
    expect(await client.ensureCallControlApp(moved, 'switchboard-test')).toBe(id);
    const patch = fake.requests.at(-1)!;
    expect(patch.method).toBe('PATCH');
    expect(patch.body).toEqual({ application_name: 'switchboard-test', webhook_event_url: moved, webhook_api_version: '2' });
    expect(fake.apps.get(id)!.webhook_event_url).toBe(moved);
    await client.ensureCallControlApp(app.eventsUrl, 'switchboard-test');
    // A short name cannot use Telnyx's `contains` filter (3 characters minimum): listed unfiltered.
    const other = await client.ensureCallControlApp(app.eventsUrl, 'sb');
    expect(other).not.toBe(id);
    expect(fake.requests.filter((r) => r.method === 'GET' && r.path === '/v2/call_control_applications').at(-1)!.query.has('filter[application_name][contains]')).toBe(false);
  });

  it('claims a number of the account (previous connection kept) and restores it', async () => {
    const ours = await client.ensureCallControlApp(app.eventsUrl, 'switchboard-test');
    const theirs = await client.ensureCallControlApp(app.eventsUrl, 'someone-elses-app');
    const pn = fake.addAccountNumber('+13105550123', theirs);
    const claimed = await client.claimNumber('+13105550123', ours);
    expect(claimed).toEqual({ carrierNumberId: pn.id, number: '+13105550123', previous: { connection_id: theirs } });
    expect(fake.numbers.get(pn.id)!.connection_id).toBe(ours);
    const patch = fake.requests.at(-1)!;
    expect([patch.method, patch.path, patch.body]).toEqual(['PATCH', `/v2/phone_numbers/${pn.id}`, { connection_id: ours }]);
    // Without the plus sign, too; already ours: no PATCH.
    const again = await client.claimNumber('13105550123', ours);
    expect(again.previous).toEqual({ connection_id: ours });
    expect(fake.requests.at(-1)!.method).toBe('GET');
    await client.restoreNumber(claimed);
    expect(fake.numbers.get(pn.id)!.connection_id).toBe(theirs);
    const loose = fake.addAccountNumber('+13105550124', null);
    const c2 = await client.claimNumber('+13105550124', ours);
    expect(c2.previous).toEqual({ connection_id: null });
    await client.restoreNumber(c2);
    expect(fake.numbers.get(loose.id)!.connection_id).toBeNull();
    const e = await failure(client.claimNumber('+13105559999', ours));
    expect(e.kind).toBe('not_found');
  });

  it('buys a number: orders it, waits for the asynchronous order, returns the account number', async () => {
    const ours = await client.ensureCallControlApp(app.eventsUrl, 'switchboard-test');
    fake.orderDelayMs = 80;
    const bought = await client.buyNumber({ phoneNumber: '+12125550123' }, ours);
    expect(bought.number).toBe('+12125550123');
    const order = fake.orders.get(bought.orderId)!;
    expect(order.status).toBe('success');
    expect(fake.requests.find((r) => r.path === '/v2/number_orders' && r.method === 'POST')!.body).toEqual({ phone_numbers: [{ phone_number: '+12125550123' }], connection_id: ours });
    expect(fake.requests.filter((r) => r.path === `/v2/number_orders/${bought.orderId}`).length).toBeGreaterThan(0); // polled
    expect(fake.numbers.get(bought.carrierNumberId)).toMatchObject({ phone_number: '+12125550123', connection_id: ours, status: 'active' });
    // By area code: the first number the search offers.
    const byArea = await client.buyNumber({ areaCode: '312' }, ours);
    expect(byArea.number).toBe('+13125550144');
    const none = await failure(client.buyNumber({ areaCode: '999' }, ours));
    expect(none.kind).toBe('not_found');
    // A number the search does not offer: Telnyx refuses the order.
    const taken = await failure(client.buyNumber({ phoneNumber: '+12125550123' }, ours));
    expect([taken.kind, taken.status, taken.code]).toEqual(['invalid', 422, '10015']);
    expect(taken.message).toContain('/phone_numbers/0/phone_number');
    fake.orderOutcome = 'failure';
    expect((await failure(client.buyNumber({ phoneNumber: '+14155550101' }, ours))).kind).toBe('invalid');
    fake.orderOutcome = 'stuck';
    const stuck = await failure(new TelnyxClient({ apiKey: KEY, baseUrl: fake.url, orderPollMs: 20, orderTimeoutMs: 150 }).buyNumber({ phoneNumber: '+14155550102' }, ours));
    expect(stuck.kind).toBe('invalid');
    expect(stuck.message).toMatch(/still pending.*regulatory requirements/);
    fake.orderOutcome = 'success';
    fake.orderDelayMs = 50;
  });

  it('releases a number; a second release is not_found', async () => {
    const pn = fake.addAccountNumber('+13105550150', null);
    await client.releaseNumber(pn.id);
    expect(fake.numbers.has(pn.id)).toBe(false);
    expect(fake.requests.at(-1)!.method).toBe('DELETE');
    const e = await failure(client.releaseNumber(pn.id));
    expect([e.kind, e.status, e.code]).toEqual(['not_found', 404, '10005']);
  });

  it('types every failure and never shows the API key', async () => {
    fake.echoAuthInErrors = true; // even if something echoes the presented header back
    try {
      const bad = new TelnyxClient({ apiKey: `${KEY}-wrong`, baseUrl: fake.url });
      const auth = await failure(bad.searchNumbers({ country: 'US', limit: 1 }));
      expect([auth.kind, auth.status, auth.code]).toEqual(['auth', 401, '10009']);
      expect(auth.message).toContain('Authentication failed');
      expect(auth.message).not.toContain(`${KEY}-wrong`);
      fake.failNext('auth');
      const forced = await failure(client.searchNumbers({ country: 'US', limit: 1 }));
      expect(forced.kind).toBe('auth');
      expect(forced.message).not.toContain(KEY);
    } finally {
      fake.echoAuthInErrors = false;
    }
    fake.failNext('quota');
    const quota = await failure(client.searchNumbers({ country: 'US', limit: 1 }));
    expect([quota.kind, quota.status, quota.code]).toEqual(['quota', 429, '10011']);
    fake.failNext('unavailable');
    const down = await failure(client.searchNumbers({ country: 'US', limit: 1 }));
    expect([down.kind, down.status]).toEqual(['unavailable', 503]);
    const unknownCall = await failure(client.hangup('v3:no-such-call'));
    expect([unknownCall.kind, unknownCall.status]).toEqual(['not_found', 404]);
    // A slow Telnyx: no answer within the client's timeout.
    fake.delayNext(600);
    const slow = await failure(new TelnyxClient({ apiKey: KEY, baseUrl: fake.url, timeoutMs: 150 }).searchNumbers({ country: 'US', limit: 1 }));
    expect(slow.kind).toBe('unavailable');
    expect(slow.message).toMatch(/no answer within 150 ms/);
    // Nobody listening.
    const closed = await startFakeServer({});
    await closed.close();
    const net = await failure(new TelnyxClient({ apiKey: KEY, baseUrl: closed.url }).searchNumbers({ country: 'US', limit: 1 }));
    expect(net.kind).toBe('unavailable');
    // Bad input: Telnyx's 422 with the offending field.
    const ours = await client.ensureCallControlApp(app.eventsUrl, 'switchboard-test');
    const badTo = await failure(client.dial({ to: '4155550100', from: '+13105550123', connectionId: ours }));
    expect([badTo.kind, badTo.status, badTo.code]).toEqual(['invalid', 422, '10016']);
    expect(badTo.message).toContain('(/to)');
    const badApp = await failure(client.dial({ to: '+14155550100', from: '+13105550123', connectionId: '123' }));
    expect([badApp.kind, badApp.code]).toEqual(['invalid', '10013']);
    expect(() => new TelnyxClient({ apiKey: '' })).toThrow(CarrierError);
  });
});

// ---------------- webhooks ----------------

describe('Telnyx webhook verification', () => {
  let fake: TelnyxFake;
  beforeAll(async () => { fake = await startTelnyxFake(KEY); });
  afterAll(async () => { await fake.close(); });

  const body = JSON.stringify({
    data: {
      record_type: 'event', event_type: 'call.hangup', id: '0ccc7b54-4df3-4bca-a65a-3da1ecc777f0', occurred_at: '2026-01-02T10:00:00.000Z',
      payload: {
        call_control_id: 'v3:abc', call_leg_id: 'leg', call_session_id: 'sess', connection_id: '7267', client_state: encodeClientState({ call: 'c1' }),
        from: '+13125550144', to: '+14155550101', hangup_cause: 'normal_clearing', hangup_source: 'caller', sip_hangup_cause: '200',
      },
    },
    meta: { attempt: 2, delivered_to: 'https://example.com/telnyx' },
  });

  it('accepts a valid signature and parses the event', () => {
    const r = verifyTelnyxWebhook(body, fake.sign(body), fake.publicKeyBase64);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.event).toMatchObject({
      type: 'call.hangup', id: '0ccc7b54-4df3-4bca-a65a-3da1ecc777f0', callControlId: 'v3:abc', callLegId: 'leg', callSessionId: 'sess',
      connectionId: '7267', from: '+13125550144', to: '+14155550101', hangupCause: 'normal_clearing', hangupSource: 'caller', sipHangupCause: '200', attempt: 2,
    });
    expect(decodeClientState(r.event.clientState)).toEqual({ call: 'c1' });
    // Fetch-style Headers and mixed-case names work too.
    const h = fake.sign(body);
    expect(verifyTelnyxWebhook(body, new Headers(h), fake.publicKeyBase64).ok).toBe(true);
    expect(verifyTelnyxWebhook(body, { 'Telnyx-Signature-Ed25519': h['telnyx-signature-ed25519'], 'Telnyx-Timestamp': h['telnyx-timestamp'] }, fake.publicKeyBase64).ok).toBe(true);
  });

  it('refuses a tampered body, another key, a stale or future timestamp, missing headers, a bad key', () => {
    const h = fake.sign(body);
    expect(verifyTelnyxWebhook(body.replace('normal_clearing', 'user_busy'), h, fake.publicKeyBase64)).toMatchObject({ ok: false, reason: 'bad_signature' });
    // Re-serialized JSON is not the signed bytes.
    expect(verifyTelnyxWebhook(JSON.stringify(JSON.parse(body), null, 1), h, fake.publicKeyBase64)).toMatchObject({ ok: false, reason: 'bad_signature' });
    // The timestamp is signed: moving it breaks the signature.
    expect(verifyTelnyxWebhook(body, { ...h, 'telnyx-timestamp': String(Number(h['telnyx-timestamp']) + 1) }, fake.publicKeyBase64)).toMatchObject({ ok: false, reason: 'bad_signature' });
    const other = crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) as { x: string };
    expect(verifyTelnyxWebhook(body, h, Buffer.from(other.x, 'base64url').toString('base64'))).toMatchObject({ ok: false, reason: 'bad_signature' });
    const now = Date.now();
    const old = fake.sign(body, Math.floor(now / 1000) - 301);
    expect(verifyTelnyxWebhook(body, old, fake.publicKeyBase64, now)).toMatchObject({ ok: false, reason: 'stale_timestamp' });
    expect(verifyTelnyxWebhook(body, fake.sign(body, Math.floor(now / 1000) - 290), fake.publicKeyBase64, now).ok).toBe(true);
    expect(verifyTelnyxWebhook(body, fake.sign(body, Math.floor(now / 1000) + 400), fake.publicKeyBase64, now)).toMatchObject({ ok: false, reason: 'stale_timestamp' });
    expect(verifyTelnyxWebhook(body, { 'telnyx-timestamp': h['telnyx-timestamp'] }, fake.publicKeyBase64)).toMatchObject({ ok: false, reason: 'missing_headers' });
    expect(verifyTelnyxWebhook(body, { 'telnyx-signature-ed25519': h['telnyx-signature-ed25519'] }, fake.publicKeyBase64)).toMatchObject({ ok: false, reason: 'missing_headers' });
    expect(verifyTelnyxWebhook(body, { ...h, 'telnyx-signature-ed25519': 'not-a-signature' }, fake.publicKeyBase64)).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(verifyTelnyxWebhook(body, { ...h, 'telnyx-timestamp': 'yesterday' }, fake.publicKeyBase64)).toMatchObject({ ok: false, reason: 'stale_timestamp' });
    expect(verifyTelnyxWebhook(body, h, 'c2hvcnQ=')).toMatchObject({ ok: false, reason: 'invalid_public_key' });
    const junk = 'not json';
    expect(verifyTelnyxWebhook(junk, fake.sign(junk), fake.publicKeyBase64)).toMatchObject({ ok: false, reason: 'malformed' });
    const notEvent = JSON.stringify({ hello: 1 });
    expect(verifyTelnyxWebhook(notEvent, fake.sign(notEvent), fake.publicKeyBase64)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('types the events we act on and keeps the rest as other', () => {
    const ev = (event_type: string, payload: Record<string, unknown>) => parseTelnyxEvent({ data: { record_type: 'event', event_type, id: 'e', occurred_at: 't', payload: { call_control_id: 'c', ...payload } } });
    expect(ev('call.initiated', { direction: 'incoming', state: 'parked' })).toMatchObject({ type: 'call.initiated', direction: 'incoming', state: 'parked', clientState: null });
    expect(ev('call.dtmf.received', { digit: '#' })).toMatchObject({ type: 'call.dtmf.received', digit: '#' });
    expect(ev('call.machine.detection.ended', { result: 'machine' })).toMatchObject({ type: 'call.machine.detection.ended', result: 'machine' });
    expect(ev('call.machine.premium.greeting.ended', { result: 'beep_detected' })).toMatchObject({ type: 'call.machine.premium.greeting.ended', result: 'beep_detected' });
    expect(ev('streaming.failed', { failure_reason: 'connection_failed', stream_id: 's1' })).toMatchObject({ type: 'streaming.failed', failureReason: 'connection_failed', streamId: 's1' });
    expect(ev('streaming.started', { stream_url: 'wss://x' })).toMatchObject({ type: 'streaming.started', streamUrl: 'wss://x' });
    expect(ev('conference.participant.joined', { conference_id: 'k' })).toMatchObject({ type: 'other', eventType: 'conference.participant.joined', callControlId: 'c' });
    expect(() => parseTelnyxEvent({ data: { payload: {} } })).toThrow(/event_type/);
  });

  it('client_state: base64 JSON both ways; foreign state decodes to null', () => {
    const cs = encodeClientState({ agent: 'a', n: 1 });
    expect(cs).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(decodeClientState(cs)).toEqual({ agent: 'a', n: 1 });
    expect(decodeClientState(Buffer.from('plain words').toString('base64'))).toBeNull();
    expect(decodeClientState(null)).toBeNull();
    expect(decodeClientState('')).toBeNull();
  });
});

// ---------------- media codec ----------------

describe('Telnyx media codec', () => {
  const start = {
    event: 'start', sequence_number: '1', stream_id: '32DE0DEA-53CB-4B21-89A4-9E1819C043BC',
    start: {
      user_id: 'u', call_control_id: 'v3:T02llQ', call_session_id: 's', from: '+13122010094', to: '+13122123456', tags: [],
      client_state: 'aGF2ZSBhIG5pY2UgZGF5ID1d', custom_parameters: { customer_id: 'customer_123' },
      media_format: { encoding: 'PCMU', sample_rate: 8000, channels: 1 },
    },
  };

  it('parses Telnyx messages into MediaInbound', () => {
    const c = telnyxMediaCodec;
    expect(c.provider).toBe('telnyx');
    expect(c.parse(JSON.stringify(start))).toEqual({
      type: 'start', streamId: '32DE0DEA-53CB-4B21-89A4-9E1819C043BC', carrierCallId: 'v3:T02llQ', encoding: 'mulaw', sampleRate: 8000,
      customParameters: { customer_id: 'customer_123', client_state: 'aGF2ZSBhIG5pY2UgZGF5ID1d' },
    });
    const pcma = structuredClone(start);
    pcma.start.media_format = { encoding: 'PCMA', sample_rate: 8000, channels: 1 };
    expect(c.parse(JSON.stringify(pcma))).toMatchObject({ encoding: 'alaw' });
    const l16 = structuredClone(start);
    l16.start.media_format = { encoding: 'L16', sample_rate: 16000, channels: 1 };
    expect(c.parse(JSON.stringify(l16))).toMatchObject({ encoding: 'l16', sampleRate: 16000 });
    const audio = Buffer.from([0xff, 0x7f, 0x00, 0x80]);
    expect(c.parse(JSON.stringify({ event: 'media', sequence_number: '4', stream_id: 'x', media: { track: 'inbound', chunk: '2', timestamp: '40', payload: audio.toString('base64') } })))
      .toEqual({ type: 'media', payload: audio, timestampMs: 40 });
    expect(c.parse(JSON.stringify({ event: 'media', stream_id: 'x', media: { track: 'outbound', chunk: '2', timestamp: '40', payload: audio.toString('base64') } })))
      .toEqual({ type: 'other', event: 'media', detail: 'outbound track' });
    expect(c.parse(JSON.stringify({ event: 'dtmf', stream_id: 'x', occurred_at: 't', sequence_number: '9', dtmf: { digit: '7' } }))).toEqual({ type: 'dtmf', digit: '7' });
    expect(c.parse(JSON.stringify({ event: 'mark', sequence_number: '10', stream_id: 'x', mark: { name: 'm1' } }))).toEqual({ type: 'mark', name: 'm1' });
    expect(c.parse(JSON.stringify({ event: 'stop', sequence_number: '11', stream_id: 'x', stop: { user_id: 'u', call_control_id: 'c' } }))).toEqual({ type: 'stop' });
    expect(c.parse(JSON.stringify({ event: 'connected', version: '1.0.0' }))).toEqual({ type: 'other', event: 'connected' });
    expect(c.parse(JSON.stringify({ event: 'error', stream_id: 'x', payload: { code: 100002, title: 'unknown_error', detail: 'boom' } })))
      .toEqual({ type: 'other', event: 'error', detail: '100002 unknown_error boom' });
  });

  it('serializes media, mark and clear with the stream id, and they round-trip', () => {
    const c = telnyxMediaCodec;
    const payload = Buffer.from(encodeMuLaw(tone(20)));
    const media = JSON.parse(c.media('sid-1', payload));
    expect(media).toEqual({ event: 'media', stream_id: 'sid-1', media: { payload: payload.toString('base64') } });
    expect(c.parse(c.media('sid-1', payload))).toEqual({ type: 'media', payload });
    expect(JSON.parse(c.mark('sid-1', 'reply-3'))).toEqual({ event: 'mark', stream_id: 'sid-1', mark: { name: 'reply-3' } });
    expect(c.parse(c.mark('sid-1', 'reply-3'))).toEqual({ type: 'mark', name: 'reply-3' });
    expect(JSON.parse(c.clear('sid-1'))).toEqual({ event: 'clear', stream_id: 'sid-1' });
    expect(c.parse(c.clear('sid-1'))).toEqual({ type: 'other', event: 'clear' });
  });

  it('throws on what is not Telnyx\'s message shape', () => {
    const c = telnyxMediaCodec;
    const bad = (text: string, re: RegExp) => expect(() => c.parse(text)).toThrow(re);
    bad('not json', /not JSON/);
    bad('[1,2]', /without an "event"/);
    bad(JSON.stringify({ media: {} }), /without an "event"/);
    bad(JSON.stringify({ event: 'start', stream_id: 'x' }), /"start" object/);
    const noFormat = structuredClone(start) as { start: Record<string, unknown> };
    delete noFormat.start.media_format;
    bad(JSON.stringify(noFormat), /media_format/);
    const opus = structuredClone(start);
    opus.start.media_format = { encoding: 'OPUS', sample_rate: 16000, channels: 1 };
    bad(JSON.stringify(opus), /unsupported media_format.encoding "OPUS"/);
    bad(JSON.stringify({ event: 'media', media: { track: 'inbound', payload: 'not base64!' } }), /base64/);
    bad(JSON.stringify({ event: 'media' }), /"media" object/);
    bad(JSON.stringify({ event: 'mark', mark: {} }), /"name"/);
    bad(JSON.stringify({ event: 'dtmf', dtmf: { digit: '' } }), /"digit"/);
    expect(() => c.parse('x')).toThrow(TelnyxMediaFormatError);
  });
});

// ---------------- calls end to end ----------------

describe('Telnyx calls through the fake', () => {
  let fake: TelnyxFake;
  let client: TelnyxClient;
  let app: App;
  let connectionId: string;
  const OUR_NUMBER = '+14155550101';
  beforeAll(async () => {
    fake = await startTelnyxFake(KEY);
    client = new TelnyxClient({ apiKey: KEY, baseUrl: fake.url, orderPollMs: 20 });
    app = await startApp(fake, client);
    connectionId = await client.ensureCallControlApp(app.eventsUrl, 'switchboard-calls');
    await client.buyNumber({ phoneNumber: OUR_NUMBER }, connectionId);
  });
  afterAll(async () => { await fake.close(); await app.server.close(); });
  afterEach(() => { expect(app.errors).toEqual([]); });

  it('inbound: verified webhooks, answer with a stream, real-time audio, mark after playback, clear, DTMF, hangup', async () => {
    const callerAudio = tone(1200, 300);
    const call = fake.placeInboundCall({ from: '+13125550144', to: OUR_NUMBER, audio: callerAudio });
    const id = call.callControlId;

    const initiated = await app.event('call.initiated', id);
    expect(initiated).toMatchObject({ direction: 'incoming', state: 'parked', from: '+13125550144', to: OUR_NUMBER, connectionId });
    await app.event('call.answered', id);
    const answerReq = fake.requests.find((r) => r.path === `/v2/calls/${encodeURIComponent(id)}/actions/answer`)!;
    expect(answerReq.body).toMatchObject({
      stream_url: app.mediaUrl, stream_track: 'inbound_track', stream_bidirectional_mode: 'rtp', stream_bidirectional_codec: 'PCMU', stream_codec: 'PCMU',
      client_state: app.clientState,
    });
    const s = await until(() => app.streams.find((x) => x.start?.carrierCallId === id), 'media stream start');
    expect(s.start).toMatchObject({ encoding: 'mulaw', sampleRate: 8000 });
    expect(decodeClientState(s.start!.customParameters.client_state)).toEqual({ agent: 'agent-1', n: 7 });
    const started = await app.event('streaming.started', id);
    expect(started.streamUrl).toBe(app.mediaUrl);
    // Later webhooks carry the client_state the answer set.
    expect(decodeClientState((await app.event('call.answered', id)).clientState)).toEqual({ agent: 'agent-1', n: 7 });

    // Caller audio: 20 ms PCMU frames, paced in real time, exactly the caller's samples through G.711.
    await until(() => s.frames.length >= 50, '50 inbound frames', 5000);
    expect(s.frames.slice(0, 50).every((f) => f.payload.length === 160)).toBe(true);
    expect(s.frames[49].at - s.frames[0].at).toBeGreaterThan(49 * 20 * 0.75); // not a burst: ≈1 s of audio took ≈1 s
    const heard = decodeMuLaw(Buffer.concat(s.frames.slice(0, 50).map((f) => f.payload)));
    expect(Array.from(heard)).toEqual(Array.from(decodeMuLaw(encodeMuLaw(callerAudio.subarray(0, 8000)))));

    // The app speaks 400 ms then a mark: the mark comes back once that audio has played.
    const sentAt = performance.now();
    app.play(s, tone(400, 600));
    app.send(s, telnyxMediaCodec.mark(s.start!.streamId, 'greeting'));
    const greeting = await until(() => s.marks.find((m) => m.name === 'greeting'), 'greeting mark');
    expect(greeting.at - sentAt).toBeGreaterThanOrEqual(380 * 0.9);
    const g = call.marks.find((m) => m.name === 'greeting')!;
    expect(g).toMatchObject({ cleared: false, playedBytesAtReturn: 3200 });
    expect(Array.from(call.playedPcm())).toEqual(Array.from(decodeMuLaw(encodeMuLaw(tone(400, 600)))));

    // A mark with nothing queued comes straight back.
    await sleep(40);
    app.send(s, telnyxMediaCodec.mark(s.start!.streamId, 'idle'));
    await until(() => s.marks.find((m) => m.name === 'idle'), 'idle mark');
    expect(call.marks.find((m) => m.name === 'idle')!.playedBytesAtReturn).toBe(3200);

    // 2 s of speech, interrupted after ~300 ms: clear drops the rest and returns the pending mark; nothing plays after.
    app.play(s, tone(2000, 500));
    app.send(s, telnyxMediaCodec.mark(s.start!.streamId, 'long'));
    await until(() => call.played.length >= 20 + 15, 'some of the long reply played');
    app.send(s, telnyxMediaCodec.clear(s.start!.streamId));
    const long = await until(() => s.marks.find((m) => m.name === 'long'), 'cleared mark');
    expect(long).toBeTruthy();
    const l = call.marks.find((m) => m.name === 'long')!;
    expect(l.cleared).toBe(true);
    const clearedAt = call.clears[0];
    const playedBefore = call.played.length;
    await sleep(150);
    expect(call.played.length).toBe(playedBefore);
    expect(call.played.every((p) => p.atMs <= clearedAt)).toBe(true);
    expect(playedBefore - 20).toBeLessThan(100); // far from the whole 2 s
    expect(playedBefore - 20).toBeGreaterThanOrEqual(15);

    // The caller presses 7: a dtmf frame on the socket and a call.dtmf.received webhook.
    call.pressDigit('7');
    await until(() => s.dtmf.includes('7'), 'dtmf frame');
    expect((await app.event('call.dtmf.received', id)).digit).toBe('7');

    // The app hangs up: the stream stops and call.hangup arrives, signed and verified like every other webhook.
    await client.hangup(id);
    const hangup = await app.event('call.hangup', id);
    expect(hangup).toMatchObject({ hangupCause: 'normal_clearing', hangupSource: 'callee' });
    await until(() => s.stopped && s.closed, 'stream stop');
    await app.event('streaming.stopped', id);
    expect(app.rejected).toEqual([]);
    expect(call.streamErrors).toEqual([]);
    // Hanging up an ended call is not an error; other commands on it are Telnyx's 90018.
    await client.hangup(id);
    const ended = await failure(client.sendDtmf(id, '1'));
    expect([ended.kind, ended.status, ended.code]).toEqual(['invalid', 422, '90018']);
  });

  it('the caller hanging up, a rejected call, an unanswered call, and a refused stale webhook', async () => {
    const c1 = fake.placeInboundCall({ from: '+13125550144', to: OUR_NUMBER });
    const s1 = await until(() => app.streams.find((x) => x.start?.carrierCallId === c1.callControlId), 'stream');
    c1.hangup();
    expect(await app.event('call.hangup', c1.callControlId)).toMatchObject({ hangupCause: 'normal_clearing', hangupSource: 'caller' });
    await until(() => s1.stopped, 'stop frame');

    app.answer = false;
    try {
      const c2 = fake.placeInboundCall({ from: '+13125550144', to: OUR_NUMBER });
      await app.event('call.initiated', c2.callControlId);
      await client.reject(c2.callControlId, 'USER_BUSY');
      expect(await app.event('call.hangup', c2.callControlId)).toMatchObject({ hangupCause: 'user_busy', hangupSource: 'callee' });
      expect(fake.requests.at(-1)!.body).toMatchObject({ cause: 'USER_BUSY' });

      const c3 = fake.placeInboundCall({ from: '+13125550144', to: OUR_NUMBER, answerTimeoutMs: 100 });
      expect(await app.event('call.hangup', c3.callControlId)).toMatchObject({ hangupCause: 'originator_cancel', hangupSource: 'caller' });

      fake.webhookClockSkewS = -600;
      const c4 = fake.placeInboundCall({ from: '+13125550144', to: OUR_NUMBER });
      const w = await c4.waitFor('call.initiated');
      await until(() => w.attempt === 3 && w.status === 403, 'retried, refused');
      expect(app.rejected).toContain('stale_timestamp');
      app.rejected.length = 0;
    } finally {
      fake.webhookClockSkewS = 0;
      app.answer = true;
    }
  });

  it('outbound: dial with AMD and a stream; busy and unanswered destinations', async () => {
    const { callControlId: id } = await client.dial({
      to: '+13125550000', from: OUR_NUMBER, connectionId, webhookUrl: app.eventsUrl, clientState: encodeClientState({ call: 'out-1' }), amd: true, streamUrl: app.mediaUrl,
    });
    expect(fake.requests.at(-1)!.body).toMatchObject({
      connection_id: connectionId, to: '+13125550000', from: OUR_NUMBER, answering_machine_detection: 'detect', stream_url: app.mediaUrl, stream_bidirectional_mode: 'rtp',
    });
    expect(await app.event('call.initiated', id)).toMatchObject({ direction: 'outgoing' });
    expect(decodeClientState((await app.event('call.answered', id)).clientState)).toEqual({ call: 'out-1' });
    expect((await app.event('call.machine.detection.ended', id)).result).toBe('human');
    await until(() => app.streams.find((x) => x.start?.carrierCallId === id), 'outbound stream');
    await client.hangup(id);
    expect(await app.event('call.hangup', id)).toMatchObject({ hangupCause: 'normal_clearing', hangupSource: 'caller' });

    fake.setDestination('+13125550001', { outcome: 'answer', machine: true, beep: true });
    const vm = await client.dial({ to: '+13125550001', from: OUR_NUMBER, connectionId, amd: 'premium' });
    expect((await app.event('call.machine.premium.detection.ended', vm.callControlId)).result).toBe('machine');
    expect((await app.event('call.machine.premium.greeting.ended', vm.callControlId)).result).toBe('beep_detected');
    await client.hangup(vm.callControlId);

    fake.setDestination('+13125550002', { outcome: 'busy' });
    const busy = await client.dial({ to: '+13125550002', from: OUR_NUMBER, connectionId });
    expect(await app.event('call.hangup', busy.callControlId)).toMatchObject({ hangupCause: 'user_busy', sipHangupCause: '486' });

    fake.setDestination('+13125550003', { outcome: 'no_answer', ringMs: 100 });
    const silent = await client.dial({ to: '+13125550003', from: OUR_NUMBER, connectionId, timeoutSecs: 5 });
    expect(await app.event('call.hangup', silent.callControlId)).toMatchObject({ hangupCause: 'timeout' });
  });

  it('call control: transfer, DTMF out, hold and conference through Telnyx conferences', async () => {
    const call = fake.placeInboundCall({ from: '+13125550144', to: OUR_NUMBER });
    const id = call.callControlId;
    await app.event('call.answered', id);
    const cc = telnyxCallControl(client, id, { from: OUR_NUMBER, connectionId, webhookUrl: app.eventsUrl });
    await cc.sendDtmf!('12#w3');
    expect(call.dtmfSent).toEqual(['12#w3']);
    const badDigits = await failure(cc.sendDtmf!('12x'));
    expect([badDigits.kind, badDigits.code]).toEqual(['invalid', '10015']);
    expect(badDigits.message).toContain('(/digits)');

    await cc.setHold(true);
    const conf = [...fake.conferences.values()].find((c) => c.participants.some((p) => p.callControlId === id))!;
    expect(conf.participants.find((p) => p.callControlId === id)!.hold).toBe(true);
    await cc.setHold(false);
    expect(conf.participants.find((p) => p.callControlId === id)!.hold).toBe(false);
    expect(fake.conferences.size).toBe(1); // one conference per call, reused

    await cc.addToConference('+13125550010', { placePrimaryOnHold: true });
    expect(fake.requests.at(-1)!.body).toMatchObject({ to: '+13125550010', from: OUR_NUMBER, conference_config: { id: conf.id } });
    await until(() => conf.participants.length === 2, 'second participant joined');
    expect(conf.participants.find((p) => p.callControlId === id)!.hold).toBe(true);

    await cc.transfer('+13125550020');
    expect(call.transfers).toEqual([{ to: '+13125550020', from: OUR_NUMBER }]);
    await app.event('call.bridged', id);
    await cc.hangup();
    await app.event('call.hangup', id);
  });
});
