/**
 * Phone calls end to end through the carrier emulator (Twilio's REST API, signed webhooks, TwiML and
 * real-time Media Streams): the real server, webhooks, media WebSocket, engine and provider adapters, with
 * the vendor fakes for speech-to-text (Deepgram), the language model (OpenAI chat) and the voice (Deepgram
 * Aura). Everything runs in real time on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import webhooks from 'twilio/lib/webhooks/webhooks.js';
import { detectDtmfDigit } from '../../src/telephony/dtmfTones.js';
import { startEmulator, type Emulator } from '../../src/telephony/emulator/index.js';
import type { CallHandle } from '../../src/telephony/emulator/call.js';
import { createStreamToken } from '../../src/telephony/streamToken.js';
import { HOLD_LIMIT_MS } from '../../src/telephony/twilio/handlers.js';
import { startDeepgramFake, type DeepgramFake } from '../fakes/deepgram.js';
import { startOpenAIChatFake, type OpenAIChatFake } from '../fakes/openai.js';
import { speechAudio } from '../fakes/speech.js';
import { carrierConnection } from '../helpers/carriers.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { createServer } from 'node:http';
import { until as poll } from '../helpers/until.js';

const until = <T>(probe: () => T | Promise<T>, what: string, timeoutMs = 10000) => poll(probe, what, timeoutMs);

const DG_KEY = 'dg-twilio-e2e';
const OPENAI_KEY = 'sk-twilio-e2e';
const CALLER = '+15557654321';

type Json = Record<string, any>;


describe('Twilio phone calls through the carrier emulator', () => {
  let emu: Emulator;
  let deepgram: DeepgramFake;
  let openai: OpenAIChatFake;
  let s: TestServer;
  let conn: string;
  let numberSeq = 0;

  beforeAll(async () => {
    [emu, deepgram, openai] = await Promise.all([
      startEmulator({ timeScale: 0.2 }), startDeepgramFake(DG_KEY), startOpenAIChatFake({ validKey: OPENAI_KEY, prefix: '/v1' }),
    ]);
    s = await startTestServer({
      TWILIO_API_BASE_URL: emu.url, DEEPGRAM_API_KEY: DG_KEY, DEEPGRAM_BASE_URL: deepgram.url,
      OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: `${openai.url}/v1`, SWITCHBOARD_VAD: 'energy',
      // The emulator's account doubles as the platform's (numbers bought without a connection, fluents_twilio).
      TWILIO_ACCOUNT_SID: emu.accountSid, TWILIO_AUTH_TOKEN: emu.authToken,
      // The context endpoint below is on loopback.
      SWITCHBOARD_ALLOW_PRIVATE_URLS: 'true',
    });
    conn = await carrierConnection(s, { twilio: emu });
  });
  afterAll(async () => { await s?.close(); await Promise.all([emu?.close(), deepgram?.close(), openai?.close()]); });

  /** A number in the emulator's account, linked to Switchboard with an agent. */
  async function line(agent: Json = {}, extra: Json = {}): Promise<string> {
    const number = `+1415555${String(200 + ++numberSeq).padStart(4, '0')}`;
    emu.addNumber(number);
    const r = await s.api('/v1/numbers/link', {
      body: {
        phone_number: number, telephony_account_connection: conn, ...extra,
        inbound_agent: {
          prompt: { content: 'You are the front desk. Be brief.' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' },
          initial_message: 'Hello, front desk.', ...agent,
        },
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return number;
  }

  const callRecord = async (sid: string): Promise<Json | undefined> => {
    const r = await s.api(`/v1/calls/list?filters=${encodeURIComponent(JSON.stringify({ telephony_id: sid }))}`);
    return r.body.items[0];
  };
  const full = async (id: string): Promise<Json> => (await s.api(`/v1/calls?id=${id}`)).body;
  const ended = (id: string) => until(async () => { const c = await full(id); return c.status === 'ended' || c.status === 'error' ? c : null; }, 'the call to end');
  /** The caller says something (as speech the STT fake hears as `text`), then is quiet. */
  const say = async (call: CallHandle, text: string, ms = 900) => {
    deepgram.stt.script(text);
    await call.sendAudio(speechAudio(ms, 8000));
    await call.sendSilence(700);
  };

  it('links only a number that is in the Twilio account, and points its voice webhooks at Switchboard', async () => {
    const missing = await s.api('/v1/numbers/link', { body: { phone_number: '+14155559999', telephony_account_connection: conn } });
    expect(missing.status).toBe(422);
    expect(missing.body.detail[0].loc).toEqual(['body', 'phone_number']);
    const number = await line();
    const at = emu.numbers().find((n) => n.phone_number === number)!;
    expect(at.voice_url).toBe(`${s.url}/telephony/twilio/voice`);
    expect(at.status_callback).toBe(`${s.url}/telephony/twilio/status`);
  });

  it('numbers: searches the carrier\'s inventory, buys one pointed at Switchboard, and cancel releases it', async () => {
    const avail = await s.api(`/v1/numbers/available?area_code=212&limit=3&telephony_account_connection=${conn}`);
    expect(avail.status).toBe(200);
    expect(avail.body.items).toHaveLength(3);
    expect(avail.body.items[0]).toMatchObject({ country_code: 'US', telephony_provider: 'twilio', capabilities: { voice: true } });
    expect(avail.body.items.every((n: Json) => n.phone_number.startsWith('+1212'))).toBe(true);
    const viaFilters = await s.api(`/v1/numbers/available?telephony_account_connection=${conn}&filters=${encodeURIComponent('{"area_code":"212"}')}&limit=1`);
    expect(viaFilters.body.items[0].phone_number).toBe(avail.body.items[0].phone_number);
    const badFilter = await s.api(`/v1/numbers/available?telephony_account_connection=${conn}&filters=${encodeURIComponent('{"zip":"1"}')}`);
    expect(badFilter.status).toBe(422);

    const want = avail.body.items[0].phone_number;
    const bought = await s.api('/v1/numbers/buy', { body: { phone_number: want, telephony_account_connection: conn, inbound_agent: 'default' } });
    expect(bought.status, JSON.stringify(bought.body)).toBe(201);
    expect(bought.body).toMatchObject({ number: want, active: true, telephony_provider: 'twilio' });
    expect(emu.numbers().find((n) => n.phone_number === want)?.voice_url).toBe(`${s.url}/telephony/twilio/voice`);
    // Bought numbers leave the inventory: buying it again is refused, and it is no longer offered.
    const offered = (await s.api(`/v1/numbers/available?area_code=212&limit=50&telephony_account_connection=${conn}`)).body.items.map((n: Json) => n.phone_number);
    expect(offered).not.toContain(want);
    const gone = await s.api('/v1/numbers/buy', { body: { phone_number: want, telephony_account_connection: conn } });
    expect([409, 422]).toContain(gone.status);
    const byArea = await s.api('/v1/numbers/buy', { body: { area_code: '305', telephony_account_connection: conn } });
    expect(byArea.status).toBe(201);
    expect(byArea.body.number.startsWith('+1305')).toBe(true);
    const none = await s.api('/v1/numbers/buy', { body: { area_code: '999', telephony_account_connection: conn } });
    expect(none.status).toBe(422);
    expect(none.body.detail[0].loc).toEqual(['body', 'area_code']);

    const cancelled = await s.api(`/v1/numbers/cancel?phone_number=${encodeURIComponent(want)}`, { method: 'POST' });
    expect(cancelled.status).toBe(201);
    expect(cancelled.body.active).toBe(false);
    expect(emu.numbers().some((n) => n.phone_number === want)).toBe(false);
  });

  it('numbers: detach puts back the voice configuration a linked number had, and only if it still points here', async () => {
    emu.addNumber('+14155550177', { voiceUrl: 'https://old.example.com/voice' });
    emu.addNumber('+14155550178', { voiceUrl: 'https://old.example.com/voice' });
    for (const n of ['+14155550177', '+14155550178']) {
      expect((await s.api('/v1/numbers/link', { body: { phone_number: n, telephony_account_connection: conn } })).status).toBe(201);
    }
    // Someone re-points the second number at the carrier meanwhile: that configuration is theirs and stays.
    const second = emu.numbers().find((n) => n.phone_number === '+14155550178')!;
    await fetch(`${emu.url}/2010-04-01/Accounts/${emu.accountSid}/IncomingPhoneNumbers/${second.sid}.json`, {
      method: 'POST', headers: { authorization: `Basic ${Buffer.from(`${emu.accountSid}:${emu.authToken}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'VoiceUrl=https%3A%2F%2Fnew.example.com%2Fvoice',
    });
    for (const n of ['+14155550177', '+14155550178']) {
      expect((await s.api(`/v1/numbers/detach?phone_number=${encodeURIComponent(n)}`, { method: 'POST' })).status).toBe(201);
    }
    expect(emu.numbers().find((n) => n.phone_number === '+14155550177')?.voice_url).toBe('https://old.example.com/voice');
    expect(emu.numbers().find((n) => n.phone_number === '+14155550178')?.voice_url).toBe('https://new.example.com/voice');
    expect((await s.api('/v1/numbers?phone_number=%2B14155550177')).status).toBe(404);
  });

  it('steering pool: with no number given, one is bought through the connection\'s carrier', async () => {
    const r = await s.api(`/v1/account_connections/add_to_steering_pool?id=${conn}`, { body: { area_code: '617' } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.steering_pool).toHaveLength(1);
    expect(r.body.steering_pool[0].startsWith('+1617')).toBe(true);
    expect(emu.numbers().some((n) => n.phone_number === r.body.steering_pool[0])).toBe(true);
    const none = await s.api(`/v1/account_connections/add_to_steering_pool?id=${conn}`, { body: { area_code: '999' } });
    expect(none.status).toBe(429);
  });

  it('inbound: greets, hears the caller, answers, keeps a true transcript, and records the end when the caller hangs up', async () => {
    const number = await line();
    openai.reply({ text: ['It ships', ' today.'] });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForStream();
    await call.waitForAgentAudio({ timeoutMs: 8000 });
    await call.waitForAgentSilence(300);
    const rec = await until(() => callRecord(call.sid), 'the call record');
    expect(rec).toMatchObject({ status: 'in_progress', is_outgoing: false, from_number: CALLER, to_number: number, stage: 'picked_up', telephony_provider: 'twilio' });

    await say(call, 'where is my order');
    await until(async () => (await full(rec.id)).transcript?.includes('BOT: It ships today.'), 'the answer');
    await call.waitForAgentSilence(300);
    await call.hangup();
    const done = await ended(rec.id);
    expect(done).toMatchObject({ status: 'ended', stage_outcome: 'human_disconnected', errors: [] });
    expect(done.transcript.split('\n')).toEqual(['BOT: Hello, front desk.', 'HUMAN: Where is my order.', 'BOT: It ships today.']);
    expect(done.start_time).not.toBeNull();
    expect(done.end_time).not.toBeNull();
    // Every mark came back for audio that played, and nothing we sent broke Twilio's protocol.
    expect(call.marks.length).toBeGreaterThan(0);
    expect(call.marks.every((m) => m.returnedAtMs !== undefined && !m.cleared)).toBe(true);
    expect(call.protocolViolations).toEqual([]);
    const m = call.metrics();
    expect(m.responseLatencies.length).toBeGreaterThanOrEqual(1);
    // The turn's latency and the call's end are in /metrics.
    const prom = await (await fetch(`${s.url}/metrics`)).text();
    expect(Number(/switchboard_turn_latency_seconds_count\{stage="response"\} (\d+)/.exec(prom)?.[1])).toBeGreaterThanOrEqual(1);
    expect(prom).toMatch(/switchboard_calls_ended_total\{provider="twilio",status="ended",outcome="human_disconnected"\} [1-9]/);
    expect(prom).toMatch(/switchboard_active_calls \d+/);
    // So are the media frames: the caller's audio received and the agent's sent (the emulator paces in real time).
    const frames = (direction: string) => Number(new RegExp(`switchboard_media_frames_total\\{direction="${direction}"\\} (\\d+)`).exec(prom)?.[1]);
    expect(frames('in')).toBeGreaterThanOrEqual(50);
    expect(frames('out')).toBeGreaterThanOrEqual(m.agentAudioMs / 20 - 1);
    expect(prom).toMatch(/switchboard_media_frames_late_total\{direction="out"\} \d+/);
  });

  it('barge-in: the caller talking over a long answer clears the carrier\'s buffer; the caller hears nothing more of it, and the transcript keeps only what played', async () => {
    const number = await line({ interrupt_sensitivity: 'high' });
    openai.reply({ text: ['Your order left our warehouse on Monday and it should arrive by Thursday afternoon at the very latest, and we will send tracking details.'] });
    openai.reply({ text: ['Sure.'] });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForAgentAudio({ timeoutMs: 8000 });
    await call.waitForAgentSilence(300);
    await say(call, 'where is my order');
    const answerAt = await call.waitForAgentAudio({ timeoutMs: 8000 });
    // Let a few words play, then talk over it.
    await until(() => call.now() - answerAt > 700, 'part of the answer');
    deepgram.stt.script('stop please tell me the price');
    await call.sendAudio(speechAudio(1200, 8000));
    const clear = await until(() => call.clears[0], 'a clear from Switchboard');
    await call.sendSilence(800);
    const rec = (await callRecord(call.sid))!;
    await until(async () => (await full(rec.id)).transcript?.includes('BOT: Sure.'), 'the answer to the interruption');
    // After the clear, the interrupted answer played no more (its audio was discarded at the carrier).
    expect(clear.discardedMs).toBeGreaterThan(0);
    const spans = call.metrics().agentSpeech.filter((sp) => sp.startMs >= answerAt && sp.startMs < clear.atMs);
    expect(spans.every((sp) => sp.endMs <= clear.atMs + 25)).toBe(true);
    const lines = (await full(rec.id)).transcript.split('\n');
    const cut = lines.find((l: string) => l.startsWith('BOT: Your order'))!;
    expect(cut.endsWith('-')).toBe(true);
    expect(cut.length).toBeLessThan('BOT: Your order left our warehouse on Monday and it should arrive by Thursday afternoon at the very latest, and we will send tracking details.'.length);
    await call.hangup();
    await ended(rec.id);
  });

  it('DTMF both ways: the agent presses keys as in-band tones the caller hears; the caller\'s keys reach the call', async () => {
    const number = await line({ actions: [{ type: 'action_dtmf' }], initial_message: null });
    openai.reply({ toolCalls: [{ id: 'call_dtmf_1', name: 'send_dtmf', arguments: ['{"digits":"', '42#"}'] }] });
    openai.reply({ text: ['Done.'] });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForStream();
    await say(call, 'press four two pound');
    const rec = (await until(() => callRecord(call.sid), 'the call record'))!;
    await until(async () => (await full(rec.id)).transcript?.includes('BOT: Done.'), 'the agent to finish');
    const history = (await full(rec.id)).action_history as Json[];
    expect(history.map((h) => h.event_type)).toEqual(['action_started', 'action_completed']);
    expect(history[0]).toMatchObject({ action_type: 'action_dtmf' });
    // Read the tones back from what the caller heard: 100 ms per digit, 100 ms apart.
    const heard = call.agentAudio().samples;
    const digits: string[] = [];
    for (let at = 0; at + 400 <= heard.length; at += 200) {
      const d = detectDtmfDigit(heard.subarray(at, at + 400), 8000);
      if (d && digits.at(-1) !== d) digits.push(d);
      else if (!d && digits.at(-1) !== '|') digits.push('|');
    }
    expect(digits.filter((d) => d !== '|')).toEqual(['4', '2', '#']);
    await call.sendDtmf('7');
    await until(() => call.events.some((e) => e.type === 'dtmf' && e.delivered), 'the key to be delivered');
    await call.hangup();
    await ended(rec.id);
  });

  it('cold transfer: the agent hands the caller to a human; the call moves to the dialled number and is recorded as transferred', async () => {
    const number = await line({ actions: [{ type: 'action_transfer_call', config: { phone_number: '+14155550123' } }], initial_message: null });
    openai.reply({ toolCalls: [{ id: 'call_tr_1', name: 'transfer_call', arguments: ['{}'] }] });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForStream();
    await say(call, 'get me a manager');
    const transfer = await until(() => call.transfers[0], 'the transfer');
    expect(transfer.to).toEqual(['+14155550123']);
    expect(transfer.callerId).toBe(number);
    const rec = (await callRecord(call.sid))!;
    const done = await ended(rec.id);
    expect(done.stage).toBe('transfer_successful');
    expect(done.transcript).toContain('HUMAN: Get me a manager.');
    expect(done.action_history.map((h: Json) => h.action_type)).toContain('action_transfer_call');
  });

  it('warm transfer: the caller waits on hold in the call\'s conference while the human is dialled in; they talk, and the record says who ended it', async () => {
    const human = '+14155550125';
    emu.setDestination(human, { answer: 'human', ringMs: 300, hangupAfterMs: 3000 });
    const number = await line({
      actions: [{ type: 'action_warm_transfer', config: { phone_number: human, hold_message: 'One moment, connecting you.' } }], initial_message: null,
    });
    openai.reply({ toolCalls: [{ id: 'call_wt_1', name: 'warm_transfer', arguments: ['{}'] }] });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForStream();
    await say(call, 'can I talk to a person');
    // The caller is held in a conference of the call's own, hearing the wait URL, until the human joins.
    await call.waitForEvent((e) => e.type === 'conference-join', 8000);
    await call.waitForEvent((e) => e.type === 'conference-wait', 8000);
    const conf = await until(() => emu.conferences().find((c) => c.status === 'in-progress' && c.participants.some((p) => p.callSid === call.sid)), 'the conference to start');
    const dialled = conf.participants.find((p) => p.via === 'api')!;
    expect(dialled.number).toBe(human);
    expect(conf.participants.find((p) => p.callSid === call.sid)!.startConferenceOnEnter).toBe(false);
    const rec = (await callRecord(call.sid))!;
    await until(async () => (await full(rec.id)).stage === 'transfer_successful', 'the human to answer');
    // The agent left when the caller went on hold: what it said before is the transcript, then the human talks.
    const lines = (await full(rec.id)).transcript.split('\n');
    expect(lines).toEqual(['HUMAN: Can I talk to a person.', 'BOT: One moment, connecting you.']);
    expect(call.status).toBe('in-progress');
    // The human hangs up: the conference ends, the caller's Dial ends, and so does the call.
    expect(await call.waitForEnd(10_000)).toBe('completed');
    const done = await ended(rec.id);
    expect(done).toMatchObject({ status: 'ended', stage: 'transfer_successful', stage_outcome: null });
    expect(done.action_history.map((h: Json) => h.action_type)).toContain('action_warm_transfer');
  });

  it('warm transfer to a human who does not answer: the waiting caller hears an apology, and the record says transfer_unanswered', async () => {
    const human = '+14155550126';
    emu.setDestination(human, { answer: 'busy', ringMs: 200 });
    const number = await line({ actions: [{ type: 'action_warm_transfer', config: { phone_number: human } }], initial_message: null });
    openai.reply({ toolCalls: [{ id: 'call_wt_2', name: 'warm_transfer', arguments: ['{}'] }] });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForStream();
    await say(call, 'can I talk to a person');
    expect(await call.waitForEnd(10_000)).toBe('completed');
    const said = call.events.filter((e) => e.type === 'say').map((e) => (e as { text: string }).text);
    expect(said.at(-1)).toMatch(/nobody is available/);
    const rec = (await callRecord(call.sid))!;
    const done = await ended(rec.id);
    expect(done).toMatchObject({ status: 'ended', stage: 'transfer_started', stage_outcome: 'transfer_unanswered' });
    const conf = emu.conferences().find((c) => c.participants.some((p) => p.callSid === call.sid))!;
    expect(conf.participants.find((p) => p.via === 'api')!.status).toBe('failed');
  });

  it('warm transfer abandoned by the caller: the human, answering after the caller left, is not left alone on the line', async () => {
    const human = '+14155550128';
    emu.setDestination(human, { answer: 'human', ringMs: 2500, hangupAfterMs: 20_000 });
    const number = await line({ actions: [{ type: 'action_warm_transfer', config: { phone_number: human } }], initial_message: null });
    openai.reply({ toolCalls: [{ id: 'call_wt_3', name: 'warm_transfer', arguments: ['{}'] }] });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForStream();
    await say(call, 'can I talk to a person');
    await call.waitForEvent((e) => e.type === 'conference-join', 8000);
    await call.hangup();
    const rec = (await until(() => callRecord(call.sid), 'the record'))!;
    expect((await ended(rec.id)).stage).toBe('transfer_started');
    const dialled = await until(() => emu.conferences().flatMap((c) => c.participants).find((p) => p.via === 'api' && p.number === human), 'the human dialled');
    const humanCall = emu.getCall(dialled.callSid)!;
    // Stopped (cancelled while ringing, or hung up on answering) instead of talking to an empty conference
    // for the 4 s (20 s scaled) its script would stay.
    const t0 = Date.now();
    expect(['canceled', 'completed']).toContain(await humanCall.waitForEnd(10_000));
    expect(Date.now() - t0).toBeLessThan(3500);
    expect(emu.conferences().every((c) => c.status === 'completed' || !c.participants.some((p) => p.number === human))).toBe(true);
  });

  it('a caller left on hold with nobody coming is told so and let go once the hold limit has passed', async () => {
    const human = '+14155550129';
    emu.setDestination(human, { answer: 'no-answer' }); // rings for the whole 30 s Timeout (6 s scaled)
    const number = await line({ actions: [{ type: 'action_warm_transfer', config: { phone_number: human } }], initial_message: null });
    openai.reply({ toolCalls: [{ id: 'call_wt_4', name: 'warm_transfer', arguments: ['{}'] }] });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForStream();
    await say(call, 'can I talk to a person');
    const wait = await call.waitForEvent((e) => e.type === 'conference-wait', 8000) as { url?: string };
    const rec = (await callRecord(call.sid))!;
    // Twilio asks for the wait URL again each round; a round asked for after the limit ends the wait.
    const url = new URL(wait.url!);
    url.searchParams.set('since', String(Date.now() - HOLD_LIMIT_MS - 1000));
    const params = { CallSid: call.sid, AccountSid: emu.accountSid, From: CALLER, To: number, CallStatus: 'in-progress' };
    const res = await fetch(url, {
      method: 'POST', body: new URLSearchParams(params).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': webhooks.getExpectedTwilioSignature(emu.authToken, url.href, params) },
    });
    expect(res.status).toBe(200);
    expect(await call.waitForEnd(5000)).toBe('completed');
    const said = call.events.filter((e) => e.type === 'say').map((e) => (e as { text: string }).text);
    expect(said.at(-1)).toMatch(/nobody is available/);
    expect(await ended(rec.id)).toMatchObject({ stage: 'transfer_started', stage_outcome: 'transfer_unanswered' });
  });

  it('adding a human while the agent stays on the line is refused on Twilio, and the agent carries on', async () => {
    const number = await line({ actions: [{ type: 'action_add_to_conference', config: { phone_number: '+14155550127', place_primary_on_hold: false } }], initial_message: null });
    openai.reply({ toolCalls: [{ id: 'call_conf_1', name: 'add_to_conference', arguments: ['{}'] }] });
    openai.reply({ text: ['I cannot add anyone right now.'] });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForStream();
    await say(call, 'add my colleague');
    const rec = (await until(() => callRecord(call.sid), 'the record'))!;
    await until(async () => (await full(rec.id)).transcript?.includes('BOT: I cannot add anyone right now.'), 'the agent to go on');
    expect(emu.conferences().some((c) => c.participants.some((p) => p.callSid === call.sid))).toBe(false);
    await call.hangup();
    const done = await ended(rec.id);
    const failed = done.action_history.find((h: Json) => h.action_type === 'action_add_to_conference' && h.event_type === 'action_failed');
    expect(failed.result.error).toMatch(/place_primary_on_hold/);
    expect(done.stage_outcome).toBe('human_disconnected');
  });

  it('outbound: calls/create dials through Twilio, the agent talks when the human answers, and calls/end hangs up', async () => {
    const from = await line();
    const to = '+12125550142';
    emu.setDestination(to, { answer: 'human' });
    openai.reply({ text: ['Great, see you then.'] });
    const created = await s.api('/v1/calls/create', {
      body: { from_number: from, to_number: to, agent: { prompt: { content: 'Confirm the appointment.' }, initial_message: 'Hi, this is the clinic calling.', voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' } } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ status: 'not_started', is_outgoing: true, from_number: from, to_number: to, telephony_provider: 'twilio' });
    expect(created.body.telephony_id).toMatch(/^CA/);
    const call = emu.getCall(created.body.telephony_id)!;
    await call.waitForAgentAudio({ timeoutMs: 8000 });
    await until(async () => (await full(created.body.id)).status === 'in_progress', 'in progress');
    await call.waitForAgentSilence(300);
    await say(call, 'yes I will be there');
    await until(async () => (await full(created.body.id)).transcript?.includes('BOT: Great, see you then.'), 'the answer');
    await call.waitForAgentSilence(200);
    const end = await s.api(`/v1/calls/end?id=${created.body.id}`, { method: 'POST' });
    expect(end.status).toBe(201);
    expect(end.body).toMatchObject({ status: 'ended', stage_outcome: 'bot_disconnected', human_detection_result: 'human' });
    expect(await call.waitForEnd()).toBe('completed');
    expect(end.body.transcript.split('\n')).toEqual(['BOT: Hi, this is the clinic calling.', 'HUMAN: Yes I will be there.', 'BOT: Great, see you then.']);
    // Ending an ended call changes nothing.
    const again = await s.api(`/v1/calls/end?id=${created.body.id}`, { method: 'POST' });
    expect(again.body.end_time).toBe(end.body.end_time);
  });

  it.each([
    ['busy', 'call_did_not_connect'],
    ['no-answer', 'human_unanswered'],
  ] as const)('outbound to a %s line ends as %s', async (answer, outcome) => {
    const from = await line();
    const to = answer === 'busy' ? '+12125550143' : '+12125550144';
    emu.setDestination(to, { answer, ringMs: 200 });
    const created = await s.api('/v1/calls/create', { body: { from_number: from, to_number: to, agent: { prompt: { content: 'Hi.' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' } } } });
    expect(created.status).toBe(201);
    const done = await ended(created.body.id);
    expect(done).toMatchObject({ status: 'ended', stage_outcome: outcome, transcript: null });
  });

  it('voicemail: on a machine, the agent waits for the beep, leaves its voicemail message and hangs up', async () => {
    const from = await line();
    const to = '+12125550145';
    emu.setDestination(to, { answer: 'machine', greetingMs: 1500, beep: true });
    const created = await s.api('/v1/calls/create', {
      body: {
        from_number: from, to_number: to, on_no_human_answer: 'continue',
        agent: { prompt: { content: 'Remind about the appointment.' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' }, voicemail_message: 'Please call the clinic back to confirm your appointment.' },
      },
    });
    expect(created.status).toBe(201);
    const done = await ended(created.body.id);
    expect(done.human_detection_result).toBe('no_human');
    expect(done.transcript).toContain('BOT: Please call the clinic back to confirm your appointment.');
    expect(done.stage_outcome).toBe('bot_disconnected');
  });

  it('on a machine with on_no_human_answer "hangup", the call ends without a word', async () => {
    const from = await line();
    const to = '+12125550146';
    emu.setDestination(to, { answer: 'machine', greetingMs: 3000 });
    const created = await s.api('/v1/calls/create', {
      body: { from_number: from, to_number: to, on_no_human_answer: 'hangup', agent: { prompt: { content: 'Hi.' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' } } },
    });
    const done = await ended(created.body.id);
    expect(done).toMatchObject({ status: 'ended', human_detection_result: 'no_human', stage_outcome: 'human_unanswered' });
    expect(await emu.getCall(created.body.telephony_id)!.waitForEnd()).toBe('completed');
  });

  it('do-not-call detection: "take me off your list" is recorded and the agent says goodbye and hangs up', async () => {
    const number = await line({ run_do_not_call_detection: true, initial_message: 'Hello, this is Acme with an offer.' });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForAgentAudio({ timeoutMs: 8000 });
    await call.waitForAgentSilence(300);
    const requests = openai.requests;
    await say(call, 'please take me off your list');
    const rec = (await callRecord(call.sid))!;
    const done = await ended(rec.id);
    expect(done.do_not_call_result).toBe(true);
    expect(done.transcript.split('\n').at(-1)).toBe("BOT: Understood. I'll make sure you're not contacted again. Goodbye.");
    expect(done.stage_outcome).toBe('bot_disconnected');
    expect(openai.requests - requests).toBeLessThanOrEqual(1);
    expect(await call.waitForEnd()).toBe('completed');
  });

  it('an outbound_only number rejects inbound calls, and nothing is recorded', async () => {
    const number = await line({}, { outbound_only: true });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    const status = await call.waitForEnd();
    expect(['busy', 'no-answer', 'canceled']).toContain(status);
    expect(call.events.some((e) => e.type === 'reject')).toBe(true);
    expect(await callRecord(call.sid)).toBeUndefined();
  });

  it('a call whose agent cannot reach its providers is refused politely and recorded as an error naming the missing connection', async () => {
    const number = await line({ voice: { type: 'voice_cartesia', voice_id: 'v1', model_id: null } });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForEnd();
    expect(call.events.some((e) => e.type === 'say')).toBe(true);
    const rec = (await callRecord(call.sid))!;
    expect(rec.status).toBe('error');
    expect(rec.error_message).toMatch(/account_connection_cartesia/);
  });

  it('the prompt\'s context endpoint is asked about the caller, and its values fill the greeting and prompt', async () => {
    const asked: string[] = [];
    const ctxServer = createServer((req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ customer_name: 'Ada', tier: 'gold', visits: 3 }));
    });
    await new Promise<void>((r) => ctxServer.listen(0, '127.0.0.1', r));
    try {
      const port = (ctxServer.address() as { port: number }).port;
      const number = await line({
        prompt: { content: 'You serve ${customer_name}, a ${tier} member.', context_endpoint: `http://127.0.0.1:${port}/ctx` },
        initial_message: 'Hello ${customer_name}!',
      }, { example_context: { tier: 'silver', shop: 'Main St' } });
      openai.reply({ text: ['Welcome back.'] });
      const call = await emu.placeInboundCall({ from: CALLER, to: number });
      await call.waitForAgentAudio({ timeoutMs: 8000 });
      await call.waitForAgentSilence(300);
      await say(call, 'hi there');
      const rec = (await until(() => callRecord(call.sid), 'the record'))!;
      await until(async () => (await full(rec.id)).transcript?.includes('BOT: Welcome back.'), 'the answer');
      expect(asked).toEqual([`/ctx?phone_number=${encodeURIComponent(CALLER)}`]);
      const c = await full(rec.id);
      expect(c.context).toEqual({ tier: 'gold', shop: 'Main St', customer_name: 'Ada', visits: '3' });
      expect(c.transcript.split('\n')[0]).toBe('BOT: Hello Ada!');
      expect((openai.lastRequest?.body as Json).messages[0]).toEqual({ role: 'system', content: 'You serve Ada, a gold member.' });
      await call.hangup();
      await ended(rec.id);
    } finally {
      ctxServer.close();
    }
  });

  it('a caller who mentions voicemail on an inbound call is a person: the agent answers, it leaves no voicemail', async () => {
    const number = await line({ voicemail_message: 'Please call us back.', initial_message: null });
    openai.reply({ text: ['Let me check that for you.'] });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForStream();
    await say(call, 'hi I got your voicemail about my order');
    const rec = (await until(() => callRecord(call.sid), 'the record'))!;
    await until(async () => (await full(rec.id)).transcript?.includes('BOT: Let me check that for you.'), 'the answer');
    const c = await full(rec.id);
    expect(c.status).toBe('in_progress');
    expect(c.transcript).not.toContain('Please call us back');
    await call.hangup();
    await ended(rec.id);
  });

  it('a transfer nobody answers is recorded as transfer_unanswered, not successful', async () => {
    emu.setDestination('+14155550124', { answer: 'busy', ringMs: 100 });
    const number = await line({ actions: [{ type: 'action_transfer_call', config: { phone_number: '+14155550124' } }], initial_message: null });
    openai.reply({ toolCalls: [{ id: 'call_tr_2', name: 'transfer_call', arguments: ['{}'] }] });
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForStream();
    await say(call, 'get me a manager');
    const rec = (await until(() => callRecord(call.sid), 'the record'))!;
    const done = await ended(rec.id);
    expect(done.stage).toBe('transfer_started');
    expect(done.stage_outcome).toBe('transfer_unanswered');
  });

  it('the platform account is shared: no caller id of another user\'s, and no linking from it', async () => {
    const mine = await line();
    const other = await s.newUser();
    const fluents = await s.api('/v1/account_connections/create', { key: other, body: { type: 'account_connection_fluents_twilio', account_supports_any_caller_id: true } });
    expect(fluents.status, JSON.stringify(fluents.body)).toBe(201);
    const callsBefore = emu.calls.length;
    const spoof = await s.api('/v1/calls/create', {
      key: other, body: { from_number: mine, to_number: '+12125550199', telephony_account_connection: fluents.body.id, agent: { prompt: { content: 'x' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' } } },
    });
    expect(spoof.status).toBe(422);
    expect(spoof.body.detail[0].loc).toEqual(['body', 'from_number']);
    // Refused before the carrier was asked to place anything.
    expect(emu.calls.length).toBe(callsBefore);
    emu.addNumber('+14155550188');
    const link = await s.api('/v1/numbers/link', { key: other, body: { phone_number: '+14155550188', telephony_account_connection: fluents.body.id } });
    expect(link.status).toBe(422);
    expect(link.body.detail[0].loc).toEqual(['body', 'telephony_account_connection']);
  });

  it('buying checks the request before paying the carrier, and a cancelled number can be bought again', async () => {
    const before = emu.numbers().length;
    const bad = await s.api('/v1/numbers/buy', { body: { area_code: '206', telephony_account_connection: conn, inbound_agent: '3f0c6d1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f' } });
    expect(bad.status).toBe(404);
    expect(emu.numbers().length).toBe(before);
    const platform = await s.api('/v1/numbers/buy', { body: { area_code: '206' } });
    expect(platform.status, JSON.stringify(platform.body)).toBe(201);
    expect(platform.body.telephony_account_connection).toBeNull();
    const n = platform.body.number;
    expect((await s.api(`/v1/numbers/cancel?phone_number=${encodeURIComponent(n)}`, { method: 'POST' })).body.active).toBe(false);
    const again = await s.api('/v1/numbers/buy', { body: { phone_number: n } });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect((await s.api(`/v1/numbers?phone_number=${encodeURIComponent(n)}`)).body).toMatchObject({ active: true, id: again.body.id });
  });

  it('refuses webhooks without a valid X-Twilio-Signature and records nothing', async () => {
    const number = await line();
    const params = { CallSid: 'CAforged00000000000000000000000000', AccountSid: emu.accountSid, From: CALLER, To: number, CallStatus: 'ringing', Direction: 'inbound' };
    const post = (signature: string) => fetch(`${s.url}/telephony/twilio/voice`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature }, body: new URLSearchParams(params).toString(),
    });
    expect((await post('bm90IGEgc2lnbmF0dXJl')).status).toBe(403);
    // Signed with another account's token: refused too.
    expect((await post(webhooks.getExpectedTwilioSignature('another-token', `${s.url}/telephony/twilio/voice`, params))).status).toBe(403);
    expect(await callRecord(params.CallSid)).toBeUndefined();
    // The right signature is accepted (and answers with a media stream).
    const ok = await post(webhooks.getExpectedTwilioSignature(emu.authToken, `${s.url}/telephony/twilio/voice`, params));
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('<Connect><Stream url="ws://');
  });

  it('refuses media streams with a bad, forged or already used stream token', async () => {
    const upgrade = (path: string) => new Promise<number>((resolve) => {
      const ws = new WebSocket(`${s.url.replace('http', 'ws')}${path}`);
      ws.on('open', () => { ws.close(); resolve(101); });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    expect(await upgrade('/telephony/twilio/media/not-a-token')).toBe(403);
    const forged = `${'3f0c6d1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f'}.${Math.floor(Date.now() / 1000) + 600}.AAAA`;
    expect(await upgrade(`/telephony/twilio/media/${forged}`)).toBe(403);
    // A call that already had its stream: a second connection with a valid token is refused.
    const number = await line();
    const call = await emu.placeInboundCall({ from: CALLER, to: number });
    await call.waitForStream();
    const rec = (await until(() => callRecord(call.sid), 'the call'))!;
    const token = createStreamToken(s.running.store.box, rec.id);
    expect(await upgrade(`/telephony/twilio/media/${token}`)).toBe(409);
    expect(await upgrade('/somewhere/else')).toBe(404);
    await call.hangup();
    await ended(rec.id);
  });

  it('concurrent calls stay apart: each caller hears its own agent and each record holds its own conversation', async () => {
    const numbers = await Promise.all([1, 2, 3].map((i) => line({ initial_message: `Hello from line ${i}.` })));
    const calls = await Promise.all(numbers.map((to, i) => emu.placeInboundCall({ from: `+1555000000${i}`, to })));
    await Promise.all(calls.map((c) => c.waitForAgentAudio({ timeoutMs: 8000 })));
    await Promise.all(calls.map((c) => c.waitForAgentSilence(300)));
    const records = await Promise.all(calls.map((c) => until(async () => { const r = await callRecord(c.sid); return r?.transcript ? r : null; }, 'a record with its transcript')));
    records.forEach((r, i) => {
      expect(r.transcript).toBe(`BOT: Hello from line ${i + 1}.`);
      expect(r.from_number).toBe(`+1555000000${i}`);
    });
    // Each caller heard exactly one greeting's worth of audio (4 words), not a neighbour's.
    const heard = calls.map((c) => c.metrics().agentAudioMs);
    for (const ms of heard) expect(ms).toBeGreaterThan(300);
    // Same-length greetings: a caller who also got a neighbour's would have heard about twice as much.
    expect(Math.max(...heard) / Math.min(...heard)).toBeLessThan(1.5);
    await Promise.all(calls.map((c) => c.hangup()));
    await Promise.all(records.map((r) => ended(r.id)));
  });
});
