/**
 * The emulator's conferences, seen the way an application sees Twilio: a live call moved into
 * <Dial><Conference> by a REST redirect waits hearing its waitUrl (requested again and again), a human
 * added through the Participants resource is dialled with the usual progress callbacks, starts the
 * conference when answered (the wait stops), and ends it when hanging up — the caller's <Dial action> is
 * then requested. Also: participants who never answer, redirecting a waiting caller out, a caller hanging
 * up while waiting, hold / mute / kick, conference status callbacks, and the REST validation.
 * Real HTTP both ways; webhooks checked with the `twilio` package's validateRequest. timeScale 0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type CallEvent, type CallHandle, type Emulator } from '../../src/telephony/emulator/index.js';
import { parseTwiml } from '../../src/telephony/emulator/twiml.js';
import { startTwimlApp, type TwimlApp } from '../helpers/twimlApp.js';
import { until } from '../helpers/until.js';

const TOKEN = 'fedcba9876543210fedcba9876543210';
const SID = `AC${'c3'.repeat(16)}`;
const FROM = '+14155550160';

let emu: Emulator;
let app: TwimlApp;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hitsFor = (path: string) => app.hitsFor(path);

beforeAll(async () => {
  app = await startTwimlApp(TOKEN);
  emu = await startEmulator({ accountSid: SID, authToken: TOKEN, timeScale: 0.1, sayMsPerChar: 20, dialLegMs: 1000, playUrlMs: 1000, numbers: [FROM] });
}, 30_000);

afterAll(async () => {
  await emu?.close();
  await app?.close();
});

async function rest(method: string, path: string, params?: Record<string, string | string[]>) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
  const isGet = method === 'GET' || method === 'DELETE';
  const res = await fetch(`${emu.url}/2010-04-01/Accounts/${SID}${path}${isGet && params ? `?${body}` : ''}`, {
    method,
    headers: { authorization: `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`, ...(isGet ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) },
    body: isGet ? undefined : body.toString(),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** The TwiML Switchboard redirects a caller to (a warm transfer's conference). */
function conferenceTwiml(id: string, o: { endConferenceOnExit?: boolean; extra?: string } = {}) {
  return `<Response><Dial action="${app.url}/dial?call_id=${id}" method="POST"><Conference waitUrl="${app.url}/hold?call_id=${id}&amp;since=${Date.now()}" waitMethod="POST" startConferenceOnEnter="false" endConferenceOnExit="${o.endConferenceOnExit ?? true}" beep="false"${o.extra ?? ''}>sb-${id}</Conference></Dial></Response>`;
}

const HOLD = '<Response><Say>Please hold</Say><Play>https://music.test/hold.mp3</Play></Response>';

/** An inbound call to `number` whose voice URL answers `doc`. */
async function inbound(number: string, doc: string): Promise<CallHandle> {
  emu.addNumber(number, { voiceUrl: `${app.url}/voice/${number}` });
  app.twiml.set(`/voice/${number}`, () => doc);
  return emu.placeInboundCall({ from: '+15005550006', to: number });
}

const addHuman = (conference: string, to: string, id: string, extra: Record<string, string | string[]> = {}) => rest('POST', `/Conferences/${encodeURIComponent(conference)}/Participants.json`, {
  From: FROM, To: to, StartConferenceOnEnter: 'true', EndConferenceOnExit: 'true', Beep: 'false',
  StatusCallback: `${app.url}/participant?call_id=${id}`, StatusCallbackMethod: 'POST', StatusCallbackEvent: 'initiated ringing answered completed', ...extra,
});
const participantCallbacks = (id: string) => hitsFor('/participant').filter((h) => h.query.call_id === id);
const holdHits = (id: string) => hitsFor('/hold').filter((h) => h.query.call_id === id);
const dialHits = (id: string) => hitsFor('/dial').filter((h) => h.query.call_id === id);
const ofType = <T extends CallEvent['type']>(call: CallHandle, type: T) => call.events.filter((e): e is Extract<CallEvent, { type: T }> => e.type === type);

describe('<Conference> TwiML', () => {
  it('parses the noun and its attributes', () => {
    const [dial] = parseTwiml(`<Response><Dial action="/a"><Conference waitUrl="/w?a=1&amp;b=2" waitMethod="GET" startConferenceOnEnter="false" endConferenceOnExit="TRUE" muted="true" beep="onExit" statusCallback="/cb" statusCallbackEvent="start end join" participantLabel="caller">room 1</Conference></Dial></Response>`);
    expect(dial).toMatchObject({
      verb: 'Dial', numbers: [], action: '/a',
      conference: {
        name: 'room 1', waitUrl: '/w?a=1&b=2', waitMethod: 'GET', startConferenceOnEnter: false, endConferenceOnExit: true, muted: true, beep: 'onExit',
        statusCallback: '/cb', statusCallbackMethod: 'POST', statusCallbackEvents: ['start', 'end', 'join'], participantLabel: 'caller',
      },
    });
    const [plain] = parseTwiml('<Response><Dial><Conference>r</Conference></Dial></Response>');
    expect(plain).toMatchObject({ conference: { name: 'r', startConferenceOnEnter: true, endConferenceOnExit: false, waitUrl: undefined, waitMethod: 'POST', beep: 'true', maxParticipants: 250 } });
    expect(() => parseTwiml('<Response><Dial><Conference/></Dial></Response>')).toThrow(/name/);
    const max = (v: string) => parseTwiml(`<Response><Dial><Conference maxParticipants="${v}">r</Conference></Dial></Response>`).map((d) => d.verb === 'Dial' && d.conference?.maxParticipants)[0];
    expect(['2', '40', '1', '500'].map(max)).toEqual([2, 40, 2, 250]);
  });
});

describe('<Conference maxParticipants>', () => {
  it('turns away whoever comes to a full room: a caller\'s <Dial> fails with error 16020, a REST participant is hung up; a freed seat can be taken', async () => {
    const room = 'sb-full';
    const enter = (extra = '') => `<Response><Dial action="${app.url}/full-dial"><Conference waitUrl="" beep="false"${extra}>${room}</Conference></Dial><Say>never</Say></Response>`;
    app.twiml.set('/full-dial', (p) => (p.DialCallStatus === 'failed' ? '<Response><Say>The room is full</Say><Hangup/></Response>' : '<Response><Hangup/></Response>'));
    // The first to enter sets the room's size; a later participant's own maxParticipants changes nothing.
    const first = await inbound('+14155550166', enter(' maxParticipants="2"'));
    await first.waitForEvent((e) => e.type === 'conference-join', 5000);
    const second = await inbound('+14155550167', enter(' maxParticipants="10"'));
    await second.waitForEvent((e) => e.type === 'conference-start', 5000);
    const conf = emu.getConference(room)!;

    const third = await inbound('+14155550168', enter());
    expect(await third.waitForEnd()).toBe('completed');
    expect(ofType(third, 'twiml-error')).toEqual([expect.objectContaining({ code: 16020 })]);
    expect(ofType(third, 'conference-join')).toEqual([]);
    const action = hitsFor('/full-dial').find((h) => h.params.CallSid === third.sid)!;
    expect(action.params).toMatchObject({ DialCallStatus: 'failed', CallStatus: 'in-progress' });
    expect(action.params.DialCallSid).toBeUndefined();
    expect(ofType(third, 'say').map((e) => e.text)).toEqual(['The room is full']);

    emu.setDestination('+12125550407', { answer: 'human', hangupAfterMs: 60_000 });
    const added = await addHuman(room, '+12125550407', 'full');
    expect(added.status).toBe(201);
    const leg = emu.getCall(added.body.call_sid)!;
    expect(await leg.waitForEnd()).toBe('completed');
    expect(ofType(leg, 'twiml-error')).toEqual([expect.objectContaining({ code: 16020 })]);
    expect(ofType(leg, 'conference-join')).toEqual([]);

    expect(emu.getConference(conf.sid)).toMatchObject({ status: 'in-progress' });
    expect(emu.getConference(conf.sid)!.participants.map((p) => [p.callSid, p.status, p.leaveReason])).toEqual([
      [first.sid, 'connected', undefined], [second.sid, 'connected', undefined],
      [third.sid, 'failed', 'conference-full'], [leg.sid, 'failed', 'conference-full'],
    ]);
    expect((await rest('GET', `/Conferences/${conf.sid}/Participants.json`)).body.participants.map((p: any) => p.call_sid)).toEqual([first.sid, second.sid]);

    // One leaves: the room has a seat again.
    await second.hangup();
    expect(await second.waitForEnd()).toBe('completed');
    const fourth = await inbound('+14155550169', enter());
    await fourth.waitForEvent((e) => e.type === 'conference-join', 5000);
    expect(ofType(fourth, 'twiml-error')).toEqual([]);
    await first.hangup();
    await fourth.hangup();
    expect(await first.waitForEnd()).toBe('completed');
    expect(emu.getConference(conf.sid)).toMatchObject({ status: 'completed', reasonEnded: 'last-participant-left' });
  });
});

describe('warm transfer through a conference', () => {
  it('waits on the looped waitUrl, dials the human, starts when answered, ends when they hang up, then requests the Dial action', async () => {
    const id = 'warm1';
    const human = '+12125550401';
    emu.setDestination(human, { answer: 'human', ringMs: 2000, hangupAfterMs: 6000 });
    app.twiml.set('/hold', () => HOLD);
    app.twiml.set('/dial', () => '<Response><Say>Thanks for calling</Say><Hangup/></Response>');
    app.twiml.set('/voice/+14155550161', () => `<Response><Connect><Stream url="${app.wsUrl}/media/warm1"/></Connect></Response>`);
    emu.addNumber('+14155550161', { voiceUrl: `${app.url}/voice/+14155550161` });
    const caller = await emu.placeInboundCall({ from: '+15005550006', to: '+14155550161' });
    const peer = await until(() => app.peers.find((p) => p.path === '/media/warm1'), 'the media stream', 5000);
    await until(() => peer.messages.some((m) => m.event === 'start'), 'stream start', 5000);

    // 1. The application moves the caller into the conference: the stream stops, the caller waits.
    const moved = await rest('POST', `/Calls/${caller.sid}.json`, { Twiml: conferenceTwiml(id) });
    expect(moved.status).toBe(200);
    await until(() => peer.messages.some((m) => m.event === 'stop'), 'stream stop', 3000);
    await until(() => holdHits(id).length >= 3, 'the wait URL three times', 5000);
    const hold = holdHits(id);
    expect(hold.every((h) => h.signed && h.method === 'POST')).toBe(true);
    expect(hold[0].query).toMatchObject({ call_id: id, since: expect.stringMatching(/^\d+$/) });
    expect(hold[0].params).toMatchObject({ CallSid: caller.sid, AccountSid: SID, From: '+15005550006', To: '+14155550161', CallStatus: 'in-progress', Direction: 'inbound' });
    expect(ofType(caller, 'conference-join')[0]).toMatchObject({ name: `sb-${id}`, conferenceSid: expect.stringMatching(/^CF[0-9a-f]{32}$/), via: 'twiml', startConferenceOnEnter: false, endConferenceOnExit: true });
    expect(ofType(caller, 'conference-wait').map((e) => e.round).slice(0, 3)).toEqual([1, 2, 3]);
    expect(ofType(caller, 'say').filter((e) => e.during === 'wait').length).toBeGreaterThanOrEqual(2);
    expect(ofType(caller, 'play').some((e) => e.during === 'wait' && e.url === 'https://music.test/hold.mp3')).toBe(true);
    let conf = emu.getConference(`sb-${id}`)!;
    expect(conf).toMatchObject({ status: 'init', participants: [{ callSid: caller.sid, via: 'twiml', number: '+15005550006', status: 'connected', hold: false, muted: false }] });
    expect(conf.participants[0].heard.slice(0, 2)).toEqual([
      { during: 'wait', kind: 'say', text: 'Please hold', atMs: expect.any(Number) },
      { during: 'wait', kind: 'play', url: 'https://music.test/hold.mp3', atMs: expect.any(Number) },
    ]);
    const listed = await rest('GET', '/Conferences.json', { FriendlyName: `sb-${id}`, Status: 'init' });
    expect(listed.body.conferences).toEqual([expect.objectContaining({ sid: conf.sid, friendly_name: `sb-${id}`, status: 'init', account_sid: SID })]);

    // 2. The human is added by the conference's friendly name.
    const added = await addHuman(`sb-${id}`, human, id, { Timeout: '20' });
    expect(added.status).toBe(201);
    expect(added.body).toEqual({
      account_sid: SID, call_sid: expect.stringMatching(/^CA[0-9a-f]{32}$/), label: null, call_sid_to_coach: null, coaching: false, conference_sid: conf.sid,
      date_created: expect.any(String), date_updated: expect.any(String), start_conference_on_enter: true, end_conference_on_exit: true,
      muted: false, hold: false, status: 'queued', queue_time: '0', uri: `/2010-04-01/Accounts/${SID}/Conferences/${conf.sid}/Participants/${added.body.call_sid}.json`,
    });
    const leg = emu.getCall(added.body.call_sid)!;
    expect(leg).toMatchObject({ direction: 'outbound-api', from: FROM, to: human });
    await leg.waitForStatus('ringing');
    expect((await rest('GET', `/Conferences/${conf.sid}/Participants/${leg.sid}.json`)).body.status).toBe('ringing');

    // 3. Answered: the conference starts, the wait stops.
    await leg.waitForStatus('in-progress', 5000);
    await caller.waitForEvent((e) => e.type === 'conference-start', 2000);
    conf = emu.getConference(conf.sid)!;
    expect(conf.status).toBe('in-progress');
    expect(conf.participants.map((p) => [p.callSid, p.status])).toEqual([[caller.sid, 'connected'], [leg.sid, 'connected']]);
    const inConf = (await rest('GET', `/Conferences/${conf.sid}/Participants.json`)).body.participants;
    expect(inConf.map((p: any) => [p.call_sid, p.status])).toEqual([[caller.sid, 'connected'], [leg.sid, 'connected']]);
    await sleep(50);
    const holdCount = holdHits(id).length;
    const heardCount = emu.getConference(conf.sid)!.participants[0].heard.length;
    await sleep(300);
    expect(holdHits(id).length).toBe(holdCount);
    expect(emu.getConference(conf.sid)!.participants[0].heard.length).toBe(heardCount);
    expect(ofType(leg, 'conference-join')[0]).toMatchObject({ via: 'api', conferenceSid: conf.sid, startConferenceOnEnter: true });

    // 4. The human hangs up (after 600 ms): the conference ends and the caller's <Dial> completes.
    expect(await leg.waitForEnd(5000)).toBe('completed');
    const action = await until(() => dialHits(id)[0], 'the Dial action', 5000);
    expect(action.signed).toBe(true);
    expect(action.params).toMatchObject({ DialCallStatus: 'completed', CallSid: caller.sid, AccountSid: SID, CallStatus: 'in-progress', From: '+15005550006' });
    expect(action.params.DialCallSid).toBeUndefined();
    expect(await caller.waitForEnd(5000)).toBe('completed');
    expect(ofType(caller, 'say').filter((e) => !e.during).map((e) => e.text)).toEqual(['Thanks for calling']);
    conf = emu.getConference(conf.sid)!;
    expect(conf).toMatchObject({ status: 'completed', reasonEnded: 'participant-with-end-conference-on-exit-left', callSidEndingConference: leg.sid });
    expect(conf.participants.map((p) => p.leaveReason)).toEqual(['conference-ended', 'hangup']);
    expect(ofType(caller, 'conference-leave')[0]).toMatchObject({ reason: 'conference-ended' });
    expect(ofType(caller, 'conference-end')[0]).toMatchObject({ reason: 'participant-with-end-conference-on-exit-left' });
    const order = caller.events.map((e) => e.type).filter((t) => ['stream-end', 'conference-join', 'conference-start', 'conference-leave', 'conference-end', 'say', 'hangup'].includes(t));
    expect(order.filter((t, i) => t !== 'say' || order.indexOf('conference-end') < i)).toEqual(['stream-end', 'conference-join', 'conference-start', 'conference-leave', 'conference-end', 'say', 'hangup']);

    // The human's progress, as asked for.
    const cbs = participantCallbacks(id);
    expect(cbs.map((h) => h.params.CallStatus)).toEqual(['initiated', 'ringing', 'in-progress', 'completed']);
    expect(cbs.every((h, i) => h.signed && h.params.CallSid === leg.sid && h.params.SequenceNumber === String(i))).toBe(true);
    expect(cbs[3].params).toMatchObject({ From: FROM, To: human, Direction: 'outbound-api', CallDuration: expect.stringMatching(/^\d+$/), SipResponseCode: '200' });

    const fetched = await rest('GET', `/Conferences/${conf.sid}.json`);
    expect(fetched.body).toMatchObject({ sid: conf.sid, status: 'completed', reason_conference_ended: 'participant-with-end-conference-on-exit-left', call_sid_ending_conference: leg.sid, region: 'us1' });
    expect(fetched.body.subresource_uris.participants).toBe(`/2010-04-01/Accounts/${SID}/Conferences/${conf.sid}/Participants.json`);
    expect((await rest('GET', `/Conferences/${conf.sid}/Participants.json`)).body.participants).toEqual([]);
  });

  it('a busy or unanswered human never joins: the caller keeps waiting until the application redirects it', async () => {
    const id = 'warm2';
    emu.setDestination('+12125550402', { answer: 'busy', ringMs: 500 });
    emu.setDestination('+12125550403', { answer: 'no-answer' });
    app.twiml.set('/hold', () => HOLD);
    const caller = await inbound('+14155550162', conferenceTwiml(id));
    await until(() => holdHits(id).length >= 1, 'the wait URL', 5000);

    const busy = await addHuman(`sb-${id}`, '+12125550402', id, { StatusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'] });
    expect(busy.status).toBe(201);
    expect(await emu.getCall(busy.body.call_sid)!.waitForEnd()).toBe('busy');
    const noAnswer = await addHuman(`sb-${id}`, '+12125550403', id, { Timeout: '5' });
    const t0 = Date.now();
    expect(await emu.getCall(noAnswer.body.call_sid)!.waitForEnd()).toBe('no-answer');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400); // 5 s × 0.1
    const statuses = (sid: string) => participantCallbacks(id).filter((h) => h.params.CallSid === sid).map((h) => h.params.CallStatus);
    expect(statuses(busy.body.call_sid)).toEqual(['initiated', 'ringing', 'busy']);
    expect(statuses(noAnswer.body.call_sid)).toEqual(['initiated', 'ringing', 'no-answer']);

    // Still waiting, alone, still hearing the wait URL.
    const conf = emu.getConference(`sb-${id}`)!;
    expect(conf.status).toBe('init');
    expect(conf.participants.map((p) => [p.via, p.status, p.joinedAt === undefined])).toEqual([['twiml', 'connected', false], ['api', 'failed', true], ['api', 'failed', true]]);
    expect((await rest('GET', `/Conferences/${conf.sid}/Participants.json`)).body.participants.map((p: any) => p.call_sid)).toEqual([caller.sid]);
    expect(ofType(caller, 'conference-start')).toEqual([]);
    const before = holdHits(id).length;
    await until(() => holdHits(id).length > before, 'more hold', 3000);
    expect(caller.status).toBe('in-progress');

    // The application gives up: new TwiML takes the caller out of the conference (which ends), no Dial action.
    await rest('POST', `/Calls/${caller.sid}.json`, { Twiml: '<Response><Say>Sorry, nobody is available</Say><Hangup/></Response>' });
    expect(await caller.waitForEnd()).toBe('completed');
    expect(ofType(caller, 'conference-leave')[0]).toMatchObject({ reason: 'redirected', name: `sb-${id}` });
    expect(ofType(caller, 'say').filter((e) => !e.during).map((e) => e.text)).toEqual(['Sorry, nobody is available']);
    expect(emu.getConference(conf.sid)).toMatchObject({ status: 'completed', reasonEnded: 'participant-with-end-conference-on-exit-left', callSidEndingConference: caller.sid });
    const after = holdHits(id).length;
    await sleep(200);
    expect(holdHits(id).length).toBe(after);
    expect(dialHits(id)).toEqual([]);
  });

  it('a caller hanging up while waiting ends the conference; conference status callbacks report it', async () => {
    const id = 'warm3';
    app.twiml.set('/hold', () => '<Response><Pause length="2"/></Response>');
    const caller = await inbound('+14155550163', conferenceTwiml(id, {
      endConferenceOnExit: false, extra: ` statusCallback="${app.url}/conf-events?call_id=${id}" statusCallbackEvent="start end join leave"`,
    }));
    await until(() => holdHits(id).length >= 2, 'the wait URL twice', 5000);
    expect(ofType(caller, 'pause').filter((e) => e.during === 'wait').length).toBeGreaterThanOrEqual(1);
    await caller.hangup();
    expect(await caller.waitForEnd()).toBe('completed');
    const conf = emu.getConference(`sb-${id}`)!;
    expect(conf).toMatchObject({ status: 'completed', reasonEnded: 'last-participant-left', callSidEndingConference: caller.sid });
    expect(conf.participants[0]).toMatchObject({ leaveReason: 'hangup', status: 'complete', leftAt: expect.any(Number) });
    const events = await until(() => { const e = hitsFor('/conf-events'); return e.length >= 3 && e; }, 'conference callbacks', 3000);
    expect(events.every((h) => h.signed)).toBe(true);
    expect(events.map((h) => h.params.StatusCallbackEvent)).toEqual(['participant-join', 'participant-leave', 'conference-end']);
    expect(events[0].params).toMatchObject({
      ConferenceSid: conf.sid, FriendlyName: `sb-${id}`, AccountSid: SID, CallSid: caller.sid, SequenceNumber: '1', Timestamp: expect.any(String),
      Muted: 'false', Hold: 'false', Coaching: 'false', StartConferenceOnEnter: 'false', EndConferenceOnExit: 'false',
    });
    expect(events[1].params).toMatchObject({ SequenceNumber: '2', ParticipantCallStatus: 'completed' });
    expect(events[2].params).toMatchObject({ SequenceNumber: '3', ReasonConferenceEnded: 'last-participant-left', CallSidEndingConference: caller.sid });
    expect(dialHits(id)).toEqual([]);
    const control = await (await fetch(`${emu.url}/_emulator/conferences/${conf.sid}`)).json();
    expect(control).toMatchObject({ sid: conf.sid, name: `sb-${id}`, status: 'completed', participants: [{ callSid: caller.sid, heard: expect.arrayContaining([expect.objectContaining({ kind: 'pause', seconds: 2 })]) }] });
    const n = holdHits(id).length;
    await sleep(200);
    expect(holdHits(id).length).toBe(n);
  });

  it('holds, mutes and kicks participants through the REST API', async () => {
    const id = 'warm4';
    const human = '+12125550404';
    emu.setDestination(human, { answer: 'human', hangupAfterMs: 60_000 });
    app.twiml.set('/hold', () => HOLD);
    app.twiml.set('/held', () => '<Response><Say>You are on hold</Say><Gather/></Response>');
    app.twiml.set('/dial', () => '<Response><Hangup/></Response>');
    const caller = await inbound('+14155550164', conferenceTwiml(id, { extra: ` statusCallback="${app.url}/conf-events?call_id=${id}" statusCallbackEvent="hold mute"` }));
    await until(() => holdHits(id).length >= 1, 'the wait URL', 5000);
    const added = await addHuman(`sb-${id}`, human, id, { Label: 'agent' });
    const leg = emu.getCall(added.body.call_sid)!;
    await caller.waitForEvent((e) => e.type === 'conference-start', 5000);
    const cf = added.body.conference_sid;

    const held = await rest('POST', `/Conferences/${cf}/Participants/${caller.sid}.json`, { Hold: 'true', HoldUrl: `${app.url}/held`, HoldMethod: 'POST' });
    expect(held.status).toBe(200);
    expect(held.body).toMatchObject({ call_sid: caller.sid, hold: true, muted: false, status: 'connected' });
    await until(() => hitsFor('/held').length >= 2, 'the hold URL twice', 5000);
    expect(hitsFor('/held')[0]).toMatchObject({ method: 'POST', signed: true, params: { CallSid: caller.sid } });
    expect(ofType(caller, 'say').some((e) => e.during === 'hold' && e.text === 'You are on hold')).toBe(true);
    expect(ofType(caller, 'twiml-error').some((e) => e.code === 13238)).toBe(true); // <Gather> is not allowed there
    const unheld = await rest('POST', `/Conferences/${cf}/Participants/${caller.sid}.json`, { Hold: 'false' });
    expect(unheld.body.hold).toBe(false);
    const n = hitsFor('/held').length;
    await sleep(200);
    expect(hitsFor('/held').length).toBe(n);

    // By label; Muted.
    const muted = await rest('POST', `/Conferences/${cf}/Participants/agent.json`, { Muted: 'true' });
    expect(muted.body).toMatchObject({ call_sid: leg.sid, label: 'agent', muted: true });
    expect((await rest('GET', `/Conferences/${cf}/Participants.json`, { Muted: 'true' })).body.participants.map((p: any) => p.call_sid)).toEqual([leg.sid]);
    const events = await until(() => { const e = hitsFor('/conf-events').filter((h) => h.query.call_id === id); return e.length >= 3 && e; }, 'hold and mute callbacks', 3000);
    expect(events.map((h) => [h.params.StatusCallbackEvent, h.params.CallSid])).toEqual([
      ['participant-hold', caller.sid], ['participant-unhold', caller.sid], ['participant-mute', leg.sid],
    ]);
    expect(events[2].params).toMatchObject({ Muted: 'true', ParticipantLabel: 'agent' });

    // Kicking the human (endConferenceOnExit) ends the conference: the caller's Dial action, the human hung up.
    expect((await rest('DELETE', `/Conferences/${cf}/Participants/${leg.sid}.json`)).status).toBe(204);
    expect(await leg.waitForEnd()).toBe('completed');
    const action = await until(() => dialHits(id)[0], 'the Dial action', 3000);
    expect(action.params).toMatchObject({ DialCallStatus: 'completed', CallSid: caller.sid });
    expect(await caller.waitForEnd()).toBe('completed');
    expect(emu.getConference(cf)).toMatchObject({ status: 'completed', reasonEnded: 'participant-with-end-conference-on-exit-kicked', callSidEndingConference: leg.sid });
    expect(emu.getConference(cf)!.participants.find((p) => p.callSid === leg.sid)!.leaveReason).toBe('kicked');
    expect((await rest('DELETE', `/Conferences/${cf}/Participants/${leg.sid}.json`)).status).toBe(404);
  });

  it('removing a participant still being dialled cancels its call', async () => {
    const id = 'warm5';
    emu.setDestination('+12125550406', { answer: 'human', ringMs: 20_000 });
    app.twiml.set('/hold', () => HOLD);
    const caller = await inbound('+14155550165', conferenceTwiml(id));
    await until(() => holdHits(id).length >= 1, 'the wait URL', 5000);
    const added = await addHuman(`sb-${id}`, '+12125550406', id);
    const leg = emu.getCall(added.body.call_sid)!;
    await leg.waitForStatus('ringing');
    expect((await rest('DELETE', `/Conferences/${added.body.conference_sid}/Participants/${leg.sid}.json`)).status).toBe(204);
    expect(await leg.waitForEnd()).toBe('canceled');
    await until(() => participantCallbacks(id).length >= 3, 'the canceled callback', 3000);
    expect(participantCallbacks(id).map((h) => h.params.CallStatus)).toEqual(['initiated', 'ringing', 'canceled']);
    expect(emu.getConference(`sb-${id}`)).toMatchObject({ status: 'init', participants: [{ callSid: caller.sid, status: 'connected' }, { callSid: leg.sid, status: 'failed', leaveReason: 'kicked' }] });
    await caller.hangup();
    expect(await caller.waitForEnd()).toBe('completed');
    expect(emu.getConference(added.body.conference_sid)!.status).toBe('completed');
  });

  it('validates a new participant like Twilio', async () => {
    const missingTo = await rest('POST', '/Conferences/sb-x/Participants.json', { From: FROM });
    expect(missingTo.status).toBe(400);
    expect(missingTo.body).toEqual({ code: 21201, message: expect.any(String), more_info: 'https://www.twilio.com/docs/errors/21201', status: 400 });
    expect((await rest('POST', '/Conferences/sb-x/Participants.json', { To: '+12125550405' })).body).toMatchObject({ code: 21213, status: 400 });
    expect((await rest('POST', '/Conferences/sb-x/Participants.json', { From: FROM, To: 'nope' })).body).toMatchObject({ code: 21211, status: 400 });
    expect((await rest('POST', '/Conferences/sb-x/Participants.json', { From: '+13125550100', To: '+12125550405' })).body).toMatchObject({ code: 21210 });
    expect(emu.getConference('sb-x')).toBeUndefined();
    expect((await rest('POST', `/Conferences/CF${'0'.repeat(32)}/Participants.json`, { From: FROM, To: '+12125550405' })).status).toBe(404);
    expect((await rest('GET', `/Conferences/CF${'0'.repeat(32)}.json`)).body).toMatchObject({ code: 20404, status: 404 });
    expect((await rest('GET', '/Conferences/sb-x/Participants.json')).status).toBe(404);
  });
});
