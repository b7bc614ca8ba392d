/**
 * A loopback Telnyx: REST API v2 (numbers, number orders, Call Control applications, call commands,
 * conferences), signed Call Control webhooks, and the Media Streaming WebSocket, speaking Telnyx's documented
 * protocol. It is a real HTTP server on 127.0.0.1 and a real WebSocket client to the app's stream_url.
 *
 * Documents it follows (developers.telnyx.com): API errors (/development/api-fundamentals/api-errors), number
 * search / orders / phone numbers, Call Control applications, call commands (dial, answer, hangup, reject,
 * transfer, send_dtmf, streaming_start/stop), conference commands, webhook references (call.initiated,
 * call.answered, call.hangup, call.dtmf.received, call.machine.*, streaming.*), the Media Streaming guide
 * (/docs/voice/programmable-voice/media-streaming) and its AsyncAPI (/api-reference/websockets/stream-call-media-over-websocket),
 * and answering machine detection (/docs/voice/programmable-voice/answering-machine-detection).
 *
 * What it checks, as Telnyx does: `Authorization: Bearer <key>` (401 / 10009 otherwise), paths and methods
 * (404 / 10005), JSON bodies, required fields and enums (422 with `errors[].source.pointer`), +E.164 numbers
 * (10016), base64 client_state, ws(s) stream URLs, commands on calls that are over (422 / 90018), orders only
 * of numbers the search offers. It answers with Telnyx's shapes (`{data}`, `{data, meta}`, `{errors}`).
 *
 * Calls: an inbound call sends call.initiated to the number's application webhook and waits for `answer`;
 * then call.answered, and with stream_url it opens the media socket: `connected`, `start`, caller audio as
 * 20 ms inbound `media` frames in real time (PCM16 8 kHz in, PCMU/PCMA/L16 on the wire), `dtmf` frames (plus
 * call.dtmf.received webhooks). In bidirectional rtp mode it plays what the app sends in real time, returns a
 * mark when the audio before it has played (at once if nothing is queued), and on `clear` drops queued audio and
 * returns the queued marks; it records what was played, when. Outbound dials ring, answer, are busy or not
 * answered as configured, and report AMD results when asked. Every webhook is signed with the fake's Ed25519
 * key (`publicKeyBase64`). Failure modes on demand: failNext('auth' | 'quota' | 'unavailable'), delayNext(ms).
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import { WebSocket } from 'ws';
import { decodeALaw, decodeMuLaw, encodeALaw, encodeMuLaw } from '../../src/engine/audio/g711.js';
import { json, sleep, startFakeServer, type FailureMode } from './server.js';

// ---------------- shapes ----------------

export interface InventoryNumber {
  phone_number: string;
  country_code: string;
  state?: string;
  rate_center?: string;
  type?: 'local' | 'toll_free' | 'mobile' | 'national';
  features?: string[];
}

export interface FakePhoneNumber {
  id: string;
  record_type: 'phone_number';
  phone_number: string;
  status: string;
  connection_id: string | null;
  connection_name: string | null;
  tags: string[];
  purchased_at: string;
  created_at: string;
  updated_at: string;
}

export interface FakeApp {
  id: string;
  record_type: 'call_control_application';
  application_name: string;
  webhook_event_url: string;
  webhook_event_failover_url: string | null;
  webhook_api_version: '1' | '2';
  webhook_timeout_secs: number | null;
  active: boolean;
  anchorsite_override: string;
  dtmf_type: string;
  first_command_timeout: boolean;
  first_command_timeout_secs: number;
  inbound: Record<string, unknown>;
  outbound: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export interface FakeOrder {
  id: string;
  record_type: 'number_order';
  phone_numbers_count: number;
  connection_id: string | null;
  messaging_profile_id: null;
  billing_group_id: null;
  customer_reference: string | null;
  phone_numbers: { id: string; record_type: 'number_order_phone_number'; phone_number: string; status: string; requirements_met: boolean; regulatory_requirements: unknown[] }[];
  sub_number_orders_ids: string[];
  status: 'pending' | 'success' | 'failure';
  requirements_met: boolean;
  created_at: string;
  updated_at: string;
}

export interface FakeConference {
  id: string;
  name: string;
  participants: { callControlId: string; hold: boolean; holdAudioUrl?: string }[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  authorization: string | undefined;
}

export interface DeliveredWebhook {
  url: string;
  eventType: string;
  callControlId: string | null;
  body: string;
  headers: Record<string, string>;
  status: number | null;
  attempt: number;
}

/** How an outbound destination behaves when dialed (or transferred to). */
export interface DestinationBehaviour {
  outcome: 'answer' | 'busy' | 'no_answer' | 'reject';
  /** Ringing time before the outcome (no_answer: capped by the dial's timeout_secs). Default 150 ms. */
  ringMs?: number;
  /** An answering machine picks up (AMD reports machine). */
  machine?: boolean;
  /** The machine's greeting ends with a beep. */
  beep?: boolean;
  /** What the answering party says (PCM16 8 kHz). */
  audio?: Int16Array;
}

export interface MarkRecord {
  name: string;
  /** ms on the call's clock when the app sent it. */
  receivedAtMs: number;
  returnedAtMs: number | null;
  /** Bytes of app audio played when the mark came back. */
  playedBytesAtReturn: number | null;
  /** Returned by a clear rather than by playback. */
  cleared: boolean;
}

interface StreamParams {
  url: string;
  track: 'inbound_track' | 'outbound_track' | 'both_tracks';
  codec: 'PCMU' | 'PCMA' | 'L16';
  bidirectional: 'rtp' | 'mp3' | null;
  bidirectionalCodec: 'PCMU' | 'PCMA' | 'L16';
  authToken: string | null;
  customParameters: Record<string, string>;
}

// ---------------- helpers ----------------

const E164 = /^\+[1-9]\d{6,14}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const iso = () => new Date().toISOString();
const uuid = () => crypto.randomUUID();
const numericId = () => String(BigInt(Date.now()) * 1000000n + BigInt(crypto.randomInt(1_000_000)));
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const FRAME_MS = 20;
const RATE = 8000;
const FRAME_SAMPLES = (RATE * FRAME_MS) / 1000;

interface TelnyxErr { code: string; title: string; detail: string; pointer?: string }

class HttpError extends Error {
  constructor(readonly status: number, readonly errors: TelnyxErr[]) {
    super(errors.map((e) => e.detail).join('; '));
  }
}

const E = {
  auth: (): HttpError => new HttpError(401, [{ code: '10009', title: 'Authentication failed', detail: 'The required authentication headers were either invalid or not included in the request.' }]),
  notFound: (detail = 'The requested resource or URL could not be found.'): HttpError => new HttpError(404, [{ code: '10005', title: 'Resource not found', detail }]),
  missing: (pointer: string): HttpError => new HttpError(422, [{ code: '10004', title: 'Missing required parameter', detail: `The '${pointer.slice(1)}' parameter is required.`, pointer }]),
  invalid: (pointer: string, detail: string): HttpError => new HttpError(422, [{ code: '10015', title: 'Bad Request', detail, pointer }]),
  e164: (pointer: string): HttpError => new HttpError(422, [{ code: '10016', title: 'Phone number must be in +E.164 format', detail: 'The specified phone number parameter must be in +E.164 format.', pointer }]),
  association: (pointer: string): HttpError => new HttpError(422, [{ code: '10013', title: 'Missing association', detail: 'One of the associated fields does not exist.', pointer }]),
  callEnded: (): HttpError => new HttpError(422, [{ code: '90018', title: 'Call has already ended', detail: 'This call is no longer active and can\'t receive commands.' }]),
  badJson: (): HttpError => new HttpError(400, [{ code: '10015', title: 'Bad Request', detail: 'The request body is not valid JSON.' }]),
};

const FAILURES: Record<FailureMode, HttpError> = {
  auth: E.auth(),
  quota: new HttpError(429, [{ code: '10011', title: 'Too many requests', detail: 'You have exceeded the maximum number of allowed requests.' }]),
  unavailable: new HttpError(503, [{ code: '10007', title: 'Unexpected error', detail: 'An unexpected error occured.' }]),
};

function sendError(res: http.ServerResponse, err: HttpError, echo?: string): void {
  json(res, err.status, {
    errors: err.errors.map((e) => ({
      code: e.code, title: e.title, detail: echo ? `${e.detail} (presented: ${echo})` : e.detail,
      ...(e.pointer ? { source: { pointer: e.pointer } } : {}),
      meta: { url: `https://developers.telnyx.com/docs/overview/errors/${e.code}` },
    })),
  });
}

function str(body: Record<string, unknown>, name: string, required: boolean): string | undefined {
  const v = body[name];
  if (v === undefined || v === null || v === '') {
    if (required) throw E.missing(`/${name}`);
    return undefined;
  }
  if (typeof v !== 'string') throw E.invalid(`/${name}`, `'${name}' must be a string.`);
  return v;
}

function oneOf<T extends string>(body: Record<string, unknown>, name: string, values: readonly T[]): T | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !values.includes(v as T)) throw E.invalid(`/${name}`, `'${name}' must be one of ${values.join(', ')}.`);
  return v as T;
}

function clientStateOf(body: Record<string, unknown>): string | undefined {
  const cs = str(body, 'client_state', false);
  if (cs !== undefined && !BASE64.test(cs)) throw E.invalid('/client_state', 'client_state must be a valid Base-64 encoded string.');
  return cs;
}

const CODECS = ['PCMU', 'PCMA', 'G722', 'OPUS', 'AMR-WB', 'L16'] as const;

function streamParamsOf(body: Record<string, unknown>, required: boolean): StreamParams | null {
  const url = str(body, 'stream_url', required);
  if (!url) return null;
  if (!/^wss?:\/\/[^\s]+$/.test(url)) throw E.invalid('/stream_url', 'stream_url must be a ws:// or wss:// URL.');
  const track = oneOf(body, 'stream_track', ['inbound_track', 'outbound_track', 'both_tracks'] as const) ?? 'inbound_track';
  const codecRaw = oneOf(body, 'stream_codec', [...CODECS, 'default'] as const) ?? 'default';
  const bidirectional = oneOf(body, 'stream_bidirectional_mode', ['mp3', 'rtp'] as const) ?? null;
  const bidiCodec = oneOf(body, 'stream_bidirectional_codec', CODECS) ?? 'PCMU';
  oneOf(body, 'stream_bidirectional_target_legs', ['both', 'self', 'opposite'] as const);
  const rate = body.stream_bidirectional_sampling_rate;
  if (rate !== undefined && ![8000, 16000, 22050, 24000, 48000].includes(rate as number)) {
    throw E.invalid('/stream_bidirectional_sampling_rate', 'stream_bidirectional_sampling_rate must be one of 8000, 16000, 22050, 24000, 48000.');
  }
  const codec = codecRaw === 'default' ? 'PCMU' : codecRaw;
  if (codec !== 'PCMU' && codec !== 'PCMA' && codec !== 'L16') throw E.invalid('/stream_codec', `this fake streams PCMU, PCMA or L16, not ${codec}.`);
  if (bidiCodec !== 'PCMU' && bidiCodec !== 'PCMA' && bidiCodec !== 'L16') throw E.invalid('/stream_bidirectional_codec', `this fake plays PCMU, PCMA or L16, not ${bidiCodec}.`);
  const authToken = str(body, 'stream_auth_token', false) ?? null;
  const customParameters: Record<string, string> = {};
  if (Array.isArray(body.custom_parameters)) {
    for (const p of body.custom_parameters) if (isObj(p) && typeof p.name === 'string') customParameters[p.name] = String(p.value ?? '');
  }
  return { url, track, codec, bidirectional, bidirectionalCodec: bidiCodec, authToken, customParameters };
}

function encode(codec: 'PCMU' | 'PCMA' | 'L16', pcm: Int16Array): Buffer {
  if (codec === 'PCMU') return Buffer.from(encodeMuLaw(pcm));
  if (codec === 'PCMA') return Buffer.from(encodeALaw(pcm));
  const b = Buffer.alloc(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++) b.writeInt16BE(pcm[i], i * 2); // L16 is network byte order
  return b;
}

function decode(codec: 'PCMU' | 'PCMA' | 'L16', bytes: Buffer): Int16Array {
  if (codec === 'PCMU') return decodeMuLaw(bytes);
  if (codec === 'PCMA') return decodeALaw(bytes);
  const out = new Int16Array(bytes.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readInt16BE(i * 2);
  return out;
}

const bytesPerFrame = (codec: 'PCMU' | 'PCMA' | 'L16') => (codec === 'L16' ? FRAME_SAMPLES * 2 : FRAME_SAMPLES);
const silenceFrame = (codec: 'PCMU' | 'PCMA' | 'L16') => encode(codec, new Int16Array(FRAME_SAMPLES));

// ---------------- a call ----------------

type QueueItem = { kind: 'audio'; bytes: Buffer } | { kind: 'mark'; record: MarkRecord };

export class FakeCall {
  readonly callControlId = `v3:${crypto.randomBytes(24).toString('base64url')}`;
  readonly callLegId = uuid();
  readonly callSessionId = uuid();
  readonly startTime = iso();
  private readonly t0 = performance.now();
  state: 'parked' | 'ringing' | 'answered' | 'ended';
  clientState: string | null;
  webhookUrl: string;
  hangupCause: string | null = null;
  hangupSource: string | null = null;
  answeredAtMs: number | null = null;
  endedAtMs: number | null = null;
  amd: string | null = null;
  conferenceConfig: Record<string, unknown> | null = null;
  /** Webhooks sent for this call, in order. */
  readonly webhooks: DeliveredWebhook[] = [];
  /** App audio played to the caller: one entry per 20 ms, with when it started on the call clock. */
  readonly played: { atMs: number; bytes: Buffer }[] = [];
  readonly marks: MarkRecord[] = [];
  /** When the app's clears arrived (call clock). */
  readonly clears: number[] = [];
  readonly dtmfSent: string[] = [];
  readonly transfers: { to: string; from: string | null }[] = [];
  /** Every message the app sent on the media socket, parsed. */
  readonly received: unknown[] = [];
  /** `error` frames the fake sent the app. */
  readonly streamErrors: string[] = [];
  /** Media the app sent while the stream was not bidirectional (Telnyx drops it). */
  ignoredMedia = 0;
  inboundFramesSent = 0;
  streamId: string | null = null;
  stream: StreamParams | null = null;
  streamConnected = false;
  streamClosed = false;
  streamSocketHeaders: http.IncomingHttpHeaders | null = null;

  private ws: WebSocket | null = null;
  private seq = 0;
  private chunk = 0;
  private timer: NodeJS.Timeout | undefined;
  private streamT0 = 0;
  private callerAudio: Buffer[] = [];
  private callerAudioPcm: Int16Array[] = [];
  private pendingDigits: { atMs: number; digit: string }[] = [];
  private queue: QueueItem[] = [];
  private playingUntil = 0;
  private playedBytes = 0;
  private lastPlayedFrame: Buffer | null = null;
  private chain: Promise<void> = Promise.resolve();
  private answerTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly fake: TelnyxFakeImpl,
    readonly direction: 'incoming' | 'outgoing',
    readonly from: string,
    readonly to: string,
    readonly connectionId: string,
    webhookUrl: string,
    clientState: string | null,
  ) {
    this.state = direction === 'incoming' ? 'parked' : 'ringing';
    this.webhookUrl = webhookUrl;
    this.clientState = clientState;
  }

  /** ms since the call began. */
  now(): number {
    return performance.now() - this.t0;
  }

  // ---- test controls ----

  /** Queue the remote party's voice (PCM16 8 kHz); it streams in real time after what is already queued. */
  say(pcm: Int16Array): void {
    if (this.stream) this.callerAudio.push(encode(this.stream.codec, pcm));
    else this.callerAudioPcm.push(pcm);
  }

  /**
   * The remote party presses a key `afterMs` from now (from the stream's start if it has not started): a
   * `dtmf` frame on the media socket and a call.dtmf.received webhook.
   */
  pressDigit(digit: string, afterMs = 0): void {
    if (this.stream && this.streamConnected && !this.streamClosed) {
      this.pendingDigits.push({ atMs: performance.now() - this.streamT0 + afterMs, digit });
    } else if (this.state === 'answered') {
      setTimeout(() => { if (this.state === 'answered') this.webhook('call.dtmf.received', { digit }); }, afterMs);
      return;
    } else {
      this.pendingDigits.push({ atMs: afterMs, digit });
    }
    this.pendingDigits.sort((a, b) => a.atMs - b.atMs);
  }

  /** The remote party hangs up. */
  hangup(): void {
    this.end('normal_clearing', this.direction === 'incoming' ? 'caller' : 'callee', '200');
  }

  /** App audio as PCM16, in play order. */
  playedPcm(): Int16Array {
    const codec = this.stream?.bidirectionalCodec ?? 'PCMU';
    return decode(codec, Buffer.concat(this.played.map((p) => p.bytes)));
  }

  /** Resolves with the first webhook of this type sent for the call (now or later). */
  async waitFor(eventType: string, timeoutMs = 5000): Promise<DeliveredWebhook> {
    return this.waitUntil(() => this.webhooks.find((w) => w.eventType === eventType && w.status !== null), eventType, timeoutMs);
  }

  async waitUntil<T>(probe: () => T | undefined | false | null, what = 'condition', timeoutMs = 5000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v !== undefined && v !== false && v !== null) return v;
      if (Date.now() > end) throw new Error(`fake telnyx call: timed out waiting for ${what}`);
      await sleep(5);
    }
  }

  // ---- lifecycle (driven by the fake) ----

  basePayload(): Record<string, unknown> {
    return {
      call_control_id: this.callControlId,
      call_leg_id: this.callLegId,
      call_session_id: this.callSessionId,
      connection_id: this.connectionId,
      client_state: this.clientState,
      from: this.from,
      to: this.to,
      start_time: this.startTime,
    };
  }

  webhook(eventType: string, extra: Record<string, unknown> = {}): void {
    const payload = { ...this.basePayload(), ...extra };
    this.chain = this.chain.then(() => this.fake.deliver(this, this.webhookUrl, eventType, payload));
  }

  /** Webhooks queued so far have been delivered. */
  flushed(): Promise<void> {
    return this.chain;
  }

  armAnswerTimeout(ms: number): void {
    this.answerTimer = setTimeout(() => {
      if (this.state === 'parked') this.end('originator_cancel', 'caller', '487');
    }, ms);
  }

  answer(stream: StreamParams | null): void {
    clearTimeout(this.answerTimer);
    this.state = 'answered';
    this.answeredAtMs = this.now();
    this.webhook('call.answered', {});
    if (stream) this.startStream(stream);
  }

  startStream(params: StreamParams): void {
    this.stream = params;
    this.streamId = uuid();
    this.streamClosed = false;
    this.callerAudio.push(...this.callerAudioPcm.map((pcm) => encode(params.codec, pcm)));
    this.callerAudioPcm = [];
    const headers: Record<string, string> = {};
    if (params.authToken) headers['x-telnyx-streaming-auth-token'] = params.authToken;
    const ws = new WebSocket(params.url, { headers, perMessageDeflate: false });
    this.ws = ws;
    let opened = false;
    ws.on('upgrade', (res) => { this.streamSocketHeaders = res.headers; });
    ws.on('open', () => {
      opened = true;
      this.streamConnected = true;
      this.send({ event: 'connected', version: '1.0.0', ...(params.authToken ? { 'x-telnyx-streaming-auth-token': params.authToken } : {}) });
      this.send({
        event: 'start',
        sequence_number: String(++this.seq),
        stream_id: this.streamId,
        start: {
          user_id: this.fake.userId,
          call_control_id: this.callControlId,
          call_session_id: this.callSessionId,
          from: this.from,
          to: this.to,
          tags: [],
          client_state: this.clientState,
          custom_parameters: params.customParameters,
          media_format: { encoding: params.codec, sample_rate: RATE, channels: 1 },
        },
      });
      this.webhook('streaming.started', { stream_url: params.url });
      this.startTicker();
    });
    ws.on('message', (data, isBinary) => this.onAppMessage(data as Buffer, isBinary));
    ws.on('error', () => {
      if (!opened) {
        this.streamClosed = true;
        this.webhook('streaming.failed', {
          failure_reason: 'connection_failed', stream_id: this.streamId, stream_type: 'websocket',
          stream_params: { stream_url: params.url, track: params.track },
        });
      }
    });
    ws.on('close', () => {
      const wasOpen = opened && !this.streamClosed;
      this.streamClosed = true;
      clearTimeout(this.timer);
      if (wasOpen) this.webhook('streaming.stopped', { stream_url: params.url });
    });
  }

  stopStream(): void {
    if (!this.ws || this.streamClosed) return;
    clearTimeout(this.timer);
    this.send({ event: 'stop', sequence_number: String(++this.seq), stream_id: this.streamId, stop: { user_id: this.fake.userId, call_control_id: this.callControlId } });
    this.ws.close(1000, 'stream stopped');
  }

  end(cause: string, source: string, sip: string): void {
    if (this.state === 'ended') return;
    clearTimeout(this.answerTimer);
    this.state = 'ended';
    this.endedAtMs = this.now();
    this.hangupCause = cause;
    this.hangupSource = source;
    this.stopStream();
    this.webhook('call.hangup', {
      state: 'hangup', hangup_cause: cause, hangup_source: source, sip_hangup_cause: sip,
      call_quality_stats: { inbound: { packet_count: String(this.inboundFramesSent) }, outbound: { packet_count: String(this.played.length) } },
    });
    this.fake.onCallEnded(this);
  }

  // ---- media ----

  private send(msg: unknown): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private sendError(code: number, title: string, detail: string): void {
    this.streamErrors.push(`${code} ${title}: ${detail}`);
    this.send({ event: 'error', sequence_number: String(++this.seq), stream_id: this.streamId, payload: { code, title, detail } });
  }

  private startTicker(): void {
    this.streamT0 = performance.now();
    let n = 0;
    const tick = () => {
      if (this.streamClosed) return;
      this.tick(n);
      n++;
      this.timer = setTimeout(tick, Math.max(0, this.streamT0 + n * FRAME_MS - performance.now()));
    };
    tick();
  }

  private nextCallerFrame(codec: 'PCMU' | 'PCMA' | 'L16'): Buffer {
    const parts: Buffer[] = [];
    let need = bytesPerFrame(codec);
    while (need > 0 && this.callerAudio.length) {
      const head = this.callerAudio[0];
      if (head.length <= need) {
        parts.push(head);
        need -= head.length;
        this.callerAudio.shift();
      } else {
        parts.push(head.subarray(0, need));
        this.callerAudio[0] = head.subarray(need);
        need = 0;
      }
    }
    if (need > 0) parts.push(silenceFrame(codec).subarray(0, need));
    return Buffer.concat(parts);
  }

  private tick(n: number): void {
    const s = this.stream!;
    const elapsed = performance.now() - this.streamT0;
    // 1. Playout: marks whose audio finished, then the next 20 ms of app audio.
    this.returnLeadingMarks(false);
    let outbound: Buffer | null = null;
    const size = bytesPerFrame(s.bidirectionalCodec);
    if (this.queue.length && this.queue[0].kind === 'audio') {
      const parts: Buffer[] = [];
      let need = size;
      while (need > 0 && this.queue.length && this.queue[0].kind === 'audio') {
        const head = this.queue[0] as { kind: 'audio'; bytes: Buffer };
        if (head.bytes.length <= need) { parts.push(head.bytes); need -= head.bytes.length; this.queue.shift(); } else {
          parts.push(head.bytes.subarray(0, need));
          head.bytes = head.bytes.subarray(need);
          need = 0;
        }
      }
      outbound = Buffer.concat(parts);
      this.played.push({ atMs: this.now(), bytes: outbound });
      this.playedBytes += outbound.length;
      this.playingUntil = performance.now() + (outbound.length / size) * FRAME_MS;
    }
    this.lastPlayedFrame = outbound;
    // 2. What Telnyx forks to the socket: the far end (inbound) and/or what the leg is sent (outbound).
    const chunk = String(++this.chunk);
    const timestamp = String(Math.round(n * FRAME_MS));
    if (s.track !== 'outbound_track') {
      const frame = this.nextCallerFrame(s.codec);
      this.inboundFramesSent++;
      this.send({ event: 'media', sequence_number: String(++this.seq), stream_id: this.streamId, media: { track: 'inbound', chunk, timestamp, payload: frame.toString('base64') } });
    }
    if (s.track !== 'inbound_track') {
      const frame = this.lastPlayedFrame ?? silenceFrame(s.codec);
      this.send({ event: 'media', sequence_number: String(++this.seq), stream_id: this.streamId, media: { track: 'outbound', chunk, timestamp, payload: frame.toString('base64') } });
    }
    // 3. Keys pressed by the far end.
    while (this.pendingDigits.length && this.pendingDigits[0].atMs <= elapsed) {
      const { digit } = this.pendingDigits.shift()!;
      this.send({ event: 'dtmf', sequence_number: String(++this.seq), stream_id: this.streamId, occurred_at: iso(), dtmf: { digit } });
      this.webhook('call.dtmf.received', { digit });
    }
  }

  private returnMark(m: MarkRecord, cleared: boolean): void {
    m.returnedAtMs = this.now();
    m.playedBytesAtReturn = this.playedBytes;
    m.cleared = cleared;
    this.send({ event: 'mark', sequence_number: String(++this.seq), stream_id: this.streamId, mark: { name: m.name } });
  }

  private returnLeadingMarks(cleared: boolean): void {
    while (this.queue.length && this.queue[0].kind === 'mark') this.returnMark((this.queue.shift() as { kind: 'mark'; record: MarkRecord }).record, cleared);
  }

  private onAppMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) { this.sendError(100003, 'malformed_frame', 'binary frames are not accepted; send JSON text frames'); return; }
    let msg: unknown;
    try { msg = JSON.parse(data.toString('utf8')); } catch { this.sendError(100003, 'malformed_frame', 'frame is not JSON'); return; }
    this.received.push(msg);
    if (!isObj(msg) || typeof msg.event !== 'string') { this.sendError(100003, 'malformed_frame', 'frame without an event'); return; }
    const s = this.stream!;
    switch (msg.event) {
      case 'media': {
        if (s.bidirectional !== 'rtp') { this.ignoredMedia++; return; } // not bidirectional: Telnyx drops it silently
        const payload = isObj(msg.media) ? msg.media.payload : undefined;
        if (typeof payload !== 'string' || !BASE64.test(payload)) { this.sendError(100003, 'malformed_frame', 'media.payload must be base64'); return; }
        const bytes = Buffer.from(payload, 'base64');
        const frame = bytesPerFrame(s.bidirectionalCodec);
        if (bytes.length < frame) { this.sendError(100004, 'invalid_media', `media chunks must carry at least 20 ms of audio (${frame} bytes), got ${bytes.length}`); return; }
        if (bytes.length > frame * 1500) { this.sendError(100004, 'invalid_media', 'media chunks must carry at most 30 s of audio'); return; }
        if (s.bidirectionalCodec === 'L16' && bytes.length % 2) { this.sendError(100004, 'invalid_media', 'L16 payloads must have whole samples'); return; }
        this.queue.push({ kind: 'audio', bytes });
        return;
      }
      case 'mark': {
        const name = isObj(msg.mark) ? msg.mark.name : undefined;
        if (typeof name !== 'string' || !name) { this.sendError(100003, 'malformed_frame', 'mark.name is required'); return; }
        const record: MarkRecord = { name, receivedAtMs: this.now(), returnedAtMs: null, playedBytesAtReturn: null, cleared: false };
        this.marks.push(record);
        // Nothing queued or playing: the mark comes straight back.
        if (!this.queue.length && performance.now() >= this.playingUntil) this.returnMark(record, false);
        else this.queue.push({ kind: 'mark', record });
        return;
      }
      case 'clear': {
        this.clears.push(this.now());
        const marks = this.queue.filter((q): q is { kind: 'mark'; record: MarkRecord } => q.kind === 'mark');
        this.queue = [];
        this.playingUntil = 0;
        for (const m of marks) this.returnMark(m.record, true);
        return;
      }
      default:
        this.sendError(100003, 'malformed_frame', `unknown event ${msg.event}`);
    }
  }
}

// ---------------- the fake ----------------

export interface TelnyxFake {
  url: string;
  /** Base64 of the raw 32-byte Ed25519 public key every webhook is signed with. */
  publicKeyBase64: string;
  readonly requests: RecordedRequest[];
  readonly numbers: Map<string, FakePhoneNumber>;
  readonly inventory: InventoryNumber[];
  readonly apps: Map<string, FakeApp>;
  readonly orders: Map<string, FakeOrder>;
  readonly calls: Map<string, FakeCall>;
  readonly conferences: Map<string, FakeConference>;
  readonly webhooks: DeliveredWebhook[];
  /** Number orders stay `pending` this long before `success`. */
  orderDelayMs: number;
  /** What the next number orders end as. */
  orderOutcome: 'success' | 'failure' | 'stuck';
  /** Seconds added to the telnyx-timestamp of webhooks (negative: stale). */
  webhookClockSkewS: number;
  /** Test-only: error details echo the presented Authorization header (to prove clients scrub their key). */
  echoAuthInErrors: boolean;
  /** The next `times` REST requests fail this way. */
  failNext(mode: FailureMode, times?: number): void;
  /** The next REST request is answered only after `ms` (a slow Telnyx). */
  delayNext(ms: number): void;
  addAccountNumber(phoneNumber: string, connectionId?: string | null): FakePhoneNumber;
  setDestination(to: string, behaviour: DestinationBehaviour): void;
  /** A call from `from` to an account number: routed to the number's Call Control application webhook. */
  placeInboundCall(o: { from: string; to: string; audio?: Int16Array; answerTimeoutMs?: number }): FakeCall;
  /** Signature headers for a body, as Telnyx would send them (for verification tests). */
  sign(body: string, timestampS?: number): Record<string, string>;
  close(): Promise<void>;
}

class TelnyxFakeImpl {
  readonly userId = uuid();
  readonly requests: RecordedRequest[] = [];
  readonly numbers = new Map<string, FakePhoneNumber>();
  readonly inventory: InventoryNumber[];
  readonly apps = new Map<string, FakeApp>();
  readonly orders = new Map<string, FakeOrder>();
  readonly calls = new Map<string, FakeCall>();
  readonly conferences = new Map<string, FakeConference>();
  readonly webhooks: DeliveredWebhook[] = [];
  readonly destinations = new Map<string, DestinationBehaviour>();
  orderDelayMs = 50;
  orderOutcome: 'success' | 'failure' | 'stuck' = 'success';
  webhookClockSkewS = 0;
  echoAuthInErrors = false;
  private failures: FailureMode[] = [];
  private delays: number[] = [];
  private readonly keys = crypto.generateKeyPairSync('ed25519');
  readonly publicKeyBase64: string;

  constructor(readonly apiKey: string, inventory: InventoryNumber[]) {
    this.inventory = inventory;
    const jwk = this.keys.publicKey.export({ format: 'jwk' }) as { x: string };
    this.publicKeyBase64 = Buffer.from(jwk.x, 'base64url').toString('base64');
  }

  failNext(mode: FailureMode, times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push(mode);
  }

  delayNext(ms: number): void {
    this.delays.push(ms);
  }

  sign(body: string, timestampS = Math.floor(Date.now() / 1000) + this.webhookClockSkewS): Record<string, string> {
    const ts = String(timestampS);
    const sig = crypto.sign(null, Buffer.from(`${ts}|${body}`, 'utf8'), this.keys.privateKey).toString('base64');
    return { 'telnyx-timestamp': ts, 'telnyx-signature-ed25519': sig };
  }

  addAccountNumber(phoneNumber: string, connectionId: string | null = null): FakePhoneNumber {
    const app = connectionId ? this.apps.get(connectionId) : undefined;
    const n: FakePhoneNumber = {
      id: numericId(), record_type: 'phone_number', phone_number: phoneNumber, status: 'active', connection_id: connectionId,
      connection_name: app?.application_name ?? null, tags: [], purchased_at: iso(), created_at: iso(), updated_at: iso(),
    };
    this.numbers.set(n.id, n);
    return n;
  }

  setDestination(to: string, behaviour: DestinationBehaviour): void {
    this.destinations.set(to, behaviour);
  }

  // ---- webhooks ----

  async deliver(call: FakeCall | null, url: string, eventType: string, payload: Record<string, unknown>): Promise<void> {
    const data = { record_type: 'event', event_type: eventType, id: uuid(), occurred_at: iso(), payload };
    const record: DeliveredWebhook = { url, eventType, callControlId: call?.callControlId ?? null, body: '', headers: {}, status: null, attempt: 0 };
    this.webhooks.push(record);
    call?.webhooks.push(record);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const body = JSON.stringify({ data, meta: { attempt, delivered_to: url } });
      const headers = { 'content-type': 'application/json', 'user-agent': 'telnyx-webhooks', ...this.sign(body) };
      Object.assign(record, { body, headers, attempt });
      try {
        const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer().catch(() => undefined);
        record.status = res.status;
        if (res.ok) return;
      } catch {
        record.status = 0;
      }
      await sleep(50 * attempt);
    }
  }

  // ---- calls ----

  routeOf(to: string): { app: FakeApp; number: FakePhoneNumber } {
    const number = [...this.numbers.values()].find((n) => n.phone_number === to);
    if (!number) throw new Error(`fake telnyx: ${to} is not a number of the account`);
    const app = number.connection_id ? this.apps.get(number.connection_id) : undefined;
    if (!app) throw new Error(`fake telnyx: ${to} is not assigned to a Call Control application`);
    return { app, number };
  }

  placeInboundCall(o: { from: string; to: string; audio?: Int16Array; answerTimeoutMs?: number }): FakeCall {
    const { app } = this.routeOf(o.to);
    const call = new FakeCall(this, 'incoming', o.from, o.to, app.id, app.webhook_event_url, null);
    if (o.audio) call.say(o.audio);
    this.calls.set(call.callControlId, call);
    call.webhook('call.initiated', { direction: 'incoming', state: 'parked', caller_id_name: o.from, calling_party_type: 'pstn', offered_codecs: 'PCMU,PCMA' });
    call.armAnswerTimeout(o.answerTimeoutMs ?? 10_000);
    return call;
  }

  onCallEnded(call: FakeCall): void {
    for (const conf of this.conferences.values()) conf.participants = conf.participants.filter((p) => p.callControlId !== call.callControlId);
  }

  private async runOutbound(call: FakeCall, b: DestinationBehaviour, timeoutSecs: number, stream: StreamParams | null): Promise<void> {
    call.webhook('call.initiated', { direction: 'outgoing', state: 'bridging' });
    const ring = b.ringMs ?? 150;
    if (b.outcome === 'no_answer') {
      await sleep(Math.min(ring, timeoutSecs * 1000));
      if (call.state !== 'ended') call.end('timeout', 'callee', '487');
      return;
    }
    await sleep(ring);
    if (call.state === 'ended') return;
    if (b.outcome === 'busy') { call.end('user_busy', 'callee', '486'); return; }
    if (b.outcome === 'reject') { call.end('call_rejected', 'callee', '603'); return; }
    if (b.audio) call.say(b.audio);
    call.answer(stream);
    if (call.conferenceConfig) this.joinFromConfig(call);
    if (call.amd && call.amd !== 'disabled') {
      await sleep(100);
      if (call.state !== 'answered') return;
      const machine = !!b.machine;
      if (call.amd === 'premium') {
        call.webhook('call.machine.premium.detection.ended', { result: machine ? 'machine' : 'human_residence' });
        if (machine && b.beep) call.webhook('call.machine.premium.greeting.ended', { result: 'beep_detected' });
      } else {
        call.webhook('call.machine.detection.ended', { result: machine ? 'machine' : 'human' });
        if (machine && (call.amd === 'greeting_end' || call.amd === 'detect_words')) call.webhook('call.machine.greeting.ended', { result: b.beep ? 'beep_detected' : 'ended' });
        if (machine && call.amd === 'detect_beep' && b.beep) call.webhook('call.machine.greeting.ended', { result: 'beep_detected' });
      }
    }
  }

  private joinFromConfig(call: FakeCall): void {
    const cfg = call.conferenceConfig!;
    const conf = typeof cfg.id === 'string' ? this.conferences.get(cfg.id) : [...this.conferences.values()].find((c) => c.name === cfg.conference_name);
    if (!conf) return;
    conf.participants.push({ callControlId: call.callControlId, hold: cfg.hold === true });
    call.webhook('conference.participant.joined', { conference_id: conf.id });
  }

  // ---- REST ----

  async handle(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const authorization = req.headers.authorization;
    let body: unknown = undefined;
    const text = raw.toString('utf8');
    const rec: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body: undefined, authorization };
    this.requests.push(rec);
    const delay = this.delays.shift();
    if (delay) await sleep(delay);
    const echo = this.echoAuthInErrors ? authorization : undefined;
    try {
      if (authorization !== `Bearer ${this.apiKey}`) throw E.auth();
      const failure = this.failures.shift();
      if (failure) throw FAILURES[failure];
      if (text) {
        try { body = JSON.parse(text); } catch { throw E.badJson(); }
      }
      rec.body = body;
      const out = this.route(rec.method, url.pathname, url.searchParams, body);
      json(res, 200, out);
    } catch (err) {
      if (err instanceof HttpError) sendError(res, err, echo);
      else sendError(res, new HttpError(500, [{ code: '10007', title: 'Unexpected error', detail: String((err as Error).message) }]));
    }
  }

  private bodyObj(body: unknown): Record<string, unknown> {
    if (body === undefined) return {};
    if (!isObj(body)) throw E.invalid('/', 'The request body must be a JSON object.');
    return body;
  }

  private route(method: string, path: string, q: URLSearchParams, rawBody: unknown): unknown {
    let m: RegExpExecArray | null;
    const body = () => this.bodyObj(rawBody);
    if (path === '/v2/available_phone_numbers' && method === 'GET') return this.searchNumbers(q);
    if (path === '/v2/number_orders' && method === 'POST') return this.createOrder(body());
    if ((m = /^\/v2\/number_orders\/([^/]+)$/.exec(path)) && method === 'GET') {
      const order = this.orders.get(decodeURIComponent(m[1]));
      if (!order) throw E.notFound();
      return { data: order };
    }
    if (path === '/v2/phone_numbers' && method === 'GET') return this.listNumbers(q);
    if ((m = /^\/v2\/phone_numbers\/([^/]+)$/.exec(path))) {
      const n = this.numbers.get(decodeURIComponent(m[1]));
      if (!n) throw E.notFound();
      if (method === 'GET') return { data: n };
      if (method === 'PATCH') return { data: this.updateNumber(n, body()) };
      if (method === 'DELETE') { this.numbers.delete(n.id); return { data: { ...n, status: 'deleted' } }; }
    }
    if (path === '/v2/call_control_applications') {
      if (method === 'GET') return this.listApps(q);
      if (method === 'POST') return { data: this.saveApp(undefined, body()) };
    }
    if ((m = /^\/v2\/call_control_applications\/([^/]+)$/.exec(path))) {
      const app = this.apps.get(decodeURIComponent(m[1]));
      if (!app) throw E.notFound();
      if (method === 'GET') return { data: app };
      if (method === 'PATCH') return { data: this.saveApp(app, body()) };
      if (method === 'DELETE') { this.apps.delete(app.id); return { data: app }; }
    }
    if (path === '/v2/calls' && method === 'POST') return this.dial(body());
    if ((m = /^\/v2\/calls\/([^/]+)\/actions\/([a-z_]+)$/.exec(path)) && method === 'POST') return this.command(decodeURIComponent(m[1]), m[2], body());
    if ((m = /^\/v2\/calls\/([^/]+)$/.exec(path)) && method === 'GET') {
      const call = this.calls.get(decodeURIComponent(m[1]));
      if (!call) throw E.notFound();
      return { data: { record_type: 'call', call_control_id: call.callControlId, call_leg_id: call.callLegId, call_session_id: call.callSessionId, is_alive: call.state !== 'ended', client_state: call.clientState } };
    }
    if (path === '/v2/conferences' && method === 'POST') return this.createConference(body());
    if ((m = /^\/v2\/conferences\/([^/]+)\/actions\/(join|hold|unhold)$/.exec(path)) && method === 'POST') return this.conferenceAction(decodeURIComponent(m[1]), m[2], body());
    throw E.notFound();
  }

  // numbers

  private searchNumbers(q: URLSearchParams): unknown {
    const country = q.get('filter[country_code]');
    const ndc = q.get('filter[national_destination_code]');
    const contains = q.get('filter[phone_number][contains]');
    const type = q.get('filter[phone_number_type]');
    if (type !== null && !['local', 'toll_free', 'mobile', 'national', 'shared_cost'].includes(type)) {
      throw new HttpError(400, [{ code: '10015', title: 'Bad Request', detail: `Invalid filter[phone_number_type]: ${type}`, pointer: '/filter/phone_number_type' }]);
    }
    const features = [...q.getAll('filter[features][]'), ...q.getAll('filter[features]')];
    const limitRaw = q.get('filter[limit]');
    if (limitRaw !== null && !/^\d+$/.test(limitRaw)) throw new HttpError(400, [{ code: '10015', title: 'Bad Request', detail: 'filter[limit] must be an integer', pointer: '/filter/limit' }]);
    const limit = limitRaw === null ? 50 : Math.max(1, Number(limitRaw));
    const owned = new Set([...this.numbers.values()].map((n) => n.phone_number));
    const national = (n: InventoryNumber) => (n.country_code === 'US' || n.country_code === 'CA' ? n.phone_number.slice(2) : n.phone_number.slice(3));
    const hits = this.inventory.filter((n) => !owned.has(n.phone_number)
      && (!country || n.country_code === country.toUpperCase())
      && (!ndc || national(n).startsWith(ndc))
      && (!contains || national(n).includes(contains.replace(/\D/g, '')))
      && (!type || (n.type ?? 'local') === type)
      && features.every((f) => (n.features ?? ['voice', 'sms']).includes(f)));
    return {
      data: hits.slice(0, limit).map((n) => ({
        record_type: 'available_phone_number', phone_number: n.phone_number, vanity_format: '', best_effort: false, quickship: true, reservable: true,
        region_information: [
          { region_type: 'country_code', region_name: n.country_code },
          ...(n.state ? [{ region_type: 'state', region_name: n.state }] : []),
          ...(n.rate_center ? [{ region_type: 'rate_center', region_name: n.rate_center }] : []),
        ],
        cost_information: { upfront_cost: '1.00', monthly_cost: '1.00', currency: 'USD' },
        features: (n.features ?? ['voice', 'sms']).map((name) => ({ name })),
      })),
      meta: { total_results: hits.length, best_effort_results: 0 },
    };
  }

  private createOrder(body: Record<string, unknown>): unknown {
    const list = body.phone_numbers;
    if (!Array.isArray(list) || !list.length) throw E.missing('/phone_numbers');
    const connectionId = str(body, 'connection_id', false) ?? null;
    if (connectionId && !this.apps.has(connectionId)) throw E.association('/connection_id');
    const owned = new Set([...this.numbers.values()].map((n) => n.phone_number));
    const wanted = list.map((item, i) => {
      const pn = isObj(item) ? item.phone_number : undefined;
      if (typeof pn !== 'string') throw E.missing(`/phone_numbers/${i}/phone_number`);
      if (!E164.test(pn)) throw E.e164(`/phone_numbers/${i}/phone_number`);
      const inv = this.inventory.find((n) => n.phone_number === pn);
      if (!inv || owned.has(pn)) throw E.invalid(`/phone_numbers/${i}/phone_number`, `${pn} is not available for purchase.`);
      return inv;
    });
    const order: FakeOrder = {
      id: uuid(), record_type: 'number_order', phone_numbers_count: wanted.length, connection_id: connectionId, messaging_profile_id: null,
      billing_group_id: null, customer_reference: str(body, 'customer_reference', false) ?? null,
      phone_numbers: wanted.map((n) => ({ id: numericId(), record_type: 'number_order_phone_number', phone_number: n.phone_number, status: 'pending', requirements_met: true, regulatory_requirements: [] })),
      sub_number_orders_ids: [uuid()], status: 'pending', requirements_met: true, created_at: iso(), updated_at: iso(),
    };
    this.orders.set(order.id, order);
    for (const n of wanted) this.inventory.splice(this.inventory.indexOf(n), 1);
    const outcome = this.orderOutcome;
    if (outcome !== 'stuck') {
      setTimeout(() => {
        order.status = outcome;
        order.updated_at = iso();
        for (const p of order.phone_numbers) p.status = outcome;
        if (outcome === 'success') for (const p of order.phone_numbers) this.addAccountNumber(p.phone_number, connectionId);
      }, this.orderDelayMs);
    } else {
      order.requirements_met = false;
    }
    return { data: structuredClone(order) };
  }

  private listNumbers(q: URLSearchParams): unknown {
    const pn = q.get('filter[phone_number]');
    const conn = q.get('filter[connection_id]');
    const size = Math.min(250, Math.max(1, Number(q.get('page[size]') ?? 20) || 20));
    const page = Math.max(1, Number(q.get('page[number]') ?? 1) || 1);
    const digits = pn?.replace(/\D/g, '');
    const all = [...this.numbers.values()].filter((n) => (!digits || n.phone_number.replace(/\D/g, '').includes(digits)) && (!conn || n.connection_id === conn));
    return {
      data: all.slice((page - 1) * size, page * size),
      meta: { total_pages: Math.max(1, Math.ceil(all.length / size)), total_results: all.length, page_number: page, page_size: size },
    };
  }

  private updateNumber(n: FakePhoneNumber, body: Record<string, unknown>): FakePhoneNumber {
    if ('connection_id' in body) {
      const c = body.connection_id;
      if (c !== null && typeof c !== 'string') throw E.invalid('/connection_id', 'connection_id must be a string or null.');
      if (typeof c === 'string' && c && !this.apps.has(c)) throw E.association('/connection_id');
      n.connection_id = c ? c : null;
      n.connection_name = n.connection_id ? this.apps.get(n.connection_id)!.application_name : null;
    }
    if (Array.isArray(body.tags)) n.tags = body.tags.map(String);
    n.updated_at = iso();
    return n;
  }

  // applications

  private listApps(q: URLSearchParams): unknown {
    const contains = q.get('filter[application_name][contains]');
    if (contains !== null && contains.length < 3) throw new HttpError(400, [{ code: '10015', title: 'Bad Request', detail: 'filter[application_name][contains] requires at least three characters.', pointer: '/filter/application_name/contains' }]);
    const size = Math.min(250, Math.max(1, Number(q.get('page[size]') ?? 20) || 20));
    const page = Math.max(1, Number(q.get('page[number]') ?? 1) || 1);
    const all = [...this.apps.values()].filter((a) => !contains || a.application_name.toLowerCase().includes(contains.toLowerCase()));
    return { data: all.slice((page - 1) * size, page * size), meta: { total_pages: Math.max(1, Math.ceil(all.length / size)), total_results: all.length, page_number: page, page_size: size } };
  }

  private saveApp(existing: FakeApp | undefined, body: Record<string, unknown>): FakeApp {
    const name = str(body, 'application_name', true)!;
    const hook = str(body, 'webhook_event_url', true)!;
    if (!/^https?:\/\/\S+$/.test(hook)) throw E.invalid('/webhook_event_url', 'webhook_event_url must be a URL including a scheme, such as https.');
    const version = body.webhook_api_version === undefined ? (existing?.webhook_api_version ?? '2') : oneOf(body, 'webhook_api_version', ['1', '2'] as const)!;
    const app: FakeApp = existing ?? {
      id: numericId(), record_type: 'call_control_application', application_name: name, webhook_event_url: hook, webhook_event_failover_url: null,
      webhook_api_version: version, webhook_timeout_secs: null, active: true, anchorsite_override: 'Latency', dtmf_type: 'RFC 2833',
      first_command_timeout: false, first_command_timeout_secs: 30, inbound: { channel_limit: null, sip_subdomain: null },
      outbound: { channel_limit: null, outbound_voice_profile_id: null }, created_at: iso(), updated_at: iso(),
    };
    app.application_name = name;
    app.webhook_event_url = hook;
    app.webhook_api_version = version;
    if (typeof body.active === 'boolean') app.active = body.active;
    app.updated_at = iso();
    this.apps.set(app.id, app);
    return app;
  }

  // calls

  private dial(body: Record<string, unknown>): unknown {
    const connectionId = str(body, 'connection_id', true)!;
    const app = this.apps.get(connectionId);
    if (!app) throw E.association('/connection_id');
    const to = str(body, 'to', true)!;
    if (!E164.test(to) && !/^sip:\S+@\S+$/.test(to)) throw E.e164('/to');
    const from = str(body, 'from', true)!;
    if (!E164.test(from)) throw E.e164('/from');
    const webhookUrl = str(body, 'webhook_url', false);
    if (webhookUrl && !/^https?:\/\/\S+$/.test(webhookUrl)) throw E.invalid('/webhook_url', 'webhook_url must be an http(s) URL.');
    const clientState = clientStateOf(body) ?? null;
    const amd = oneOf(body, 'answering_machine_detection', ['premium', 'detect', 'detect_beep', 'detect_words', 'greeting_end', 'disabled'] as const) ?? null;
    const timeout = body.timeout_secs;
    if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 5 || timeout > 600)) throw E.invalid('/timeout_secs', 'timeout_secs must be an integer between 5 and 600.');
    const stream = streamParamsOf(body, false);
    let conferenceConfig: Record<string, unknown> | null = null;
    if (body.conference_config !== undefined) {
      if (!isObj(body.conference_config)) throw E.invalid('/conference_config', 'conference_config must be an object.');
      conferenceConfig = body.conference_config;
      const id = conferenceConfig.id;
      if (typeof id === 'string' && !this.conferences.has(id)) throw E.association('/conference_config/id');
      if (typeof id !== 'string' && typeof conferenceConfig.conference_name !== 'string') throw E.missing('/conference_config/id');
    }
    const call = new FakeCall(this, 'outgoing', from, to, app.id, webhookUrl ?? app.webhook_event_url, clientState);
    call.amd = amd;
    call.conferenceConfig = conferenceConfig;
    this.calls.set(call.callControlId, call);
    const behaviour = this.destinations.get(to) ?? { outcome: 'answer' };
    setTimeout(() => { void this.runOutbound(call, behaviour, typeof timeout === 'number' ? timeout : 30, stream); }, 5);
    return { data: { record_type: 'call', call_control_id: call.callControlId, call_leg_id: call.callLegId, call_session_id: call.callSessionId, is_alive: false, client_state: clientState } };
  }

  private command(id: string, action: string, body: Record<string, unknown>): unknown {
    const call = this.calls.get(id);
    if (!call) throw E.notFound(`Call ${id} not found.`);
    const ok = { data: { result: 'ok' } };
    const known = ['answer', 'hangup', 'reject', 'transfer', 'send_dtmf', 'streaming_start', 'streaming_stop'];
    if (!known.includes(action)) throw new Error(`this fake does not simulate the ${action} command`);
    if (call.state === 'ended') throw E.callEnded();
    const cs = clientStateOf(body);
    const notAnswered = () => new HttpError(422, [{ code: '90034', title: 'Call not answered yet', detail: 'This command requires an answered call.' }]);
    switch (action) {
      case 'answer': {
        if (call.direction !== 'incoming' || call.state !== 'parked') throw new HttpError(422, [{ code: '90019', title: 'Call already answered', detail: 'Only a parked incoming call can be answered.' }]);
        const stream = streamParamsOf(body, false);
        const hook = str(body, 'webhook_url', false);
        if (hook) call.webhookUrl = hook;
        if (cs !== undefined) call.clientState = cs;
        setTimeout(() => { if (call.state === 'parked') call.answer(stream); }, 5);
        return ok;
      }
      case 'hangup':
        if (cs !== undefined) call.clientState = cs;
        setTimeout(() => call.end('normal_clearing', call.direction === 'incoming' ? 'callee' : 'caller', '200'), 5);
        return ok;
      case 'reject': {
        const cause = oneOf(body, 'cause', ['CALL_REJECTED', 'USER_BUSY'] as const);
        if (!cause) throw E.missing('/cause');
        if (call.direction !== 'incoming' || call.state !== 'parked') throw new HttpError(422, [{ code: '90019', title: 'Call already answered', detail: 'Only a parked incoming call can be rejected.' }]);
        setTimeout(() => call.end(cause === 'USER_BUSY' ? 'user_busy' : 'call_rejected', 'callee', cause === 'USER_BUSY' ? '486' : '603'), 5);
        return ok;
      }
      case 'transfer': {
        if (call.state !== 'answered') throw notAnswered();
        const to = str(body, 'to', true)!;
        if (!E164.test(to) && !/^sip:\S+@\S+$/.test(to)) throw E.e164('/to');
        const from = str(body, 'from', false) ?? null;
        if (from && !E164.test(from)) throw E.e164('/from');
        call.transfers.push({ to, from });
        const b = this.destinations.get(to) ?? { outcome: 'answer' };
        const leg = new FakeCall(this, 'outgoing', from ?? call.to, to, call.connectionId, call.webhookUrl, str(body, 'target_leg_client_state', false) ?? null);
        this.calls.set(leg.callControlId, leg);
        setTimeout(() => {
          void (async () => {
            leg.webhook('call.initiated', { direction: 'outgoing', state: 'bridging' });
            await sleep(b.ringMs ?? 100);
            if (call.state === 'ended') { leg.end('originator_cancel', 'caller', '487'); return; }
            if (b.outcome !== 'answer') { leg.end(b.outcome === 'busy' ? 'user_busy' : b.outcome === 'reject' ? 'call_rejected' : 'timeout', 'callee', '486'); return; }
            leg.answer(null);
            call.webhook('call.bridged', {});
            leg.webhook('call.bridged', {});
          })();
        }, 5);
        return ok;
      }
      case 'send_dtmf': {
        if (call.state !== 'answered') throw notAnswered();
        const digits = str(body, 'digits', true)!;
        if (!/^[0-9A-D*#wW]+$/.test(digits)) throw E.invalid('/digits', 'Valid digits are 0-9, A-D, *, #, w and W.');
        const d = body.duration_millis;
        if (d !== undefined && (typeof d !== 'number' || d < 100 || d > 500)) throw E.invalid('/duration_millis', 'duration_millis ranges from 100 to 500.');
        call.dtmfSent.push(digits);
        return ok;
      }
      case 'streaming_start': {
        if (call.state !== 'answered') throw notAnswered();
        if (call.stream && !call.streamClosed) throw E.invalid('/stream_url', 'A stream is already active on this call.');
        const stream = streamParamsOf(body, true)!;
        if (cs !== undefined) call.clientState = cs;
        setTimeout(() => call.startStream(stream), 5);
        return ok;
      }
      case 'streaming_stop': {
        const sid = str(body, 'stream_id', false);
        if (sid && sid !== call.streamId) throw E.notFound(`Stream ${sid} not found.`);
        setTimeout(() => call.stopStream(), 5);
        return ok;
      }
      default:
        return ok;
    }
  }

  private createConference(body: Record<string, unknown>): unknown {
    const callId = str(body, 'call_control_id', true)!;
    const name = str(body, 'name', true)!;
    const call = this.calls.get(callId);
    if (!call) throw E.association('/call_control_id');
    if (call.state === 'ended') throw E.callEnded();
    if (call.state !== 'answered') throw new HttpError(422, [{ code: '90034', title: 'Call not answered yet', detail: 'This command requires an answered call.' }]);
    oneOf(body, 'beep_enabled', ['always', 'never', 'on_enter', 'on_exit'] as const);
    const conf: FakeConference = { id: uuid(), name, participants: [{ callControlId: callId, hold: false }] };
    this.conferences.set(conf.id, conf);
    call.webhook('conference.created', { conference_id: conf.id });
    call.webhook('conference.participant.joined', { conference_id: conf.id });
    return {
      data: {
        id: conf.id, record_type: 'conference', name, status: 'in_progress', connection_id: call.connectionId, created_at: iso(),
        expires_at: new Date(Date.now() + 4 * 3600_000).toISOString(), region: 'US', end_reason: null, ended_by: null,
      },
    };
  }

  private conferenceAction(id: string, action: string, body: Record<string, unknown>): unknown {
    const conf = this.conferences.get(id) ?? [...this.conferences.values()].find((c) => c.name === id);
    if (!conf) throw E.notFound();
    if (action === 'join') {
      const callId = str(body, 'call_control_id', true)!;
      const call = this.calls.get(callId);
      if (!call) throw E.association('/call_control_id');
      if (call.state === 'ended') throw E.callEnded();
      conf.participants.push({ callControlId: callId, hold: body.hold === true });
      call.webhook('conference.participant.joined', { conference_id: conf.id });
      return { data: { result: 'ok' } };
    }
    const ids = body.call_control_ids;
    if (ids !== undefined && (!Array.isArray(ids) || ids.some((x) => typeof x !== 'string'))) throw E.invalid('/call_control_ids', 'call_control_ids must be an array of strings.');
    if (action === 'unhold' && (!Array.isArray(ids) || !ids.length)) throw E.missing('/call_control_ids');
    const targets = Array.isArray(ids) && ids.length ? (ids as string[]) : conf.participants.map((p) => p.callControlId);
    for (const t of targets) {
      const p = conf.participants.find((x) => x.callControlId === t);
      if (!p) throw E.invalid('/call_control_ids', `${t} is not a participant of the conference.`);
      p.hold = action === 'hold';
      p.holdAudioUrl = action === 'hold' ? str(body, 'audio_url', false) : undefined;
    }
    return { data: { result: 'ok' } };
  }
}

export const DEFAULT_INVENTORY: InventoryNumber[] = [
  { phone_number: '+14155550101', country_code: 'US', state: 'CA', rate_center: 'SAN FRANCISCO' },
  { phone_number: '+14155550102', country_code: 'US', state: 'CA', rate_center: 'SAN FRANCISCO' },
  { phone_number: '+14155557788', country_code: 'US', state: 'CA', rate_center: 'SAN FRANCISCO', features: ['voice'] },
  { phone_number: '+12125550123', country_code: 'US', state: 'NY', rate_center: 'NEW YORK CITY' },
  { phone_number: '+13125550144', country_code: 'US', state: 'IL', rate_center: 'CHICAGO ZONE 02', features: ['voice', 'sms', 'mms', 'fax'] },
  { phone_number: '+18885550100', country_code: 'US', type: 'toll_free', features: ['voice', 'sms'] },
  { phone_number: '+18665550199', country_code: 'US', type: 'toll_free', features: ['voice'] },
  { phone_number: '+442071234567', country_code: 'GB', rate_center: 'LONDON', features: ['voice'] },
  { phone_number: '+14155550177', country_code: 'US', state: 'CA', rate_center: 'SAN FRANCISCO', features: ['sms'] },
];

export async function startTelnyxFake(apiKey: string, inventory: InventoryNumber[] = DEFAULT_INVENTORY.map((n) => ({ ...n }))): Promise<TelnyxFake> {
  const impl = new TelnyxFakeImpl(apiKey, inventory);
  const server = await startFakeServer({ http: (req, res, body) => impl.handle(req, res, body) });
  const fake: TelnyxFake = {
    url: server.url,
    publicKeyBase64: impl.publicKeyBase64,
    requests: impl.requests,
    numbers: impl.numbers,
    inventory: impl.inventory,
    apps: impl.apps,
    orders: impl.orders,
    calls: impl.calls,
    conferences: impl.conferences,
    webhooks: impl.webhooks,
    get orderDelayMs() { return impl.orderDelayMs; },
    set orderDelayMs(v: number) { impl.orderDelayMs = v; },
    get orderOutcome() { return impl.orderOutcome; },
    set orderOutcome(v: 'success' | 'failure' | 'stuck') { impl.orderOutcome = v; },
    get webhookClockSkewS() { return impl.webhookClockSkewS; },
    set webhookClockSkewS(v: number) { impl.webhookClockSkewS = v; },
    get echoAuthInErrors() { return impl.echoAuthInErrors; },
    set echoAuthInErrors(v: boolean) { impl.echoAuthInErrors = v; },
    failNext: (mode, times) => impl.failNext(mode, times),
    delayNext: (ms) => impl.delayNext(ms),
    addAccountNumber: (n, c) => impl.addAccountNumber(n, c),
    setDestination: (to, b) => impl.setDestination(to, b),
    placeInboundCall: (o) => impl.placeInboundCall(o),
    sign: (body, ts) => impl.sign(body, ts),
    close: async () => {
      for (const call of impl.calls.values()) call.stopStream();
      await server.close();
    },
  };
  return fake;
}
