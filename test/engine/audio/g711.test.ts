import { describe, expect, it } from 'vitest';
import alawmulaw from 'alawmulaw';
import {
  aLawDecodeSample, aLawEncodeSample, decodeALaw, decodeMuLaw, encodeALaw, encodeMuLaw, muLawDecodeSample, muLawEncodeSample,
} from '../../../src/engine/audio/g711.js';

const { alaw, mulaw } = alawmulaw;

/** Every int16 value once, in order from -32768 to 32767. */
const allSamples = (() => {
  const a = new Int16Array(65536);
  for (let i = 0; i < 65536; i++) a[i] = i - 32768;
  return a;
})();
const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): string | undefined {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `index ${i}: ${a[i]} vs ${b[i]}`;
  return undefined;
}

describe('G.711 μ-law', () => {
  it('encodes all 65,536 int16 values exactly as alawmulaw does', () => {
    expect(firstDiff(encodeMuLaw(allSamples), mulaw.encode(allSamples))).toBeUndefined();
  });

  it('decodes all 256 byte values exactly as alawmulaw does', () => {
    expect(firstDiff(decodeMuLaw(allBytes), mulaw.decode(allBytes))).toBeUndefined();
  });

  it('scalar reference functions agree with the tables', () => {
    for (const s of [-32768, -32767, -1, 0, 1, 127, 128, 32635, 32767]) expect(encodeMuLaw(Int16Array.of(s))[0]).toBe(muLawEncodeSample(s));
    for (const b of [0, 0x7f, 0x80, 0xff]) expect(decodeMuLaw(Uint8Array.of(b))[0]).toBe(muLawDecodeSample(b));
  });

  it('has the textbook anchor points', () => {
    expect(encodeMuLaw(Int16Array.of(0))[0]).toBe(0xff); // silence
    expect(decodeMuLaw(Uint8Array.of(0x00))[0]).toBe(-32124); // most negative
    expect(decodeMuLaw(Uint8Array.of(0x80))[0]).toBe(32124); // most positive
  });

  it('round trip is idempotent: decode(encode(decode(b))) == decode(b)', () => {
    const d = decodeMuLaw(allBytes);
    expect(firstDiff(decodeMuLaw(encodeMuLaw(d)), d)).toBeUndefined();
  });
});

describe('G.711 A-law', () => {
  it('encodes all 65,536 int16 values exactly as alawmulaw does', () => {
    expect(firstDiff(encodeALaw(allSamples), alaw.encode(allSamples))).toBeUndefined();
  });

  it('decodes all 256 byte values exactly as alawmulaw does', () => {
    expect(firstDiff(decodeALaw(allBytes), alaw.decode(allBytes))).toBeUndefined();
  });

  it('scalar reference functions agree with the tables', () => {
    for (const s of [-32768, -32767, -256, -255, -1, 0, 1, 255, 256, 32767]) expect(encodeALaw(Int16Array.of(s))[0]).toBe(aLawEncodeSample(s));
    for (const b of [0, 0x55, 0xd5, 0xff]) expect(decodeALaw(Uint8Array.of(b))[0]).toBe(aLawDecodeSample(b));
  });

  it('has the textbook anchor points', () => {
    expect(encodeALaw(Int16Array.of(0))[0]).toBe(0xd5);
    expect(decodeALaw(Uint8Array.of(0xd5))[0]).toBe(8);
    expect(decodeALaw(Uint8Array.of(0x55))[0]).toBe(-8);
    expect(decodeALaw(Uint8Array.of(0xaa))[0]).toBe(32256);
  });
});

describe('G.711 buffers', () => {
  it('writes into a caller buffer without allocating a new one', () => {
    const pcm = Int16Array.from({ length: 160 }, (_, i) => (i * 397) % 20000 - 10000);
    const enc = new Uint8Array(160);
    expect(encodeMuLaw(pcm, enc)).toBe(enc);
    expect(firstDiff(enc, mulaw.encode(pcm))).toBeUndefined();
    const dec = new Int16Array(160);
    expect(decodeMuLaw(enc, dec)).toBe(dec);
    expect(firstDiff(dec, mulaw.decode(enc))).toBeUndefined();
    const aenc = new Uint8Array(160);
    expect(encodeALaw(pcm, aenc)).toBe(aenc);
    expect(decodeALaw(aenc, dec)).toBe(dec);
    expect(firstDiff(dec, alaw.decode(aenc))).toBeUndefined();
  });

  it('returns a view of the used part of a larger buffer, and rejects a short one', () => {
    const pcm = Int16Array.of(1000, -1000, 0);
    const big = new Uint8Array(10).fill(7);
    const r = encodeMuLaw(pcm, big);
    expect(r.length).toBe(3);
    expect(r.buffer).toBe(big.buffer);
    expect(big[3]).toBe(7);
    expect(() => encodeMuLaw(pcm, new Uint8Array(2))).toThrow(RangeError);
    expect(() => decodeALaw(Uint8Array.of(1, 2), new Int16Array(1))).toThrow(RangeError);
  });

  it('decodes a Node Buffer (base64 media payload) directly', () => {
    const payload = Buffer.from(mulaw.encode(Int16Array.of(0, 500, -500, 12000))).toString('base64');
    expect(Array.from(decodeMuLaw(Buffer.from(payload, 'base64')))).toEqual(Array.from(mulaw.decode(Buffer.from(payload, 'base64'))));
  });

  it('handles empty input', () => {
    expect(encodeMuLaw(new Int16Array(0)).length).toBe(0);
    expect(decodeALaw(new Uint8Array(0)).length).toBe(0);
  });

  it('gives every frame its own samples although they share pooled memory', () => {
    // A call's frames are decoded into slices of one shared pool: each must keep its samples while later
    // frames are decoded, and writing one must not touch another.
    const frames = Array.from({ length: 200 }, (_, i) => decodeMuLaw(new Uint8Array(160).fill(i)));
    frames.forEach((f, i) => expect(firstDiff(f, mulaw.decode(new Uint8Array(160).fill(i)))).toBeUndefined());
    frames[1].fill(7);
    expect(firstDiff(frames[0], mulaw.decode(new Uint8Array(160).fill(0)))).toBeUndefined();
    expect(firstDiff(frames[2], mulaw.decode(new Uint8Array(160).fill(2)))).toBeUndefined();
    const encoded = Array.from({ length: 60 }, (_, i) => encodeALaw(new Int16Array(160).fill(i * 100)));
    encoded.forEach((e, i) => expect(firstDiff(e, alaw.encode(new Int16Array(160).fill(i * 100)))).toBeUndefined());
  });
});
