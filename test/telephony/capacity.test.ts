/**
 * A node's call limit (SWITCHBOARD_MAX_CALLS), end to end through the carrier emulator: past it an inbound
 * caller hears busy and the call is recorded as not connected, calls/create answers 503 without dialling,
 * and once a call ends the node takes calls again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/telephony/emulator/index.js';
import { startDeepgramFake, type DeepgramFake } from '../fakes/deepgram.js';
import { startOpenAIChatFake, type OpenAIChatFake } from '../fakes/openai.js';
import { startTelnyxFake, type TelnyxFake } from '../fakes/telnyx.js';
import { carrierConnection } from '../helpers/carriers.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

const DG_KEY = 'dg-capacity';
const OPENAI_KEY = 'sk-capacity';
const CALLER = '+15557654321';
type Json = Record<string, any>;

/** A node that takes one call at a time, on the vendor fakes, with `carrier` pointing it at the carrier. */
const oneCallNode = (carrier: Record<string, string>, deepgram: DeepgramFake, openai: OpenAIChatFake) => startTestServer({
  ...carrier, DEEPGRAM_API_KEY: DG_KEY, DEEPGRAM_BASE_URL: deepgram.url,
  OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: `${openai.url}/v1`, SWITCHBOARD_VAD: 'energy', SWITCHBOARD_MAX_CALLS: '1',
});

/** Links `number` (in the carrier account behind `conn`) with a greeting front-desk agent. */
async function linkFrontDesk(s: TestServer, number: string, conn: string): Promise<void> {
  const r = await s.api('/v1/numbers/link', {
    body: {
      phone_number: number, telephony_account_connection: conn,
      inbound_agent: { prompt: { content: 'You are the front desk.' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' }, initial_message: 'Hello, front desk.' },
    },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

describe('SWITCHBOARD_MAX_CALLS', () => {
  let emu: Emulator;
  let deepgram: DeepgramFake;
  let openai: OpenAIChatFake;
  let s: TestServer;
  let number: string;

  beforeAll(async () => {
    [emu, deepgram, openai] = await Promise.all([
      startEmulator({ timeScale: 0.2 }), startDeepgramFake(DG_KEY), startOpenAIChatFake({ validKey: OPENAI_KEY, prefix: '/v1' }),
    ]);
    s = await oneCallNode({ TWILIO_API_BASE_URL: emu.url }, deepgram, openai);
    const conn = await carrierConnection(s, { twilio: emu });
    number = '+14155550777';
    emu.addNumber(number);
    await linkFrontDesk(s, number, conn);
  });
  afterAll(async () => { await s?.close(); await Promise.all([emu?.close(), deepgram?.close(), openai?.close()]); });

  const record = async (sid: string): Promise<Json | undefined> =>
    (await s.api(`/v1/calls/list?filters=${encodeURIComponent(JSON.stringify({ telephony_id: sid }))}`)).body.items[0];

  it('a full node gives the next caller busy and records it; calls/create gets 503 and dials nobody; once the call ends the node answers again', async () => {
    const first = await emu.placeInboundCall({ from: CALLER, to: number });
    await first.waitForStream();
    await first.waitForAgentAudio({ timeoutMs: 8000 });

    const second = await emu.placeInboundCall({ from: CALLER, to: number });
    expect(await second.waitForEnd()).toBe('busy');
    expect(second.events.some((e) => e.type === 'reject')).toBe(true);
    const refused = await until(() => record(second.sid), 'the refused call\'s record');
    expect(refused).toMatchObject({ status: 'error', stage_outcome: 'call_did_not_connect' });
    expect(refused!.error_message).toMatch(/limit of 1 concurrent calls \(SWITCHBOARD_MAX_CALLS\)/);

    const dialled = emu.calls.length;
    const recorded = (await s.api('/v1/calls/list?size=1')).body.total;
    const created = await s.api('/v1/calls/create', {
      body: { from_number: number, to_number: '+12125550142', agent: { prompt: { content: 'Confirm.' }, voice: { type: 'voice_deepgram', model: 'aura-2-thalia-en' } } },
    });
    expect(created.status).toBe(503);
    expect(created.body.detail).toMatch(/SWITCHBOARD_MAX_CALLS/);
    expect(emu.calls.length).toBe(dialled);
    expect((await s.api('/v1/calls/list?size=1')).body.total).toBe(recorded);

    await first.hangup();
    const firstRecord = (await record(first.sid))!;
    await until(async () => ((await s.api(`/v1/calls?id=${firstRecord.id}`)).body.status === 'ended') || undefined, 'the first call to end');
    const third = await emu.placeInboundCall({ from: CALLER, to: number });
    await third.waitForStream();
    await third.waitForAgentAudio({ timeoutMs: 8000 });
    await third.hangup();
    // The carrier's later word on the refused call does not rewrite why it was refused.
    expect(await record(second.sid)).toMatchObject({ status: 'error', stage_outcome: 'call_did_not_connect', error_message: refused!.error_message });
  }, 60_000);

  it('calls arriving together cannot all slip past the limit: one is answered, the other hears busy', async () => {
    await until(async () => (await s.api('/v1/calls/list?size=20')).body.items.every((c: Json) => c.status === 'ended' || c.status === 'error') || undefined, 'no call up');
    const [a, b] = await Promise.all([emu.placeInboundCall({ from: CALLER, to: number }), emu.placeInboundCall({ from: '+15557650000', to: number })]);
    const busy = await Promise.race([a.waitForEnd().then(() => a), b.waitForEnd().then(() => b)]);
    const answered = busy === a ? b : a;
    expect(busy.status).toBe('busy');
    await answered.waitForStream();
    await answered.waitForAgentAudio({ timeoutMs: 8000 });
    await answered.hangup();
  }, 60_000);
});

describe('SWITCHBOARD_MAX_CALLS on Telnyx', () => {
  const TELNYX_KEY = 'KEYtelnyx-capacity-0123456789';
  const NUMBER = '+14155550778';
  let telnyx: TelnyxFake;
  let deepgram: DeepgramFake;
  let openai: OpenAIChatFake;
  let s: TestServer;

  beforeAll(async () => {
    [telnyx, deepgram, openai] = await Promise.all([
      startTelnyxFake(TELNYX_KEY), startDeepgramFake(DG_KEY), startOpenAIChatFake({ validKey: OPENAI_KEY, prefix: '/v1' }),
    ]);
    s = await oneCallNode({ TELNYX_API_BASE_URL: telnyx.url }, deepgram, openai);
    const conn = await carrierConnection(s, { telnyx, apiKey: TELNYX_KEY });
    telnyx.addAccountNumber(NUMBER, null);
    await linkFrontDesk(s, NUMBER, conn);
  });
  afterAll(async () => { await s?.close(); await Promise.all([telnyx?.close(), deepgram?.close(), openai?.close()]); });

  it('a full node rejects the next caller as busy (USER_BUSY) and records why', async () => {
    const first = telnyx.placeInboundCall({ from: CALLER, to: NUMBER });
    await first.waitUntil(() => first.streamConnected, 'the media stream');
    const second = telnyx.placeInboundCall({ from: CALLER, to: NUMBER });
    await second.waitUntil(() => second.hangupCause !== null, 'the second call to end');
    expect(second.hangupCause).toBe('user_busy');
    expect(second.streamConnected).toBe(false);
    const calls = await until(async () => {
      const r = await s.api('/v1/calls/list?size=10');
      return r.body.items.length === 2 ? r.body.items as Json[] : undefined;
    }, 'both call records');
    const refused = calls.find((c) => c.status === 'error')!;
    expect(refused).toMatchObject({ stage_outcome: 'call_did_not_connect', telephony_provider: 'telnyx' });
    expect(refused.error_message).toMatch(/SWITCHBOARD_MAX_CALLS/);
    first.hangup();
  }, 60_000);
});
