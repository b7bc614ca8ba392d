import type { AudioFrame } from '../audio/frame.js';

/**
 * Voice activity detection: one detector per call, fed the call's inbound 20 ms PCM16 frames in order.
 *
 * Times in events are on the call's audio timeline (the frames' `timestampMs`), not wall-clock: a
 * `speech_start` is reported once `minSpeechMs` of speech has been heard, so it is emitted after its
 * `atMs`; a `speech_end` is reported after `minSilenceMs` of silence, so it too arrives late by design.
 */
export type VadEvent =
  | { type: 'speech_start'; atMs: number }
  | { type: 'speech_end'; atMs: number; durationMs: number };

export type VadKind = 'silero' | 'energy';

export interface VadOptions {
  /** Probability at or above which a unit of audio starts (or continues) speech. Default 0.5. */
  threshold?: number;
  /** Probability below which a unit counts as silence while speaking (hysteresis; ≤ threshold). Default threshold − 0.15. */
  negativeThreshold?: number;
  /** Contiguous speech needed before `speech_start` is emitted; shorter blips are ignored. Default 80 ms. */
  minSpeechMs?: number;
  /** Hangover: silence needed before `speech_end` is emitted. Default 300 ms. */
  minSilenceMs?: number;
  /** Padding added before the detected onset and after the detected offset. Default 30 ms. */
  speechPadMs?: number;
}

export type ResolvedVadOptions = Required<VadOptions>;

export const DEFAULT_VAD_OPTIONS: ResolvedVadOptions = {
  threshold: 0.5,
  negativeThreshold: 0.35,
  minSpeechMs: 80,
  minSilenceMs: 300,
  speechPadMs: 30,
};

export function resolveVadOptions(opts: VadOptions = {}): ResolvedVadOptions {
  const threshold = opts.threshold ?? DEFAULT_VAD_OPTIONS.threshold;
  const negativeThreshold = opts.negativeThreshold ?? Math.max(0.01, threshold - 0.15);
  const r: ResolvedVadOptions = {
    threshold,
    negativeThreshold,
    minSpeechMs: opts.minSpeechMs ?? DEFAULT_VAD_OPTIONS.minSpeechMs,
    minSilenceMs: opts.minSilenceMs ?? DEFAULT_VAD_OPTIONS.minSilenceMs,
    speechPadMs: opts.speechPadMs ?? DEFAULT_VAD_OPTIONS.speechPadMs,
  };
  if (!(r.threshold > 0 && r.threshold <= 1)) throw new RangeError(`VAD threshold must be in (0, 1], got ${r.threshold}`);
  if (!(r.negativeThreshold >= 0 && r.negativeThreshold <= r.threshold)) {
    throw new RangeError(`VAD negativeThreshold must be in [0, threshold], got ${r.negativeThreshold}`);
  }
  for (const k of ['minSpeechMs', 'minSilenceMs', 'speechPadMs'] as const) {
    if (!(Number.isFinite(r[k]) && r[k] >= 0)) throw new RangeError(`VAD ${k} must be a non-negative number, got ${r[k]}`);
  }
  return r;
}

export interface VoiceActivityDetector {
  readonly kind: VadKind;
  /** Fixed by the first frame (or the `sampleRate` option); later frames at another rate are rejected. */
  readonly sampleRate: number | undefined;
  /**
   * Speech probability (0..1) of the most recently processed frame: read it after that frame's `push`
   * has resolved. For Silero it is the probability of the last model window completed by the frame
   * (a window is 32 ms, so some 20 ms frames complete none and repeat the previous value).
   */
  readonly probability: number;
  /** True between an emitted `speech_start` and its `speech_end`. */
  readonly speaking: boolean;
  /**
   * Feeds one frame (any length; normally 20 ms). Calls may be issued without awaiting the previous one:
   * they are processed strictly in call order. The samples are copied before `push` returns.
   */
  push(frame: AudioFrame): Promise<VadEvent[]>;
  /** End of stream: closes an open speech segment (emits its `speech_end`), after all pending pushes. */
  flush(): Promise<VadEvent[]>;
  /** Forgets all per-call state (model state, buffers, segment), after all pending pushes. */
  reset(): Promise<void>;
  /** Releases per-call resources. The shared model session stays loaded for other calls. */
  close(): void;
}
