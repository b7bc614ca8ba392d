import { describe, expect, it } from 'vitest';
import { ReplayBuffer } from '../../src/providers/stt/replay.js';

const frame = (from: number, n = 160, sampleRate = 8000) => ({ samples: Int16Array.from({ length: n }, (_, i) => (from + i) % 32000), sampleRate, timestampMs: 0 });
const joined = (b: ReplayBuffer) => Array.from(b.frames().flatMap((f) => Array.from(f.samples)));

describe('STT replay buffer', () => {
  it('gives back exactly the audio after the last final, in 20 ms frames, with the clock where it starts', () => {
    const b = new ReplayBuffer();
    for (let k = 0; k < 10; k++) b.push(frame(k * 160));
    expect(b.pushedMs).toBe(200);
    b.dropUntil(60); // a final covered the first 60 ms
    expect(b.startMs).toBe(60);
    const frames = b.frames();
    expect(frames.every((f) => f.samples.length <= 160 && f.sampleRate === 8000)).toBe(true);
    expect(joined(b)).toEqual(Array.from({ length: 1120 }, (_, i) => 480 + i));
    expect(frames[0].timestampMs).toBe(60);
  });

  it('keeps the newest 15 s across the ring\'s wrap, however the pushes are sized', () => {
    const b = new ReplayBuffer();
    let at = 0;
    for (const n of [7, 160, 1000, 33, 50_000, 160, 90_001, 3]) { b.push(frame(at, n)); at += n; }
    expect(b.pushedMs).toBe((at * 1000) / 8000);
    expect(b.startMs).toBe(((at - 120_000) * 1000) / 8000);
    expect(joined(b)).toEqual(Array.from({ length: 120_000 }, (_, i) => (at - 120_000 + i) % 32000));
    b.dropUntil(b.pushedMs);
    expect(b.frames()).toEqual([]);
    b.dropUntil(0); // never moves back
    expect(b.frames()).toEqual([]);
  });

  it('a change of rate drops what was kept at the old one and keeps the session clock going', () => {
    const b = new ReplayBuffer();
    b.push(frame(0, 1600)); // 200 ms at 8 kHz
    b.push(frame(0, 320, 16000)); // 20 ms at 16 kHz
    expect(b.startMs).toBe(200);
    expect(b.pushedMs).toBe(220);
    expect(b.frames().map((f) => f.sampleRate)).toEqual([16000]);
  });
});
