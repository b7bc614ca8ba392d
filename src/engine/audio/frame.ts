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

/** Consecutive frames (one rate) as one, starting where the first does. */
export function joinFrames(frames: readonly AudioFrame[]): AudioFrame {
  let n = 0;
  for (const f of frames) n += f.samples.length;
  const samples = new Int16Array(n);
  let at = 0;
  for (const f of frames) { samples.set(f.samples, at); at += f.samples.length; }
  return { samples, sampleRate: frames[0].sampleRate, timestampMs: frames[0].timestampMs };
}

/**
 * `n` uninitialised samples carved from Node's shared Buffer pool (8-byte aligned slices of one 8 KiB
 * ArrayBuffer) rather than an ArrayBuffer of their own: a busy node makes several small arrays per call
 * every 20 ms, and each ArrayBuffer is one more the GC must sweep in every young-generation pause. The
 * caller writes every sample; `.buffer` is shared, so never transfer it or view it whole.
 */
export function pooledSamples(n: number): Int16Array {
  const b = Buffer.allocUnsafe(n * 2);
  return new Int16Array(b.buffer, b.byteOffset, n);
}
