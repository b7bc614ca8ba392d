/**
 * The engine's Transport over a carrier's bidirectional media WebSocket (Twilio Media Streams, Telnyx
 * media streaming). The carrier's message format is a MediaCodec; this class does what both share:
 *
 *  - caller audio (G.711 at 8 kHz) decoded to PCM16 frames, buffered until the engine listens;
 *  - agent audio encoded and sent as it comes (the engine's pacer keeps only a small lead ahead, so the
 *    carrier's buffer stays short and a barge-in is heard at once);
 *  - marks: each engine mark goes out under a unique wire name; when the carrier sends a mark back, it and
 *    every earlier pending mark have played (the carrier plays in order). `clear()` forgets the pending
 *    marks, so those the carrier returns after a clear (Twilio returns them all) never count as played;
 *  - DTMF in from the stream; DTMF out through the carrier's REST API when it has one, else in-band tones;
 *  - hang-up, transfer, hold and conference through the call's CallControl (the carrier's REST API).
 */
import type { WebSocket } from 'ws';
import type { AudioFrame } from '../engine/audio/frame.js';
import { decodeALaw, decodeMuLaw, encodeALaw, encodeMuLaw } from '../engine/audio/g711.js';
import type { Clock } from '../engine/clock.js';
import type { Transport, TransportEvent } from '../engine/types.js';
import { dtmfSamples, isDtmfDigits } from './dtmfTones.js';
import type { CallControl, HandOff, MediaCodec, MediaEncoding, MediaInbound } from './types.js';

export type StreamStart = Extract<MediaInbound, { type: 'start' }>;

/** Caller audio kept while nobody listens yet (the engine starts after the stream does): 2 s. */
const MAX_EARLY_FRAMES = 100;
/** After we hang up through the REST API, how long the carrier gets to close the stream itself. */
const HANGUP_CLOSE_WAIT_MS = 5000;
/** How long an in-band DTMF send may wait for its tones' mark beyond their own length. */
const DTMF_MARK_GRACE_MS = 3000;

/** A caller frame reaching us more than this behind the stream's pace: one frame. */
const INBOUND_LATE_MS = 20;
/** The stream's pace is its earliest arrival over the last one or two of these windows. */
const PACE_WINDOW_MS = 10_000;

export interface MediaStreamStats {
  framesIn: number;
  /**
   * Caller frames that reached us more than INBOUND_LATE_MS later than the carrier's timestamps say they
   * should have, measured against the stream's earliest recent arrival: network jitter plus our own
   * event-loop delay.
   */
  lateIn: number;
  maxLateInMs: number;
  framesOut: number;
  marksSent: number;
  marksPlayed: number;
  clears: number;
  protocolErrors: number;
}

/** Media frames of every stream on this process, for /metrics (plain counts: bumped on every frame). */
export interface MediaTotals {
  framesIn: number;
  lateIn: number;
  framesOut: number;
  /** Agent frames the pacer sent after their play-out time (see Pacer's onLate). */
  lateOut: number;
}

export class MediaStreamTransport implements Transport {
  /** Resolves with the carrier's `start` message; rejects if the stream ends or breaks before it. */
  readonly started: Promise<StreamStart>;
  readonly stats: MediaStreamStats = { framesIn: 0, lateIn: 0, maxLateInMs: 0, framesOut: 0, marksSent: 0, marksPlayed: 0, clears: 0, protocolErrors: 0 };
  /** Set once the call is known; until then transport actions fail. */
  control?: CallControl;
  /** Who ended the stream: the carrier/caller (`stop` or a closed socket) or us (hangup()). */
  endedBy?: 'remote' | 'local';
  private info?: StreamStart;
  /** Replaced, never changed in place: an emit walks them as they were when it began, with no copy per frame. */
  private listeners: readonly ((e: TransportEvent) => void)[] = [];
  private early: TransportEvent[] = [];
  /** Wire mark name → engine mark id (undefined for our own marks, e.g. DTMF tones), in sending order. */
  private pending = new Map<string, { markId?: string; onPlayed?: () => void }>();
  private markSeq = 0;
  private closed = false;
  private inSamples = 0;
  /**
   * The stream's on-time pace: the smallest (arrival time − carrier timestamp) over the last 10–20 s (two
   * windows), so the carrier's media clock drifting against ours never reads as lateness on a long call.
   */
  private minOffset = { current: Infinity, previous: Infinity, since: -Infinity };
  private resolveStart!: (s: StreamStart) => void;
  private rejectStart!: (e: Error) => void;

  constructor(
    private readonly ws: WebSocket,
    private readonly codec: MediaCodec,
    private readonly clock: Clock,
    private readonly onProtocolError: (detail: string) => void = () => {},
    /** This process's media counters (/metrics), shared by all streams. */
    private readonly totals?: MediaTotals,
  ) {
    this.started = new Promise((resolve, reject) => { this.resolveStart = resolve; this.rejectStart = reject; });
    this.started.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
    ws.on('message', (data, isBinary) => this.onMessage(isBinary ? null : data.toString()));
    ws.on('close', () => this.finish('remote'));
    ws.on('error', (err) => this.protocolError(`socket error: ${err.message}`));
  }

  get sampleRate(): number { return this.info?.sampleRate ?? 8000; }
  get streamId(): string | undefined { return this.info?.streamId; }
  get isClosed(): boolean { return this.closed; }

  private protocolError(detail: string): void {
    this.stats.protocolErrors++;
    this.onProtocolError(detail);
  }

  private onMessage(text: string | null): void {
    if (text === null) return this.protocolError('binary frame on a JSON media stream');
    let m: MediaInbound;
    try {
      m = this.codec.parse(text);
    } catch (err) {
      return this.protocolError((err as Error).message);
    }
    switch (m.type) {
      case 'start':
        if (this.info) return this.protocolError('a second start message');
        this.info = m;
        this.resolveStart(m);
        return;
      case 'media': {
        if (!this.info) return this.protocolError('media before start');
        const samples = decode(m.payload, this.info.encoding);
        const frame: AudioFrame = { samples, sampleRate: this.info.sampleRate, timestampMs: this.clock.now() };
        this.inSamples += samples.length;
        this.stats.framesIn++;
        if (this.totals) this.totals.framesIn++;
        if (m.timestampMs !== undefined) this.arrived(frame.timestampMs - m.timestampMs, frame.timestampMs);
        return this.emit({ type: 'audio', frame });
      }
      case 'mark':
        return this.markReturned(m.name);
      case 'dtmf':
        if (m.digit) this.emit({ type: 'dtmf', digits: m.digit });
        return;
      case 'stop':
        return this.finish('remote');
      default:
        return;
    }
  }

  private arrived(offset: number, now: number): void {
    const m = this.minOffset;
    if (now - m.since >= PACE_WINDOW_MS) { m.previous = m.current; m.current = Infinity; m.since = now; }
    if (offset < m.current) m.current = offset;
    const late = offset - Math.min(m.current, m.previous);
    if (late > this.stats.maxLateInMs) this.stats.maxLateInMs = late;
    if (late > INBOUND_LATE_MS) {
      this.stats.lateIn++;
      if (this.totals) this.totals.lateIn++;
    }
  }

  /** The carrier played everything up to `name`: it and all earlier pending marks are played. */
  private markReturned(name: string): void {
    if (!this.pending.has(name)) return; // cleared, or not ours
    for (const [wire, entry] of this.pending) {
      this.pending.delete(wire);
      this.stats.marksPlayed++;
      entry.onPlayed?.();
      if (entry.markId !== undefined) this.emit({ type: 'played', markId: entry.markId });
      if (wire === name) break;
    }
  }

  /** Milliseconds of caller audio received so far. */
  get receivedMs(): number { return (this.inSamples * 1000) / this.sampleRate; }

  on(listener: (event: TransportEvent) => void): () => void {
    if (!this.listeners.includes(listener)) this.listeners = [...this.listeners, listener];
    if (this.early.length) {
      const queued = this.early;
      this.early = [];
      for (const e of queued) listener(e);
    }
    return () => { this.listeners = this.listeners.filter((l) => l !== listener); };
  }

  private emit(e: TransportEvent): void {
    if (this.listeners.length === 0) {
      // Nobody listens yet (the conversation is being set up): keep the start of what the caller says.
      if (e.type !== 'audio' || this.early.length < MAX_EARLY_FRAMES) this.early.push(e);
      return;
    }
    for (const l of this.listeners) l(e);
  }

  private send(text: string): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(text);
  }

  sendAudio(frame: AudioFrame, markId?: string): void {
    if (this.closed || !this.info) return; // the call is over (or never started): nothing to play to
    if (frame.sampleRate !== this.sampleRate) throw new Error(`expected ${this.sampleRate} Hz audio, got ${frame.sampleRate} Hz`);
    this.send(this.codec.media(this.info.streamId, encode(frame.samples, this.info.encoding)));
    this.stats.framesOut++;
    if (this.totals) this.totals.framesOut++;
    if (markId !== undefined) this.sendMark({ markId });
  }

  private sendMark(entry: { markId?: string; onPlayed?: () => void }): string {
    const wire = `m${++this.markSeq}`;
    this.pending.set(wire, entry);
    this.stats.marksSent++;
    this.send(this.codec.mark(this.info!.streamId, wire));
    return wire;
  }

  clear(): void {
    if (this.closed || !this.info) return;
    this.stats.clears++;
    this.send(this.codec.clear(this.info.streamId));
    // What was pending did not play (or not all of it): marks the carrier returns for it are ignored.
    this.pending.clear();
  }

  async sendDtmf(digits: string): Promise<void> {
    if (!isDtmfDigits(digits)) throw new Error(`"${digits}" is not a DTMF sequence (0-9, *, #, A-D, w)`);
    if (this.control?.sendDtmf) return this.control.sendDtmf(digits);
    if (this.closed || !this.info) throw new Error('the call has ended');
    const samples = dtmfSamples(digits, this.sampleRate);
    const encoded = encode(samples, this.info.encoding);
    const frameBytes = Math.round(this.sampleRate / 50);
    for (let at = 0; at < encoded.length; at += frameBytes) {
      this.send(this.codec.media(this.info.streamId, encoded.subarray(at, at + frameBytes)));
    }
    // Done when the tones have played: their mark comes back (or the line goes, or it takes far too long).
    const toneMs = (samples.length * 1000) / this.sampleRate;
    await new Promise<void>((resolve) => {
      const timer = this.clock.setTimeout(resolve, toneMs + DTMF_MARK_GRACE_MS);
      this.sendMark({ onPlayed: () => { timer.cancel(); resolve(); } });
    });
  }

  private need(): CallControl {
    if (!this.control) throw new Error('the call is not connected to its carrier yet');
    return this.control;
  }

  transfer(to: string): Promise<HandOff> { return this.need().transfer(to); }
  setHold(on: boolean): Promise<HandOff> { return this.need().setHold(on); }
  addToConference(to: string, opts: { placePrimaryOnHold: boolean }): Promise<HandOff> { return this.need().addToConference(to, opts); }

  async hangup(): Promise<void> {
    if (this.closed) return;
    this.endedBy ??= 'local';
    try {
      await this.control?.hangup();
    } finally {
      // The carrier closes the stream when the call ends; if it does not, we do.
      const timer = setTimeout(() => this.close(1000, 'call ended'), HANGUP_CLOSE_WAIT_MS);
      timer.unref();
      this.ws.once('close', () => clearTimeout(timer));
    }
  }

  /** Closes the socket (the call is over on our side). */
  close(code = 1000, reason = ''): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, reason);
    this.finish('local');
  }

  private finish(by: 'remote' | 'local'): void {
    if (this.closed) return;
    this.closed = true;
    this.endedBy ??= by;
    this.pending.clear();
    if (!this.info) this.rejectStart(new Error('the media stream ended before it started'));
    this.emit({ type: 'hangup' });
  }
}

function decode(payload: Buffer, encoding: MediaEncoding): Int16Array {
  if (encoding === 'mulaw') return decodeMuLaw(payload);
  if (encoding === 'alaw') return decodeALaw(payload);
  // L16 on the wire is network byte order (RFC 3551).
  const out = new Int16Array(payload.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = payload.readInt16BE(i * 2);
  return out;
}

function encode(samples: Int16Array, encoding: MediaEncoding): Buffer {
  if (encoding === 'mulaw') { const e = encodeMuLaw(samples); return Buffer.from(e.buffer, e.byteOffset, e.byteLength); }
  if (encoding === 'alaw') { const e = encodeALaw(samples); return Buffer.from(e.buffer, e.byteOffset, e.byteLength); }
  const out = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16BE(samples[i], i * 2);
  return out;
}
