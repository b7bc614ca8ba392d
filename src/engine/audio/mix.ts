/**
 * Sample arithmetic on PCM16: mixing (call recordings: caller + agent), gain, and level in dBFS
 * (min_volume checks and the energy VAD). Everything saturates instead of wrapping: int16 overflow
 * would turn a loud peak into a full-scale click of the opposite sign.
 */

const clamp16 = (v: number) => (v > 32767 ? 32767 : v < -32768 ? -32768 : v);

/**
 * Sums two streams sample by sample, saturating at int16 limits. The result is as long as the longer
 * input (the shorter one counts as silence past its end). `out` may be one of the inputs (in-place).
 */
export function mix(a: Int16Array, b: Int16Array, out?: Int16Array): Int16Array {
  const n = Math.max(a.length, b.length);
  const o = out ?? new Int16Array(n);
  if (o.length < n) throw new RangeError(`output buffer holds ${o.length} samples, need ${n}`);
  const common = Math.min(a.length, b.length);
  for (let i = 0; i < common; i++) o[i] = clamp16(a[i] + b[i]);
  const rest = a.length > b.length ? a : b;
  if (rest !== o) for (let i = common; i < n; i++) o[i] = rest[i];
  return o.length === n ? o : o.subarray(0, n);
}

/** Linear factor for a gain in decibels (amplitude: +6.02 dB doubles). */
export const dbToGain = (db: number) => 10 ** (db / 20);

/**
 * Scales by `db` decibels, rounding to nearest and saturating. `out` may be `pcm` itself (in-place).
 */
export function gain(pcm: Int16Array, db: number, out?: Int16Array): Int16Array {
  const n = pcm.length;
  const o = out ?? new Int16Array(n);
  if (o.length < n) throw new RangeError(`output buffer holds ${o.length} samples, need ${n}`);
  const g = dbToGain(db);
  // Math.round, not the Int16Array store's truncation toward zero: truncation biases quiet audio down.
  for (let i = 0; i < n; i++) o[i] = clamp16(Math.round(pcm[i] * g));
  return o.length === n ? o : o.subarray(0, n);
}

/**
 * RMS level relative to int16 full scale: 20·log10(rms / 32768). A full-scale square wave is 0 dBFS, a
 * full-scale sine ≈ −3.01 dBFS (this is the plain-RMS convention, not AES17's sine-referenced one).
 * Silence and empty input give −Infinity.
 */
export function rmsDbfs(pcm: Int16Array): number {
  const n = pcm.length;
  if (n === 0) return -Infinity;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += pcm[i] * pcm[i]; // exact in a double up to 2^23 full-scale samples, then merely rounded
  if (sum === 0) return -Infinity;
  return 10 * Math.log10(sum / n / (32768 * 32768));
}
