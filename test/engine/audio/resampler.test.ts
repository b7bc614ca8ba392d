import { describe, expect, it } from 'vitest';
import { createResampler, resamplerHeapBytes, SUPPORTED_RATES, type Resampler } from '../../../src/engine/audio/resampler.js';
import { rmsDbfs } from '../../../src/engine/audio/mix.js';

const sine = (hz: number, rate: number, seconds: number, amp = 10000) =>
  Int16Array.from({ length: Math.round(rate * seconds) }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate)));

const rms = (x: Int16Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);

/** Streams `x` through `r` in chunks of `chunk` samples, then flushes. */
function stream(r: Resampler, x: Int16Array, chunk: number): Int16Array {
  const parts: Int16Array[] = [];
  for (let i = 0; i < x.length; i += chunk) parts.push(r.process(x.subarray(i, i + chunk)));
  parts.push(r.flush());
  return concat(parts);
}

function concat(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** Magnitude of the DFT of `x` at `hz` (Goertzel). */
function toneLevel(x: Int16Array, rate: number, hz: number): number {
  const w = (2 * Math.PI * hz) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0, s2 = 0;
  for (const v of x) { const s0 = v + c * s1 - s2; s2 = s1; s1 = s0; }
  return Math.sqrt(s1 * s1 + s2 * s2 - c * s1 * s2) / x.length;
}

/** Frequency from rising zero crossings, interpolated between samples. */
function zeroCrossingHz(x: Int16Array, rate: number): number {
  const crossings: number[] = [];
  for (let i = 1; i < x.length; i++) if (x[i - 1] < 0 && x[i] >= 0) crossings.push(i - 1 + -x[i - 1] / (x[i] - x[i - 1]));
  return ((crossings.length - 1) * rate) / (crossings.at(-1)! - crossings[0]);
}

const pairs = SUPPORTED_RATES.flatMap((a) => SUPPORTED_RATES.filter((b) => b !== a).map((b) => [a, b] as const));

describe('createResampler', () => {
  it('keeps a 440 Hz tone through 8k → 16k → 48k → 8k, in 20 ms chunks (frequency and level)', async () => {
    const x = sine(440, 8000, 2);
    const up1 = await createResampler(8000, 16000);
    const up2 = await createResampler(16000, 48000);
    const down = await createResampler(48000, 8000);
    const outParts: Int16Array[] = [];
    for (let i = 0; i < x.length; i += 160) {
      outParts.push(down.process(up2.process(up1.process(x.subarray(i, i + 160)))));
    }
    outParts.push(down.process(up2.process(up1.flush())), down.process(up2.flush()), down.flush());
    const y = concat(outParts);
    const delay = Math.round(up1.delaySamples / 2) + Math.round(up2.delaySamples / 6) + down.delaySamples;
    expect(Math.abs(y.length - (x.length + delay))).toBeLessThanOrEqual(2);

    // Judge the steady part (skip the filters' ramp-in and ramp-out).
    const steady = y.subarray(800, 800 + 8000);
    expect(zeroCrossingHz(steady, 8000)).toBeCloseTo(440, 0);
    const peak = [400, 420, 430, 440, 450, 460, 480].map((hz) => [hz, toneLevel(steady, 8000, hz)] as const)
      .reduce((a, b) => (b[1] > a[1] ? b : a));
    expect(peak[0]).toBe(440);
    expect(rms(steady) / rms(x.subarray(800, 8800))).toBeGreaterThan(0.97);
    expect(rms(steady) / rms(x.subarray(800, 8800))).toBeLessThan(1.03);

    // And the delayed output lines up with the input: residual after compensation is small.
    let err = 0;
    for (let i = 800; i < 8800; i++) err += (y[i + delay] - x[i]) ** 2;
    expect(Math.sqrt(err / 8000) / rms(x)).toBeLessThan(0.05);
    for (const r of [up1, up2, down]) r.destroy();
  });

  it.each(pairs)('%i → %i: 20 ms chunks and odd chunks give exactly the output of one call', async (from, to) => {
    const x = sine(440, from, 0.5);
    const one = await createResampler(from, to);
    const whole = concat([one.process(x), one.flush()]);
    const r20 = await createResampler(from, to);
    expect(Array.from(stream(r20, x, from / 50))).toEqual(Array.from(whole));
    const rOdd = await createResampler(from, to);
    const parts: Int16Array[] = [];
    for (let i = 0, k = 0; i < x.length; k++) { const n = [1, 7, 13, 3, 331][k % 5]; parts.push(rOdd.process(x.subarray(i, i + n))); i += n; }
    parts.push(rOdd.flush());
    expect(Array.from(concat(parts))).toEqual(Array.from(whole));
    for (const r of [one, r20, rOdd]) r.destroy();
  });

  it.each(pairs)('%i → %i: length is in × ratio, 20 ms in gives 20 ms out, flush returns the delay', async (from, to) => {
    const r = await createResampler(from, to);
    const frameIn = from / 50;
    for (let f = 0; f < 50; f++) expect(r.process(sine(440, from, 0.02)).length).toBe(to / 50);
    expect(r.process(new Int16Array(frameIn * 3)).length).toBe((to / 50) * 3);
    expect(r.flush().length).toBe(r.delaySamples);
    // delaySamples is the filter's half-length in output samples: 8 ms at quality 7 for these pairs' lower rate side.
    expect(r.delaySamples).toBeGreaterThan(0);
    r.destroy();
  });

  it.each([[8000, 16000], [16000, 8000], [48000, 8000], [8000, 48000], [24000, 16000]] as const)(
    '%i → %i: delaySamples matches the measured impulse delay', async (from, to) => {
      for (const q of [3, 7, 10]) {
        const r = await createResampler(from, to, q);
        const x = new Int16Array(from / 10);
        const at = 60; // impulse position in input samples
        x[at] = 30000;
        const y = concat([r.process(x), r.flush()]);
        let pk = 0;
        for (let i = 1; i < y.length; i++) if (Math.abs(y[i]) > Math.abs(y[pk])) pk = i;
        expect(Math.abs(pk - (at * to) / from - r.delaySamples)).toBeLessThanOrEqual(1);
        r.destroy();
      }
    });

  it('filters before downsampling: a 6 kHz tone at 16 kHz does not alias into the 8 kHz output', async () => {
    const r = await createResampler(16000, 8000);
    const y = r.process(sine(6000, 16000, 1, 16000));
    const passed = await createResampler(16000, 8000);
    const z = passed.process(sine(1000, 16000, 1, 16000));
    expect(rmsDbfs(z.subarray(400))).toBeGreaterThan(-10);
    expect(rmsDbfs(y.subarray(400))).toBeLessThan(-70); // it would be a full-level 2 kHz tone if it aliased
    r.destroy(); passed.destroy();
  });

  it('streaming has no clicks at chunk boundaries', async () => {
    const r = await createResampler(24000, 8000);
    const y = stream(r, sine(440, 24000, 1, 20000), 480);
    let maxStep = 0;
    for (let i = 100; i < y.length - 100; i++) maxStep = Math.max(maxStep, Math.abs(y[i] - y[i - 1]));
    expect(maxStep).toBeLessThan(20000 * ((2 * Math.PI * 440) / 8000) * 1.05); // the sine's own max slope
    r.destroy();
  });

  it('is an identity (a copy, no delay) when from === to', async () => {
    const r = await createResampler(16000, 16000);
    const x = sine(440, 16000, 0.02);
    const y = r.process(x);
    expect(y).not.toBe(x);
    expect(Array.from(y)).toEqual(Array.from(x));
    expect(r.delaySamples).toBe(0);
    expect(r.flush().length).toBe(0);
  });

  it('returns owned arrays that later calls do not overwrite', async () => {
    const r = await createResampler(8000, 16000);
    const a = r.process(sine(440, 8000, 0.02));
    const copy = Array.from(a);
    r.process(sine(1000, 8000, 0.02, 30000));
    expect(Array.from(a)).toEqual(copy);
    r.destroy();
  });

  it('frees native memory on destroy (thousands of calls do not grow the WASM heap)', async () => {
    const x = sine(440, 8000, 0.02);
    const warm = await createResampler(8000, 48000);
    warm.process(x);
    warm.destroy();
    const before = resamplerHeapBytes();
    expect(before).toBeGreaterThan(0);
    for (let i = 0; i < 5000; i++) {
      const r = await createResampler(8000, 48000);
      r.process(x);
      r.destroy();
    }
    // Without destroy, 5000 speex states (several KB each at this ratio) outgrow the initial 20 MB heap.
    expect(resamplerHeapBytes()).toBe(before);
  });

  it('throws after destroy and rejects bad arguments', async () => {
    const r = await createResampler(8000, 16000);
    r.destroy();
    r.destroy(); // idempotent
    expect(() => r.process(new Int16Array(160))).toThrow(/destroyed/);
    await expect(createResampler(8000, 44.1)).rejects.toThrow(RangeError);
    await expect(createResampler(8000, 16000, 11)).rejects.toThrow(/quality/);
  });

  it('handles empty input', async () => {
    const r = await createResampler(48000, 16000);
    expect(r.process(new Int16Array(0)).length).toBe(0);
    r.destroy();
  });
});
