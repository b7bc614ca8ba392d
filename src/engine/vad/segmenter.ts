import type { ResolvedVadOptions, VadEvent } from './types.js';

type State = 'idle' | 'pending' | 'speaking';

/**
 * Turns a stream of (time span, speech probability) units into speech_start / speech_end events.
 * Shared by every detector, so their hysteresis behaves the same; only the unit differs (a 32 ms model
 * window for Silero at 16 kHz, a pushed frame for the energy detector).
 *
 * - A unit with p ≥ threshold opens a candidate segment at its start.
 * - The candidate continues while p ≥ negativeThreshold; one unit below it drops the candidate.
 * - Once the candidate spans ≥ minSpeechMs, speech_start is emitted at (onset − speechPadMs), never before
 *   the previous segment's end or the first audio seen.
 * - While speaking, units with p ≥ negativeThreshold extend the segment; when units below it have lasted
 *   ≥ minSilenceMs since the last speech unit, speech_end is emitted at (last speech + speechPadMs).
 */
export class SpeechSegmenter {
  private state: State = 'idle';
  private originMs: number | undefined;
  private candidateStartMs = 0;
  private lastSpeechEndMs = 0;
  private segmentStartMs = 0;
  private previousEndMs = -Infinity;
  private lastUnitEndMs = 0;

  constructor(private readonly opts: ResolvedVadOptions) {}

  get speaking(): boolean { return this.state === 'speaking'; }

  update(startMs: number, endMs: number, p: number): VadEvent[] {
    if (this.originMs === undefined) this.originMs = startMs;
    this.lastUnitEndMs = endMs;
    const { threshold, negativeThreshold, minSpeechMs, minSilenceMs, speechPadMs } = this.opts;
    const active = p >= negativeThreshold;
    const events: VadEvent[] = [];

    if (this.state === 'idle') {
      if (p < threshold) return events;
      this.state = 'pending';
      this.candidateStartMs = startMs;
      this.lastSpeechEndMs = endMs;
    } else if (this.state === 'pending') {
      if (!active) { this.state = 'idle'; return events; }
      this.lastSpeechEndMs = endMs;
    } else {
      if (active) { this.lastSpeechEndMs = endMs; return events; }
      if (endMs - this.lastSpeechEndMs >= minSilenceMs - 1e-6) events.push(this.close(endMs));
      return events;
    }

    // pending: confirm once long enough
    if (this.lastSpeechEndMs - this.candidateStartMs >= minSpeechMs - 1e-6) {
      this.state = 'speaking';
      this.segmentStartMs = Math.max(this.candidateStartMs - speechPadMs, this.previousEndMs, this.originMs);
      events.push({ type: 'speech_start', atMs: round(this.segmentStartMs) });
    }
    return events;
  }

  /** End of stream: closes an open segment. */
  flush(): VadEvent[] {
    if (this.state === 'pending') this.state = 'idle';
    if (this.state !== 'speaking') return [];
    return [this.close(this.lastUnitEndMs)];
  }

  reset(): void {
    this.state = 'idle';
    this.originMs = undefined;
    this.previousEndMs = -Infinity;
  }

  private close(nowMs: number): VadEvent {
    const endMs = Math.min(this.lastSpeechEndMs + this.opts.speechPadMs, nowMs);
    this.state = 'idle';
    this.previousEndMs = endMs;
    return { type: 'speech_end', atMs: round(endMs), durationMs: round(endMs - this.segmentStartMs) };
  }
}

/** Event times to 0.1 ms: sample-derived times are otherwise long binary fractions. */
const round = (ms: number) => Math.round(ms * 10) / 10;
