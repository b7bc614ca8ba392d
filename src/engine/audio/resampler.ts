/**
 * Streaming PCM16 mono resampling on the Speex resampler (WebAssembly, from the `speex-resampler` package).
 *
 * We drive the package's WASM module directly instead of its `SpeexResampler` class, because that class
 *  - never frees its native state (no destroy): every call's resamplers would leak WASM heap for good;
 *  - sizes its output buffer as ceil(bytes × ratio), which for small chunks when downsampling rounds to
 *    zero samples, and speex then silently drops the input it could not consume (1-sample chunks
 *    16k→8k come out empty).
 * The C code is the same; we only own the memory and the lengths.
 *
 * Like speex itself, the output lags the input by the filter's half-length, `delaySamples` (with 8 kHz
 * on one side: 3 ms at quality 3, 8 ms at the default 7, 16 ms at 10). The first call starts with that
 * much silence and the last `delaySamples` stay inside the filter until `flush()`. In exchange every
 * call returns exactly in × ratio samples once the phase is whole (160 in → 320 out for 8k→16k), which
 * keeps 20 ms frames 20 ms long through the pipeline.
 */
import { createRequire } from 'node:module';

interface SpeexModule {
  HEAP16: Int16Array;
  HEAP32: Int32Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  _speex_resampler_init(channels: number, inRate: number, outRate: number, quality: number, errPtr: number): number;
  _speex_resampler_destroy(state: number): void;
  _speex_resampler_process_interleaved_int(state: number, inPtr: number, inLenPtr: number, outPtr: number, outLenPtr: number): number;
  _speex_resampler_strerror(err: number): number;
  AsciiToString(ptr: number): string;
}

export interface Resampler {
  readonly fromRate: number;
  readonly toRate: number;
  readonly quality: number;
  /** Output samples of delay the filter adds (0 for identity). */
  readonly delaySamples: number;
  /** Resamples the next chunk of the stream; filter state carries over, so chunk boundaries are seamless. */
  process(input: Int16Array): Int16Array;
  /**
   * Returns the audio still inside the filter (by pushing `delay` worth of silence through it). The
   * resampler stays usable: what follows is as if that silence had been part of the stream.
   */
  flush(): Int16Array;
  /** Frees the native state. Further calls throw. Also done on garbage collection, as a safety net. */
  destroy(): void;
}

/** The rates the engine uses; speex accepts others, but these are the ones we test. */
export const SUPPORTED_RATES = [8000, 16000, 24000, 48000] as const;

/**
 * Speex quality 0–10. 7 is the package's default: ~16 µs per 20 ms frame at 8k↔16k, 8 ms delay (bench/engine/audio.ts).
 * 5 costs ~40 % less (5 ms delay), 3 ~60 % less (3 ms): worth measuring on narrowband telephony audio.
 */
export const DEFAULT_QUALITY = 7;

// speex's quality_map base filter lengths, needed to compute its latency (the WASM build does not
// export speex_resampler_get_input_latency).
const BASE_FILTER_LENGTH = [8, 16, 32, 48, 64, 80, 96, 128, 160, 192, 256];

let modulePromise: Promise<SpeexModule> | undefined;
let loaded: SpeexModule | undefined;

/** Size of the shared speex WASM heap in bytes (0 before first use): a leak gauge for metrics and tests. */
export function resamplerHeapBytes(): number {
  return loaded ? loaded.HEAP16.byteLength : 0;
}

function loadSpeex(): Promise<SpeexModule> {
  if (!modulePromise) {
    // The package is CommonJS without an exports map; its WASM factory lives in app/speex_wasm.js and
    // resolves once the (embedded, base64) module has been compiled.
    const require = createRequire(import.meta.url);
    const factory = (require('speex-resampler/app/speex_wasm.js') as { default: (m: object) => Promise<SpeexModule> }).default;
    modulePromise = factory({}).then((m) => (loaded = m), (err: unknown) => {
      modulePromise = undefined; // let a later call retry
      throw err;
    });
  }
  return modulePromise;
}

// One shared scratch area for all resamplers: process() is synchronous, so calls never interleave.
let scratch: { inPtr: number; inCap: number; outPtr: number; outCap: number; lenPtr: number } | undefined;

function ensureScratch(m: SpeexModule, inSamples: number, outSamples: number) {
  if (!scratch) scratch = { inPtr: 0, inCap: 0, outPtr: 0, outCap: 0, lenPtr: m._malloc(8) };
  if (scratch.inCap < inSamples) {
    if (scratch.inPtr) m._free(scratch.inPtr);
    scratch.inCap = Math.max(inSamples, 4096);
    scratch.inPtr = m._malloc(scratch.inCap * 2);
  }
  if (scratch.outCap < outSamples) {
    if (scratch.outPtr) m._free(scratch.outPtr);
    scratch.outCap = Math.max(outSamples, 4096);
    scratch.outPtr = m._malloc(scratch.outCap * 2);
  }
  return scratch;
}

const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);

/** speex's own output latency formula (resample.c: update_filter, get_output_latency). */
function speexOutputDelay(from: number, to: number, quality: number): { inDelay: number; outDelay: number } {
  const g = gcd(from, to);
  const num = from / g;
  const den = to / g;
  let filtLen = BASE_FILTER_LENGTH[quality];
  if (num > den) {
    // Downsampling widens the filter by the ratio, rounded up to a multiple of 8.
    filtLen = Math.floor((filtLen * num) / den);
    filtLen = ((filtLen - 1) & ~7) + 8;
  }
  const inDelay = filtLen / 2;
  return { inDelay, outDelay: Math.floor((inDelay * den + (num >> 1)) / num) };
}

// Resamplers that were dropped without destroy() still free their WASM state.
const finalizer = new FinalizationRegistry<{ m: SpeexModule; state: number }>(({ m, state }) => m._speex_resampler_destroy(state));

function checkRate(rate: number, name: string) {
  if (!Number.isInteger(rate) || rate < 1000 || rate > 192000) throw new RangeError(`${name} must be an integer sample rate in Hz, got ${rate}`);
}

const EMPTY = new Int16Array(0);

/**
 * Creates a streaming mono PCM16 resampler. Awaits the WASM module the first time only.
 * `from === to` gives an identity resampler that returns copies and adds no delay.
 */
export async function createResampler(from: number, to: number, quality = DEFAULT_QUALITY): Promise<Resampler> {
  checkRate(from, 'from');
  checkRate(to, 'to');
  if (!Number.isInteger(quality) || quality < 0 || quality > 10) throw new RangeError(`quality must be an integer 0–10, got ${quality}`);
  if (from === to) return new IdentityResampler(from, quality);
  const m = await loadSpeex();
  const errPtr = m._malloc(4);
  const state = m._speex_resampler_init(1, from, to, quality, errPtr);
  const err = m.HEAP32[errPtr >> 2];
  m._free(errPtr);
  if (err !== 0 || !state) throw new Error(`speex resampler init ${from}→${to}: ${m.AsciiToString(m._speex_resampler_strerror(err))}`);
  return new SpeexResampler(m, state, from, to, quality);
}

class IdentityResampler implements Resampler {
  readonly delaySamples = 0;
  private destroyed = false;
  constructor(readonly fromRate: number, readonly quality: number) {}
  get toRate() { return this.fromRate; }
  process(input: Int16Array): Int16Array {
    if (this.destroyed) throw new Error('resampler destroyed');
    return input.slice(); // a copy, so callers may own and mutate what they get back, as with real resampling
  }
  flush(): Int16Array { return EMPTY; }
  destroy(): void { this.destroyed = true; }
}

class SpeexResampler implements Resampler {
  readonly delaySamples: number;
  private readonly inDelay: number;
  private state: number;
  private readonly token = {};

  constructor(private readonly m: SpeexModule, state: number, readonly fromRate: number, readonly toRate: number, readonly quality: number) {
    this.state = state;
    const d = speexOutputDelay(fromRate, toRate, quality);
    this.delaySamples = d.outDelay;
    this.inDelay = d.inDelay;
    finalizer.register(this, { m, state }, this.token);
  }

  process(input: Int16Array): Int16Array {
    if (!this.state) throw new Error('resampler destroyed');
    const n = input.length;
    if (n === 0) return EMPTY;
    const m = this.m;
    // Speex can emit one sample more than n × ratio when a fractional phase completes; +8 is ample.
    const cap = Math.ceil((n * this.toRate) / this.fromRate) + 8;
    const s = ensureScratch(m, n, cap);
    // Read HEAP16 after any malloc: growing WASM memory replaces the views.
    m.HEAP16.set(input, s.inPtr >> 1);
    let consumed = 0;
    let produced = 0;
    while (consumed < n) {
      const heap32 = m.HEAP32;
      heap32[s.lenPtr >> 2] = n - consumed;
      heap32[(s.lenPtr >> 2) + 1] = cap - produced;
      const err = m._speex_resampler_process_interleaved_int(this.state, s.inPtr + consumed * 2, s.lenPtr, s.outPtr + produced * 2, s.lenPtr + 4);
      if (err !== 0) throw new Error(`speex resampler: ${m.AsciiToString(m._speex_resampler_strerror(err))}`);
      const used = m.HEAP32[s.lenPtr >> 2];
      const got = m.HEAP32[(s.lenPtr >> 2) + 1];
      // Speex consumes everything when the output has room; loop only as a guard, and never spin.
      if (used === 0 && got === 0) throw new Error('speex resampler made no progress');
      consumed += used;
      produced += got;
    }
    const start = s.outPtr >> 1;
    return m.HEAP16.slice(start, start + produced);
  }

  flush(): Int16Array {
    return this.process(new Int16Array(this.inDelay));
  }

  destroy(): void {
    if (!this.state) return;
    finalizer.unregister(this.token);
    this.m._speex_resampler_destroy(this.state);
    this.state = 0;
  }
}
