// Test audio: WAV I/O, resampling, seeded noise, framing, and a runner that records a detector's output.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AudioFrame } from '../../../src/engine/audio/frame.js';
import { samplesPerFrame } from '../../../src/engine/audio/frame.js';
import type { VadEvent, VoiceActivityDetector } from '../../../src/engine/vad/index.js';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

export interface Pcm { samples: Int16Array; sampleRate: number }

export function readWav(path: string): Pcm {
  const b = readFileSync(path);
  if (b.toString('ascii', 0, 4) !== 'RIFF' || b.toString('ascii', 8, 12) !== 'WAVE') throw new Error(`${path}: not a WAV file`);
  let off = 12;
  let sampleRate = 0;
  let channels = 0;
  let bits = 0;
  while (off + 8 <= b.length) {
    const id = b.toString('ascii', off, off + 4);
    const size = b.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      if (b.readUInt16LE(body) !== 1) throw new Error(`${path}: not PCM`);
      channels = b.readUInt16LE(body + 2);
      sampleRate = b.readUInt32LE(body + 4);
      bits = b.readUInt16LE(body + 14);
    } else if (id === 'data') {
      if (channels !== 1 || bits !== 16) throw new Error(`${path}: want mono PCM16, got ${channels} ch ${bits} bit`);
      // espeak-ng writes 0x7fffffff as the data size when streaming; clamp to the file
      const n = Math.floor(Math.min(size, b.length - body) / 2);
      const samples = new Int16Array(n);
      for (let i = 0; i < n; i++) samples[i] = b.readInt16LE(body + 2 * i);
      return { samples, sampleRate };
    }
    off = body + size + (size & 1);
  }
  throw new Error(`${path}: no data chunk`);
}

export function writeWav(path: string, { samples, sampleRate }: Pcm): void {
  const b = Buffer.alloc(44 + samples.length * 2);
  b.write('RIFF', 0, 'ascii');
  b.writeUInt32LE(36 + samples.length * 2, 4);
  b.write('WAVE', 8, 'ascii');
  b.write('fmt ', 12, 'ascii');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(sampleRate, 24);
  b.writeUInt32LE(sampleRate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'ascii');
  b.writeUInt32LE(samples.length * 2, 40);
  for (let i = 0; i < samples.length; i++) b.writeInt16LE(samples[i], 44 + 2 * i);
  writeFileSync(path, b);
}

export const fixture = (name: string): Pcm => readWav(FIXTURES + name);

/** Windowed-sinc (Blackman) resampler, cutoff at 0.45 × the lower rate. Good enough for test audio. */
export function resample(x: ArrayLike<number>, from: number, to: number): Float64Array {
  if (from === to) return Float64Array.from(x);
  const ratio = to / from;
  const cutoff = (0.45 * Math.min(from, to)) / from; // cycles per input sample
  const half = Math.ceil(8 / cutoff); // taps on each side
  const out = new Float64Array(Math.floor(x.length * ratio));
  for (let j = 0; j < out.length; j++) {
    const t = j / ratio;
    const c = Math.floor(t);
    let acc = 0;
    let norm = 0;
    for (let i = c - half + 1; i <= c + half; i++) {
      const d = t - i;
      const w = 0.42 + 0.5 * Math.cos((Math.PI * d) / half) + 0.08 * Math.cos((2 * Math.PI * d) / half);
      const s = d === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * d) / (Math.PI * d);
      const k = w * s;
      norm += k;
      if (i >= 0 && i < x.length) acc += k * x[i];
    }
    out[j] = acc / norm;
  }
  return out;
}

export function toInt16(x: ArrayLike<number>): Int16Array {
  const out = new Int16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(x[i])));
  return out;
}

export function concat(...parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p as ArrayLike<number>, o); o += p.length; }
  return out;
}

export const silence = (ms: number, rate: number) => new Float64Array(Math.round((ms * rate) / 1000));

/** mulberry32: deterministic noise, so a failing test fails the same way every time. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const gauss = (r: () => number) => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());

export const dbfsToAmp = (dbfs: number) => 32768 * 10 ** (dbfs / 20);

export function rmsDbfs(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return 10 * Math.log10(s / x.length / 32768 ** 2 + 1e-20);
}

function scaleTo(x: Float64Array, dbfs: number): Float64Array {
  const k = dbfsToAmp(dbfs) / dbfsToAmp(rmsDbfs(x));
  for (let i = 0; i < x.length; i++) x[i] *= k;
  return x;
}

export function whiteNoise(ms: number, rate: number, dbfs: number, seed = 1): Float64Array {
  const r = rng(seed);
  const x = new Float64Array(Math.round((ms * rate) / 1000));
  for (let i = 0; i < x.length; i++) x[i] = gauss(r);
  return scaleTo(x, dbfs);
}

/** Pink-ish noise (Paul Kellet's filter): the spectral tilt of room / street / fan noise. */
export function pinkNoise(ms: number, rate: number, dbfs: number, seed = 2): Float64Array {
  const r = rng(seed);
  const x = new Float64Array(Math.round((ms * rate) / 1000));
  let b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0, b6 = 0;
  for (let i = 0; i < x.length; i++) {
    const w = gauss(r);
    b0 = 0.99886 * b0 + w * 0.0555179; b1 = 0.99332 * b1 + w * 0.0750759; b2 = 0.969 * b2 + w * 0.153852;
    b3 = 0.8665 * b3 + w * 0.3104856; b4 = 0.55 * b4 + w * 0.5329522; b5 = -0.7616 * b5 - w * 0.016898;
    x[i] = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362;
    b6 = w * 0.115926;
  }
  return scaleTo(x, dbfs);
}

export function tone(ms: number, rate: number, hz: number, dbfs: number): Float64Array {
  const x = new Float64Array(Math.round((ms * rate) / 1000));
  const a = dbfsToAmp(dbfs) * Math.SQRT2;
  for (let i = 0; i < x.length; i++) x[i] = a * Math.sin((2 * Math.PI * hz * i) / rate);
  return x;
}

/** x + noise scaled so that (speech-active level of x) − (noise level) = snrDb. */
export function addNoise(x: ArrayLike<number>, noise: ArrayLike<number>, snrDb: number, rate: number): Float64Array {
  const span = activeSpan({ samples: toInt16(x), sampleRate: rate });
  const active = Array.prototype.slice.call(x, Math.round((span.startMs * rate) / 1000), Math.round((span.endMs * rate) / 1000)) as number[];
  const k = dbfsToAmp(rmsDbfs(active) - snrDb) / dbfsToAmp(rmsDbfs(noise));
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + k * noise[i % noise.length];
  return out;
}

/**
 * Ground truth for a clean recording: from the first to the last 10 ms block above −50 dBFS (the fixtures
 * are synthesized speech between stretches of digital silence, so this is the utterance, word gaps included).
 */
export function activeSpan({ samples, sampleRate }: Pcm, dbfs = -50): { startMs: number; endMs: number } {
  const block = sampleRate / 100;
  let first = -1;
  let last = -1;
  for (let b = 0; b * block < samples.length; b++) {
    if (rmsDbfs(samples.subarray(b * block, (b + 1) * block)) > dbfs) {
      if (first < 0) first = b;
      last = b;
    }
  }
  if (first < 0) throw new Error('no active audio');
  return { startMs: first * 10, endMs: (last + 1) * 10 };
}

export function toFrames(x: ArrayLike<number> | Int16Array, sampleRate: number, startMs = 0): AudioFrame[] {
  const pcm = x instanceof Int16Array ? x : toInt16(x);
  const n = samplesPerFrame(sampleRate);
  const frames: AudioFrame[] = [];
  for (let o = 0; o + n <= pcm.length; o += n) {
    frames.push({ samples: pcm.slice(o, o + n), sampleRate, timestampMs: startMs + (o * 1000) / sampleRate });
  }
  return frames;
}

export interface VadRun { events: VadEvent[]; probs: number[] }

/** Pushes every frame (awaiting each), records events and per-frame probabilities, then flushes. */
export async function runVad(vad: VoiceActivityDetector, frames: AudioFrame[], flush = true): Promise<VadRun> {
  const events: VadEvent[] = [];
  const probs: number[] = [];
  for (const f of frames) {
    events.push(...(await vad.push(f)));
    probs.push(vad.probability);
  }
  if (flush) events.push(...(await vad.flush()));
  return { events, probs };
}

/** Two calls' detectors fed frame by frame in turn, as concurrent calls are: one result per call. */
export async function runInterleaved(va: VoiceActivityDetector, a: AudioFrame[], vb: VoiceActivityDetector, b: AudioFrame[]): Promise<[VadRun, VadRun]> {
  const ra: VadRun = { events: [], probs: [] };
  const rb: VadRun = { events: [], probs: [] };
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) { ra.events.push(...(await va.push(a[i]))); ra.probs.push(va.probability); }
    if (i < b.length) { rb.events.push(...(await vb.push(b[i]))); rb.probs.push(vb.probability); }
  }
  ra.events.push(...(await va.flush()));
  rb.events.push(...(await vb.flush()));
  return [ra, rb];
}
