/**
 * The engine's unit of sound: PCM16 mono at a known rate. 20 ms is the unit on the wire; codecs and
 * resampling live only at the edges (transport in/out, provider in/out).
 */
export interface AudioFrame {
  samples: Int16Array;
  sampleRate: number;
  /** Start of the frame on the call's timeline, in milliseconds. */
  timestampMs: number;
}

export const FRAME_MS = 20;

export const samplesPerFrame = (sampleRate: number, ms = FRAME_MS) => Math.round((sampleRate * ms) / 1000);

export const durationMs = (frame: Pick<AudioFrame, 'samples' | 'sampleRate'>) => (frame.samples.length * 1000) / frame.sampleRate;
