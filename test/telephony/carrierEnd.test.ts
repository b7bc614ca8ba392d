/**
 * What the carriers' word about a call does to its record, the same on Twilio and Telnyx: the answering
 * machine's verdict goes to the conversation wherever it runs (and is applied here only when none runs the
 * call), and the carrier's "call ended" waits for a running conversation to record who hung up. The real server
 * against the Twilio emulator and the Telnyx fake; "another node" is a second call bus with its own live calls
 * on the same database, as a second process would have.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webhooks from 'twilio/lib/webhooks/webhooks.js';
import { CallBus, type Verdict } from '../../src/calls/bus.js';
import { LiveCalls } from '../../src/calls/liveCalls.js';
import { createLogger } from '../../src/log.js';
import { startEmulator, type Emulator } from '../../src/telephony/emulator/index.js';
import { encodeClientState } from '../../src/telephony/telnyx/webhooks.js';
import { startDeepgramFake, type DeepgramFake } from '../fakes/deepgram.js';
import { startOpenAIChatFake, type OpenAIChatFake } from '../fakes/openai.js';
import { startTelnyxFake, type TelnyxFake } from '../fakes/telnyx.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { carrierConnection } from '../helpers/carriers.js';
import { until as poll } from '../helpers/until.js';

const until = <T>(probe: () => T | Promise<T>, what: string, timeoutMs = 10_000) => poll(probe, what, timeoutMs);

const TELNYX_KEY = 'KEYtelnyx-carrier-end-0123456789';
const DG_KEY = 'dg-carrier-end';
const OPENAI_KEY = 'sk-carrier-end';
const AGENT = { prompt: { content: 'Be brief.' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' }, initial_message: 'Hello there.' };

type Json = Record<string, any>;
type Carrier = 'twilio' | 'telnyx';

describe('the carriers\' word about a call, the same on Twilio and Telnyx', () => {
  let emu: Emulator;
  let telnyx: TelnyxFake;
  let deepgram: DeepgramFake;
  let openai: OpenAIChatFake;
  let s: TestServer;
  const conn: Record<Carrier, string> = { twilio: '', telnyx: '' };
  let seq = 0;

  beforeAll(async () => {
    [emu, telnyx, deepgram, openai] = await Promise.all([
      startEmulator(), startTelnyxFake(TELNYX_KEY), startDeepgramFake(DG_KEY), startOpenAIChatFake({ validKey: OPENAI_KEY, prefix: '/v1' }),
    ]);
    s = await startTestServer({
      TWILIO_API_BASE_URL: emu.url, TELNYX_API_BASE_URL: telnyx.url, DEEPGRAM_API_KEY: DG_KEY, DEEPGRAM_BASE_URL: deepgram.url,
      OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: `${openai.url}/v1`, SWITCHBOARD_VAD: 'energy',
    });
    conn.twilio = await carrierConnection(s, { twilio: emu });
    conn.telnyx = await carrierConnection(s, { telnyx, apiKey: TELNYX_KEY });
  });
  afterAll(async () => { await s?.close(); await Promise.all([emu?.close(), telnyx?.close(), deepgram?.close(), openai?.close()]); });

  /** One of our numbers at the carrier, linked with an agent. */
  async function line(carrier: Carrier): Promise<string> {
    const number = `+1415555${String(300 + ++seq).padStart(4, '0')}`;
    if (carrier === 'twilio') emu.addNumber(number);
    else telnyx.addAccountNumber(number, null);
    const r = await s.api('/v1/numbers/link', { body: { phone_number: number, telephony_account_connection: conn[carrier], inbound_agent: AGENT } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return number;
  }

  const record = async (id: string): Promise<Json> => (await s.api(`/v1/calls?id=${id}`)).body;

  /** An outbound call that rings (for long): answered at the carrier as far as its record knows, or not yet. */
  async function ringingCall(carrier: Carrier): Promise<Json> {
    const from = await line(carrier);
    const to = `+1212555${String(300 + ++seq).padStart(4, '0')}`;
    if (carrier === 'twilio') emu.setDestination(to, { answer: 'human', ringMs: 30_000 });
    else telnyx.setDestination(to, { outcome: 'answer', ringMs: 30_000 });
    const created = await s.api('/v1/calls/create', { body: { from_number: from, to_number: to, on_no_human_answer: 'hangup', agent: AGENT } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body;
  }

  /** The carrier's answering-machine verdict "machine", signed as the carrier signs it. */
  async function machineVerdict(carrier: Carrier, call: Json): Promise<number> {
    if (carrier === 'twilio') {
      const url = `${s.url}/telephony/twilio/amd?call_id=${call.id}`;
      const params = { CallSid: call.telephony_id, AccountSid: emu.accountSid, AnsweredBy: 'machine_start', MachineDetectionDuration: '1200' };
      const res = await fetch(url, {
        method: 'POST', body: new URLSearchParams(params).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': webhooks.getExpectedTwilioSignature(emu.authToken, url, params) },
      });
      return res.status;
    }
    return telnyxEvent('call.machine.detection.ended', call, { result: 'machine' });
  }

  async function telnyxEvent(type: string, call: Json, extra: Json): Promise<number> {
    const body = JSON.stringify({
      data: {
        record_type: 'event', event_type: type, id: crypto.randomUUID(), occurred_at: new Date().toISOString(),
        payload: {
          call_control_id: call.telephony_id, call_leg_id: 'leg', call_session_id: 'session', connection_id: 'app',
          from: call.from_number, to: call.to_number, client_state: encodeClientState({ call_id: call.id }), ...extra,
        },
      },
      meta: { attempt: 1 },
    });
    const res = await fetch(`${s.url}/telephony/telnyx/events`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...telnyx.sign(body) } });
    return res.status;
  }

  const carrierEnded = (carrier: Carrier, call: Json): boolean => (carrier === 'twilio'
    ? ['completed', 'canceled', 'busy', 'no-answer', 'failed'].includes(emu.getCall(call.telephony_id)!.status)
    : telnyx.calls.get(call.telephony_id)!.state === 'ended');

  /** "Another node": its own live calls and call bus on the same database, running `callId`'s conversation. */
  async function otherNode(callId: string, userId: string): Promise<{ heard: Verdict[]; close(): Promise<void> }> {
    const live = new LiveCalls();
    const heard: Verdict[] = [];
    live.add({ callId, userId, finished: new Promise(() => {}), end: async () => {}, machineDetected: (v) => heard.push(v) });
    const bus = new CallBus(s.running.store.database, live, createLogger('silent'));
    await bus.start();
    return { heard, close: () => bus.close() };
  }

  it.each(['twilio', 'telnyx'] as const)('%s: a machine verdict for a call whose conversation runs on another node goes to that node alone; this one neither hangs up nor ends the record', async (carrier) => {
    const call = await ringingCall(carrier);
    // Its media stream is up on the other node (the record says so), which runs its conversation.
    const { store } = s.running;
    await store.calls.advance(store.db, call.id, { status: 'in_progress' });
    expect(await store.calls.claimMedia(store.db, call.id)).toBeDefined();
    const other = await otherNode(call.id, call.user_id);
    try {
      expect(await machineVerdict(carrier, call)).toBeLessThan(300);
      await until(() => other.heard.length > 0, 'the verdict at the other node');
      expect(other.heard).toEqual(['machine']);
      // The conversation decides what a machine means (on_no_human_answer): the record and the call are its to
      // end. The verdict is on the record all the same (a NOTIFY can be missed while its listener reconnects).
      const rec = await record(call.id);
      expect(rec).toMatchObject({ status: 'in_progress', stage_outcome: null, human_detection_result: 'no_human' });
      expect(carrierEnded(carrier, call)).toBe(false);
    } finally {
      await other.close();
      await s.api(`/v1/calls/end?id=${call.id}`, { method: 'POST' });
    }
  });

  it.each(['twilio', 'telnyx'] as const)('%s: a machine verdict for a call no conversation runs is applied where it lands: recorded, and the machine hung up on', async (carrier) => {
    const call = await ringingCall(carrier);
    // Answered, but its media stream never connected anywhere.
    const { store } = s.running;
    await store.calls.advance(store.db, call.id, { status: 'in_progress' });
    expect(await machineVerdict(carrier, call)).toBeLessThan(300);
    const rec = await record(call.id);
    expect(rec).toMatchObject({ status: 'ended', stage_outcome: 'human_unanswered', human_detection_result: 'no_human' });
    await until(() => carrierEnded(carrier, call), 'the carrier to end the call');
  });

  it.each(['twilio', 'telnyx'] as const)('%s: the carrier reporting the end while the conversation still runs here: the record is never ended without who hung up', async (carrier) => {
    const number = await line(carrier);
    const caller = `+1555700${String(++seq).padStart(4, '0')}`;
    let callRef: { telephonyId: string; hangup(): Promise<unknown> | void };
    if (carrier === 'twilio') {
      const c = await emu.placeInboundCall({ from: caller, to: number });
      await c.waitForStream();
      callRef = { telephonyId: c.sid, hangup: () => c.hangup() };
    } else {
      const c = telnyx.placeInboundCall({ from: caller, to: number });
      await c.waitUntil(() => c.streamConnected, 'the media stream');
      callRef = { telephonyId: c.callControlId, hangup: () => c.hangup() };
    }
    const call = await until(async () => {
      const items = (await s.api(`/v1/calls/list?filters=${encodeURIComponent(JSON.stringify({ telephony_id: callRef.telephonyId }))}`)).body.items as Json[];
      return items[0]?.status === 'in_progress' ? items[0] : null;
    }, 'the conversation');
    try {
      // The carrier's final word arrives before the media stream closes (carriers do not order the two).
      let status: number;
      if (carrier === 'twilio') {
        const url = `${s.url}/telephony/twilio/status`;
        const params = { CallSid: callRef.telephonyId, AccountSid: emu.accountSid, CallStatus: 'completed', Direction: 'inbound', From: caller, To: number };
        status = (await fetch(url, {
          method: 'POST', body: new URLSearchParams(params).toString(),
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': webhooks.getExpectedTwilioSignature(emu.authToken, url, params) },
        })).status;
      } else {
        status = await telnyxEvent('call.hangup', call, { hangup_cause: 'normal_clearing', hangup_source: 'caller', sip_hangup_cause: '200', state: 'hangup' });
      }
      expect(status).toBeLessThan(300);
      // (Telnyx's webhook is answered at once; the record follows once the conversation's grace is over.)
      const rec = await until(async () => { const r = await record(call.id); return r.status === 'ended' ? r : undefined; }, 'the record to end', 6000);
      expect(rec.stage_outcome).toBe('human_disconnected');
    } finally {
      await callRef.hangup();
    }
  });
});
