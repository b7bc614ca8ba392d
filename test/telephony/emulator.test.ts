/**
 * The local carrier emulator, seen the way an application sees Twilio: real HTTP against its REST
 * subset (auth, errors, numbers, calls), signed webhooks checked with the `twilio` package's own
 * validateRequest, and a small application server (HTTP + WebSocket) that answers TwiML and speaks the
 * Media Streams protocol — message shapes and order, real-time pacing, marks, clear, DTMF, stop, REST
 * hang-up and redirect, <Reject>, busy / no-answer / machine outbound calls with their callbacks.
 * Timings are asserted only with generous bounds; nothing here measures performance.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMuLaw, encodeMuLaw } from '../../src/engine/audio/g711.js';
import { decodeWav, encodeWav } from '../../src/engine/audio/wav.js';
import { runEmulatorCli, startEmulator, type CallHandle, type Emulator } from '../../src/telephony/emulator/index.js';
import { parseTwiml } from '../../src/telephony/emulator/twiml.js';
import { parseXml } from '../../src/telephony/emulator/xml.js';
import { startTwimlApp, type TwimlApp } from '../helpers/twimlApp.js';
import { until } from '../helpers/until.js';

const TOKEN = '0123456789abcdef0123456789abcdef';
const SID = `AC${'a1'.repeat(16)}`;

let emu: Emulator;
// A tiny application: TwiML by path, callbacks recorded, media streams scripted per path.
let app: TwimlApp;
const hitsFor = (path: string) => app.hitsFor(path);

beforeAll(async () => {
  app = await startTwimlApp(TOKEN);
  emu = await startEmulator({ accountSid: SID, authToken: TOKEN, timeScale: 0.1, sayMsPerChar: 20, dialLegMs: 1000 });
}, 30_000);

afterAll(async () => {
  await emu?.close();
  await app?.close();
});

async function rest(method: string, path: string, params?: Record<string, string | string[]>, auth = `${SID}:${TOKEN}`) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
  const isGet = method === 'GET' || method === 'DELETE';
  const url = `${emu.url}/2010-04-01/Accounts/${path.startsWith('/') ? SID + path : path}${isGet && params ? `?${body}` : ''}`;
  const res = await fetch(url, {
    method,
    headers: { authorization: `Basic ${Buffer.from(auth).toString('base64')}`, ...(isGet ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) },
    body: isGet ? undefined : body.toString(),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const streamTwiml = (path: string, params: Record<string, string> = {}, after = '', query = '') =>
  `<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="${app.wsUrl}${path}${query}">${Object.entries(params).map(([k, v]) => `<Parameter name="${k}" value="${v}"/>`).join('')}</Stream></Connect>${after}</Response>`;

/** A tone as μ-law bytes, loud enough to count as speech. */
function toneMulaw(ms: number, freq = 440): Uint8Array {
  const n = (ms * 8000) / 1000;
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++) pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * freq * i) / 8000));
  return encodeMuLaw(pcm);
}

function speech(ms: number): Int16Array {
  const n = (ms * 8000) / 1000;
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++) pcm[i] = Math.round(6000 * Math.sin((2 * Math.PI * 220 * i) / 8000));
  return pcm;
}

const audible = (payload: string) => { const pcm = decodeMuLaw(Buffer.from(payload, 'base64')); return pcm.some((s) => Math.abs(s) > 1000); };

async function inboundWithStream(number: string, path: string, opts: { audio?: Int16Array; params?: Record<string, string>; after?: string; query?: string } = {}) {
  emu.addNumber(number, { voiceUrl: `${app.url}/voice${path}`, statusCallback: `${app.url}/status${path}` });
  app.twiml.set(`/voice${path}`, () => streamTwiml(`/media${path}`, opts.params, opts.after, opts.query));
  const call = await emu.placeInboundCall({ from: '+15005550006', to: number, audio: opts.audio });
  const peer = await until(() => app.peers.find((p) => p.path === `/media${path}`), 'the media socket', 5000);
  await peer.waitFor((m) => m.event === 'start');
  return { call, peer };
}

// ---- TwiML parsing ----

describe('TwiML parser', () => {
  it('reads declarations, attributes, entities, self-closing tags, comments and CDATA', () => {
    const doc = parseXml(`<?xml version="1.0" encoding="UTF-8"?>
      <!-- hello --><Response><Say voice='alice'>Tom &amp; Jerry &lt;3 &quot;hi&quot; &apos;x&apos; &#65;&#x42;</Say><Pause length="2"/><![CDATA[]]></Response>`);
    expect(doc.name).toBe('Response');
    const verbs = parseTwiml(`<Response><Say voice='alice'>Tom &amp; Jerry &lt;3 &quot;hi&quot; &apos;x&apos; &#65;&#x42;</Say><Pause length="2"/>
      <Connect action="/next"><Stream url="wss://x.test/m?a=1&amp;b=2"><Parameter name="k" value="v&amp;w"/></Stream></Connect>
      <Dial callerId="+14155550100"><Number>+12125550111</Number></Dial><Dial>+13125550122</Dial><Reject reason="busy"/><Hangup/></Response>`);
    expect(verbs[0]).toEqual({ verb: 'Say', text: 'Tom & Jerry <3 "hi" \'x\' AB', voice: 'alice', language: undefined, loop: 1 });
    expect(verbs[1]).toEqual({ verb: 'Pause', length: 2 });
    expect(verbs[2]).toMatchObject({ verb: 'Connect', action: '/next', stream: { url: 'wss://x.test/m?a=1&b=2', parameters: { k: 'v&w' } } });
    expect(verbs[3]).toMatchObject({ verb: 'Dial', numbers: ['+12125550111'], callerId: '+14155550100' });
    expect(verbs[4]).toMatchObject({ verb: 'Dial', numbers: ['+13125550122'] });
    expect(verbs.slice(5)).toEqual([{ verb: 'Reject', reason: 'busy' }, { verb: 'Hangup' }]);
  });

  it('refuses malformed documents', () => {
    for (const bad of ['<Response><Say>x</Response>', '<Response>&nbsp;</Response>', '<!DOCTYPE x><Response/>', '<Response a="1" a="2"/>',
      '<Response/><Extra/>', '<Response><Say>a & b</Say></Response>', '']) {
      expect(() => parseTwiml(bad), bad).toThrow();
    }
    expect(() => parseTwiml('<Hello/>')).toThrow(/Response/);
  });
});

// ---- REST ----

describe('REST API', () => {
  it('answers 401 with Twilio\'s error body for missing or wrong credentials, 404 for another account', async () => {
    const res = await fetch(`${emu.url}/2010-04-01/Accounts/${SID}/Calls.json`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ code: 20003, message: expect.any(String), more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 });
    const wrong = await rest('GET', '/Calls.json', undefined, `${SID}:nope`);
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe(20003);
    const other = await rest('GET', `AC${'b2'.repeat(16)}/Calls.json`);
    expect(other.status).toBe(404);
    expect(other.body).toMatchObject({ code: 20404, status: 404 });
    expect((await rest('GET', `/Calls/CA${'0'.repeat(32)}.json`)).body).toMatchObject({ code: 20404, status: 404, more_info: expect.stringContaining('20404') });
    const acct = await rest('GET', `${SID}.json`);
    expect(acct.body).toMatchObject({ sid: SID, status: 'active' });
  });

  it('searches, buys, reads, updates and releases numbers', async () => {
    const local = await rest('GET', '/AvailablePhoneNumbers/US/Local.json', { AreaCode: '512', PageSize: '3' });
    expect(local.status).toBe(200);
    expect(local.body.available_phone_numbers).toHaveLength(3);
    const first = local.body.available_phone_numbers[0];
    expect(first).toEqual({
      friendly_name: '(512) 555-0100', phone_number: '+15125550100', lata: expect.any(String), locality: 'Austin', rate_center: expect.any(String),
      latitude: expect.any(String), longitude: expect.any(String), region: 'TX', postal_code: expect.any(String), iso_country: 'US',
      address_requirements: 'none', beta: false, capabilities: { voice: true, SMS: true, MMS: true },
    });
    const wild = await rest('GET', '/AvailablePhoneNumbers/US/Local.json', { AreaCode: '512', Contains: '555012*' });
    expect(wild.body.available_phone_numbers.map((n: any) => n.phone_number)).toEqual(Array.from({ length: 10 }, (_, i) => `+1512555012${i}`));
    const tollFree = await rest('GET', '/AvailablePhoneNumbers/US/TollFree.json', { PageSize: '2' });
    expect(tollFree.body.available_phone_numbers[0]).toMatchObject({ phone_number: '+18005550100', locality: null, capabilities: { voice: true } });
    expect((await rest('GET', '/AvailablePhoneNumbers/US/Local.json', { Contains: '*' })).status).toBe(400);

    const bought = await rest('POST', '/IncomingPhoneNumbers.json', { PhoneNumber: '+15125550100', VoiceUrl: 'https://app.test/voice', StatusCallback: 'https://app.test/status', FriendlyName: 'mine' });
    expect(bought.status).toBe(201);
    expect(bought.body).toMatchObject({
      account_sid: SID, phone_number: '+15125550100', friendly_name: 'mine', voice_url: 'https://app.test/voice', voice_method: 'POST',
      status_callback: 'https://app.test/status', status_callback_method: 'POST', capabilities: { voice: true },
      uri: `/2010-04-01/Accounts/${SID}/IncomingPhoneNumbers/${bought.body.sid}.json`,
    });
    expect(bought.body.sid).toMatch(/^PN[0-9a-f]{32}$/);
    expect(bought.body.date_created).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);

    const again = await rest('POST', '/IncomingPhoneNumbers.json', { PhoneNumber: '+15125550100' });
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ code: 21422, status: 400 });
    const byArea = await rest('POST', '/IncomingPhoneNumbers.json', { AreaCode: '512' });
    expect(byArea.body.phone_number).toBe('+15125550101');
    expect((await rest('POST', '/IncomingPhoneNumbers.json', { AreaCode: '999' })).body).toMatchObject({ code: 21452, status: 400 });
    const after = await rest('GET', '/AvailablePhoneNumbers/US/Local.json', { AreaCode: '512', PageSize: '1' });
    expect(after.body.available_phone_numbers[0].phone_number).toBe('+15125550102');

    const list = await rest('GET', '/IncomingPhoneNumbers.json', { PhoneNumber: '+15125550100' });
    expect(list.body.incoming_phone_numbers.map((n: any) => n.sid)).toEqual([bought.body.sid]);
    const updated = await rest('POST', `/IncomingPhoneNumbers/${bought.body.sid}.json`, { VoiceUrl: 'https://other.test/v', VoiceMethod: 'GET' });
    expect(updated.body).toMatchObject({ voice_url: 'https://other.test/v', voice_method: 'GET', status_callback: 'https://app.test/status' });
    expect((await rest('DELETE', `/IncomingPhoneNumbers/${bought.body.sid}.json`)).status).toBe(204);
    expect((await rest('GET', `/IncomingPhoneNumbers/${bought.body.sid}.json`)).status).toBe(404);
    await rest('DELETE', `/IncomingPhoneNumbers/${byArea.body.sid}.json`);
  });

  it('validates a new call like Twilio', async () => {
    emu.addNumber('+14155550199');
    const base = { Url: 'https://app.test/x' };
    expect((await rest('POST', '/Calls.json', { ...base, From: '+14155550199', To: '12345' })).body).toMatchObject({ code: 21211, status: 400 });
    expect((await rest('POST', '/Calls.json', { ...base, From: 'abc', To: '+12125550100' })).body).toMatchObject({ code: 21212 });
    expect((await rest('POST', '/Calls.json', { ...base, From: '+13125550100', To: '+12125550100' })).body).toMatchObject({ code: 21210 });
    expect((await rest('POST', '/Calls.json', { From: '+14155550199', To: '+12125550100' })).body).toMatchObject({ code: 21205 });
  });
});

// ---- inbound calls and the media stream ----

describe('inbound call with a media stream', () => {
  it('signs the webhook and the handshake, and streams connected, start and real-time media', async () => {
    const { call, peer } = await inboundWithStream('+14155550101', '/a', { audio: speech(300), params: { token: 'a&amp;b', lang: 'en' } });
    const voice = hitsFor('/voice/a')[0];
    expect(voice.signed).toBe(true);
    expect(voice.params).toMatchObject({
      CallSid: call.sid, AccountSid: SID, From: '+15005550006', To: '+14155550101', CallStatus: 'ringing',
      Direction: 'inbound', ApiVersion: '2010-04-01', Caller: '+15005550006', Called: '+14155550101',
    });
    expect(peer.signed).toBe(true);
    expect(peer.messages[0]).toMatchObject({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    const start = peer.messages[1];
    expect(start).toMatchObject({
      event: 'start', sequenceNumber: '1', streamSid: expect.stringMatching(/^MZ[0-9a-f]{32}$/),
      start: {
        accountSid: SID, callSid: call.sid, tracks: ['inbound'], customParameters: { token: 'a&b', lang: 'en' },
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
    });
    expect(start.start.streamSid).toBe(start.streamSid);

    await new Promise((r) => setTimeout(r, 1000));
    const media = peer.messages.filter((m) => m.event === 'media');
    expect(media.length).toBeGreaterThan(35); // ≈50 per second in real time
    expect(media.length).toBeLessThan(70);
    media.forEach((m, i) => {
      expect(m.media).toMatchObject({ track: 'inbound', chunk: String(i + 1), timestamp: String(i * 20) });
      expect(Buffer.from(m.media.payload, 'base64')).toHaveLength(160);
      expect(m.streamSid).toBe(start.streamSid);
    });
    const seqs = peer.messages.slice(1).map((m) => Number(m.sequenceNumber));
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    // The caller's 300 ms come first, then μ-law silence.
    expect(media.slice(0, 15).every((m) => audible(m.media.payload))).toBe(true);
    expect(Buffer.from(media[30].media.payload, 'base64').every((b) => b === 0xff)).toBe(true);
    const spread = media[media.length - 1].at - media[0].at;
    expect(spread).toBeGreaterThan((media.length - 1) * 20 * 0.6);

    await call.hangup();
    const stop = await peer.waitFor((m) => m.event === 'stop');
    expect(stop).toMatchObject({ streamSid: start.streamSid, stop: { accountSid: SID, callSid: call.sid } });
    await until(() => peer.closed, 'the socket to close', 3000);
    expect(await call.waitForEnd()).toBe('completed');
    const status = hitsFor('/status/a');
    expect(status).toHaveLength(1);
    expect(status[0].signed).toBe(true);
    expect(status[0].params).toMatchObject({ CallSid: call.sid, CallStatus: 'completed', Direction: 'inbound', CallDuration: expect.stringMatching(/^\d+$/), SequenceNumber: '0' });
    expect(call.protocolViolations).toEqual([]);
  });

  it('plays agent audio in real time, returns marks after playback, and clear drops audio and returns pending marks', async () => {
    const { call, peer } = await inboundWithStream('+14155550102', '/b');
    const sid = peer.streamSid!;
    const payload = (ms: number) => Buffer.from(toneMulaw(ms)).toString('base64');

    const t0 = Date.now();
    peer.send({ event: 'media', streamSid: sid, media: { payload: payload(400) } });
    peer.send({ event: 'mark', streamSid: sid, mark: { name: 'first' } });
    const first = await peer.waitFor((m) => m.event === 'mark' && m.mark.name === 'first', 3000);
    expect(first.at - t0).toBeGreaterThanOrEqual(350);
    expect(first.at - t0).toBeLessThan(1500);
    expect(first).toMatchObject({ streamSid: sid, sequenceNumber: expect.any(String) });

    // A mark with nothing queued comes straight back.
    await new Promise((r) => setTimeout(r, 60));
    const t1 = Date.now();
    peer.send({ event: 'mark', streamSid: sid, mark: { name: 'empty' } });
    expect((await peer.waitFor((m) => m.event === 'mark' && m.mark.name === 'empty')).at - t1).toBeLessThan(100);

    peer.send({ event: 'media', streamSid: sid, media: { payload: payload(1500) } });
    peer.send({ event: 'mark', streamSid: sid, mark: { name: 'long' } });
    peer.send({ event: 'media', streamSid: sid, media: { payload: payload(500) } });
    peer.send({ event: 'mark', streamSid: sid, mark: { name: 'longer' } });
    await call.waitForAgentAudio({ timeoutMs: 2000 });
    await new Promise((r) => setTimeout(r, 300));
    const tClear = Date.now();
    const clearAtMs = call.now();
    peer.send({ event: 'clear', streamSid: sid });
    const long = await peer.waitFor((m) => m.event === 'mark' && m.mark.name === 'long');
    const longer = await peer.waitFor((m) => m.event === 'mark' && m.mark.name === 'longer');
    expect(long.at - tClear).toBeLessThan(200);
    expect(peer.messages.indexOf(long)).toBeLessThan(peer.messages.indexOf(longer));
    await new Promise((r) => setTimeout(r, 300));

    expect(call.marks.map((m) => [m.name, m.cleared])).toEqual([['first', false], ['empty', false], ['long', true], ['longer', true]]);
    expect(call.clears).toHaveLength(1);
    expect(call.clears[0].discardedMs).toBeGreaterThan(1000);
    expect(call.clears[0].marksReturned).toBe(2);
    // Nothing the agent sent reached the caller after the clear.
    const speechAfter = call.metrics().agentSpeech.filter((s) => s.endMs > call.clears[0].atMs + 1);
    expect(speechAfter).toEqual([]);
    expect(call.clears[0].atMs).toBeGreaterThanOrEqual(clearAtMs - 1);
    const heard = call.metrics().agentSpeech;
    expect(heard[0].endMs - heard[0].startMs).toBeGreaterThan(350); // the 400 ms tone
    expect(heard[heard.length - 1].cut).toBe(true);
    const total = call.metrics().agentAudioMs;
    expect(total).toBeGreaterThan(600);
    expect(total).toBeLessThan(1400);
    const wav = decodeWav(call.agentWav());
    expect(wav.sampleRate).toBe(8000);
    expect(wav.samples.length).toBeGreaterThan(8000 * 0.6);
    expect(call.protocolViolations).toEqual([]);

    // DTMF from the caller.
    await call.sendDtmf('1#');
    const digits = peer.messages.filter((m) => m.event === 'dtmf');
    expect(digits.map((m) => m.dtmf)).toEqual([{ track: 'inbound_track', digit: '1' }, { track: 'inbound_track', digit: '#' }]);
    expect(digits[0]).toMatchObject({ streamSid: sid, sequenceNumber: expect.any(String) });

    await call.hangup();
    expect(await call.waitForEnd()).toBe('completed');
  });

  it('records protocol violations and ignores the offending messages', async () => {
    const { call, peer } = await inboundWithStream('+14155550103', '/c');
    peer.send('not json');
    peer.send({ event: 'media', streamSid: 'MZ0000', media: { payload: 'AAAA' } });
    peer.send({ event: 'media', streamSid: peer.streamSid, media: { payload: '***' } });
    peer.send({ event: 'mark', streamSid: peer.streamSid, mark: {} });
    peer.send({ event: 'dance', streamSid: peer.streamSid });
    await until(() => call.protocolViolations.length >= 5, 'five violations', 2000);
    expect(call.protocolViolations.map((v) => v.reason)).toEqual([
      'message is not JSON', expect.stringContaining('for streamSid MZ0000'), 'media.payload is not base64',
      'mark without a string mark.name', expect.stringContaining('unknown event "dance"'),
    ]);
    expect(emu.protocolViolations.length).toBeGreaterThanOrEqual(5);
    expect(call.metrics().agentAudioMs).toBe(0);
    await call.hangup();
    await call.waitForEnd();
  });

  it('ends the stream when the call is completed through the REST API', async () => {
    const { call, peer } = await inboundWithStream('+14155550104', '/d');
    const res = await rest('POST', `/Calls/${call.sid}.json`, { Status: 'completed' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ sid: call.sid, status: 'completed', direction: 'inbound' });
    await peer.waitFor((m) => m.event === 'stop');
    await until(() => peer.closed, 'close', 3000);
    expect(await call.waitForEnd()).toBe('completed');
    const fetched = await rest('GET', `/Calls/${call.sid}.json`);
    expect(fetched.body).toMatchObject({ status: 'completed', end_time: expect.any(String), duration: expect.stringMatching(/^\d+$/) });
    expect(call.events.find((e) => e.type === 'hangup')).toMatchObject({ by: 'api' });
    expect((await rest('POST', `/Calls/${call.sid}.json`, { Twiml: '<Response/>' })).body).toMatchObject({ code: 21220 });
  });

  it('redirects a running stream to new TwiML (stop, then the new verbs)', async () => {
    const { call, peer } = await inboundWithStream('+14155550105', '/e');
    await rest('POST', `/Calls/${call.sid}.json`, { Twiml: '<Response><Say>Transferring you now</Say><Dial><Number>+12125550111</Number></Dial></Response>' });
    await peer.waitFor((m) => m.event === 'stop');
    expect(await call.waitForEnd()).toBe('completed');
    const says = call.events.filter((e) => e.type === 'say');
    expect(says.map((e) => e.type === 'say' && e.text)).toEqual(['Transferring you now']);
    expect(call.transfers).toEqual([expect.objectContaining({ to: ['+12125550111'], status: 'completed', dialCallSid: expect.stringMatching(/^CA/) })]);
    const order = call.events.map((e) => e.type).filter((t) => ['stream-end', 'say', 'dial', 'dial-end', 'hangup'].includes(t));
    expect(order).toEqual(['stream-end', 'say', 'dial', 'dial-end', 'hangup']);
  });

  it('continues with the next verb when the application closes the socket; drops a stream URL query', async () => {
    const { call, peer } = await inboundWithStream('+14155550106', '/f', { after: '<Say>Goodbye</Say>', query: '?token=x' });
    expect(peer.signed).toBe(true);
    expect(call.events.find((e) => e.type === 'warning')).toMatchObject({ message: expect.stringContaining('?token=x') });
    peer.ws.close();
    expect(await call.waitForEnd()).toBe('completed');
    expect(call.events.find((e) => e.type === 'stream-end')).toMatchObject({ by: 'app' });
    expect(call.events.filter((e) => e.type === 'say').map((e) => e.type === 'say' && e.text)).toEqual(['Goodbye']);
    expect(peer.messages.some((m) => m.event === 'stop')).toBe(false);
  });

  it('asks a GET voice URL with the parameters in its query, and requests <Dial action> with the outcome', async () => {
    emu.addNumber('+14155550110', { voiceUrl: `${app.url}/voice/h?tenant=1`, voiceMethod: 'GET' });
    emu.setDestination('+12125550301', { answer: 'busy' });
    app.twiml.set('/voice/h', () => '<Response><Dial action="/action/h" timeout="5" callerId="+14155550110"><Number>+12125550301</Number></Dial><Say>unreachable</Say></Response>');
    app.twiml.set('/action/h', () => '<Response><Say>Sorry, they are busy</Say><Hangup/></Response>');
    const call = await emu.placeInboundCall({ from: '+15005550006', to: '+14155550110' });
    expect(await call.waitForEnd()).toBe('completed');
    const voice = hitsFor('/voice/h')[0];
    expect(voice).toMatchObject({ method: 'GET', signed: true, params: { tenant: '1', CallSid: call.sid, CallStatus: 'ringing' } });
    const action = hitsFor('/action/h')[0];
    expect(action).toMatchObject({ method: 'POST', signed: true, params: { DialCallStatus: 'busy', DialCallSid: expect.stringMatching(/^CA/), CallStatus: 'in-progress' } });
    expect(call.transfers[0]).toMatchObject({ to: ['+12125550301'], callerId: '+14155550110', status: 'busy' });
    expect(call.events.filter((e) => e.type === 'say').map((e) => e.type === 'say' && e.text)).toEqual(['Sorry, they are busy']);
  });

  it('rejects with <Reject>: busy or no-answer, never answered', async () => {
    for (const [reason, status] of [['busy', 'busy'], ['rejected', 'no-answer']] as const) {
      const number = reason === 'busy' ? '+14155550107' : '+14155550108';
      emu.addNumber(number, { voiceUrl: `${app.url}/voice/reject-${reason}`, statusCallback: `${app.url}/status/reject-${reason}` });
      app.twiml.set(`/voice/reject-${reason}`, () => `<Response><Reject reason="${reason}"/><Say>never</Say></Response>`);
      const call = await emu.placeInboundCall({ from: '+15005550006', to: number });
      expect(await call.waitForEnd()).toBe(status);
      expect(call.events.some((e) => e.type === 'status' && e.status === 'in-progress')).toBe(false);
      expect(call.events.some((e) => e.type === 'say')).toBe(false);
      expect(hitsFor(`/status/reject-${reason}`)[0].params).toMatchObject({ CallStatus: status, CallDuration: '0' });
    }
    await expect(emu.placeInboundCall({ from: '+15005550006', to: '+19995550000' })).rejects.toThrow(/not a number/);
  });

  it('reports the response latency as the caller hears it, and the CLI records the agent', async () => {
    emu.addNumber('+14155550109', { voiceUrl: `${app.url}/voice/g` });
    app.twiml.set('/voice/g', () => streamTwiml('/media/g'));
    // The "agent": answers 300 ms of tone 200 ms after the caller's speech ends.
    app.onStream.set('/media/g', (peer) => {
      let voiced = 0;
      let quiet = 0;
      peer.ws.on('message', (d) => {
        const m = JSON.parse(d.toString());
        if (m.event !== 'media') return;
        if (audible(m.media.payload)) { voiced++; quiet = 0; return; }
        if (voiced > 5 && ++quiet === 10) {
          voiced = 0;
          peer.send({ event: 'media', streamSid: peer.streamSid, media: { payload: Buffer.from(toneMulaw(300)).toString('base64') } });
        }
      });
    });
    const dir = await mkdtemp(join(tmpdir(), 'emu-'));
    try {
      const wavIn = join(dir, 'in.wav');
      const wavOut = join(dir, 'out.wav');
      await writeFile(wavIn, encodeWav(speech(400), 8000));
      const out: string[] = [];
      const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) } };
      const code = await runEmulatorCli(['call', '--emulator', emu.url, '--to', '+14155550109', '--wav', wavIn, '--record', wavOut, '--seconds', '1.6'], io);
      expect(out.join(''), out.join('')).toMatch(/response latency \d+ ms/);
      expect(code).toBe(0);
      const heard = decodeWav(new Uint8Array(await readFile(wavOut)));
      expect(heard.samples.length).toBeGreaterThan(8000 * 0.25);
      const call = emu.calls.find((c) => c.to === '+14155550109')!;
      const [lat] = call.metrics().responseLatencies;
      expect(lat.latencyMs).toBeGreaterThan(150);
      expect(lat.latencyMs).toBeLessThan(1000);
      expect(call.status).toBe('completed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---- outbound calls ----

describe('outbound calls', () => {
  beforeAll(() => { emu.addNumber('+14155550150'); });

  const place = (to: string, extra: Record<string, string | string[]>) => rest('POST', '/Calls.json', {
    To: to, From: '+14155550150', StatusCallback: `${app.url}/status/out-${to}`,
    StatusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'], ...extra,
  });
  const callbacks = (to: string) => hitsFor(`/status/out-${to}`).map((h) => h.params);

  it('busy: initiated, ringing, busy — never answered', async () => {
    emu.setDestination('+12125550201', { answer: 'busy' });
    const res = await place('+12125550201', { Url: `${app.url}/voice/never` });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ sid: expect.stringMatching(/^CA[0-9a-f]{32}$/), status: 'queued', direction: 'outbound-api', to: '+12125550201', from: '+14155550150', account_sid: SID, uri: `/2010-04-01/Accounts/${SID}/Calls/${res.body.sid}.json` });
    const call = emu.getCall(res.body.sid)!;
    expect(await call.waitForEnd()).toBe('busy');
    const cbs = callbacks('+12125550201');
    expect(cbs.map((c) => c.CallStatus)).toEqual(['initiated', 'ringing', 'busy']);
    expect(cbs.map((c) => c.SequenceNumber)).toEqual(['0', '1', '2']);
    expect(cbs[2]).toMatchObject({ CallbackSource: 'call-progress-events', Direction: 'outbound-api', SipResponseCode: '486', CallDuration: '0', Timestamp: expect.any(String) });
    expect(hitsFor('/voice/never')).toEqual([]);
    expect((await rest('GET', `/Calls/${call.sid}.json`)).body).toMatchObject({ status: 'busy', duration: null });
  });

  it('no-answer after Timeout, and only the events asked for', async () => {
    emu.setDestination('+12125550202', { answer: 'no-answer' });
    const res = await rest('POST', '/Calls.json', { To: '+12125550202', From: '+14155550150', Url: `${app.url}/voice/never`, Timeout: '5', StatusCallback: `${app.url}/status/out-+12125550202`, StatusCallbackEvent: 'ringing' });
    const call = emu.getCall(res.body.sid)!;
    const t0 = Date.now();
    expect(await call.waitForEnd()).toBe('no-answer');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400); // 5 s × timeScale 0.1
    expect(callbacks('+12125550202').map((c) => c.CallStatus)).toEqual(['ringing', 'no-answer']);
    expect(callbacks('+12125550202')[1].SipResponseCode).toBe('487');
  });

  it('human with synchronous AMD: AnsweredBy in the Url request, then the TwiML runs', async () => {
    emu.setDestination('+12125550203', { answer: 'human' });
    app.twiml.set('/voice/out-human', () => '<Response><Say>Hello there</Say><Hangup/></Response>');
    const res = await place('+12125550203', { Url: `${app.url}/voice/out-human`, MachineDetection: 'Enable' });
    const call = emu.getCall(res.body.sid)!;
    expect(await call.waitForEnd()).toBe('completed');
    const voice = hitsFor('/voice/out-human')[0];
    expect(voice.signed).toBe(true);
    expect(voice.params).toMatchObject({ CallSid: call.sid, CallStatus: 'in-progress', Direction: 'outbound-api', AnsweredBy: 'human', MachineDetectionDuration: expect.stringMatching(/^\d+$/), From: '+14155550150', To: '+12125550203' });
    const cbs = callbacks('+12125550203');
    expect(cbs.map((c) => c.CallStatus)).toEqual(['initiated', 'ringing', 'in-progress', 'completed']);
    expect(cbs[3]).toMatchObject({ CallDuration: expect.stringMatching(/^\d+$/), Duration: expect.stringMatching(/^\d+$/), SipResponseCode: '200' });
    expect(cbs.every((c, i) => c.SequenceNumber === String(i))).toBe(true);
    expect(call.answeredBy).toBe('human');
    expect(call.events.filter((e) => e.type === 'say').map((e) => e.type === 'say' && e.text)).toEqual(['Hello there']);
  });

  it('answering machine with async AMD: the stream hears the greeting and beep, the AMD callback says machine_end_beep', async () => {
    emu.setDestination('+12125550204', { answer: 'machine', greetingMs: 600 });
    app.twiml.set('/voice/out-machine', () => streamTwiml('/media/out-machine'));
    const res = await place('+12125550204', {
      Url: `${app.url}/voice/out-machine`, MachineDetection: 'DetectMessageEnd', AsyncAmd: 'true', AsyncAmdStatusCallback: `${app.url}/amd/machine`,
    });
    const call: CallHandle = emu.getCall(res.body.sid)!;
    const amd = await until(() => hitsFor('/amd/machine')[0], 'the AMD callback', 5000);
    expect(amd.signed).toBe(true);
    expect(amd.params).toEqual({ AccountSid: SID, CallSid: call.sid, AnsweredBy: 'machine_end_beep', MachineDetectionDuration: expect.any(String) });
    expect(Number(amd.params.MachineDetectionDuration)).toBeGreaterThanOrEqual(1000);
    expect(hitsFor('/voice/out-machine')[0].params.AnsweredBy).toBeUndefined();
    const peer = await until(() => app.peers.find((p) => p.path === '/media/out-machine'));
    const heard = peer.messages.filter((m) => m.event === 'media' && audible(m.media.payload));
    expect(heard.length).toBeGreaterThan(10);
    await rest('POST', `/Calls/${call.sid}.json`, { Status: 'completed' });
    expect(await call.waitForEnd()).toBe('completed');
    expect(call.answeredBy).toBe('machine_end_beep');
    expect(callbacks('+12125550204').map((c) => c.CallStatus)).toEqual(['initiated', 'ringing', 'in-progress', 'completed']);
  });

  it('cancels a ringing call through the REST API', async () => {
    emu.setDestination('+12125550205', { answer: 'human', ringMs: 20_000 });
    const res = await place('+12125550205', { Url: `${app.url}/voice/never` });
    const call = emu.getCall(res.body.sid)!;
    await call.waitForStatus('ringing');
    const upd = await rest('POST', `/Calls/${call.sid}.json`, { Status: 'canceled' });
    expect(upd.body.status).toBe('canceled');
    expect(await call.waitForEnd()).toBe('canceled');
    expect(callbacks('+12125550205').map((c) => c.CallStatus)).toEqual(['initiated', 'ringing', 'canceled']);
  });
});
