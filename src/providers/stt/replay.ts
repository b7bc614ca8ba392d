/**
 * The caller's audio not yet covered by a final, kept so a transcriber that loses its connection (or, for
 * Google, rotates its stream) can send it again on the next one: words said while the old connection was
 * dying are still transcribed. The new connection's clock starts at the first replayed sample (`startMs`).
 *
 * The audio lives in one ring of samples per session, not as the frames pushed: every live call keeps
 * seconds of it, and frames held that long would each outlive the young generation and be collected
 * later by full GCs, which pause every call on the process.
 */
import type { AudioFrame } from '../../engine/audio/frame.js';

/** Older audio belongs to a finished turn anyway. */
const REPLAY_LIMIT_MS = 15_000;

export class ReplayBuffer {
  private ring = new Int16Array(0);
  private rate = 0;
  /** Session ms at sample index 0 (moves only if the rate changes). */
  private baseMs = 0;
  /** Sample indices (since baseMs) of the oldest kept sample and just past the newest. */
  private start = 0;
  private end = 0;

  /** Session ms of audio pushed so far. */
  get pushedMs(): number {
    return this.rate ? this.baseMs + (this.end * 1000) / this.rate : this.baseMs;
  }

  /** Session ms where the kept audio begins: where a connection that replays it starts its clock. */
  get startMs(): number {
    return this.rate ? this.baseMs + (this.start * 1000) / this.rate : this.baseMs;
  }

  push(frame: AudioFrame): void {
    if (frame.sampleRate !== this.rate) this.restart(frame.sampleRate);
    const cap = this.ring.length;
    let src = frame.samples;
    if (src.length > cap) src = src.subarray(src.length - cap);
    const skipped = frame.samples.length - src.length;
    const at = (this.end + skipped) % cap;
    const first = Math.min(src.length, cap - at);
    this.ring.set(src.subarray(0, first), at);
    if (first < src.length) this.ring.set(src.subarray(first), 0);
    this.end += frame.samples.length;
    if (this.end - this.start > cap) this.start = this.end - cap;
  }

  /** Forgets the audio that ends by `ms` (transcribed by a final, or not worth replaying). */
  dropUntil(ms: number): void {
    if (!this.rate) return;
    const at = Math.floor(((ms - this.baseMs) * this.rate) / 1000);
    this.start = Math.min(this.end, Math.max(this.start, at));
  }

  /** The kept audio, oldest first, as frames of at most 20 ms (what a transcriber's socket takes). */
  frames(): AudioFrame[] {
    const out: AudioFrame[] = [];
    const step = Math.max(1, Math.round(this.rate / 50));
    const cap = this.ring.length;
    for (let i = this.start; i < this.end; i += step) {
      const n = Math.min(step, this.end - i);
      const samples = new Int16Array(n);
      const at = i % cap;
      const first = Math.min(n, cap - at);
      samples.set(this.ring.subarray(at, at + first));
      if (first < n) samples.set(this.ring.subarray(0, n - first), first);
      out.push({ samples, sampleRate: this.rate, timestampMs: this.baseMs + (i * 1000) / this.rate });
    }
    return out;
  }

  /** A session's audio comes at one rate; should it change, what was kept at the old one is dropped. */
  private restart(rate: number): void {
    this.baseMs = this.pushedMs;
    this.rate = rate;
    this.ring = new Int16Array(Math.ceil((REPLAY_LIMIT_MS * rate) / 1000));
    this.start = 0;
    this.end = 0;
  }
}
