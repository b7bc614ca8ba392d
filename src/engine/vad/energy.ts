import type { AudioFrame } from '../audio/frame.js';
import { SpeechSegmenter } from './segmenter.js';
import { resolveVadOptions, type VadEvent, type VadOptions, type VoiceActivityDetector } from './types.js';

/**
 * Energy-based fallback detector: each pushed frame's RMS level (dBFS) is compared with an adaptive
 * noise floor, the minimum frame level over the last `floorWindowMs` (minimum statistics: pauses between
 * words pull it down to the background, so it follows steady noise without a speech/silence decision).
 * The level above the floor maps to a pseudo-probability, p = σ((level − floor − marginDb) / slopeDb),
 * which goes through the same threshold / negativeThreshold hysteresis as Silero.
 *
 * What it cannot do: tell speech from any other sound that is loud relative to the recent background —
 * tones, music, a door, a noise that has just started (until the floor window has passed). Speech at the
 * very start of the stream is seen late (the floor starts at the first frame's level).
 */
export interface EnergyVadOptions extends VadOptions {
  /** Fixes the sample rate (any rate works). Default: taken from the first frame. */
  sampleRate?: number;
  /** Level above the noise floor at which p = 0.5. Default 10 dB. */
  marginDb?: number;
  /** dB per e-fold of the logistic mapping. Default 3 dB. */
  slopeDb?: number;
  /** Window of the minimum-statistics noise floor. Default 2000 ms. */
  floorWindowMs?: number;
  /** The floor never goes below this (digital silence would make any dither "speech"). Default −70 dBFS. */
  minFloorDbfs?: number;
  /** Frames quieter than this are never speech. Default −55 dBFS. */
  minLevelDbfs?: number;
}

interface FloorEntry { endMs: number; level: number }

export class EnergyVad implements VoiceActivityDetector {
  readonly kind = 'energy' as const;
  private rate: number | undefined;
  private prob = 0;
  private lastLevel = -Infinity;
  private floor: FloorEntry[] = []; // monotonic deque: levels increase front → back
  private readonly segmenter: SpeechSegmenter;
  private readonly marginDb: number;
  private readonly slopeDb: number;
  private readonly floorWindowMs: number;
  private readonly minFloorDbfs: number;
  private readonly minLevelDbfs: number;

  constructor(opts: EnergyVadOptions = {}) {
    this.segmenter = new SpeechSegmenter(resolveVadOptions(opts));
    this.rate = opts.sampleRate;
    this.marginDb = opts.marginDb ?? 10;
    this.slopeDb = opts.slopeDb ?? 3;
    this.floorWindowMs = opts.floorWindowMs ?? 2000;
    this.minFloorDbfs = opts.minFloorDbfs ?? -70;
    this.minLevelDbfs = opts.minLevelDbfs ?? -55;
    if (!(this.slopeDb > 0)) throw new RangeError(`slopeDb must be > 0, got ${this.slopeDb}`);
    if (!(this.floorWindowMs > 0)) throw new RangeError(`floorWindowMs must be > 0, got ${this.floorWindowMs}`);
  }

  get sampleRate(): number | undefined { return this.rate; }
  get probability(): number { return this.prob; }
  get speaking(): boolean { return this.segmenter.speaking; }
  /** RMS level of the last frame, dBFS. */
  get levelDbfs(): number { return this.lastLevel; }
  /** Current noise floor estimate, dBFS. */
  get noiseFloorDbfs(): number { return Math.max(this.minFloorDbfs, this.floor[0]?.level ?? this.minFloorDbfs); }

  push(frame: AudioFrame): Promise<VadEvent[]> {
    try {
      return Promise.resolve(this.process(frame));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Synchronous form of `push`. */
  process(frame: AudioFrame): VadEvent[] {
    if (this.rate === undefined) this.rate = frame.sampleRate;
    else if (frame.sampleRate !== this.rate) throw new Error(`VAD expects ${this.rate} Hz frames, got ${frame.sampleRate} Hz`);
    const { samples } = frame;
    if (samples.length === 0) return [];
    let sum = 0;
    for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
    const level = 10 * Math.log10(sum / samples.length / (32768 * 32768) + 1e-12);
    const startMs = frame.timestampMs;
    const endMs = startMs + (samples.length * 1000) / frame.sampleRate;

    const q = this.floor;
    while (q.length && q[q.length - 1].level >= level) q.pop();
    q.push({ endMs, level });
    while (q[0].endMs <= endMs - this.floorWindowMs) q.shift();
    const floor = Math.max(this.minFloorDbfs, q[0].level);

    this.lastLevel = level;
    this.prob = level < this.minLevelDbfs ? 0 : 1 / (1 + Math.exp(-(level - floor - this.marginDb) / this.slopeDb));
    return this.segmenter.update(startMs, endMs, this.prob);
  }

  flush(): Promise<VadEvent[]> {
    return Promise.resolve(this.segmenter.flush());
  }

  reset(): Promise<void> {
    this.floor = [];
    this.prob = 0;
    this.lastLevel = -Infinity;
    this.segmenter.reset();
    return Promise.resolve();
  }

  close(): void {}
}

export function createEnergyVad(opts: EnergyVadOptions = {}): EnergyVad {
  return new EnergyVad(opts);
}
