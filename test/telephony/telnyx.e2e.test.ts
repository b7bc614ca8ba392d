/**
 * Telnyx calls end to end: the real server (webhooks, media WebSocket, engine, providers) against the
 * Telnyx fake (REST, Ed25519-signed Call Control webhooks, media streaming) and the vendor fakes for
 * speech-to-text (Deepgram), the language model (OpenAI) and the voice (Deepgram Aura).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDeepgramFake, type DeepgramFake } from '../fakes/deepgram.js';
import { startOpenAIChatFake, type OpenAIChatFake } from '../fakes/openai.js';
import { silenceAudio, speechAudio } from '../fakes/speech.js';
import { startTelnyxFake, type TelnyxFake } from '../fakes/telnyx.js';
import { carrierConnection } from '../helpers/carriers.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { until as poll } from '../helpers/until.js';

const until = <T>(probe: () => T | Promise<T>, what: string, timeoutMs = 8000) => poll(probe, what, timeoutMs);

const TELNYX_KEY = 'KEYtelnyx-e2e-0123456789';
const DG_KEY = 'dg-telnyx-e2e';
const OPENAI_KEY = 'sk-telnyx-e2e';
const NUMBER = '+14155550100';


describe('Telnyx calls through the whole stack', () => {
  let telnyx: TelnyxFake;
  let deepgram: DeepgramFake;
  let openai: OpenAIChatFake;
  let s: TestServer;
  let connectionId: string;

  beforeAll(async () => {
    [telnyx, deepgram, openai] = await Promise.all([
      startTelnyxFake(TELNYX_KEY), startDeepgramFake(DG_KEY), startOpenAIChatFake({ validKey: OPENAI_KEY, prefix: '/v1' }),
    ]);
    s = await startTestServer({
      TELNYX_API_BASE_URL: telnyx.url, DEEPGRAM_API_KEY: DG_KEY, DEEPGRAM_BASE_URL: deepgram.url,
      OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: `${openai.url}/v1`, SWITCHBOARD_VAD: 'energy',
    });
    connectionId = await carrierConnection(s, { telnyx, apiKey: TELNYX_KEY });
  });
  afterAll(async () => { await s?.close(); await Promise.all([telnyx?.close(), deepgram?.close(), openai?.close()]); });

  it('links a number: it must exist in the account, and then points at our Call Control application', async () => {
    const missing = await s.api('/v1/numbers/link', { body: { phone_number: '+14155550999', telephony_account_connection: connectionId } });
    expect(missing.status).toBe(422);
    expect(missing.body.detail[0].loc).toEqual(['body', 'phone_number']);

    telnyx.addAccountNumber(NUMBER, null);
    const linked = await s.api('/v1/numbers/link', {
      body: {
        phone_number: NUMBER, telephony_account_connection: connectionId,
        inbound_agent: {
          name: 'Front desk', prompt: { content: 'You are the front desk. Be brief.' },
          voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' }, initial_message: 'Hello, front desk.',
        },
      },
    });
    expect(linked.status).toBe(201);
    expect(linked.body.telephony_provider).toBe('telnyx');
    const at = [...telnyx.numbers.values()].find((n) => n.phone_number === NUMBER)!;
    const app = telnyx.apps.get(at.connection_id!)!;
    expect(app.webhook_event_url).toBe(`${s.url}/telephony/telnyx/events`);
  });

  it('answers an inbound call with a media stream, greets, hears the caller, answers, and records the call when the caller hangs up', async () => {
    openai.reply({ text: ['It ships', ' today.'] });
    deepgram.stt.script('where is my order');
    const call = telnyx.placeInboundCall({ from: '+15557654321', to: NUMBER });
    await call.waitUntil(() => call.streamConnected, 'the media stream');
    // The greeting reaches the caller.
    await call.waitUntil(() => call.played.length > 5, 'the greeting', 8000);
    await until(() => call.played.length > 0 && call.now() - call.played.at(-1)!.atMs > 400, 'the greeting to finish');
    call.say(speechAudio(900, 8000));
    call.say(silenceAudio(900, 8000));
    const list = await until(async () => {
      const r = await s.api('/v1/calls/list');
      const c = r.body.items[0];
      return c?.transcript?.includes('BOT: It ships today.') ? c : null;
    }, 'the answer in the transcript', 10_000);
    expect(list.status).toBe('in_progress');
    expect(list.is_outgoing).toBe(false);
    expect(list.from_number).toBe('+15557654321');
    expect(list.telephony_id).toBe(call.callControlId);

    call.hangup();
    const ended = await until(async () => {
      const r = await s.api(`/v1/calls?id=${list.id}`);
      return r.body.status === 'ended' && r.body.stage_outcome ? r.body : null;
    }, 'the call to be recorded as ended');
    expect(ended.stage_outcome).toBe('human_disconnected');
    expect(ended.transcript.split('\n')).toEqual(['BOT: Hello, front desk.', 'HUMAN: Where is my order.', 'BOT: It ships today.']);
    expect(ended.end_time).not.toBeNull();
    // The prompt reached the language model with the caller's words.
    expect((openai.lastRequest?.body as { messages: unknown[] }).messages.at(-1)).toMatchObject({ role: 'user', content: 'Where is my order.' });
  });

  it.each([
    ['answers', 'answer', 'transfer_successful'],
    ['is busy', 'busy', 'transfer_unanswered'],
  ] as const)('a warm transfer whose human %s: the caller waits on hold in the call\'s conference, the agent leaves, and the record says how it went', async (_what, outcome, want) => {
    const our = outcome === 'answer' ? '+14155550161' : '+14155550162';
    const human = outcome === 'answer' ? '+14155550124' : '+14155550125';
    telnyx.addAccountNumber(our, null);
    telnyx.setDestination(human, { outcome, ringMs: 300 });
    const linked = await s.api('/v1/numbers/link', {
      body: {
        phone_number: our, telephony_account_connection: connectionId,
        inbound_agent: {
          prompt: { content: 'Transfer when asked.' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' },
          actions: [{ type: 'action_warm_transfer', config: { phone_number: human, hold_message: 'Connecting you now.' } }],
        },
      },
    });
    expect(linked.status).toBe(201);
    openai.reply({ toolCalls: [{ id: `call_wt_${outcome}`, name: 'warm_transfer', arguments: ['{}'] }] });
    deepgram.stt.script('a human please');
    const call = telnyx.placeInboundCall({ from: '+15557654322', to: our });
    await call.waitUntil(() => call.streamConnected, 'the media stream');
    call.say(speechAudio(900, 8000));
    call.say(silenceAudio(900, 8000));
    // The agent leaves the stream once the human is being dialled; the caller is held in the conference.
    await call.waitUntil(() => call.streamClosed, 'our side to leave the media stream', 10_000);
    const conf = [...telnyx.conferences.values()].find((c) => c.participants.some((p) => p.callControlId === call.callControlId))!;
    expect(conf).toBeDefined();
    const rec = await until(async () => (await s.api('/v1/calls/list')).body.items.find((c: { telephony_id: string }) => c.telephony_id === call.callControlId), 'the record');
    const field = want === 'transfer_successful' ? 'stage' : 'stage_outcome';
    await until(async () => (await s.api(`/v1/calls?id=${rec.id}`)).body[field] === want, want);
    if (outcome === 'answer') {
      // The human answered: the caller is off hold and with them in the conference.
      await until(() => conf.participants.find((p) => p.callControlId === call.callControlId)?.hold === false, 'the caller off hold');
      expect(conf.participants.some((p) => p.callControlId !== call.callControlId)).toBe(true);
      call.hangup();
    }
    const done = await until(async () => { const r = (await s.api(`/v1/calls?id=${rec.id}`)).body; return r.status === 'ended' ? r : null; }, 'the end');
    expect(done.transcript).toContain('BOT: Connecting you now.');
    expect(done.transcript).not.toContain('Connecting you now.-');
  });

  it('a cold transfer hands the caller over: the agent leaves the line, and the record ends when the call does', async () => {
    telnyx.addAccountNumber('+14155550101', null);
    const linked = await s.api('/v1/numbers/link', {
      body: {
        phone_number: '+14155550101', telephony_account_connection: connectionId,
        inbound_agent: {
          prompt: { content: 'Transfer when asked.' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' },
          actions: [{ type: 'action_transfer_call', config: { phone_number: '+14155550123' } }],
        },
      },
    });
    expect(linked.status).toBe(201);
    openai.reply({ toolCalls: [{ id: 'call_t1', name: 'transfer_call', arguments: ['{}'] }] });
    openai.reply({ text: ['You are now connected, have a nice day.'] });
    deepgram.stt.script('a human please');
    const call = telnyx.placeInboundCall({ from: '+15557654322', to: '+14155550101' });
    await call.waitUntil(() => call.streamConnected, 'the media stream');
    call.say(speechAudio(900, 8000));
    call.say(silenceAudio(900, 8000));
    await call.waitUntil(() => call.transfers.length > 0, 'the transfer', 10_000);
    expect(call.transfers[0]).toEqual({ to: '+14155550123', from: '+14155550101' });
    const transferredAt = call.now();
    await call.waitUntil(() => call.streamClosed, 'our side to leave the media stream');
    const rec = await until(async () => (await s.api('/v1/calls/list')).body.items.find((c: { telephony_id: string }) => c.telephony_id === call.callControlId), 'the record');
    // Nothing more of the agent after the handover.
    expect(call.played.filter((p) => p.atMs > transferredAt + 200)).toEqual([]);
    await until(async () => (await s.api(`/v1/calls?id=${rec.id}`)).body.stage === 'transfer_successful', 'the bridge');
    expect((await s.api(`/v1/calls?id=${rec.id}`)).body.status).toBe('in_progress');
    call.hangup();
    const done = await until(async () => { const r = (await s.api(`/v1/calls?id=${rec.id}`)).body; return r.status === 'ended' ? r : null; }, 'the end');
    expect(done.transcript).toContain('HUMAN: A human please.');
    expect(done.transcript).not.toContain('now connected');
  });

  it('a Telnyx account without its public key cannot take calls: linking says which credential is missing', async () => {
    const conn = await s.api('/v1/account_connections/create', { body: { type: 'account_connection_telnyx', credentials: { telnyx_api_key: TELNYX_KEY } } });
    telnyx.addAccountNumber('+14155550102', null);
    const r = await s.api('/v1/numbers/link', { body: { phone_number: '+14155550102', telephony_account_connection: conn.body.id } });
    expect(r.status).toBe(422);
    expect(r.body.detail[0].loc).toEqual(['body', 'telephony_account_connection']);
    expect(r.body.message).toMatch(/telnyx_public_key/);
  });

  it('a context endpoint on a private address is not asked (by default), and the call goes on without it', async () => {
    telnyx.addAccountNumber('+14155550103', null);
    await s.api('/v1/numbers/link', {
      body: {
        phone_number: '+14155550103', telephony_account_connection: connectionId,
        inbound_agent: { prompt: { content: 'Hi ${name}.', context_endpoint: 'http://127.0.0.1:9/ctx' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' }, initial_message: 'Hello there, welcome in.' },
      },
    });
    const call = telnyx.placeInboundCall({ from: '+15557654323', to: '+14155550103' });
    await call.waitUntil(() => call.played.length > 5, 'the greeting', 8000);
    const rec = await until(async () => (await s.api('/v1/calls/list')).body.items.find((c: { telephony_id: string }) => c.telephony_id === call.callControlId), 'the record');
    expect(rec.errors[0]).toMatch(/context endpoint: unreachable \(127\.0\.0\.1 is a private, loopback or link-local address/);
    call.hangup();
  });

  it('refuses webhooks that are not signed by the account\'s key', async () => {
    const body = JSON.stringify({ data: { record_type: 'event', event_type: 'call.initiated', id: 'x', occurred_at: new Date().toISOString(),
      payload: { call_control_id: 'v3:forged', call_leg_id: 'l', call_session_id: 's', connection_id: 'c', from: '+15550000000', to: NUMBER, direction: 'incoming', state: 'parked' } }, meta: { attempt: 1 } });
    const res = await fetch(`${s.url}/telephony/telnyx/events`, {
      method: 'POST', body, headers: { 'content-type': 'application/json', 'telnyx-signature-ed25519': Buffer.alloc(64).toString('base64'), 'telnyx-timestamp': String(Math.floor(Date.now() / 1000)) },
    });
    expect(res.status).toBe(403);
    const calls = await s.api('/v1/calls/list');
    expect(calls.body.items.filter((c: { telephony_id: string }) => c.telephony_id === 'v3:forged')).toEqual([]);
  });
});
