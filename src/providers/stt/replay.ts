/**
 * The caller's audio not yet covered by a final, kept so a transcriber that loses its connection (or, for
 * Google, rotates its stream) can send it again on the next one: words said while the old connection was
 * dying are still transcribed. The new connection's clock starts at the first replayed frame (`startMs`).
 */
import type { AudioFrame } from '../../engine/audio/frame.js';

/** Older audio belongs to a finished turn anyway. */
const REPLAY_LIMIT_MS = 15_000;

interface Kept { frame: AudioFrame; startMs: number; endMs: number }

export class ReplayBuffer {
  private kept: Kept[] = [];
  private pushed = 0;

  /** Session ms of audio pushed so far. */
  get pushedMs(): number {
    return this.pushed;
  }

  /** Session ms where the kept audio begins: where a connection that replays it starts its clock. */
  get startMs(): number {
    return this.kept.length ? this.kept[0].startMs : this.pushed;
  }

  push(frame: AudioFrame): void {
    const ms = (frame.samples.length * 1000) / frame.sampleRate;
    this.kept.push({ frame, startMs: this.pushed, endMs: this.pushed + ms });
    this.pushed += ms;
    while (this.kept.length && this.pushed - this.kept[0].startMs > REPLAY_LIMIT_MS) this.kept.shift();
  }

  /** Forgets the audio that ends by `ms` (transcribed by a final, or not worth replaying). */
  dropUntil(ms: number): void {
    while (this.kept.length && this.kept[0].endMs <= ms) this.kept.shift();
  }

  frames(): AudioFrame[] {
    return this.kept.map((k) => k.frame);
  }
}
