/**
 * Conferences: named rooms (per account) that calls enter with <Dial><Conference> or are dialled into
 * with the Participants REST resource; who is in them, when they start and end, what waiting and held
 * participants hear, and the conference status callbacks.
 *
 * Followed:
 *  - TwiML <Conference> (https://www.twilio.com/docs/voice/twiml/conference): the room's name is
 *    namespaced to the account and a conference of that name is created when none is running;
 *    "Conferences will not start until at least two participants join", and only when one of them has
 *    startConferenceOnEnter=true — until then a participant hears the waitUrl (TwiML with <Play>, <Say>,
 *    <Pause>, <Redirect> only — error 13238 otherwise — requested again when it runs out; no waitUrl:
 *    Twilio's default hold music; an empty one: silence); a participant with endConferenceOnExit=true
 *    leaving ends the conference and every other participant drops out of it, as when the last one leaves;
 *    statusCallback / statusCallbackMethod / statusCallbackEvent (start end join leave mute hold) with
 *    StatusCallbackEvent conference-start, conference-end, participant-join, participant-leave,
 *    participant-mute / -unmute, participant-hold / -unhold and the parameters ConferenceSid,
 *    FriendlyName, AccountSid, SequenceNumber, Timestamp, and for a participant CallSid, Muted, Hold,
 *    Coaching, EndConferenceOnExit, StartConferenceOnEnter (ParticipantLabel when it has one); "only the
 *    value set by the first participant to join the conference is used"; maxParticipants, a positive
 *    integer up to 250 (the default and Twilio's capacity; at least 2, "from 2 participants to 250",
 *    https://www.twilio.com/docs/voice/conference).
 *  - Error 16020 "Conference is full" (https://www.twilio.com/docs/api/errors/16020): "A participant has
 *    attempted to join a conference that has reached its maximum participant capacity" — it is not let in.
 *  - "Conference resource" (https://www.twilio.com/docs/voice/api/conference-resource): status init →
 *    in-progress → completed, reason_conference_ended (conference-ended-via-api,
 *    participant-with-end-conference-on-exit-left / -kicked, last-participant-left / -kicked),
 *    call_sid_ending_conference; update Status=completed ends it.
 *  - "Conference Participant resource" (https://www.twilio.com/docs/voice/api/conference-participant-resource):
 *    a participant is listed while "connecting to, or actively connected to, a conference that is not in
 *    completed status" — not once its call ended, the conference ended, or "its call has been modified to
 *    use new TwiML"; status queued → connecting → ringing → connected; update Muted, Hold, HoldUrl,
 *    HoldMethod (default GET), EndConferenceOnExit; DELETE kicks; a participant may be named by its label.
 *  - ParticipantCallStatus on participant-leave (Twilio changelog, 2023-10-25).
 *
 * Chosen where the documents say nothing (see also ./call.ts): a participant dialled through the REST API
 * whose conference ended while its phone was still ringing joins a new conference of the same name when
 * it answers (Twilio does not cancel that call for you); with a statusCallback but no
 * statusCallbackEvent, the events are `start end` (the Participants resource's documented default);
 * SequenceNumber counts from 1 per conference; the room's maxParticipants is the first one given (as its
 * status callback), counting those in the room; a participant turned away from a full room is listed
 * with status failed (leave reason `conference-full`): a <Dial><Conference> caller's <Dial> completes
 * with DialCallStatus=failed and the call goes on, a REST participant's answered call is hung up;
 * `beep`, coaching and recording are recorded or ignored, not emulated.
 */
import type { CallEvent, EmulatedCall, WebhookRecord } from './call.js';
import { MAX_PARTICIPANTS } from './twiml.js';
import { newSid, rfc2822 } from './util.js';
import { sendWebhook, type WebhookSender } from './webhook.js';

export type ConferenceStatus = 'init' | 'in-progress' | 'completed';
export type ConferenceEndReason =
  | 'conference-ended-via-api'
  | 'participant-with-end-conference-on-exit-left'
  | 'participant-with-end-conference-on-exit-kicked'
  | 'last-participant-left'
  | 'last-participant-kicked';
export type ParticipantStatus = 'queued' | 'connecting' | 'ringing' | 'connected' | 'complete' | 'failed';
/**
 * Why a participant left: its call ended (`hangup`, also through the REST API), it was removed through the
 * REST API (`kicked`), the conference ended (`conference-ended`), its call was given new TwiML
 * (`redirected`), its call was never answered (`not-answered`), or the room was full (`conference-full`).
 */
export type LeaveReason = 'hangup' | 'kicked' | 'conference-ended' | 'redirected' | 'not-answered' | 'conference-full';

/**
 * Something a participant heard while waiting for the conference to start (`wait`) or on hold (`hold`):
 * read from its call's event log.
 */
export interface HeardAudio {
  during: 'wait' | 'hold';
  kind: 'say' | 'play' | 'pause';
  text?: string;
  url?: string;
  seconds?: number;
  /** On the participant's call timeline. */
  atMs: number;
}

/** Twilio's default waitUrl / holdUrl (the emulator does not fetch it). */
export const DEFAULT_HOLD_MUSIC = 'https://twimlets.com/holdmusic?Bucket=com.twilio.music.classical';

export interface ConferenceCallbackConfig {
  url: string;
  method: 'GET' | 'POST';
  /** start, end, join, leave, mute, hold … as asked for. */
  events: string[];
}

export interface ParticipantOptions {
  label?: string;
  startConferenceOnEnter: boolean;
  endConferenceOnExit: boolean;
  muted: boolean;
  beep: string;
  /** Undefined: default hold music; '': silence. */
  waitUrl?: string;
  waitMethod: 'GET' | 'POST';
  /** The conference's status callback, if this participant is the first to give one. */
  conferenceCallback?: ConferenceCallbackConfig;
  /** The conference's maxParticipants, if this participant is the first to give one. */
  maxParticipants?: number;
}

export class Participant {
  readonly dateCreated = Date.now();
  dateUpdated = this.dateCreated;
  status: ParticipantStatus = 'queued';
  label?: string;
  startConferenceOnEnter: boolean;
  endConferenceOnExit: boolean;
  muted: boolean;
  hold = false;
  holdUrl?: string;
  holdMethod: 'GET' | 'POST' = 'GET';
  readonly beep: string;
  readonly waitUrl?: string;
  readonly waitMethod: 'GET' | 'POST';
  joinedAt?: number;
  leftAt?: number;
  leaveReason?: LeaveReason;
  /** Where its stay in the room starts and ends in its call's event log. */
  eventsFrom?: number;
  eventsTo?: number;
  private change = new AbortController();

  constructor(public conference: Conference, readonly call: EmulatedCall, readonly via: 'twiml' | 'api', o: ParticipantOptions) {
    this.label = o.label;
    this.startConferenceOnEnter = o.startConferenceOnEnter;
    this.endConferenceOnExit = o.endConferenceOnExit;
    this.muted = o.muted;
    this.beep = o.beep;
    this.waitUrl = o.waitUrl;
    this.waitMethod = o.waitMethod;
  }

  get callSid(): string { return this.call.sid; }
  /** In the room (joined, not left). */
  get present(): boolean { return this.joinedAt !== undefined && this.leftAt === undefined; }
  /** Being dialled (REST participants before they answer). */
  get pending(): boolean { return this.joinedAt === undefined && this.leftAt === undefined; }
  get gone(): boolean { return this.leftAt !== undefined; }
  /** The far party: the caller of an inbound call, the called number otherwise. */
  get number(): string { return this.call.direction === 'inbound' ? this.call.from : this.call.to; }

  /** What it heard while waiting or on hold, from its call's events during its stay. */
  get heard(): HeardAudio[] {
    if (this.eventsFrom === undefined) return [];
    return this.call.events.slice(this.eventsFrom, this.eventsTo).flatMap(heardAudio);
  }

  /** Aborts at the participant's next change of situation (conference start or end, hold, leaving). */
  get changed(): AbortSignal { return this.change.signal; }

  notify(): void {
    const c = this.change;
    this.change = new AbortController();
    c.abort();
  }

  touch(): void { this.dateUpdated = Date.now(); }
}

export class Conference {
  readonly sid = newSid('CF');
  readonly dateCreated = Date.now();
  dateUpdated = this.dateCreated;
  status: ConferenceStatus = 'init';
  startedAt?: number;
  endedAt?: number;
  reasonEnded?: ConferenceEndReason;
  callSidEndingConference?: string;
  /** Everyone who entered or was added, in order (including those who left). */
  readonly participants: Participant[] = [];
  statusCallback?: ConferenceCallbackConfig;
  maxParticipants?: number;
  readonly statusCallbacks: WebhookRecord[] = [];
  seq = 1;
  chain: Promise<void> = Promise.resolve();

  constructor(readonly accountSid: string, readonly friendlyName: string) {}

  get present(): Participant[] { return this.participants.filter((p) => p.present); }
  get pending(): Participant[] { return this.participants.filter((p) => p.pending); }
  /** The Participants resource's view: connecting or connected, while the conference is not completed. */
  get listed(): Participant[] { return this.status === 'completed' ? [] : this.participants.filter((p) => !p.gone); }

  touch(): void { this.dateUpdated = Date.now(); }
}

function heardAudio(e: CallEvent): HeardAudio[] {
  const at = { atMs: e.atMs };
  switch (e.type) {
    case 'say': return e.during ? [{ during: e.during, kind: 'say', text: e.text, ...at }] : [];
    case 'pause': return e.during ? [{ during: e.during, kind: 'pause', seconds: e.seconds, ...at }] : [];
    case 'play': return e.during ? [{ during: e.during, kind: 'play', url: e.url ?? (e.digits ? `digits:${e.digits}` : undefined), ...at }] : [];
    // No waitUrl (holdUrl): Twilio's default music.
    case 'conference-wait': return e.source === 'default' ? [{ during: e.during, kind: 'play', url: e.url, ...at }] : [];
    default: return [];
  }
}

export interface ParticipantInfo {
  callSid: string;
  label?: string;
  via: 'twiml' | 'api';
  /** The far party's number. */
  number: string;
  status: ParticipantStatus;
  startConferenceOnEnter: boolean;
  endConferenceOnExit: boolean;
  muted: boolean;
  hold: boolean;
  /** Epoch ms. */
  joinedAt?: number;
  leftAt?: number;
  leaveReason?: LeaveReason;
  /** What the participant heard while waiting or on hold. */
  heard: HeardAudio[];
}

export interface ConferenceInfo {
  sid: string;
  name: string;
  status: ConferenceStatus;
  /** Epoch ms. */
  createdAt: number;
  startedAt?: number;
  endedAt?: number;
  reasonEnded?: ConferenceEndReason;
  callSidEndingConference?: string;
  participants: ParticipantInfo[];
  /** The conference status callbacks sent, in order. */
  statusCallbacks: WebhookRecord[];
}

export function conferenceInfo(c: Conference): ConferenceInfo {
  return {
    sid: c.sid, name: c.friendlyName, status: c.status, createdAt: c.dateCreated, startedAt: c.startedAt, endedAt: c.endedAt,
    reasonEnded: c.reasonEnded, callSidEndingConference: c.callSidEndingConference,
    participants: c.participants.map((p) => ({
      callSid: p.callSid, label: p.label, via: p.via, number: p.number, status: p.status,
      startConferenceOnEnter: p.startConferenceOnEnter, endConferenceOnExit: p.endConferenceOnExit, muted: p.muted, hold: p.hold,
      joinedAt: p.joinedAt, leftAt: p.leftAt, leaveReason: p.leaveReason, heard: p.heard,
    })),
    statusCallbacks: [...c.statusCallbacks],
  };
}

export function conferenceJson(c: Conference): Record<string, unknown> {
  const uri = `/2010-04-01/Accounts/${c.accountSid}/Conferences/${c.sid}.json`;
  return {
    account_sid: c.accountSid, api_version: '2010-04-01', call_sid_ending_conference: c.callSidEndingConference ?? null,
    date_created: rfc2822(c.dateCreated), date_updated: rfc2822(c.dateUpdated), friendly_name: c.friendlyName,
    reason_conference_ended: c.reasonEnded ?? null, region: 'us1', sid: c.sid, status: c.status,
    subresource_uris: { participants: uri.replace(/\.json$/, '/Participants.json'), recordings: uri.replace(/\.json$/, '/Recordings.json') },
    uri,
  };
}

export function participantJson(p: Participant): Record<string, unknown> {
  const c = p.conference;
  return {
    account_sid: c.accountSid, call_sid: p.callSid, call_sid_to_coach: null, coaching: false, conference_sid: c.sid,
    date_created: rfc2822(p.dateCreated), date_updated: rfc2822(p.dateUpdated), end_conference_on_exit: p.endConferenceOnExit,
    hold: p.hold, label: p.label ?? null, muted: p.muted, queue_time: '0', start_conference_on_enter: p.startConferenceOnEnter,
    status: p.status, uri: `/2010-04-01/Accounts/${c.accountSid}/Conferences/${c.sid}/Participants/${p.callSid}.json`,
  };
}

type EventGroup = 'start' | 'end' | 'join' | 'leave' | 'mute' | 'hold';

/** Every conference of the account, and the rules that move participants in and out of them. */
export class ConferenceHub {
  /** By SID, every conference ever created. */
  readonly all = new Map<string, Conference>();
  /** By friendly name, the conference not completed yet. */
  private readonly running = new Map<string, Conference>();

  constructor(readonly accountSid: string, private readonly webhook: WebhookSender) {}

  list(): Conference[] { return [...this.all.values()]; }
  bySid(sid: string): Conference | undefined { return this.all.get(sid); }
  /** A conference SID (any status), or the friendly name of one not completed. */
  find(sidOrName: string): Conference | undefined { return this.all.get(sidOrName) ?? this.running.get(sidOrName); }

  /** The running conference named `name`, created (status init) when there is none. */
  open(name: string): Conference {
    let c = this.running.get(name);
    if (!c) {
      c = new Conference(this.accountSid, name);
      this.all.set(c.sid, c);
      this.running.set(name, c);
    }
    return c;
  }

  /** <Dial><Conference>: the call enters the room at once. */
  enter(call: EmulatedCall, name: string, o: ParticipantOptions): Participant {
    const c = this.open(name);
    const p = new Participant(c, call, 'twiml', o);
    this.adopt(c, p, o);
    this.connect(p);
    return p;
  }

  /** The Participants resource: `call` (not placed yet) is to join `c` when it answers. */
  add(c: Conference, call: EmulatedCall, o: ParticipantOptions): Participant {
    const p = new Participant(c, call, 'api', o);
    this.adopt(c, p, o);
    return p;
  }

  private adopt(c: Conference, p: Participant, o: Pick<ParticipantOptions, 'conferenceCallback' | 'maxParticipants'>): void {
    c.participants.push(p);
    c.touch();
    c.statusCallback ??= o.conferenceCallback;
    c.maxParticipants ??= o.maxParticipants;
  }

  /** A REST participant's call progressed (initiated → connecting, ringing). */
  progress(p: Participant, status: 'connecting' | 'ringing'): void {
    if (!p.pending) return;
    p.status = status;
    p.touch();
  }

  /** A REST participant's call was answered: it joins (a new conference of the same name if its own ended meanwhile). */
  answered(p: Participant): void {
    if (!p.pending) return;
    const old = p.conference;
    if (old.status === 'completed') {
      const c = this.open(old.friendlyName);
      old.participants.splice(old.participants.indexOf(p), 1);
      p.conference = c;
      this.adopt(c, p, { conferenceCallback: old.statusCallback, maxParticipants: old.maxParticipants });
      p.call.log({ type: 'warning', message: `conference ${old.sid} (${old.friendlyName}) ended while this participant was being dialled; it joins a new conference ${c.sid} of that name` });
    }
    this.connect(p);
  }

  /** `p` joins its conference, unless the room is full: then it is turned away (error 16020). */
  private connect(p: Participant): void {
    const c = p.conference;
    const max = c.maxParticipants ?? MAX_PARTICIPANTS;
    if (c.present.length >= max) {
      p.call.log({ type: 'twiml-error', code: 16020, message: `Conference is full: ${c.friendlyName} (${c.sid}) already has ${max} participants (maxParticipants)` });
      this.drop(p, 'conference-full');
      return;
    }
    p.status = 'connected';
    p.joinedAt = Date.now();
    p.touch();
    c.touch();
    p.eventsFrom = p.call.events.length;
    p.call.log({
      type: 'conference-join', name: c.friendlyName, conferenceSid: c.sid, via: p.via,
      startConferenceOnEnter: p.startConferenceOnEnter, endConferenceOnExit: p.endConferenceOnExit, muted: p.muted,
    });
    this.callback(c, 'join', 'participant-join', p);
    this.maybeStart(c);
  }

  private maybeStart(c: Conference): void {
    if (c.status !== 'init') return;
    const present = c.present;
    if (present.length < 2 || !present.some((p) => p.startConferenceOnEnter)) return;
    c.status = 'in-progress';
    c.startedAt = Date.now();
    c.touch();
    for (const p of present) {
      p.call.log({ type: 'conference-start', name: c.friendlyName, conferenceSid: c.sid });
      p.notify();
    }
    this.callback(c, 'start', 'conference-start');
  }

  /** A participant's call ended: it leaves, or, never answered, it is dropped. */
  callEnded(p: Participant): void {
    if (p.gone) return;
    this.leave(p, p.present ? 'hangup' : 'not-answered');
  }

  /** `p` leaves its conference, which ends if `p` had endConferenceOnExit or was the last one in it. */
  leave(p: Participant, reason: LeaveReason): void {
    if (p.gone) return;
    const c = p.conference;
    const wasPresent = p.present;
    this.drop(p, reason);
    // Removing a participant still being dialled hangs up on it.
    if (!wasPresent && reason === 'kicked') p.call.apiEnd('canceled');
    if (c.status === 'completed') return;
    const kicked = reason === 'kicked';
    if (wasPresent && p.endConferenceOnExit) {
      this.end(c, kicked ? 'participant-with-end-conference-on-exit-kicked' : 'participant-with-end-conference-on-exit-left', p.callSid);
    } else if (c.present.length === 0 && (wasPresent || c.pending.length === 0)) {
      this.end(c, kicked ? 'last-participant-kicked' : 'last-participant-left', wasPresent ? p.callSid : undefined);
    }
  }

  private drop(p: Participant, reason: LeaveReason): void {
    const c = p.conference;
    const wasPresent = p.present;
    p.leftAt = Date.now();
    p.leaveReason = reason;
    p.eventsTo = p.call.events.length;
    p.status = wasPresent ? 'complete' : 'failed';
    p.touch();
    c.touch();
    p.notify();
    if (!wasPresent) return;
    p.call.log({ type: 'conference-leave', name: c.friendlyName, conferenceSid: c.sid, reason });
    this.callback(c, 'leave', 'participant-leave', p, { ParticipantCallStatus: p.call.status });
  }

  /** Ends `c`: everyone in it drops out. */
  end(c: Conference, reason: ConferenceEndReason, callSid?: string): void {
    if (c.status === 'completed') return;
    c.status = 'completed';
    c.endedAt = Date.now();
    c.reasonEnded = reason;
    c.callSidEndingConference = callSid;
    c.touch();
    if (this.running.get(c.friendlyName) === c) this.running.delete(c.friendlyName);
    const ender = callSid ? c.participants.find((p) => p.callSid === callSid) : undefined;
    const present = c.present;
    for (const p of present) this.drop(p, 'conference-ended');
    for (const p of new Set([...(ender ? [ender] : []), ...present])) {
      p.call.log({ type: 'conference-end', name: c.friendlyName, conferenceSid: c.sid, reason });
    }
    this.callback(c, 'end', 'conference-end', undefined, { ReasonConferenceEnded: reason, ...(callSid ? { CallSidEndingConference: callSid } : {}) });
  }

  /** The Participants resource's update: Muted, Hold (+ HoldUrl, HoldMethod), EndConferenceOnExit. */
  update(p: Participant, o: { muted?: boolean; hold?: boolean; holdUrl?: string; holdMethod?: 'GET' | 'POST'; endConferenceOnExit?: boolean }): void {
    const c = p.conference;
    if (o.endConferenceOnExit !== undefined) p.endConferenceOnExit = o.endConferenceOnExit;
    let rehold = false;
    if (o.holdUrl !== undefined && o.holdUrl !== p.holdUrl) { p.holdUrl = o.holdUrl; rehold = p.hold; }
    if (o.holdMethod !== undefined && o.holdMethod !== p.holdMethod) { p.holdMethod = o.holdMethod; rehold = p.hold; }
    if (o.muted !== undefined && o.muted !== p.muted) {
      p.muted = o.muted;
      if (p.present) {
        p.call.log({ type: 'conference-mute', name: c.friendlyName, conferenceSid: c.sid, muted: p.muted });
        this.callback(c, 'mute', p.muted ? 'participant-mute' : 'participant-unmute', p);
      }
    }
    if (o.hold !== undefined && o.hold !== p.hold) {
      p.hold = o.hold;
      rehold = true;
      if (p.present) {
        p.call.log({ type: 'conference-hold', name: c.friendlyName, conferenceSid: c.sid, hold: p.hold });
        this.callback(c, 'hold', p.hold ? 'participant-hold' : 'participant-unhold', p);
      }
    }
    p.touch();
    c.touch();
    if (rehold) p.notify();
  }

  private callback(c: Conference, group: EventGroup, event: string, p?: Participant, extra: Record<string, string> = {}): void {
    const cb = c.statusCallback;
    if (!cb) return;
    const events = cb.events.length ? cb.events : ['start', 'end'];
    if (!events.includes(group)) return;
    const params: Record<string, string> = {
      AccountSid: c.accountSid, ConferenceSid: c.sid, FriendlyName: c.friendlyName, StatusCallbackEvent: event,
      SequenceNumber: String(c.seq++), Timestamp: rfc2822(),
    };
    if (p) {
      Object.assign(params, {
        CallSid: p.callSid, Muted: String(p.muted), Hold: String(p.hold), Coaching: 'false',
        EndConferenceOnExit: String(p.endConferenceOnExit), StartConferenceOnEnter: String(p.startConferenceOnEnter),
      });
      if (p.label) params.ParticipantLabel = p.label;
    }
    Object.assign(params, extra);
    const atMs = Date.now() - c.dateCreated;
    c.chain = c.chain.then(async () => {
      const r = await sendWebhook(this.webhook, { url: cb.url, method: cb.method, params });
      c.statusCallbacks.push({ kind: 'conference-status', url: r.url, method: cb.method, params, status: r.status, body: r.body, error: r.error, ms: r.ms, atMs });
    });
  }
}
