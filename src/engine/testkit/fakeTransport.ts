import { durationMs, type AudioFrame } from '../audio/frame.js';
import type { Clock, Timer } from '../clock.js';
import type { Transport, TransportEvent } from '../types.js';

export interface PlayedSpan { startMs: number; endMs: number; samples: number; markId?: string; cut: boolean }

interface Queued { frame: AudioFrame; markId?: string; startMs: number; endMs: number; timer: Timer }

/**
 * A transport that plays audio the way Twilio's media stream does: frames queue in a buffer and play in
 * real (clock) time; a mark is reported once the audio before it has played; clear() empties the buffer
 * at once, cutting the frame that is playing, and the marks it dropped are never reported as played.
 * It records what was played, when, and every control command, for tests and demos.
 */
export class FakeTransport implements Transport {
  readonly played: PlayedSpan[] = [];
  readonly clears: number[] = [];
  readonly commands: { at: number; command: string; arg?: unknown }[] = [];
  private listeners = new Set<(e: TransportEvent) => void>();
  private queue: Queued[] = [];
  private closed = false;

  constructor(private readonly clock: Clock, readonly sampleRate = 8000) {}

  on(listener: (e: TransportEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  sendAudio(frame: AudioFrame, markId?: string): void {
    if (this.closed) throw new Error('transport is closed');
    if (frame.sampleRate !== this.sampleRate) throw new Error(`expected ${this.sampleRate} Hz audio, got ${frame.sampleRate} Hz`);
    const now = this.clock.now();
    const startMs = Math.max(now, this.queue.at(-1)?.endMs ?? now);
    const endMs = startMs + durationMs(frame);
    const q: Queued = { frame, markId, startMs, endMs, timer: { cancel: () => {} } };
    q.timer = this.clock.setTimeout(() => this.finish(q), endMs - now);
    this.queue.push(q);
  }

  private finish(q: Queued): void {
    this.queue.splice(this.queue.indexOf(q), 1);
    this.played.push({ startMs: q.startMs, endMs: q.endMs, samples: q.frame.samples.length, markId: q.markId, cut: false });
    if (q.markId) this.emit({ type: 'played', markId: q.markId });
  }

  clear(): void {
    const now = this.clock.now();
    this.clears.push(now);
    for (const q of this.queue) {
      q.timer.cancel();
      if (q.startMs < now) {
        const playedMs = now - q.startMs;
        this.played.push({ startMs: q.startMs, endMs: now, samples: Math.round((playedMs * this.sampleRate) / 1000), markId: q.markId, cut: true });
      }
    }
    this.queue = [];
  }

  /** Milliseconds of audio buffered and not yet played. */
  bufferedMs(): number {
    const last = this.queue.at(-1);
    return last ? Math.max(0, last.endMs - this.clock.now()) : 0;
  }

  /** Total milliseconds the caller heard. */
  heardMs(): number {
    return this.played.reduce((t, p) => t + (p.endMs - p.startMs), 0);
  }

  /** Audio that reached the caller's ear after `atMs` (should be none after a barge-in's clear). */
  heardAfter(atMs: number): number {
    return this.played.reduce((t, p) => t + Math.max(0, p.endMs - Math.max(p.startMs, atMs)), 0);
  }

  // ---- the caller's side ----

  callerAudio(frame: AudioFrame): void { this.emit({ type: 'audio', frame }); }
  callerDtmf(digits: string): void { this.emit({ type: 'dtmf', digits }); }
  callerHangup(): void {
    this.clear();
    this.closed = true;
    this.emit({ type: 'hangup' });
  }

  // ---- control commands ----

  private record(command: string, arg?: unknown): Promise<void> {
    this.commands.push({ at: this.clock.now(), command, arg });
    return Promise.resolve();
  }

  sendDtmf(digits: string): Promise<void> { return this.record('dtmf', digits); }
  transfer(to: string): Promise<void> { return this.record('transfer', to); }
  setHold(on: boolean): Promise<void> { return this.record('hold', on); }
  addToConference(to: string, opts: { placePrimaryOnHold: boolean }): Promise<void> { return this.record('conference', { to, ...opts }); }
  hangup(): Promise<void> {
    this.clear();
    this.closed = true;
    return this.record('hangup');
  }

  private emit(e: TransportEvent): void {
    for (const l of [...this.listeners]) l(e);
  }
}
