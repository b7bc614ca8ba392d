/**
 * One emulated call, inbound or outbound: its life (queued → ringing → in-progress → an end status),
 * the webhooks it makes (voice URL, status callbacks, answering-machine detection, <Dial>/<Connect>
 * actions), the TwiML it executes, its media streams, and a handle for tests and benchmarks to play the
 * far end (talk, press keys, hang up) and to read what happened (event log, agent audio, timings).
 *
 * Followed:
 *  - "Call resource" (https://www.twilio.com/docs/voice/api/call-resource): statuses queued, ringing,
 *    in-progress, completed, busy, failed, no-answer, canceled ("canceled … while ringing. If the call
 *    is canceled while still in queued status, no status callbacks are fired"); StatusCallbackEvent
 *    initiated / ringing / answered (sent with CallStatus in-progress) / completed ("If no
 *    StatusCallbackEvent is specified, completed is fired by default"); status callback parameters
 *    CallSid, AccountSid, From, To, CallStatus, ApiVersion, Direction, Caller, Called, CallbackSource
 *    ("call-progress-events"), SequenceNumber (from 0), Timestamp (RFC 2822), and on terminal events
 *    CallDuration (s), SipResponseCode, plus Duration (minutes) on completed; Timeout (default 60 s, then
 *    no-answer with SIP 487); update Status=canceled ("hang up calls that are queued or ringing … will
 *    not affect calls already in progress") or completed ("even if it's already in progress"), Twiml, Url.
 *  - "Answering Machine Detection" (https://www.twilio.com/docs/voice/answering-machine-detection):
 *    MachineDetection Enable | DetectMessageEnd, AnsweredBy human, machine_start, machine_end_beep,
 *    machine_end_silence, machine_end_other, fax, unknown; MachineDetectionDuration (ms); without
 *    AsyncAmd the call waits for the result and AnsweredBy goes with the Url request; with AsyncAmd=true
 *    the Url is requested at once and the result is posted to AsyncAmdStatusCallback (CallSid,
 *    AccountSid, AnsweredBy, MachineDetectionDuration); MachineDetectionTimeout (default 30 s) → unknown.
 *  - "TwiML Voice" (https://www.twilio.com/docs/voice/twiml): the voice request parameters (CallSid,
 *    AccountSid, From, To, CallStatus, ApiVersion, Direction, Caller, Called); relative URLs resolve
 *    against the document's URL; <Reject> as the first verb leaves the call unanswered and ends it
 *    "with a status of busy or no-answer, depending on the verb's reason attribute"
 *    (https://www.twilio.com/docs/voice/twiml/reject); <Connect><Stream> blocks the document until the
 *    application closes the WebSocket, then the next verb runs, or <Connect action> is requested
 *    (https://www.twilio.com/docs/voice/twiml/connect, https://www.twilio.com/docs/voice/twiml/stream);
 *    <Stream statusCallback> gets StreamEvent stream-started / stream-stopped / stream-error; <Dial>
 *    rings the number, then continues with the next verb or requests `action` with DialCallStatus,
 *    DialCallSid, DialCallDuration (https://www.twilio.com/docs/voice/twiml/dial).
 *  - TwiML <Conference> (https://www.twilio.com/docs/voice/twiml/conference) and the "Conference
 *    Participant resource" (https://www.twilio.com/docs/voice/api/conference-participant-resource), with
 *    the rules in ./conference.ts: <Dial><Conference> enters the room; while the conference has not
 *    started (or the participant is on hold) the waitUrl (holdUrl) document plays — <Say>, <Play>, <Pause>,
 *    <Redirect> only, anything else is error 13238 and skipped — and is requested again, with the call's
 *    usual parameters, each time it runs out; it stops the moment the conference starts. Leaving the room
 *    (the conference ended, a kick) completes the <Dial>: `action` is requested with DialCallStatus=completed
 *    — "DialCallSid … DialCallDuration … not sent after dialing a conference" — or the next verb runs. New
 *    TwiML through the REST API takes the call out of the room; a full room (maxParticipants) turns the
 *    call away — error 16020, the <Dial> completes with DialCallStatus=failed (chosen: the documents give
 *    no status). A REST participant is an outbound-api call with the StatusCallback / StatusCallbackEvent
 *    progress of any call, dialled by its destination script (Timeout honoured), joining when answered and
 *    staying for its destination's hangupAfterMs (default dialLegMs, as a <Dial>ed leg); when it leaves the
 *    room (or is turned away from a full one), Twilio hangs it up. <Say>/<Play> loop="0" repeats 1000 times.
 *  - "IncomingPhoneNumber resource": an inbound call's StatusCallback is requested when the call ends.
 *  - Error 11200 (HTTP retrieval failure) and 12100 (document parse failure): Twilio tells the caller
 *    "an application error has occurred" and hangs up.
 */
import { performance } from 'node:perf_hooks';
import { encodeWav, writeWavFile } from '../../engine/audio/wav.js';
import { beep, FRAME_BYTES, speechLike, toPcm8k, tone, type CallerAudio } from './audio.js';
import { CallerSource, type SpeechSpan } from './caller.js';
import { AgentRecorder, type AgentSpeech } from './playback.js';
import { MediaSession, type ClearRecord, type MarkRecord, type ProtocolViolation, type StreamEnd, type StreamLogEvent } from './stream.js';
import type { FrameMember, MediaTicker } from './ticker.js';
import { DEFAULT_HOLD_MUSIC, type ConferenceEndReason, type ConferenceHub, type LeaveReason, type Participant } from './conference.js';
import { parseTwiml, type ConferenceNoun, type StreamNoun, type TwimlVerb } from './twiml.js';
import { deferred, newSid, rfc2822, sleep } from './util.js';
import { sendWebhook, type WebhookSender } from './webhook.js';

export type CallStatus = 'queued' | 'ringing' | 'in-progress' | 'completed' | 'busy' | 'failed' | 'no-answer' | 'canceled';
export const TERMINAL_STATUSES: ReadonlySet<CallStatus> = new Set(['completed', 'busy', 'failed', 'no-answer', 'canceled']);

export type AnsweredBy = 'human' | 'machine_start' | 'machine_end_beep' | 'machine_end_silence' | 'machine_end_other' | 'fax' | 'unknown';

export type WebhookKind = 'voice' | 'redirect' | 'action' | 'status' | 'amd' | 'stream-status' | 'wait' | 'hold' | 'conference-status';

export interface WebhookRecord {
  kind: WebhookKind;
  /** As signed (a GET carries its parameters in the query string). */
  url: string;
  method: 'GET' | 'POST';
  params: Record<string, string>;
  status?: number;
  contentType?: string;
  body?: string;
  error?: string;
  ms: number;
  atMs: number;
}

export type CallEvent = { atMs: number } & (
  | { type: 'status'; status: CallStatus }
  | { type: 'webhook'; webhook: WebhookRecord }
  | { type: 'verb'; verb: string; detail?: string }
  /** `during`: heard while waiting for a conference to start, or on hold in one (a waitUrl / holdUrl document). */
  | { type: 'say'; text: string; durationMs: number; during?: 'wait' | 'hold' }
  | { type: 'pause'; seconds: number; during?: 'wait' | 'hold' }
  | { type: 'play'; url?: string; digits?: string; during?: 'wait' | 'hold' }
  | { type: 'dial'; to: string[]; callerId?: string; dialCallSid: string }
  | { type: 'dial-end'; dialCallSid: string; dialCallStatus: string; durationSec: number }
  | { type: 'reject'; reason: string }
  /** Entered a conference (<Dial><Conference>, or a REST participant answering). */
  | { type: 'conference-join'; name: string; conferenceSid: string; via: 'twiml' | 'api'; startConferenceOnEnter: boolean; endConferenceOnExit: boolean; muted: boolean }
  /** Waiting (conference not started) or on hold: the waitUrl / holdUrl is requested (again, `round` > 1), or default music or silence plays. */
  | { type: 'conference-wait'; name: string; conferenceSid: string; during: 'wait' | 'hold'; source: 'url' | 'default' | 'silence'; url?: string; round: number }
  | { type: 'conference-start'; name: string; conferenceSid: string }
  | { type: 'conference-hold'; name: string; conferenceSid: string; hold: boolean }
  | { type: 'conference-mute'; name: string; conferenceSid: string; muted: boolean }
  | { type: 'conference-leave'; name: string; conferenceSid: string; reason: LeaveReason }
  | { type: 'conference-end'; name: string; conferenceSid: string; reason: ConferenceEndReason }
  | { type: 'amd'; answeredBy: AnsweredBy; durationMs: number }
  | { type: 'dtmf'; digit: string; delivered: boolean }
  | { type: 'hangup'; by: HangupBy }
  | { type: 'twiml-error'; code: number; message: string }
  /** Something Twilio would accept but handle differently than the application may expect. */
  | { type: 'warning'; message: string }
  | { type: 'protocol-violation'; violation: ProtocolViolation }
  | StreamLogEvent
);

/** Who ended a call: the far end (caller or callee), the TwiML, the REST API, the destination script, or the emulator. */
export type HangupBy = 'caller' | 'callee' | 'twiml' | 'api' | 'emulator' | 'network';

/** How a dialled number behaves (outbound calls and <Dial>). Durations are ms before `timeScale`. */
export interface Destination {
  answer: 'human' | 'machine' | 'fax' | 'busy' | 'no-answer' | 'failed';
  /** Ringing before it answers or is busy (default 100 ms). */
  ringMs?: number;
  /** Human: what they say once the media stream is up. Machine: the greeting (else a synthetic one). */
  audio?: CallerAudio;
  /** Machine without `audio`: length of the synthetic greeting (default 1500 ms). */
  greetingMs?: number;
  /** Machine: a beep after the greeting (default true). */
  beep?: boolean;
  /** Time AMD takes to decide for a human, a fax, or a machine under MachineDetection=Enable (default 250 ms). */
  amdMs?: number;
  /** Overrides what AMD reports. */
  answeredBy?: AnsweredBy;
  /** The callee hangs up this long after answering (default: never; for <Dial> legs: the emulator's dialLegMs). */
  hangupAfterMs?: number;
  /** SIP code of a failed call (default 404). */
  sipCode?: number;
}

export interface CallContext {
  accountSid: string;
  authToken: string;
  ticker: MediaTicker;
  webhook: WebhookSender;
  conferences: ConferenceHub;
  timeScale: number;
  sayMsPerChar: number;
  dialLegMs: number;
  playUrlMs: number;
  logMedia: boolean;
  tlsInsecure: boolean;
  speechDbfs: number;
  keepAudio: boolean;
  destinationFor(number: string): Destination;
  violation(v: ProtocolViolation): void;
  ended(call: EmulatedCall): void;
}

export interface CallInit {
  direction: 'inbound' | 'outbound-api';
  from: string;
  to: string;
  phoneNumberSid?: string;
  url?: string;
  method: 'GET' | 'POST';
  twiml?: string;
  statusCallback?: string;
  statusCallbackMethod: 'GET' | 'POST';
  /** Outbound: the StatusCallbackEvent values asked for. Inbound numbers get `completed` only. */
  statusCallbackEvents: ReadonlySet<string>;
  machineDetection?: 'Enable' | 'DetectMessageEnd';
  machineDetectionTimeoutSec: number;
  asyncAmd: boolean;
  asyncAmdStatusCallback?: string;
  asyncAmdStatusCallbackMethod: 'GET' | 'POST';
  timeoutSec: number;
}

export interface Transfer {
  to: string[];
  callerId?: string;
  dialCallSid: string;
  atMs: number;
  status?: string;
  durationSec?: number;
}

export interface LatencySample {
  /** Call ms when the caller stopped talking. */
  callerEndMs: number;
  /** Call ms when the agent's next audible audio started playing to the caller. */
  agentStartMs: number;
  latencyMs: number;
}

export interface CallMetrics {
  callerSpeech: SpeechSpan[];
  agentSpeech: AgentSpeech[];
  /** For each caller utterance answered by the agent: end of the caller's audio → first agent audio heard. */
  responseLatencies: LatencySample[];
  /** 20 ms media frames sent to the application, and how many of them left more than the ticker's lateness bound after their slot. */
  framesSent: number;
  lateFrames: number;
  maxLagMs: number;
  mediaReceived: number;
  agentAudioMs: number;
  marks: number;
  clears: number;
  protocolViolations: number;
}

/** What a test or benchmark holds for one call. */
export interface CallHandle {
  readonly sid: string;
  readonly direction: 'inbound' | 'outbound-api';
  readonly from: string;
  readonly to: string;
  readonly status: CallStatus;
  readonly answeredBy: AnsweredBy | undefined;
  readonly events: readonly CallEvent[];
  readonly webhooks: readonly WebhookRecord[];
  /** The status callbacks sent, in order (each with the parameters and the app's answer). */
  readonly statusCallbacks: readonly WebhookRecord[];
  readonly streams: readonly MediaSession[];
  readonly marks: readonly MarkRecord[];
  readonly clears: readonly ClearRecord[];
  readonly transfers: readonly Transfer[];
  readonly protocolViolations: readonly ProtocolViolation[];
  /** Ms on the call's timeline (since the emulator created the call). */
  now(): number;
  /** Plays audio as the far end, in real time; resolves once it has all been sent. Waits for a media stream unless `whenStreaming` is false. */
  sendAudio(audio: CallerAudio, opts?: { label?: string; whenStreaming?: boolean }): Promise<void>;
  sendSilence(ms: number): Promise<void>;
  sendDtmf(digits: string, opts?: { whenStreaming?: boolean }): Promise<void>;
  /** The far end hangs up now (`afterQueued`: once the audio queued so far has been sent). */
  hangup(opts?: { afterQueued?: boolean }): Promise<void>;
  waitForStream(timeoutMs?: number): Promise<MediaSession>;
  /** Resolves with the call ms at which audible agent audio (starting at or after `afterMs`, default now) began playing. */
  waitForAgentAudio(opts?: { afterMs?: number; timeoutMs?: number }): Promise<number>;
  /** Resolves once no audible agent audio has played for `ms`. */
  waitForAgentSilence(ms: number, opts?: { timeoutMs?: number }): Promise<void>;
  waitForStatus(status: CallStatus | ((s: CallStatus) => boolean), timeoutMs?: number): Promise<CallStatus>;
  /** Resolves with the final status once the call has ended and its final status callback was delivered. */
  waitForEnd(timeoutMs?: number): Promise<CallStatus>;
  waitForEvent<E extends CallEvent>(pred: (e: CallEvent) => e is E, timeoutMs?: number): Promise<E>;
  waitForEvent(pred: (e: CallEvent) => boolean, timeoutMs?: number): Promise<CallEvent>;
  /** The agent's audio as heard: PCM16 8 kHz starting at `startMs` on the call timeline. */
  agentAudio(): { samples: Int16Array; startMs: number; sampleRate: 8000 };
  agentWav(): Uint8Array;
  saveAgentWav(path: string): Promise<void>;
  metrics(): CallMetrics;
}

interface Source {
  kind: WebhookKind;
  url?: string;
  twiml?: string;
  method: 'GET' | 'POST';
  extra?: Record<string, string>;
}

/** A document to run: `during` marks a waitUrl / holdUrl one (<Say>, <Play>, <Pause>, <Redirect> only). */
interface TwimlDoc {
  verbs: TwimlVerb[];
  base?: string;
  during?: 'wait' | 'hold';
}

const WAIT_VERBS: ReadonlySet<TwimlVerb['verb']> = new Set(['Say', 'Play', 'Pause', 'Redirect']);

interface Waiter { check(): boolean; fail(err: Error): void }

export type EventBody = DistributiveOmit<CallEvent, 'atMs'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const DEFAULT_RING_MS = 100;
const DEFAULT_AMD_MS = 250;
const SPEECH_END_THRESHOLD_MS = 1200;
const APPLICATION_ERROR = 'We are sorry, an application error has occurred. Goodbye.';

export class EmulatedCall implements CallHandle, FrameMember {
  readonly sid = newSid('CA');
  readonly direction: 'inbound' | 'outbound-api';
  readonly from: string;
  readonly to: string;
  readonly dateCreated = Date.now();
  readonly events: CallEvent[] = [];
  readonly webhooks: WebhookRecord[] = [];
  readonly statusCallbacks: WebhookRecord[] = [];
  readonly streams: MediaSession[] = [];
  readonly transfers: Transfer[] = [];
  readonly protocolViolations: ProtocolViolation[] = [];
  status: CallStatus = 'queued';
  answeredBy: AnsweredBy | undefined;
  dateUpdated = Date.now();
  startTime?: number;
  endTime?: number;
  answeredAt?: number;
  readonly caller = new CallerSource();
  readonly agent: AgentRecorder;
  /** The call's conference seat: entered by <Dial><Conference>, or (REST participants) to take when answered. */
  participant?: Participant;
  private readonly t0 = performance.now();
  private seq = 0;
  private ended = false;
  private session?: AbortController;
  private pendingRedirect?: Source;
  private stream?: MediaSession;
  private readonly lifecycle = new AbortController();
  private readonly frame = new Uint8Array(FRAME_BYTES);
  private waiters = new Set<Waiter>();
  private eventListeners = new Set<(e: CallEvent) => void>();
  private callbacks: Promise<void> = Promise.resolve();
  private readonly settled = deferred<CallStatus>();
  private readonly frameStats = { sent: 0, late: 0, maxLag: 0 };

  constructor(private readonly ctx: CallContext, readonly init: CallInit) {
    this.direction = init.direction;
    this.from = init.from;
    this.to = init.to;
    this.agent = new AgentRecorder(ctx.speechDbfs, 300, ctx.keepAudio);
    this.agent.setListener(() => this.checkWaiters());
    this.settled.promise.catch(() => {});
  }

  // ---- reading ----

  now(): number { return performance.now() - this.t0; }
  get accountSid(): string { return this.ctx.accountSid; }
  get isEnded(): boolean { return this.ended; }
  get answered(): boolean { return this.answeredAt !== undefined; }
  get marks(): MarkRecord[] { return this.streams.flatMap((s) => s.marks); }
  get clears(): ClearRecord[] { return this.streams.flatMap((s) => s.clears); }
  /** Whole seconds the call was up (answer → end), as Twilio's duration. */
  get durationSec(): number | undefined {
    if (this.answeredAt === undefined || this.endTime === undefined) return undefined;
    return Math.max(0, Math.round((this.endTime - this.answeredAt) / 1000));
  }

  private ms(perf: number): number { return perf - this.t0; }

  /** Appends to the call's event log (the conference hub logs joins, starts and leaves here too). */
  log(e: EventBody): void {
    const ev = { atMs: this.now(), ...e } as CallEvent;
    this.events.push(ev);
    for (const l of this.eventListeners) l(ev);
    this.checkWaiters();
  }

  private scaled(ms: number): number { return ms * this.ctx.timeScale; }

  // ---- far end (tests, benchmarks, destination scripts) ----

  async sendAudio(audio: CallerAudio, opts: { label?: string; whenStreaming?: boolean } = {}): Promise<void> {
    const pcm = await toPcm8k(audio);
    if (this.ended) return;
    if (opts.whenStreaming !== false && !this.stream?.isOpen) this.caller.waitForStream();
    return this.caller.audio(pcm, opts.label);
  }

  sendSilence(ms: number): Promise<void> {
    if (this.ended) return Promise.resolve();
    return this.caller.silence(ms);
  }

  sendDtmf(digits: string, opts: { whenStreaming?: boolean } = {}): Promise<void> {
    if (!/^[0-9A-D*#wW]+$/.test(digits)) return Promise.reject(new Error(`not DTMF digits: ${digits}`));
    if (this.ended) return Promise.resolve();
    if (opts.whenStreaming !== false && !this.stream?.isOpen) this.caller.waitForStream();
    return this.caller.dtmf(digits);
  }

  async hangup(opts: { afterQueued?: boolean } = {}): Promise<void> {
    if (this.ended) return;
    if (opts.afterQueued && !this.caller.idle && this.answered) {
      await this.caller.hangup();
      return;
    }
    this.farEndHangup(this.direction === 'inbound' ? 'caller' : 'callee');
  }

  private farEndHangup(by: HangupBy): void {
    if (this.ended) return;
    this.end(this.answered ? 'completed' : 'canceled', by);
  }

  waitForStream(timeoutMs = 10_000): Promise<MediaSession> {
    return this.waitFor(() => (this.stream?.isOpen ? this.stream : undefined), timeoutMs, 'a media stream', true);
  }

  waitForAgentAudio(opts: { afterMs?: number; timeoutMs?: number } = {}): Promise<number> {
    const after = opts.afterMs ?? this.now();
    const first = () => {
      for (const s of this.agent.speech) if (s.endMs > after) return Math.max(s.startMs, after);
      return undefined;
    };
    return this.waitFor(first, opts.timeoutMs ?? 10_000, 'agent audio', true);
  }

  waitForAgentSilence(ms: number, opts: { timeoutMs?: number } = {}): Promise<void> {
    const since = this.now();
    return this.waitFor(() => (this.ended || this.now() - Math.max(since, this.agent.lastAudibleEndMs) >= ms ? true : undefined),
      opts.timeoutMs ?? Math.max(10_000, ms * 4), `${ms} ms of agent silence`, false).then(() => undefined);
  }

  waitForStatus(status: CallStatus | ((s: CallStatus) => boolean), timeoutMs = 10_000): Promise<CallStatus> {
    const ok = typeof status === 'function' ? status : (s: CallStatus) => s === status;
    return this.waitFor(() => (ok(this.status) ? this.status : undefined), timeoutMs, `status ${typeof status === 'string' ? status : '(predicate)'}`, false);
  }

  waitForEnd(timeoutMs = 30_000): Promise<CallStatus> {
    return withTimeout(this.settled.promise, timeoutMs, () => `call ${this.sid} did not end within ${timeoutMs} ms (status ${this.status})`);
  }

  waitForEvent<E extends CallEvent>(pred: (e: CallEvent) => e is E, timeoutMs?: number): Promise<E>;
  waitForEvent(pred: (e: CallEvent) => boolean, timeoutMs?: number): Promise<CallEvent>;
  waitForEvent(pred: (e: CallEvent) => boolean, timeoutMs = 10_000): Promise<CallEvent> {
    const found = this.events.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const l = (e: CallEvent) => { if (pred(e)) { done(); resolve(e); } };
      const t = setTimeout(() => { done(); reject(new Error(`call ${this.sid}: no matching event within ${timeoutMs} ms`)); }, timeoutMs);
      const done = () => { clearTimeout(t); this.eventListeners.delete(l); };
      this.eventListeners.add(l);
    });
  }

  /** Resolves when `get` returns a value; checked on every event and media frame. */
  private waitFor<T>(get: () => T | undefined, timeoutMs: number, what: string, failOnEnd: boolean): Promise<T> {
    const v = get();
    if (v !== undefined) return Promise.resolve(v);
    if (this.ended && failOnEnd) return Promise.reject(new Error(`call ${this.sid} ended (${this.status}) before ${what}`));
    return new Promise<T>((resolve, reject) => {
      const w: Waiter = {
        check: () => {
          const x = get();
          if (x === undefined) {
            if (this.ended && failOnEnd) { w.fail(new Error(`call ${this.sid} ended (${this.status}) before ${what}`)); return true; }
            return false;
          }
          clearTimeout(t);
          resolve(x);
          return true;
        },
        fail: (err) => { clearTimeout(t); this.waiters.delete(w); reject(err); },
      };
      const t = setTimeout(() => w.fail(new Error(`call ${this.sid}: no ${what} within ${timeoutMs} ms (status ${this.status})`)), timeoutMs);
      this.waiters.add(w);
    });
  }

  private checkWaiters(): void {
    if (this.waiters.size === 0) return;
    for (const w of [...this.waiters]) if (w.check()) this.waiters.delete(w);
  }

  agentAudio(): { samples: Int16Array; startMs: number; sampleRate: 8000 } {
    return { ...this.agent.pcm(), sampleRate: 8000 };
  }

  agentWav(): Uint8Array {
    return encodeWav(this.agent.pcm().samples, 8000);
  }

  async saveAgentWav(path: string): Promise<void> {
    await writeWavFile(path, this.agent.pcm().samples, 8000);
  }

  metrics(): CallMetrics {
    const callerSpeech = this.caller.spans;
    const agentSpeech = this.agent.speech;
    const responseLatencies: LatencySample[] = [];
    for (let i = 0; i < callerSpeech.length; i++) {
      const c = callerSpeech[i];
      const nextCaller = callerSpeech[i + 1]?.startMs ?? Infinity;
      const a = agentSpeech.find((s) => s.startMs >= c.endMs);
      if (a && a.startMs < nextCaller) responseLatencies.push({ callerEndMs: c.endMs, agentStartMs: a.startMs, latencyMs: a.startMs - c.endMs });
    }
    return {
      callerSpeech: [...callerSpeech], agentSpeech: agentSpeech.map((s) => ({ ...s })), responseLatencies,
      framesSent: this.frameStats.sent, lateFrames: this.frameStats.late, maxLagMs: this.frameStats.maxLag,
      mediaReceived: this.streams.reduce((s, x) => s + x.stats.mediaReceived, 0),
      agentAudioMs: this.agent.playedMs, marks: this.marks.length, clears: this.clears.length,
      protocolViolations: this.protocolViolations.length,
    };
  }

  // ---- media clock ----

  onFrame(due: number, now: number): void {
    if (this.ended) return;
    const lag = now - due;
    if (lag > this.frameStats.maxLag) this.frameStats.maxLag = lag;
    if (lag > this.ctx.ticker.lateAfterMs) this.frameStats.late++;
    const stream = this.stream?.isOpen ? this.stream : undefined;
    const f = this.caller.next(this.frame, this.ms(due), stream !== undefined);
    if (stream) {
      stream.onFrame(due, this.frame, f.dtmf);
      this.frameStats.sent++;
    }
    if (f.dtmf !== undefined) this.log({ type: 'dtmf', digit: f.dtmf, delivered: stream !== undefined });
    this.checkWaiters();
    if (f.hangup) this.farEndHangup(this.direction === 'inbound' ? 'caller' : 'callee');
  }

  // ---- parameters ----

  private baseParams(callStatus: string): Record<string, string> {
    return {
      AccountSid: this.ctx.accountSid, ApiVersion: '2010-04-01', CallSid: this.sid, CallStatus: callStatus,
      Called: this.to, Caller: this.from, Direction: this.direction, From: this.from, To: this.to,
    };
  }

  private async webhook(kind: WebhookKind, url: string, method: 'GET' | 'POST', params: Record<string, string>, signal?: AbortSignal): Promise<WebhookRecord> {
    const atMs = this.now();
    const r = await sendWebhook(this.ctx.webhook, { url, method, params }, signal);
    const rec: WebhookRecord = { kind, url: r.url, method, params, status: r.status, contentType: r.contentType, body: r.body, error: r.error, ms: r.ms, atMs };
    this.webhooks.push(rec);
    if (kind === 'status') this.statusCallbacks.push(rec);
    this.log({ type: 'webhook', webhook: rec });
    return rec;
  }

  // ---- status ----

  private setStatus(s: CallStatus): void {
    this.status = s;
    this.dateUpdated = Date.now();
    this.log({ type: 'status', status: s });
  }

  /** A call-progress event for the outbound StatusCallback, if it was asked for. */
  private progress(event: 'initiated' | 'ringing' | 'answered' | 'completed', callStatus: string): void {
    const url = this.init.statusCallback;
    if (!url) return;
    if (event !== 'completed' && !this.init.statusCallbackEvents.has(event)) return;
    const params: Record<string, string> = {
      ...this.baseParams(callStatus), CallbackSource: 'call-progress-events',
      SequenceNumber: String(this.seq++), Timestamp: rfc2822(),
    };
    if (event === 'completed') {
      params.CallDuration = String(this.durationSec ?? 0);
      if (callStatus === 'completed') params.Duration = String(Math.ceil((this.durationSec ?? 0) / 60));
      params.SipResponseCode = String(sipCode(callStatus, this.ctx.destinationFor(this.to)));
    }
    if (this.answeredBy && (event === 'answered' || event === 'completed')) params.AnsweredBy = this.answeredBy;
    const method = this.init.statusCallbackMethod;
    this.callbacks = this.callbacks.then(() => this.webhook('status', url, method, params).then(() => undefined));
  }

  // ---- life ----

  /** Outbound: dial, ring, let the destination answer (or not), then run the TwiML. */
  async runOutbound(): Promise<void> {
    const sig = this.lifecycle.signal;
    this.log({ type: 'status', status: 'queued' });
    await sleep(5, sig);
    if (this.ended) return;
    this.startTime = Date.now();
    this.progress('initiated', 'initiated');
    if (this.participant) this.ctx.conferences.progress(this.participant, 'connecting');
    await sleep(this.scaled(20), sig);
    if (this.ended) return;
    this.setStatus('ringing');
    this.progress('ringing', 'ringing');
    if (this.participant) this.ctx.conferences.progress(this.participant, 'ringing');
    const d = this.ctx.destinationFor(this.to);
    const ring = this.scaled(d.ringMs ?? DEFAULT_RING_MS);
    const timeout = this.scaled(this.init.timeoutSec * 1000);
    if (d.answer === 'failed') { await sleep(Math.min(ring, timeout), sig); return this.end('failed', 'network'); }
    if (d.answer === 'no-answer' || ring >= timeout) { await sleep(timeout, sig); return this.end('no-answer', 'network'); }
    await sleep(ring, sig);
    if (this.ended) return;
    if (d.answer === 'busy') return this.end('busy', 'callee');
    this.answer();
    // A participant's leg, like a <Dial>ed one, hangs up after dialLegMs unless its destination says otherwise.
    await this.scriptDestination(d, this.participant ? this.ctx.dialLegMs : undefined);
    if (this.ended) return;

    let extra: Record<string, string> | undefined;
    if (this.init.machineDetection) {
      const amd = this.amdOutcome(d);
      if (!this.init.asyncAmd) {
        await sleep(amd.ms, sig);
        if (this.ended) return;
        this.setAnsweredBy(amd.answeredBy, amd.ms);
        extra = { AnsweredBy: amd.answeredBy, MachineDetectionDuration: String(Math.round(amd.ms)) };
      } else {
        void sleep(amd.ms, sig).then(() => {
          if (this.ended) return;
          this.setAnsweredBy(amd.answeredBy, amd.ms);
          const url = this.init.asyncAmdStatusCallback;
          if (url) {
            void this.webhook('amd', url, this.init.asyncAmdStatusCallbackMethod, {
              AccountSid: this.ctx.accountSid, AnsweredBy: amd.answeredBy, CallSid: this.sid, MachineDetectionDuration: String(Math.round(amd.ms)),
            });
          }
        });
      }
    }
    if (this.ended) return;
    const p = this.participant;
    if (p) {
      if (!this.pendingRedirect) return this.runParticipant(p);
      // Given new TwiML before it answered: it never joins.
      this.participant = undefined;
      this.ctx.conferences.leave(p, 'redirected');
    }
    await this.execute({ kind: 'voice', url: this.init.url, twiml: this.init.url ? undefined : this.init.twiml, method: this.init.method, extra });
  }

  /** Inbound: ask the number's voice URL what to do, ringing until the TwiML answers. */
  async runInbound(voiceUrl: string | null, voiceMethod: 'GET' | 'POST'): Promise<void> {
    this.startTime = Date.now();
    this.setStatus('ringing');
    if (!voiceUrl) {
      this.log({ type: 'twiml-error', code: 11100, message: 'the number has no VoiceUrl' });
      return this.end('failed', 'emulator');
    }
    await this.execute({ kind: 'voice', url: voiceUrl, method: voiceMethod });
  }

  private setAnsweredBy(a: AnsweredBy, ms: number): void {
    this.answeredBy = a;
    this.log({ type: 'amd', answeredBy: a, durationMs: Math.round(ms) });
  }

  private amdOutcome(d: Destination): { answeredBy: AnsweredBy; ms: number } {
    const limit = this.init.machineDetectionTimeoutSec * 1000;
    const quick = this.scaled(d.amdMs ?? DEFAULT_AMD_MS);
    let r: { answeredBy: AnsweredBy; ms: number };
    if (d.answeredBy) r = { answeredBy: d.answeredBy, ms: quick };
    else if (d.answer === 'human') r = { answeredBy: 'human', ms: quick };
    else if (d.answer === 'fax') r = { answeredBy: 'fax', ms: quick };
    else if (this.init.machineDetection === 'Enable') r = { answeredBy: 'machine_start', ms: quick };
    else {
      const greeting = this.greetingMs(d);
      r = d.beep === false
        ? { answeredBy: 'machine_end_silence', ms: greeting + SPEECH_END_THRESHOLD_MS }
        : { answeredBy: 'machine_end_beep', ms: greeting + 400 + 20 };
    }
    return r.ms > limit ? { answeredBy: 'unknown', ms: limit } : r;
  }

  private greetingMs(d: Destination): number {
    if (d.audio instanceof Int16Array) return (d.audio.length / 8000) * 1000;
    if (d.audio && typeof d.audio === 'object' && 'samples' in d.audio) return (d.audio.samples.length / d.audio.sampleRate) * 1000;
    return d.greetingMs ?? 1500;
  }

  /** What the answering party does on its own: a human's opening words, a machine's greeting and beep. */
  private async scriptDestination(d: Destination, defaultHangupAfterMs?: number): Promise<void> {
    if (d.answer === 'human') {
      if (d.audio !== undefined) void this.sendAudio(d.audio, { label: 'callee' }).catch(() => {});
    } else if (d.answer === 'machine') {
      const greeting = d.audio !== undefined ? await toPcm8k(d.audio) : speechLike(d.greetingMs ?? 1500);
      void this.caller.audio(greeting, 'greeting');
      if (d.beep !== false) void this.caller.audio(beep(), 'beep');
    } else if (d.answer === 'fax') {
      for (let i = 0; i < 5; i++) { void this.caller.audio(tone(1100, 500, -12), 'fax'); void this.caller.silence(3000); }
    }
    const hangupAfterMs = d.hangupAfterMs ?? defaultHangupAfterMs;
    if (hangupAfterMs !== undefined) {
      void sleep(this.scaled(hangupAfterMs), this.lifecycle.signal).then(() => this.farEndHangup('callee'));
    }
  }

  private answer(): void {
    if (this.answered || this.ended) return;
    this.answeredAt = Date.now();
    if (!this.startTime) this.startTime = this.answeredAt;
    this.setStatus('in-progress');
    this.ctx.ticker.add(this);
    if (this.direction === 'outbound-api') this.progress('answered', 'in-progress');
  }

  /** Ends the call (idempotent): stops the stream, the TwiML and the media clock, then the final callback. */
  end(status: CallStatus, by: HangupBy): void {
    if (this.ended) return;
    this.ended = true;
    const wasQueued = this.status === 'queued';
    this.endTime = Date.now();
    this.stream?.stop(by === 'api' ? 'call ended via the REST API' : `call ended by ${by}`);
    this.session?.abort();
    this.lifecycle.abort();
    this.ctx.ticker.remove(this);
    this.caller.flush();
    this.log({ type: 'hangup', by });
    this.setStatus(status);
    const p = this.participant;
    if (p) {
      this.participant = undefined;
      this.ctx.conferences.callEnded(p);
    }
    if (this.direction === 'outbound-api') {
      if (!(status === 'canceled' && wasQueued)) this.progress('completed', status);
    } else if (this.init.statusCallback) {
      const params: Record<string, string> = {
        ...this.baseParams(status), CallbackSource: 'call-progress-events', SequenceNumber: String(this.seq++), Timestamp: rfc2822(),
        CallDuration: String(this.durationSec ?? 0), SipResponseCode: String(sipCode(status)),
      };
      if (status === 'completed') params.Duration = String(Math.ceil((this.durationSec ?? 0) / 60));
      const url = this.init.statusCallback;
      const method = this.init.statusCallbackMethod;
      this.callbacks = this.callbacks.then(() => this.webhook('status', url, method, params).then(() => undefined));
    }
    for (const w of [...this.waiters]) if (w.check()) this.waiters.delete(w);
    this.ctx.ended(this);
    void this.callbacks.then(() => this.settled.resolve(status));
  }

  // ---- REST updates ----

  /** Status=completed|canceled from the REST API. */
  apiEnd(status: 'completed' | 'canceled'): void {
    if (this.ended) return;
    if (this.answered) {
      if (status === 'completed') this.end('completed', 'api');
      return; // canceled does not touch a call in progress
    }
    this.end('canceled', 'api');
  }

  /** Twiml= or Url= from the REST API: whatever runs now stops and the new instructions run. */
  redirect(src: { twiml?: string; url?: string; method: 'GET' | 'POST' }): void {
    // Whatever document runs (or is being fetched) stops; an outbound call not yet answered runs these
    // instructions instead of its Url when it is.
    this.pendingRedirect = { kind: 'redirect', url: src.url, twiml: src.url ? undefined : src.twiml, method: src.method };
    this.session?.abort();
  }

  // ---- TwiML ----

  private async execute(first: Source): Promise<void> {
    let next: Source | undefined = this.pendingRedirect ?? first;
    this.pendingRedirect = undefined;
    while (next && !this.ended) {
      const ctrl = new AbortController();
      this.session = ctrl;
      const src: Source = next;
      next = undefined;
      const doc = await this.load(src, ctrl.signal);
      if (this.ended) return;
      if (ctrl.signal.aborted) { next = this.takeRedirect(); continue; }
      if (!doc) return this.applicationError();
      const after = (await this.run(doc, ctrl.signal)).next;
      if (this.ended) return;
      if (ctrl.signal.aborted) { next = this.takeRedirect(); continue; }
      if (after) { next = after; continue; }
      // The document ran out of verbs: Twilio hangs up.
      return this.end(this.answered ? 'completed' : 'canceled', 'twiml');
    }
  }

  private takeRedirect(): Source | undefined {
    const r = this.pendingRedirect;
    this.pendingRedirect = undefined;
    return r;
  }

  /**
   * The document `src` names: its Twiml, or its URL requested with the call's parameters. Failures are
   * logged (11200, 12100) and answer undefined. A waitUrl / holdUrl that answers with an audio file plays
   * it, as a <Play> of that URL.
   */
  private async load(src: Source, signal: AbortSignal): Promise<TwimlDoc | undefined> {
    const during = src.kind === 'wait' || src.kind === 'hold' ? src.kind : undefined;
    const what = during ? `${during}Url ` : '';
    let text = src.twiml;
    if (src.url) {
      const callStatus = this.answered ? 'in-progress' : 'ringing';
      const r = await this.webhook(src.kind, src.url, src.method, { ...this.baseParams(callStatus), ...src.extra }, signal);
      if (signal.aborted || this.ended) return undefined;
      if (r.error || !r.status || r.status < 200 || r.status >= 300) {
        this.log({ type: 'twiml-error', code: 11200, message: `${what}${src.method} ${src.url}: ${r.error ?? `HTTP ${r.status}`}` });
        return undefined;
      }
      if (during && r.contentType && /^audio\//i.test(r.contentType)) return { verbs: [{ verb: 'Play', url: src.url, loop: 1 }], base: src.url, during };
      text = r.body ?? '';
    }
    if (text === undefined) {
      this.log({ type: 'twiml-error', code: 21205, message: 'no Url or Twiml to run' });
      return undefined;
    }
    try {
      return { verbs: parseTwiml(text), base: src.url, during };
    } catch (err) {
      this.log({ type: 'twiml-error', code: 12100, message: `${what}${src.url ? `${src.url}: ` : ''}${(err as Error).message}` });
      return undefined;
    }
  }

  private async applicationError(): Promise<void> {
    if (this.ended) return;
    this.answer();
    const durationMs = this.scaled(APPLICATION_ERROR.length * this.ctx.sayMsPerChar);
    this.log({ type: 'say', text: APPLICATION_ERROR, durationMs });
    await sleep(durationMs, this.lifecycle.signal);
    this.end('completed', 'twiml');
  }

  private resolveUrl(url: string, base?: string): string {
    try { return new URL(url, base).toString(); } catch { return url; }
  }

  /**
   * Runs one document's verbs. Returns the next document to fetch (<Redirect>, an action), if any, and the
   * ms of audio the verbs played. In a waitUrl / holdUrl document (`doc.during`) anything but <Say>,
   * <Play>, <Pause> and <Redirect> is error 13238 and skipped; what plays there is logged as heard `during`
   * the wait or hold.
   */
  private async run(doc: TwimlDoc, signal: AbortSignal): Promise<{ next?: Source; ms: number }> {
    const { verbs, base, during } = doc;
    const heard = during ? { during } : {};
    // Verbs of the call's own TwiML are logged as such; wait and hold audio only as what was heard.
    const verb = (name: string, detail?: string) => { if (!during) this.log({ type: 'verb', verb: name, detail }); };
    let ms = 0;
    const play = async (durationMs: number) => { ms += durationMs; await sleep(durationMs, signal); };
    for (const v of verbs) {
      if (signal.aborted || this.ended) break;
      if (during && !WAIT_VERBS.has(v.verb)) {
        this.log({ type: 'twiml-error', code: 13238, message: `<${v.verb === 'unsupported' ? v.name : v.verb}> in a ${during}Url document (only Say, Play, Pause and Redirect): skipped` });
        continue;
      }
      if (v.verb === 'Reject') {
        this.log({ type: 'reject', reason: v.reason });
        if (!this.answered && this.direction === 'inbound') this.end(v.reason === 'busy' ? 'busy' : 'no-answer', 'twiml');
        else this.end('completed', 'twiml');
        break;
      }
      if (v.verb !== 'Redirect' && v.verb !== 'unsupported') this.answer();
      switch (v.verb) {
        case 'Say': {
          const durationMs = this.sayMs(v);
          verb('Say');
          this.log({ type: 'say', text: v.text, durationMs, ...heard });
          await play(durationMs);
          break;
        }
        case 'Pause':
          verb('Pause');
          this.log({ type: 'pause', seconds: v.length, ...heard });
          await play(this.scaled(v.length * 1000));
          break;
        case 'Play':
          verb('Play', v.digits ? `digits ${v.digits}` : v.url);
          this.log({ type: 'play', url: v.url, digits: v.digits, ...heard });
          await play(this.playMs(v));
          break;
        case 'Hangup':
          verb('Hangup');
          this.end('completed', 'twiml');
          return { ms };
        case 'Redirect':
          verb('Redirect', v.url);
          return { next: { kind: during ?? 'redirect', url: this.resolveUrl(v.url, base), method: v.method }, ms };
        case 'Dial': {
          if (v.conference) {
            verb('Dial', `Conference ${v.conference.name}`);
            const r = await this.dialConference(v.conference, base, signal);
            if (this.ended) return { ms };
            if (v.action && !signal.aborted) return { next: { kind: 'action', url: this.resolveUrl(v.action, base), method: v.method, extra: r }, ms };
            break;
          }
          verb('Dial', v.numbers.join(', '));
          const r = await this.dial(v, signal);
          if (this.ended) return { ms };
          if (v.action && !signal.aborted) return { next: { kind: 'action', url: this.resolveUrl(v.action, base), method: v.method, extra: r }, ms };
          break;
        }
        case 'Connect': {
          verb('Connect', v.stream ? `Stream ${v.stream.url}` : v.other);
          if (!v.stream) break;
          await this.connectStream(v.stream, signal);
          if (this.ended || signal.aborted) return { ms };
          if (v.action) return { next: { kind: 'action', url: this.resolveUrl(v.action, base), method: v.method }, ms };
          break;
        }
        case 'unsupported':
          verb(v.name, 'not supported by the emulator: skipped');
          break;
      }
    }
    return { ms };
  }

  /** <Say loop>: "0" repeats it until the call ends or 1000 times (https://www.twilio.com/docs/voice/twiml/say). */
  private sayMs(v: Extract<TwimlVerb, { verb: 'Say' }>): number {
    return this.scaled(v.text.length * this.ctx.sayMsPerChar * (v.loop === 0 ? 1000 : v.loop));
  }

  /** <Play loop>: "0" likewise (https://www.twilio.com/docs/voice/twiml/play); digits: 200 ms each, w 0.5 s, W 1 s. */
  private playMs(v: Extract<TwimlVerb, { verb: 'Play' }>): number {
    let ms = 0;
    if (v.digits) for (const d of v.digits) ms += d === 'w' ? 500 : d === 'W' ? 1000 : 200;
    if (v.url) ms += this.ctx.playUrlMs * (v.loop === 0 ? 1000 : v.loop);
    return this.scaled(ms);
  }

  // ---- conferences ----

  /**
   * <Dial><Conference>: enters the room and stays until it leaves — the conference ends, it is kicked, or
   * the call is redirected or ends. The <Dial> then completes (DialCallStatus=completed; Twilio sends no
   * DialCallSid or DialCallDuration after a conference). A full room turns the call away at once
   * (error 16020, DialCallStatus=failed).
   */
  private async dialConference(noun: ConferenceNoun, base: string | undefined, signal: AbortSignal): Promise<Record<string, string>> {
    const p = this.ctx.conferences.enter(this, noun.name, {
      label: noun.participantLabel, startConferenceOnEnter: noun.startConferenceOnEnter, endConferenceOnExit: noun.endConferenceOnExit,
      muted: noun.muted, beep: noun.beep, waitUrl: noun.waitUrl ? this.resolveUrl(noun.waitUrl, base) : noun.waitUrl, waitMethod: noun.waitMethod,
      maxParticipants: noun.maxParticipants,
      conferenceCallback: noun.statusCallback
        ? { url: this.resolveUrl(noun.statusCallback, base), method: noun.statusCallbackMethod, events: noun.statusCallbackEvents }
        : undefined,
    });
    this.participant = p;
    await this.attend(p, signal);
    if (this.participant === p) this.participant = undefined;
    // Still in the room: the call was given new TwiML, which takes it out.
    if (!p.gone) this.ctx.conferences.leave(p, this.ended ? 'hangup' : 'redirected');
    return { DialCallStatus: p.leaveReason === 'conference-full' ? 'failed' : 'completed' };
  }

  /** A REST participant's answered leg: in the conference until it leaves, then hung up (unless redirected). */
  private async runParticipant(p: Participant): Promise<void> {
    const ctrl = new AbortController();
    this.session = ctrl;
    this.ctx.conferences.answered(p);
    await this.attend(p, ctrl.signal);
    if (this.ended) return;
    if (this.participant === p) this.participant = undefined;
    if (ctrl.signal.aborted) {
      this.ctx.conferences.leave(p, 'redirected');
      const next = this.takeRedirect();
      if (next) return this.execute(next);
    }
    // Out of the conference with no TwiML of its own: Twilio hangs up.
    this.end('completed', 'twiml');
  }

  /** Stays in the conference, hearing the wait or hold audio while there is any to hear, until `p` leaves or `signal` aborts. */
  private async attend(p: Participant, signal: AbortSignal): Promise<void> {
    while (!p.gone && !signal.aborted && !this.ended) {
      const phase = p.changed;
      const sig = AbortSignal.any([signal, phase, this.lifecycle.signal]);
      if (p.hold) await this.waitAudio(p, 'hold', p.holdUrl, p.holdMethod, sig);
      else if (p.conference.status === 'init') await this.waitAudio(p, 'wait', p.waitUrl, p.waitMethod, sig);
      else await untilAborted(sig);
    }
  }

  /**
   * A waitUrl / holdUrl until `sig` aborts: the document (<Say>, <Play>, <Pause>, <Redirect> only), and,
   * when it runs out, the URL again. An audio file answer plays as <Play>; no URL is Twilio's default hold
   * music (not fetched); an empty one is silence.
   */
  private async waitAudio(p: Participant, during: 'wait' | 'hold', url: string | undefined, method: 'GET' | 'POST', sig: AbortSignal): Promise<void> {
    const c = p.conference;
    const meta = { name: c.friendlyName, conferenceSid: c.sid, during };
    if (url === '' || url === undefined) {
      this.log({ type: 'conference-wait', ...meta, source: url === '' ? 'silence' : 'default', url: url === '' ? undefined : DEFAULT_HOLD_MUSIC, round: 1 });
      return untilAborted(sig);
    }
    for (let round = 1; !sig.aborted && !this.ended; round++) {
      this.log({ type: 'conference-wait', ...meta, source: 'url', url, round });
      let next: Source | undefined = { kind: during, url, method };
      let audibleMs = 0;
      while (next && !sig.aborted) {
        const doc = await this.load(next, sig);
        if (sig.aborted || this.ended) return;
        if (!doc) return untilAborted(sig); // the error is logged; Twilio plays nothing more
        const r = await this.run(doc, sig);
        audibleMs += r.ms;
        next = r.next;
      }
      // A document with nothing to hear is requested again, but not in a tight loop.
      if (audibleMs <= 0) await sleep(Math.max(20, this.scaled(1000)), sig);
    }
  }

  private async connectStream(noun: StreamNoun, signal: AbortSignal): Promise<StreamEnd | undefined> {
    if (!/^wss?:\/\//i.test(noun.url)) {
      this.log({ type: 'twiml-error', code: 31941, message: `<Stream url="${noun.url}"> is not a ws:// or wss:// URL` });
      return undefined;
    }
    const q = noun.url.indexOf('?');
    if (q >= 0) {
      // "The url does not support query string parameters": Twilio connects without it.
      this.log({ type: 'warning', message: `<Stream url> query string dropped (Twilio does not support one; use <Parameter>): ${noun.url.slice(q)}` });
      noun = { ...noun, url: noun.url.slice(0, q) };
    }
    const session = new MediaSession({
      accountSid: this.ctx.accountSid, callSid: this.sid, authToken: this.ctx.authToken,
      rewriteUrl: this.ctx.webhook.rewriteUrl, tlsInsecure: this.ctx.tlsInsecure, logMedia: this.ctx.logMedia,
      recorder: this.agent, callMs: (p) => this.ms(p), now: () => performance.now(),
      log: (e) => this.log(e),
      violation: (v) => { this.protocolViolations.push(v); this.log({ type: 'protocol-violation', violation: v }); this.ctx.violation(v); },
    }, noun);
    this.stream = session;
    this.streams.push(session);
    const onAbort = () => session.stop(this.ended ? 'call ended' : 'call redirected');
    signal.addEventListener('abort', onAbort, { once: true });
    session.open();
    const opened = this.waitFor(() => (session.state !== 'connecting' ? true : undefined), 15_000, 'stream open', false).catch(() => false);
    void opened.then((ok) => { if (ok && session.isOpen) this.streamStatus(noun, session, 'stream-started'); });
    const end = await session.ended;
    signal.removeEventListener('abort', onAbort);
    if (this.stream === session) this.stream = undefined;
    this.streamStatus(noun, session, end.by === 'error' ? 'stream-error' : 'stream-stopped', end.by === 'error' ? end.reason : undefined);
    return end;
  }

  private streamStatus(noun: StreamNoun, s: MediaSession, event: string, error?: string): void {
    const url = noun.statusCallback;
    if (!url) return;
    const params: Record<string, string> = {
      AccountSid: this.ctx.accountSid, CallSid: this.sid, StreamSid: s.streamSid, StreamName: noun.name ?? s.streamSid,
      StreamEvent: event, Timestamp: new Date().toISOString(),
    };
    if (error) params.StreamError = error;
    void this.webhook('stream-status', this.resolveUrl(url), noun.statusCallbackMethod, params);
  }

  /** <Dial>: rings the first number as its destination script says; returns the action parameters. */
  private async dial(v: Extract<TwimlVerb, { verb: 'Dial' }>, signal: AbortSignal): Promise<Record<string, string>> {
    const dialCallSid = newSid('CA');
    const to = v.numbers[0] ?? '';
    const t: Transfer = { to: v.numbers, callerId: v.callerId, dialCallSid, atMs: this.now() };
    this.transfers.push(t);
    this.log({ type: 'dial', to: v.numbers, callerId: v.callerId, dialCallSid });
    const d = this.ctx.destinationFor(to);
    const ring = this.scaled(d.ringMs ?? DEFAULT_RING_MS);
    const timeout = this.scaled(v.timeout * 1000);
    let status: string;
    let talkedMs = 0;
    let bridged = false;
    if (!to) status = 'failed';
    else if (d.answer === 'failed') { await sleep(Math.min(ring, timeout), signal); status = 'failed'; }
    else if (d.answer === 'no-answer' || ring >= timeout) { await sleep(timeout, signal); status = 'no-answer'; }
    else {
      await sleep(ring, signal);
      if (d.answer === 'busy') status = 'busy';
      else if (signal.aborted) status = 'canceled';
      else {
        bridged = true;
        let talk = this.scaled(d.hangupAfterMs ?? this.ctx.dialLegMs);
        if (v.timeLimit !== undefined) talk = Math.min(talk, this.scaled(v.timeLimit * 1000));
        const t0 = performance.now();
        await sleep(talk, signal);
        talkedMs = performance.now() - t0;
        status = 'completed';
      }
    }
    if (signal.aborted && !bridged) status = 'canceled';
    t.status = status;
    t.durationSec = Math.round(talkedMs / 1000);
    this.log({ type: 'dial-end', dialCallSid, dialCallStatus: status, durationSec: t.durationSec });
    return { DialCallStatus: status, DialCallSid: dialCallSid, DialCallDuration: String(t.durationSec), DialBridged: String(bridged) };
  }
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function sipCode(status: string, d?: Destination): number {
  switch (status) {
    case 'completed': return 200;
    case 'busy': return 486;
    case 'no-answer': case 'canceled': return 487;
    case 'failed': return d?.sipCode ?? 404;
    default: return 200;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, msg: () => string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(msg())), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}
