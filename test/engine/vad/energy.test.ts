import { describe, expect, it } from 'vitest';
import { EnergyVad, createEnergyVad, type VadEvent } from '../../../src/engine/vad/index.js';
import { activeSpan, addNoise, concat, fixture, runInterleaved, runVad, silence, toFrames, tone, whiteNoise } from './audio.js';

const RATES = [16000, 8000] as const;
const k = (rate: number) => `${rate / 1000}k`;

function expectOneSegment(events: VadEvent[], truth: { startMs: number; endMs: number }, tol = 100) {
  expect(events.map((e) => e.type)).toEqual(['speech_start', 'speech_end']);
  expect(Math.abs(events[0].atMs - truth.startMs)).toBeLessThanOrEqual(tol);
  expect(Math.abs(events[1].atMs - truth.endMs)).toBeLessThanOrEqual(tol);
}

describe.each(RATES)('energy VAD at %i Hz', (rate) => {
  it('digital silence and −70 dBFS hiss: no speech', async () => {
    for (const x of [silence(3000, rate), whiteNoise(3000, rate, -70, 3)]) {
      const run = await runVad(createEnergyVad(), toFrames(x, rate));
      expect(run.events).toEqual([]);
      expect(Math.max(...run.probs)).toBe(0); // below minLevelDbfs
    }
  });

  it('a recorded utterance, clean and in white noise at 20 dB SNR: one start/end pair within 100 ms', async () => {
    const pcm = fixture(`utterance-${k(rate)}.wav`);
    const truth = activeSpan(pcm);
    for (const x of [pcm.samples, addNoise(pcm.samples, whiteNoise(5000, rate, -30, 11), 20, rate)]) {
      expectOneSegment((await runVad(createEnergyVad(), toFrames(x, rate))).events, truth);
    }
  });

  it('a short "yes" (≈260 ms) is detected once', async () => {
    const pcm = fixture(`yes-${k(rate)}.wav`);
    expectOneSegment((await runVad(createEnergyVad(), toFrames(pcm.samples, rate))).events, activeSpan(pcm));
  });

  it('steady white noise (−30 dBFS) from the start of the call is not speech: the floor starts at it', async () => {
    const vad = createEnergyVad();
    const run = await runVad(vad, toFrames(whiteNoise(5000, rate, -30, 21), rate));
    expect(run.events).toEqual([]);
    expect(vad.noiseFloorDbfs).toBeGreaterThan(-32);
    expect(vad.noiseFloorDbfs).toBeLessThan(-29);
  });

  it('what it gets wrong: noise that starts after silence is "speech" until the floor window has passed', async () => {
    const vad = createEnergyVad({ floorWindowMs: 2000 });
    const run = await runVad(vad, toFrames(concat(silence(1000, rate), whiteNoise(4000, rate, -30, 22)), rate));
    expect(run.events.map((e) => e.type)).toEqual(['speech_start', 'speech_end']);
    expect(Math.abs(run.events[0].atMs - 1000)).toBeLessThanOrEqual(40);
    // the 2 s minimum window still holds silent frames until ≈3 s, then the floor jumps to the noise
    expect(run.events[1].atMs).toBeGreaterThan(2900);
    expect(run.events[1].atMs).toBeLessThan(3100);
  });

  it('what it gets wrong: a tone burst is "speech" (a steady tone from the start is not)', async () => {
    const burst = await runVad(createEnergyVad(), toFrames(concat(silence(1000, rate), tone(1000, rate, 1000, -20), silence(1000, rate)), rate));
    expectOneSegment(burst.events, { startMs: 1000, endMs: 2000 }, 40);
    const steady = await runVad(createEnergyVad(), toFrames(tone(3000, rate, 440, -20), rate));
    expect(steady.events).toEqual([]);
  });

  it('ignores a 40 ms click (minSpeechMs 80)', async () => {
    const run = await runVad(createEnergyVad(), toFrames(concat(silence(1000, rate), whiteNoise(40, rate, -20, 5), silence(1000, rate)), rate));
    expect(run.events).toEqual([]);
    expect(Math.max(...run.probs)).toBeGreaterThan(0.99); // it was loud, just too short
  });
});

describe('energy VAD: calls are isolated, input checks', () => {
  it('two calls interleaving frames get what each gets alone', async () => {
    const a = toFrames(fixture('utterance-16k.wav').samples, 16000);
    const b = toFrames(concat(whiteNoise(1500, 16000, -45, 7), fixture('yes-16k.wav').samples), 16000);
    const aloneA = await runVad(createEnergyVad(), a);
    const aloneB = await runVad(createEnergyVad(), b);
    const [ra, rb] = await runInterleaved(createEnergyVad(), a, createEnergyVad(), b);
    expect(ra).toEqual(aloneA);
    expect(rb).toEqual(aloneB);
    expect(aloneB.events).toHaveLength(2);
  });

  it('accepts any rate but not a change mid-call; process() is the synchronous form', async () => {
    const vad = new EnergyVad();
    expect(vad.process({ samples: new Int16Array(960), sampleRate: 48000, timestampMs: 0 })).toEqual([]);
    await expect(vad.push({ samples: new Int16Array(160), sampleRate: 8000, timestampMs: 20 })).rejects.toThrow(/48000 Hz/);
    expect(() => new EnergyVad({ slopeDb: 0 })).toThrow(/slopeDb/);
  });
});
