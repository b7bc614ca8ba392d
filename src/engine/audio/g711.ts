/**
 * G.711 μ-law and A-law (what carriers put on the wire: Twilio/Telnyx media streams are 8 kHz μ-law,
 * European trunks A-law). Bit-exact with the `alawmulaw` package for every input, so audio we encode
 * matches what the rest of the Node telephony ecosystem produces and decodes.
 *
 * Encoding goes through a 65,536-entry table indexed by the raw 16-bit sample: one load per sample, no
 * branches, and 64 KiB per law fits in L2. The tables are filled once at import from the bit-level
 * reference functions below (a few hundred microseconds). Decoding uses 256-entry tables.
 */

import { pooledSamples } from './frame.js';

// ---- μ-law (ITU-T G.711, Sun reference algorithm: bias 0x84, clip 32635) ----

const MU_BIAS = 0x84;
const MU_CLIP = 32635;

/** Encodes one int16 sample to a μ-law byte (reference path; the array encoder uses a table built from it). */
export function muLawEncodeSample(sample: number): number {
  const sign = (sample >> 8) & 0x80;
  let s = sign !== 0 ? -sample : sample;
  s += MU_BIAS;
  if (s > MU_CLIP) s = MU_CLIP;
  // s is in [132, 32635], so its top bit is 7..14; the segment (exponent) is that bit minus 7.
  const exponent = 24 - Math.clz32(s);
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** Decodes one μ-law byte to an int16 sample. */
export function muLawDecodeSample(byte: number): number {
  const u = ~byte & 0xff;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  // ((mantissa << 3) + bias) << exponent, minus the bias: the segment's base plus the step.
  const magnitude = (((mantissa << 3) + MU_BIAS) << exponent) - MU_BIAS;
  return (u & 0x80 ? -magnitude : magnitude) | 0; // | 0: 0x7f decodes to 0, not -0
}

// ---- A-law (as alawmulaw does it: magnitude = -x for negatives, not the Sun code's -x-1) ----

/** Encodes one int16 sample to an A-law byte (reference path). */
export function aLawEncodeSample(sample: number): number {
  let s = sample === -32768 ? -32767 : sample;
  const sign = (~s >> 8) & 0x80; // 0x80 for non-negative samples
  if (!sign) s = -s;
  if (s > 32635) s = 32635;
  let companded: number;
  if (s >= 256) {
    const exponent = 24 - Math.clz32(s); // top bit 8..14 → segment 1..7
    companded = (exponent << 4) | ((s >> (exponent + 3)) & 0x0f);
  } else {
    companded = s >> 4;
  }
  return companded ^ (sign ^ 0x55);
}

/** Decodes one A-law byte to an int16 sample. */
export function aLawDecodeSample(byte: number): number {
  let a = (byte & 0xff) ^ 0x55;
  const positive = (a & 0x80) !== 0; // A-law sets the sign bit for non-negative samples
  a &= 0x7f;
  const position = (a >> 4) + 4;
  const magnitude = position !== 4
    ? (1 << position) | ((a & 0x0f) << (position - 4)) | (1 << (position - 5))
    : (a << 1) | 1;
  // magnitude is in 1/8 units (13-bit A-law range scaled to 16 bits).
  return positive ? magnitude << 3 : -(magnitude << 3);
}

// ---- tables ----

function buildEncodeTable(encode: (s: number) => number): Uint8Array {
  const t = new Uint8Array(65536);
  // Index is the sample's two's-complement bit pattern (sample & 0xffff).
  for (let i = 0; i < 65536; i++) t[i] = encode(i < 32768 ? i : i - 65536);
  return t;
}

function buildDecodeTable(decode: (b: number) => number): Int16Array {
  const t = new Int16Array(256);
  for (let b = 0; b < 256; b++) t[b] = decode(b);
  return t;
}

const MU_ENC = buildEncodeTable(muLawEncodeSample);
const MU_DEC = buildDecodeTable(muLawDecodeSample);
const A_ENC = buildEncodeTable(aLawEncodeSample);
const A_DEC = buildDecodeTable(aLawDecodeSample);

// ---- array codecs ----

/** `out` must hold at least `n` elements; returns exactly `n` of them (no copy when the sizes match). */
function target<T extends Uint8Array | Int16Array>(out: T | undefined, n: number, make: (n: number) => T): T {
  if (!out) return make(n);
  if (out.length < n) throw new RangeError(`output buffer holds ${out.length} samples, need ${n}`);
  return (out.length === n ? out : out.subarray(0, n)) as T;
}

// Outputs come from Node's Buffer pool (see pooledSamples): codecs run on every 20 ms frame of every call.
const bytes = (n: number): Uint8Array => Buffer.allocUnsafe(n);
const pcm = pooledSamples;

/** PCM16 → μ-law. Pass `out` (≥ pcm.length) to reuse a buffer on the hot path. */
export function encodeMuLaw(samples: Int16Array, out?: Uint8Array): Uint8Array {
  const n = samples.length;
  const o = target(out, n, bytes);
  for (let i = 0; i < n; i++) o[i] = MU_ENC[samples[i] & 0xffff];
  return o;
}

/** μ-law → PCM16. Accepts a Buffer (e.g. a decoded base64 media payload) directly. */
export function decodeMuLaw(encoded: Uint8Array, out?: Int16Array): Int16Array {
  const n = encoded.length;
  const o = target(out, n, pcm);
  for (let i = 0; i < n; i++) o[i] = MU_DEC[encoded[i]];
  return o;
}

/** PCM16 → A-law. */
export function encodeALaw(samples: Int16Array, out?: Uint8Array): Uint8Array {
  const n = samples.length;
  const o = target(out, n, bytes);
  for (let i = 0; i < n; i++) o[i] = A_ENC[samples[i] & 0xffff];
  return o;
}

/** A-law → PCM16. */
export function decodeALaw(encoded: Uint8Array, out?: Int16Array): Int16Array {
  const n = encoded.length;
  const o = target(out, n, pcm);
  for (let i = 0; i < n; i++) o[i] = A_DEC[encoded[i]];
  return o;
}
