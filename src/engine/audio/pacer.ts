/**
 * Outbound pacing: TTS produces audio in bursts far faster than real time, but a carrier socket should
 * get it roughly as it plays — a small lead covers network jitter, while anything more would be audio we
 * cannot take back quickly on barge-in (and Twilio-style buffers grow without bound).
 *
 * The pacer re-chunks whatever it is given into exact 20 ms frames at the transport's rate and hands
 * each to `send` once it is due. Due times come from a play-out timeline — the run's start time plus
 * the frames sent since — never from "sleep 20 ms, repeat", so late timers (a busy event loop) do not
 * add up: a late wake-up sends everything that fell due and the next wake-up is computed from the
 * timeline again.
 */
import type { Clock, Timer } from '../clock.js';
import { FRAME_MS, samplesPerFrame, type AudioFrame } from './frame.js';

export interface PacerOptions {
  clock: Clock;
  /** The transport's PCM rate; pushed frames must already be at this rate. */
  sampleRate: number;
  /**
   * Receives each 20 ms frame, with the mark id of a pushed chunk that ends inside it. Marks that share a
   * frame with an earlier mark, or that cover audio already sent, arrive on their own with an empty frame
   * (samples.length === 0) — a transport sends the mark message alone.
   */
  send: (frame: AudioFrame, markId?: string) => void;
  /** How far the end of the sent audio may run ahead of the clock. Default 120 ms (6 frames); ≥ 20. */
  leadMs?: number;
  /** Called each time everything queued has been sent (or cleared). */
  onIdle?: () => void;
  /** Clock time of the call's start: sent frames' timestampMs are play-out times relative to it. Default: now. */
  originMs?: number;
  /**
   * Called when a frame that was queued and waiting went out more than LATE_FRAME_MS past its play-out time:
   * the far end ran dry while we held its audio (a busy event loop), an audible gap of about `lateMs`.
   */
  onLate?: (lateMs: number) => void;
}

/** How far past its play-out time a waiting frame may go out before the gap is audible: one frame. */
export const LATE_FRAME_MS = 20;

export interface PacerStats {
  framesSent: number;
  /**
   * Frames sent more than LATE_FRAME_MS after their play-out time although they were ready in time: each is
   * a gap the caller hears (the timeline then restarts, so one stall counts once, however long).
   */
  lateFrames: number;
  /** The worst such lateness (ms), of any waiting frame, counted or not. */
  maxLateMs: number;
}

interface Mark { pos: number; id: string }

/** How long a partial frame waits past the end of the sent audio for more input before it is padded. */
export const PARTIAL_GRACE_MS = 10;

export class Pacer {
  private readonly clock: Clock;
  private readonly rate: number;
  private readonly send: PacerOptions['send'];
  private readonly leadMs: number;
  private readonly onIdle?: () => void;
  private readonly onLate?: (lateMs: number) => void;
  private readonly originMs: number;
  private readonly frameSamples: number;
  private readonly frameMs: number;

  // Queue of owned chunks; the head is consumed from `headOffset`.
  private chunks: Int16Array[] = [];
  private head = 0;
  private headOffset = 0;
  private queued = 0;
  /** Samples ever queued (incl. padding) and ever taken into sent frames; marks are positions on this axis. */
  private streamPos = 0;
  private consumedPos = 0;
  private marks: Mark[] = [];
  private markHead = 0;

  // Play-out timeline of the current run: frame k of the run plays at runStart + k × frameMs.
  private runStart = -Infinity;
  private runFrames = 0;
  /** When the partial frame now at the head of the queue gets padded and sent (NaN: none pending). */
  private partialDeadline = NaN;

  private timer?: Timer;
  private timerAt = NaN;
  private pumping = false;
  private paused = false;
  /** Something was queued since the last idle notification (so onIdle fires once per busy spell). */
  private busy = false;
  private idleWaiters: (() => void)[] = [];
  /** Play-out time of a full frame that was waiting for its send time when pump last returned (NaN: none). */
  private waitingPlayAt = NaN;
  readonly stats: PacerStats = { framesSent: 0, lateFrames: 0, maxLateMs: 0 };

  constructor(opts: PacerOptions) {
    this.clock = opts.clock;
    this.rate = opts.sampleRate;
    this.send = opts.send;
    this.leadMs = opts.leadMs ?? 120;
    this.onIdle = opts.onIdle;
    this.onLate = opts.onLate;
    this.originMs = opts.originMs ?? opts.clock.now();
    this.frameSamples = samplesPerFrame(this.rate);
    // The true duration of a frame (exactly 20 ms at 8/16/24/48 kHz), so the timeline matches the audio.
    this.frameMs = (this.frameSamples * 1000) / this.rate;
    if (!(this.frameSamples > 0)) throw new RangeError(`bad sample rate ${opts.sampleRate}`);
    // With less than a frame of lead every frame would be sent after it should have started playing.
    if (!(this.leadMs >= this.frameMs)) throw new RangeError(`leadMs must be at least one frame (${FRAME_MS} ms), got ${opts.leadMs}`);
  }

  /**
   * Queues audio (any length; copied, so the caller may reuse its buffer). A mark is delivered with the
   * frame that holds the last sample of this chunk; an empty chunk marks the end of what was pushed so far.
   */
  push(frame: Pick<AudioFrame, 'samples' | 'sampleRate'>, markId?: string): void {
    if (frame.sampleRate !== this.rate) throw new Error(`pacer expects ${this.rate} Hz audio, got ${frame.sampleRate} Hz`);
    if (frame.samples.length > 0) this.enqueue(frame.samples.slice());
    if (markId !== undefined) { this.marks.push({ pos: this.streamPos, id: markId }); this.busy = true; }
    this.pump();
  }

  /**
   * End of an utterance: pads a trailing partial frame with silence so it goes out on schedule. Without
   * it a partial frame waits for more audio until the audio already sent has played out (+10 ms).
   */
  flush(): void {
    const partial = this.queued % this.frameSamples;
    if (partial) this.enqueue(new Int16Array(this.frameSamples - partial));
    this.pump();
  }

  /**
   * Drops everything queued and not yet sent (marks included) and returns its duration in ms. Also ends
   * a pause (a confirmed barge-in is pause → clear; the next reply must flow). The next audio starts a
   * new timeline at once: the transport is expected to flush its far-end buffer too.
   */
  clear(): number {
    const dropped = this.queuedMs();
    this.paused = false;
    this.chunks = [];
    this.head = 0;
    this.headOffset = 0;
    this.queued = 0;
    this.streamPos = this.consumedPos;
    this.marks = [];
    this.markHead = 0;
    this.runStart = -Infinity;
    this.runFrames = 0;
    this.partialDeadline = NaN;
    this.waitingPlayAt = NaN;
    this.cancelTimer();
    this.settleIdle();
    return dropped;
  }

  /**
   * Holds back further frames (e.g. while a possible barge-in is being confirmed); queued audio and
   * marks stay. What was already sent keeps playing at the far end: at most the lead.
   */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.waitingPlayAt = NaN;
    this.cancelTimer();
  }

  /** Continues after pause(): on the same timeline if sent audio is still playing, else a new run from now. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.partialDeadline = NaN; // a partial frame gets its grace counted from now
    this.pump();
  }

  isPaused(): boolean { return this.paused; }

  /** Audio queued and not yet sent (silence padding included), in ms. */
  queuedMs(): number { return (this.queued * 1000) / this.rate; }

  /** Audio handed to `send` so far, in ms (whole frames). */
  sentMs(): number { return this.stats.framesSent * this.frameMs; }

  /** Resolves once everything queued has been sent or cleared (at once if nothing is queued). */
  idle(): Promise<void> {
    if (this.queued === 0 && this.markHead === this.marks.length) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private enqueue(samples: Int16Array) {
    this.chunks.push(samples);
    this.busy = true;
    this.queued += samples.length;
    this.streamPos += samples.length;
  }

  private playEnd(): number { return this.runStart + this.runFrames * this.frameMs; }

  /** Sends whatever is due, then sleeps until the next thing will be. */
  private pump(): void {
    // send() may push or clear; the loop below re-reads all state after each send, so a nested call
    // only has to enqueue.
    if (this.pumping) return;
    this.pumping = true;
    if (!Number.isNaN(this.waitingPlayAt)) this.checkLateness();
    try {
      for (;;) {
        if (this.markHead < this.marks.length && this.marks[this.markHead].pos <= this.consumedPos) {
          // A mark whose audio is already out (it shared a frame with another mark, or was pushed empty);
          // delivered even while paused, since it refers to audio the transport already has.
          const id = this.marks[this.markHead++].id;
          const at = Math.max(this.playEnd(), this.clock.now());
          this.send({ samples: new Int16Array(0), sampleRate: this.rate, timestampMs: at - this.originMs }, id);
          continue;
        }
        if (this.queued === 0 || this.paused) break;
        const now = this.clock.now();
        // Nothing left playing (first audio, after a gap, or after clear()): a new run starts now.
        if (this.playEnd() < now) { this.runStart = now; this.runFrames = 0; }
        const due = this.playEnd() + this.frameMs - this.leadMs;
        if (due > now) { this.schedule(due, now); break; }
        if (this.queued < this.frameSamples) {
          // A partial frame waits for the rest of its audio until the timeline has run dry (plus a short
          // grace, so back-to-back pushes are never split by padding), then goes out padded with silence.
          // Padding any earlier would put silence mid-sentence whenever TTS chunks are not 20 ms multiples.
          if (Number.isNaN(this.partialDeadline)) this.partialDeadline = this.playEnd() + PARTIAL_GRACE_MS;
          if (this.partialDeadline > now) { this.schedule(this.partialDeadline, now); break; }
          this.enqueue(new Int16Array(this.frameSamples - this.queued));
        }
        this.sendFrame();
      }
    } finally {
      this.pumping = false;
    }
    if (this.queued === 0 || this.paused) this.cancelTimer();
    // A frame left waiting is on time only if the next pump comes before its play-out time.
    if (this.queued >= this.frameSamples && !this.paused) this.waitingPlayAt = this.playEnd();
    if (this.queued === 0) this.settleIdle();
  }

  private checkLateness(): void {
    const late = this.clock.now() - this.waitingPlayAt;
    this.waitingPlayAt = NaN;
    if (late > this.stats.maxLateMs) this.stats.maxLateMs = late;
    if (late > LATE_FRAME_MS) {
      this.stats.lateFrames++;
      this.onLate?.(late);
    }
  }

  private sendFrame(): void {
    const n = this.frameSamples;
    let samples: Int16Array;
    const first = this.chunks[this.head];
    if (first.length - this.headOffset >= n) {
      // Zero-copy: chunks are our own copies and never written, so a view is safe to hand out.
      samples = first.subarray(this.headOffset, this.headOffset + n);
      this.headOffset += n;
    } else {
      samples = new Int16Array(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[this.head];
        const take = Math.min(n - filled, c.length - this.headOffset);
        samples.set(c.subarray(this.headOffset, this.headOffset + take), filled);
        filled += take;
        this.headOffset += take;
        if (this.headOffset === c.length) this.advanceChunk();
      }
    }
    if (this.head < this.chunks.length && this.headOffset === this.chunks[this.head].length) this.advanceChunk();
    this.queued -= n;
    this.consumedPos += n;
    this.partialDeadline = NaN;
    const timestampMs = this.playEnd() - this.originMs;
    this.runFrames++;
    this.stats.framesSent++;
    let markId: string | undefined;
    if (this.markHead < this.marks.length && this.marks[this.markHead].pos <= this.consumedPos) markId = this.marks[this.markHead++].id;
    this.send({ samples, sampleRate: this.rate, timestampMs }, markId);
  }

  private advanceChunk(): void {
    this.head++;
    this.headOffset = 0;
    // Compact now and then instead of shift()ing on every chunk.
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  private schedule(at: number, now: number): void {
    if (this.timer && this.timerAt === at) return;
    this.cancelTimer();
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = NaN;
      this.pump();
    }, at - now);
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = NaN;
  }

  private settleIdle(): void {
    if (this.queued !== 0 || this.markHead !== this.marks.length || !this.busy) return;
    this.busy = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
    this.onIdle?.();
  }
}
