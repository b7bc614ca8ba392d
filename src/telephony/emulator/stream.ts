/**
 * One bidirectional media stream (<Connect><Stream>) as Twilio runs it: the emulator dials the
 * application's WebSocket, sends `connected`, `start`, a `media` message every 20 ms of call time,
 * `dtmf` when the caller presses a key and `stop` at the end; it plays the application's `media` in
 * real time, returns each `mark` once the audio queued before it has played, and on `clear` empties the
 * buffer at once and returns every mark still pending.
 *
 * Followed:
 *  - "Media Streams - WebSocket Messages" (https://www.twilio.com/docs/voice/media-streams/websocket-messages):
 *    message shapes and order (connected {protocol "Call", version "1.0.0"}; start with sequenceNumber
 *    "1", start.{accountSid, streamSid, callSid, tracks ["inbound"], customParameters, mediaFormat
 *    {encoding "audio/x-mulaw", sampleRate 8000, channels 1}}; media.{track, chunk, timestamp, payload}
 *    with chunk counting from "1" and timestamp in ms from the start of the stream; dtmf.{track
 *    "inbound_track", digit}; stop.{accountSid, callSid}; numbers as strings as in the examples).
 *    To Twilio: media {streamSid, media.payload base64 audio/x-mulaw/8000 without file headers},
 *    mark {streamSid, mark.name}, clear {streamSid}. "The media messages are buffered and played in
 *    the order received"; "When that media message's playback is complete, Twilio sends a mark message
 *    to your server using the same mark.name"; on clear "Twilio empties the audio buffer and sends back
 *    mark messages matching any remaining mark messages from your server".
 *  - "TwiML <Stream>" (https://www.twilio.com/docs/voice/twiml/stream): the WebSocket request carries
 *    X-Twilio-Signature computed over the stream URL; <Parameter>s arrive as start.customParameters.
 *
 * Where Twilio's documentation is silent the emulator is strict and says so: messages that are not JSON,
 * carry another stream's SID, lack a field or hold a payload that is not base64 μ-law are ignored and
 * recorded as protocol violations. Audio still buffered when the application closes the socket is
 * dropped (and counted), since the stream is over.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { WebSocket, type RawData } from 'ws';
import { FRAME_BYTES } from './audio.js';
import type { AgentRecorder } from './playback.js';
import type { StreamNoun } from './twiml.js';
import { newSid } from './util.js';
import { signature } from './webhook.js';

export interface MarkRecord {
  name: string;
  streamSid: string;
  /** Call-timeline ms when the application sent it. */
  sentAtMs: number;
  /** When the emulator sent it back. */
  returnedAtMs?: number;
  /** Returned because of a clear, its audio never (fully) played. */
  cleared: boolean;
}

export interface ClearRecord {
  streamSid: string;
  atMs: number;
  /** Agent audio that never played because of this clear. */
  discardedMs: number;
  marksReturned: number;
}

export interface ProtocolViolation {
  callSid: string;
  streamSid: string;
  atMs: number;
  reason: string;
  /** The offending message (truncated). */
  raw: string;
}

export interface StreamEnd {
  /** Who ended it: the application closing the socket, the emulator (call over, redirect), or a failure. */
  by: 'app' | 'emulator' | 'error';
  reason: string;
  code?: number;
  httpStatus?: number;
}

export interface StreamHost {
  accountSid: string;
  callSid: string;
  authToken: string;
  rewriteUrl?: (url: string) => string;
  tlsInsecure: boolean;
  logMedia: boolean;
  recorder: AgentRecorder;
  /** Call-timeline ms for a performance.now() value. */
  callMs(perfMs: number): number;
  now(): number;
  log(event: StreamLogEvent): void;
  violation(v: ProtocolViolation): void;
}

export type StreamLogEvent =
  | { type: 'stream-message'; from: 'twilio' | 'app'; streamSid: string; event: string; message: unknown }
  | { type: 'stream-open'; streamSid: string; url: string; customParameters: Record<string, string> }
  | { type: 'stream-end'; streamSid: string; by: StreamEnd['by']; reason: string; code?: number; httpStatus?: number };

type Queued = { bytes: Uint8Array; off: number } | { mark: MarkRecord };

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

export class MediaSession {
  readonly streamSid = newSid('MZ');
  readonly marks: MarkRecord[] = [];
  readonly clears: ClearRecord[] = [];
  readonly stats = { mediaSent: 0, mediaReceived: 0, bytesReceived: 0, discardedAtCloseMs: 0, violations: 0 };
  readonly ended: Promise<StreamEnd>;
  state: 'connecting' | 'open' | 'closed' = 'connecting';
  private ws?: WebSocket;
  private seq = 0;
  private chunk = 0;
  private t0?: number;
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private completing: MarkRecord[] = [];
  private inFlight?: { start: number; end: number };
  private finish!: (e: StreamEnd) => void;

  constructor(private readonly host: StreamHost, readonly noun: StreamNoun) {
    this.ended = new Promise((resolve) => {
      this.finish = (e) => {
        if (this.state === 'closed') return;
        this.state = 'closed';
        if (this.queuedBytes > 0) this.stats.discardedAtCloseMs += this.queuedBytes / 8;
        this.queue = [];
        this.queuedBytes = 0;
        host.log({ type: 'stream-end', streamSid: this.streamSid, by: e.by, reason: e.reason, code: e.code, httpStatus: e.httpStatus });
        resolve(e);
      };
    });
  }

  get isOpen(): boolean { return this.state === 'open'; }

  /** Dials the stream URL (through `rewriteUrl` when set; the signature is always over the URL as written). */
  open(): void {
    const url = this.noun.url;
    const target = this.host.rewriteUrl ? this.host.rewriteUrl(url) : url;
    let ws: WebSocket;
    try {
      ws = new WebSocket(target, {
        headers: { 'X-Twilio-Signature': signature(this.host.authToken, url, {}), 'User-Agent': 'Twilio.TmeWs/1.0' },
        perMessageDeflate: false,
        handshakeTimeout: 10_000,
        rejectUnauthorized: !this.host.tlsInsecure,
      });
    } catch (err) {
      this.finish({ by: 'error', reason: `cannot open ${url}: ${(err as Error).message}` });
      return;
    }
    this.ws = ws;
    ws.on('unexpected-response', (req: ClientRequest, res: IncomingMessage) => {
      this.finish({ by: 'error', reason: `handshake refused with HTTP ${res.statusCode}`, httpStatus: res.statusCode });
      req.destroy();
      res.resume();
    });
    ws.on('error', (err) => {
      if (this.state !== 'closed') this.finish({ by: 'error', reason: err.message });
    });
    ws.on('open', () => {
      if (this.state !== 'connecting') { ws.terminate(); return; }
      this.state = 'open';
      this.host.log({ type: 'stream-open', streamSid: this.streamSid, url, customParameters: this.noun.parameters });
      this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
      this.send({
        event: 'start', sequenceNumber: this.nextSeq(),
        start: {
          accountSid: this.host.accountSid, streamSid: this.streamSid, callSid: this.host.callSid, tracks: ['inbound'],
          mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
          customParameters: { ...this.noun.parameters },
        },
        streamSid: this.streamSid,
      });
    });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => {
      this.finish({ by: 'app', reason: reason.toString() || 'socket closed', code });
    });
  }

  /** Ends the stream from Twilio's side: `stop`, then the socket closes. */
  stop(reason: string): void {
    if (this.state === 'closed') return;
    const ws = this.ws;
    if (this.state === 'open' && ws) {
      this.send({ event: 'stop', sequenceNumber: this.nextSeq(), streamSid: this.streamSid, stop: { accountSid: this.host.accountSid, callSid: this.host.callSid } });
      this.finish({ by: 'emulator', reason });
      ws.close(1000, reason.slice(0, 100));
      // A peer that never answers the close handshake must not hold the socket open.
      setTimeout(() => { if (ws.readyState !== WebSocket.CLOSED) ws.terminate(); }, 2000).unref();
    } else {
      this.finish({ by: 'emulator', reason });
      ws?.terminate();
    }
  }

  /** One 20 ms slot of the call (due at `due`, performance.now() ms): play, return marks, send the caller's frame. */
  onFrame(due: number, caller: Uint8Array, dtmf: string | undefined): void {
    if (this.state !== 'open') return;
    if (this.t0 === undefined) this.t0 = due;
    // The frame that started at the last slot has finished: the marks behind it have played.
    if (this.completing.length) {
      const done = this.completing;
      this.completing = [];
      for (const m of done) this.returnMark(m, false);
    }
    this.inFlight = undefined;
    if (this.queuedBytes > 0) {
      const out = new Uint8Array(FRAME_BYTES);
      let filled = 0;
      while (filled < FRAME_BYTES && this.queue.length) {
        const head = this.queue[0];
        if ('mark' in head) { this.completing.push(head.mark); this.queue.shift(); continue; }
        const take = Math.min(FRAME_BYTES - filled, head.bytes.length - head.off);
        out.set(head.bytes.subarray(head.off, head.off + take), filled);
        head.off += take;
        filled += take;
        this.queuedBytes -= take;
        if (head.off >= head.bytes.length) this.queue.shift();
      }
      while (this.queue.length && 'mark' in this.queue[0]) this.completing.push((this.queue.shift() as { mark: MarkRecord }).mark);
      const played = filled === FRAME_BYTES ? out : out.slice(0, filled);
      this.host.recorder.play(this.host.callMs(due), played);
      this.inFlight = { start: due, end: due + filled / 8 };
    }
    this.send({
      event: 'media', sequenceNumber: this.nextSeq(),
      media: { track: 'inbound', chunk: String(++this.chunk), timestamp: String(Math.round(due - this.t0)), payload: Buffer.from(caller).toString('base64') },
      streamSid: this.streamSid,
    }, true);
    this.stats.mediaSent++;
    if (dtmf !== undefined) {
      this.send({ event: 'dtmf', streamSid: this.streamSid, sequenceNumber: this.nextSeq(), dtmf: { track: 'inbound_track', digit: dtmf } });
    }
  }

  private nextSeq(): string { return String(++this.seq); }

  private send(msg: Record<string, unknown>, isMedia = false): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify(msg));
    if (!isMedia || this.host.logMedia) {
      this.host.log({ type: 'stream-message', from: 'twilio', streamSid: this.streamSid, event: String(msg.event), message: msg });
    }
  }

  private violation(reason: string, raw: string): void {
    this.stats.violations++;
    this.host.violation({ callSid: this.host.callSid, streamSid: this.streamSid, atMs: this.host.callMs(this.host.now()), reason, raw: raw.slice(0, 300) });
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.state !== 'open') return;
    const raw = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (isBinary) return this.violation('binary frame (Twilio reads JSON text messages only)', raw.toString('base64'));
    const text = raw.toString('utf8');
    let msg: unknown;
    try { msg = JSON.parse(text); } catch { return this.violation('message is not JSON', text); }
    if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return this.violation('message is not a JSON object', text);
    const m = msg as Record<string, unknown>;
    if (typeof m.event !== 'string') return this.violation('message has no "event"', text);
    if (m.event !== 'media' && m.event !== 'mark' && m.event !== 'clear') return this.violation(`unknown event "${m.event}" (a bidirectional stream accepts media, mark and clear)`, text);
    if (m.streamSid !== this.streamSid) {
      return this.violation(m.streamSid === undefined ? `${m.event} without streamSid` : `${m.event} for streamSid ${String(m.streamSid)}, not ${this.streamSid}`, text);
    }
    if (m.event !== 'media' || this.host.logMedia) {
      this.host.log({ type: 'stream-message', from: 'app', streamSid: this.streamSid, event: m.event, message: m });
    }
    if (m.event === 'media') return this.onMedia(m, text);
    if (m.event === 'mark') return this.onMark(m, text);
    return this.onClear();
  }

  private onMedia(m: Record<string, unknown>, text: string): void {
    const media = m.media as Record<string, unknown> | undefined;
    const payload = media && typeof media === 'object' ? media.payload : undefined;
    if (typeof payload !== 'string') return this.violation('media without a string media.payload', text);
    if (payload.length === 0) return this.violation('media with an empty payload', text);
    if (payload.length % 4 !== 0 || !B64.test(payload)) return this.violation('media.payload is not base64', text);
    const bytes = new Uint8Array(Buffer.from(payload, 'base64'));
    if (bytes.length >= 4 && bytes[0] === 0x52 && bytes[1] === 0x49 && bytes[2] === 0x46 && bytes[3] === 0x46) {
      // "The media.payload should not contain audio file type header bytes."
      return this.violation('media.payload starts with a RIFF (WAV) header; send raw audio/x-mulaw', text);
    }
    this.stats.mediaReceived++;
    this.stats.bytesReceived += bytes.length;
    this.queue.push({ bytes, off: 0 });
    this.queuedBytes += bytes.length;
  }

  private onMark(m: Record<string, unknown>, text: string): void {
    const mark = m.mark as Record<string, unknown> | undefined;
    const name = mark && typeof mark === 'object' ? mark.name : undefined;
    if (typeof name !== 'string') return this.violation('mark without a string mark.name', text);
    const now = this.host.now();
    const rec: MarkRecord = { name, streamSid: this.streamSid, sentAtMs: this.host.callMs(now), cleared: false };
    this.marks.push(rec);
    if (this.queuedBytes > 0) this.queue.push({ mark: rec });
    // Behind audio still playing, or behind marks waiting for it: back in order at the end of the frame.
    else if (this.completing.length > 0 || (this.inFlight && this.inFlight.end > now)) this.completing.push(rec);
    else this.returnMark(rec, false);
  }

  private onClear(): void {
    const now = this.host.now();
    const atMs = this.host.callMs(now);
    let discardedMs = this.queuedBytes / 8;
    // Marks whose audio finished before the clear have played; the rest were cleared.
    const played = this.inFlight && this.inFlight.end <= now ? this.completing : [];
    const cleared = this.inFlight && this.inFlight.end <= now ? [] : this.completing;
    if (this.inFlight && this.inFlight.end > now) discardedMs += this.inFlight.end - now;
    if (discardedMs > 0) this.host.recorder.cut(atMs, true);
    for (const q of this.queue) if ('mark' in q) cleared.push(q.mark);
    this.queue = [];
    this.queuedBytes = 0;
    this.completing = [];
    this.inFlight = undefined;
    for (const m of played) this.returnMark(m, false);
    for (const m of cleared) this.returnMark(m, true);
    this.clears.push({ streamSid: this.streamSid, atMs, discardedMs, marksReturned: played.length + cleared.length });
  }

  private returnMark(m: MarkRecord, cleared: boolean): void {
    m.cleared = cleared;
    m.returnedAtMs = this.host.callMs(this.host.now());
    this.send({ event: 'mark', sequenceNumber: this.nextSeq(), streamSid: this.streamSid, mark: { name: m.name } });
  }
}
