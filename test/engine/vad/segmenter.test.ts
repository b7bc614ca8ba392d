import { describe, expect, it } from 'vitest';
import { SpeechSegmenter } from '../../../src/engine/vad/segmenter.js';
import { resolveVadOptions, type VadEvent, type VadOptions } from '../../../src/engine/vad/types.js';

/** Feeds 20 ms units with the given probabilities, starting at t0. */
function feed(probs: number[], opts: VadOptions, t0 = 0): { events: VadEvent[]; at: number[] } {
  const s = new SpeechSegmenter(resolveVadOptions(opts));
  const events: VadEvent[] = [];
  const at: number[] = []; // index of the unit whose update emitted each event
  probs.forEach((p, i) => {
    for (const e of s.update(t0 + i * 20, t0 + (i + 1) * 20, p)) { events.push(e); at.push(i); }
  });
  for (const e of s.flush()) { events.push(e); at.push(-1); }
  return { events, at };
}

const opts = { threshold: 0.5, negativeThreshold: 0.3, minSpeechMs: 60, minSilenceMs: 100, speechPadMs: 20 };
const rep = (p: number, n: number) => Array<number>(n).fill(p);

describe('SpeechSegmenter (hysteresis shared by every detector)', () => {
  it('emits speech_start once minSpeechMs of speech is heard, dated to the onset minus the pad', () => {
    const { events, at } = feed([...rep(0, 10), ...rep(0.9, 10), ...rep(0, 20)], opts);
    expect(events).toEqual([
      { type: 'speech_start', atMs: 180 },
      { type: 'speech_end', atMs: 420, durationMs: 240 },
    ]);
    expect(at[0]).toBe(12); // third speech unit: 200..260 ms spans 60 ms
    expect(at[1]).toBe(24); // 100 ms of silence after the last speech unit (ends 400 ms)
  });

  it('ignores a blip shorter than minSpeechMs', () => {
    expect(feed([...rep(0, 5), 0.9, 0.9, ...rep(0, 10)], opts).events).toEqual([]);
  });

  it('a unit below negativeThreshold drops a candidate that is not yet confirmed', () => {
    expect(feed([0, 0.9, 0.9, 0.1, 0.9, 0.9, 0, 0, 0], opts).events).toEqual([]);
  });

  it('between the thresholds: cannot start speech, but keeps it going (hysteresis)', () => {
    expect(feed([...rep(0.4, 30)], opts).events).toEqual([]);
    const { events } = feed([0, ...rep(0.9, 3), ...rep(0.4, 20), ...rep(0, 10)], opts);
    expect(events).toEqual([
      { type: 'speech_start', atMs: 0 }, // 20 − 20 pad
      { type: 'speech_end', atMs: 500, durationMs: 500 }, // last ≥ negative unit ends at 480, + 20 pad
    ]);
  });

  it('pauses shorter than minSilenceMs do not split the segment', () => {
    const { events } = feed([...rep(0.9, 5), ...rep(0, 4), ...rep(0.9, 5), ...rep(0, 10)], opts, 1000);
    expect(events.map((e) => e.type)).toEqual(['speech_start', 'speech_end']);
    expect(events[0].atMs).toBe(1000); // the pad is clamped to the first audio seen
  });

  it('a pause of minSilenceMs splits it into two segments', () => {
    const { events } = feed([...rep(0, 5), ...rep(0.9, 5), ...rep(0, 5), ...rep(0.9, 5), ...rep(0, 10)], opts);
    expect(events).toEqual([
      { type: 'speech_start', atMs: 80 },
      { type: 'speech_end', atMs: 220, durationMs: 140 },
      { type: 'speech_start', atMs: 280 },
      { type: 'speech_end', atMs: 420, durationMs: 140 },
    ]);
  });

  it('pads never overlap: the end pad stops at the unit that closed the segment, the next start pad at the previous end', () => {
    const { events } = feed([...rep(0.9, 5), ...rep(0, 6), ...rep(0.9, 5), ...rep(0, 10)], { ...opts, speechPadMs: 200 });
    expect(events).toEqual([
      { type: 'speech_start', atMs: 0 }, // 0 − 200, clamped to the first audio
      { type: 'speech_end', atMs: 200, durationMs: 200 }, // 100 + 200, but closed by the unit ending at 200
      { type: 'speech_start', atMs: 200 }, // 220 − 200 = 20, clamped to the previous end
      { type: 'speech_end', atMs: 420, durationMs: 220 },
    ]);
  });

  it('flush closes an open segment at the last speech + pad', () => {
    const { events, at } = feed([0, ...rep(0.9, 10)], opts);
    expect(events).toEqual([{ type: 'speech_start', atMs: 0 }, { type: 'speech_end', atMs: 220, durationMs: 220 }]);
    expect(at).toEqual([3, -1]);
  });

  it('minSpeechMs 0 starts on the first unit at or above threshold', () => {
    const { at } = feed([0, 0, 0.5, 0, 0, 0, 0, 0, 0], { ...opts, minSpeechMs: 0 });
    expect(at).toEqual([2, 7]);
  });

  it('validates options', () => {
    expect(() => resolveVadOptions({ threshold: 0.5, negativeThreshold: 0.6 })).toThrow(/negativeThreshold/);
    expect(() => resolveVadOptions({ threshold: 0 })).toThrow(/threshold/);
    expect(() => resolveVadOptions({ minSilenceMs: -1 })).toThrow(/minSilenceMs/);
    expect(resolveVadOptions({ threshold: 0.6 }).negativeThreshold).toBeCloseTo(0.45);
    expect(resolveVadOptions({})).toEqual({ threshold: 0.5, negativeThreshold: 0.35, minSpeechMs: 80, minSilenceMs: 300, speechPadMs: 30 });
  });
});
