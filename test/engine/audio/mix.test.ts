import { describe, expect, it } from 'vitest';
import { dbToGain, gain, mix, rmsDbfs } from '../../../src/engine/audio/mix.js';

const sine = (n: number, amp: number, period = 40) => Int16Array.from({ length: n }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * i) / period)));

describe('mix', () => {
  it('adds sample by sample and saturates instead of wrapping', () => {
    const a = Int16Array.of(1000, 30000, -30000, 32767, -32768, 5);
    const b = Int16Array.of(-500, 10000, -10000, 1, -1, -5);
    expect(Array.from(mix(a, b))).toEqual([500, 32767, -32768, 32767, -32768, 0]);
  });

  it('is as long as the longer input; the shorter one counts as silence', () => {
    expect(Array.from(mix(Int16Array.of(1, 2), Int16Array.of(10, 20, 30, 40)))).toEqual([11, 22, 30, 40]);
    expect(Array.from(mix(Int16Array.of(1, 2, 3), Int16Array.of(10)))).toEqual([11, 2, 3]);
    expect(mix(new Int16Array(0), new Int16Array(0)).length).toBe(0);
  });

  it('can mix in place into either input or into a larger buffer', () => {
    const a = Int16Array.of(1, 2, 3);
    expect(mix(a, Int16Array.of(10, 10), a)).toBe(a);
    expect(Array.from(a)).toEqual([11, 12, 3]);
    const b = Int16Array.of(5, 5, 5);
    mix(Int16Array.of(1), b, b);
    expect(Array.from(b)).toEqual([6, 5, 5]);
    const big = new Int16Array(8).fill(-1);
    const r = mix(Int16Array.of(1, 1), Int16Array.of(2), big);
    expect(Array.from(r)).toEqual([3, 1]);
    expect(big[2]).toBe(-1);
    expect(() => mix(Int16Array.of(1, 2, 3), Int16Array.of(1), new Int16Array(2))).toThrow(RangeError);
  });

  it('mixing two equal sines doubles the amplitude (+6.02 dB)', () => {
    const s = sine(4000, 8000);
    expect(rmsDbfs(mix(s, s)) - rmsDbfs(s)).toBeCloseTo(6.02, 1);
  });
});

describe('gain', () => {
  it('scales by decibels with rounding', () => {
    expect(Array.from(gain(Int16Array.of(1000, -1000, 3, 0), 6.0206))).toEqual([2000, -2000, 6, 0]);
    // +3 dB = ×1.4125: 7 → 9.89 rounds to 10 (an Int16Array store alone would truncate to 9).
    expect(Array.from(gain(Int16Array.of(100, 7, -7), 3))).toEqual([141, 10, -10]);
    expect(Array.from(gain(Int16Array.of(1234), 0))).toEqual([1234]);
  });

  it('saturates at int16 limits', () => {
    expect(Array.from(gain(Int16Array.of(20000, -20000, 100), 12))).toEqual([32767, -32768, 398]);
  });

  it('changes the measured level by exactly the gain', () => {
    const s = sine(8000, 5000);
    for (const db of [-20, -3, 3, 10]) expect(rmsDbfs(gain(s, db)) - rmsDbfs(s)).toBeCloseTo(db, 1);
  });

  it('works in place', () => {
    const s = Int16Array.of(100, 200);
    expect(gain(s, 20, s)).toBe(s);
    expect(Array.from(s)).toEqual([1000, 2000]);
    expect(dbToGain(20)).toBeCloseTo(10, 10);
  });
});

describe('rmsDbfs', () => {
  it('is 0 dBFS for a full-scale square wave and ≈ −3.01 for a full-scale sine', () => {
    const square = Int16Array.from({ length: 800 }, (_, i) => (i % 2 ? -32768 : 32767));
    expect(rmsDbfs(square)).toBeCloseTo(0, 3);
    expect(rmsDbfs(sine(8000, 32767))).toBeCloseTo(-3.01, 2);
  });

  it('follows amplitude: half the amplitude is −6.02 dB', () => {
    expect(rmsDbfs(sine(8000, 16384)) - rmsDbfs(sine(8000, 32768 - 1))).toBeCloseTo(-6.02, 2);
    expect(rmsDbfs(Int16Array.of(328, -328))).toBeCloseTo(-40, 1);
  });

  it('is −Infinity for silence and empty input', () => {
    expect(rmsDbfs(new Int16Array(160))).toBe(-Infinity);
    expect(rmsDbfs(new Int16Array(0))).toBe(-Infinity);
  });
});
