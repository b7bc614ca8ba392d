import { describe, expect, it } from 'vitest';
import { VirtualClock, type Clock, type Timer } from '../../../src/engine/clock.js';
import type { AudioFrame } from '../../../src/engine/audio/frame.js';
import { Pacer, type PacerOptions } from '../../../src/engine/audio/pacer.js';
import { FakeTransport } from '../../../src/engine/testkit/fakeTransport.js';

interface Sent { at: number; frame: AudioFrame; markId?: string }

function setup(opts: Partial<PacerOptions> & { clock?: Clock } = {}) {
  const clock = (opts.clock ?? new VirtualClock()) as VirtualClock;
  const sent: Sent[] = [];
  const pacer = new Pacer({
    clock, sampleRate: 8000,
    send: (frame, markId) => sent.push({ at: clock.now(), frame, markId }),
    ...opts,
  });
  return { clock, sent, pacer };
}

/** A ramp, so every sample says where it came from. */
const ramp = (n: number, from = 0) => Int16Array.from({ length: n }, (_, i) => (from + i) % 30000);
const audio = (samples: Int16Array, sampleRate = 8000) => ({ samples, sampleRate });
const audioFrames = (s: Sent[]) => s.filter((x) => x.frame.samples.length > 0);

/** A clock whose timers fire late by a pseudo-random 0–7 ms, like a busy event loop. */
class LateClock implements Clock {
  private seed = 12345;
  constructor(readonly inner: VirtualClock) {}
  now() { return this.inner.now(); }
  setTimeout(fn: () => void, ms: number): Timer {
    this.seed = (this.seed * 1103515245 + 12345) % 2147483648;
    return this.inner.setTimeout(fn, ms + (this.seed % 8));
  }
  sleep(): Promise<void> { throw new Error('unused'); }
}

describe('Pacer', () => {
  it('sends the lead at once, then one frame each 20 ms, never more than the lead ahead', async () => {
    const { clock, sent, pacer } = setup();
    pacer.push(audio(ramp(8000))); // 1 s
    expect(sent.length).toBe(6); // 120 ms of lead, sent synchronously
    expect(pacer.sentMs()).toBe(120);
    expect(pacer.queuedMs()).toBe(880);
    expect(clock.pending()).toBe(1);

    await clock.advance(500);
    expect(pacer.sentMs()).toBe(620);
    await clock.advance(1000);
    expect(sent.length).toBe(50);
    sent.forEach((s, k) => {
      expect(s.frame.samples.length).toBe(160);
      expect(s.frame.timestampMs).toBe(k * 20);
      expect(s.at).toBe(Math.max(0, (k + 1) * 20 - 120)); // the ideal send time, exactly
      expect(s.frame.timestampMs + 20 - s.at).toBeLessThanOrEqual(120);
    });
    expect(clock.pending()).toBe(0);
  });

  it('honours a custom lead', async () => {
    const { clock, sent, pacer } = setup({ leadMs: 60 });
    pacer.push(audio(ramp(1600)));
    expect(sent.length).toBe(3);
    await clock.advance(20);
    expect(sent.length).toBe(4);
    expect(() => setup({ leadMs: 10 })).toThrow(RangeError);
  });

  it('re-chunks any input sizes into exact 20 ms frames without losing or reordering samples', async () => {
    const { clock, sent, pacer } = setup();
    const sizes = [37, 211, 5, 400, 1, 159, 161, 320, 83];
    const total = sizes.reduce((a, b) => a + b, 0);
    const src = ramp(total, 1);
    let o = 0;
    for (const n of sizes) { pacer.push(audio(src.subarray(o, o + n))); o += n; }
    await clock.advance(2000);
    const out = audioFrames(sent).flatMap((s) => Array.from(s.frame.samples));
    expect(audioFrames(sent).every((s) => s.frame.samples.length === 160)).toBe(true);
    expect(out.length).toBe(Math.ceil(total / 160) * 160);
    expect(out.slice(0, total)).toEqual(Array.from(src));
    expect(out.slice(total).every((v) => v === 0)).toBe(true); // the tail is padded with silence
    expect(pacer.sentMs()).toBe(out.length / 8);
  });

  it('copies pushed audio, so a reused input buffer does not change queued audio', async () => {
    const { clock, sent, pacer } = setup();
    const buf = ramp(8000, 1);
    pacer.push(audio(buf));
    buf.fill(0);
    await clock.advance(1000);
    expect(sent.at(-1)!.frame.samples[159]).toBe(8000);
  });

  it('does not drift over 10 minutes even when timers fire late', async () => {
    const inner = new VirtualClock();
    const clock = new LateClock(inner);
    const sent: Sent[] = [];
    const pacer = new Pacer({ clock, sampleRate: 8000, send: (frame, markId) => sent.push({ at: inner.now(), frame, markId }) });
    const frames = 30_000; // 10 minutes
    for (let s = 0; s < 600; s++) pacer.push(audio(new Int16Array(8000)));
    for (let t = 0; t < 601; t++) await inner.advance(1000);
    expect(sent.length).toBe(frames);
    const ideal = (k: number) => (k + 1) * 20 - 120;
    // A sleep(20)-per-frame loop would be ~100 s late by now (30,000 × ~3.5 ms).
    expect(Math.abs(sent.at(-1)!.at - ideal(frames - 1))).toBeLessThanOrEqual(20);
    sent.forEach((s, k) => {
      expect(s.frame.timestampMs).toBe(k * 20); // one continuous run: the timeline never reset
      expect(s.at).toBeGreaterThanOrEqual(ideal(k));
      expect(s.at).toBeLessThanOrEqual(Math.max(0, ideal(k)) + 7); // late by at most the timer's own lateness
      expect(s.at).toBeLessThanOrEqual(s.frame.timestampMs); // always before it should start playing
    });
    expect(pacer.queuedMs()).toBe(0);
    expect(pacer.stats).toMatchObject({ framesSent: frames, lateFrames: 0 }); // timer jitter within the lead is no gap
  }, 60_000);

  it('counts a frame it held past its play-out time (a stalled event loop) as late, and nothing else', async () => {
    const inner = new VirtualClock();
    let stallMs = 0;
    // The next timer set fires `stallMs` late, once: an event loop busy elsewhere.
    const clock: Clock = {
      now: () => inner.now(),
      setTimeout: (fn, ms) => { const t = inner.setTimeout(fn, ms + stallMs); stallMs = 0; return t; },
      sleep: () => { throw new Error('unused'); },
    };
    const late: number[] = [];
    const sent: Sent[] = [];
    const pacer = new Pacer({ clock, sampleRate: 8000, send: (frame) => sent.push({ at: inner.now(), frame }), onLate: (ms) => late.push(ms) });
    pacer.push(audio(new Int16Array(8000))); // 1 s, 120 ms of it sent at once
    await inner.advance(300);
    stallMs = 100; // the waiting frame goes out exactly at its play-out time: the far end never ran dry
    await inner.advance(300);
    expect(pacer.stats.lateFrames).toBe(0);
    expect(pacer.stats.maxLateMs).toBe(0);
    stallMs = 150; // 50 ms past its play-out time: a gap the caller hears
    await inner.advance(400);
    expect(late).toEqual([50]);
    expect(pacer.stats).toEqual({ framesSent: 50, lateFrames: 1, maxLateMs: 50 });

    // Audio that arrives after the last has played (slow TTS) starts a new run: not our lateness.
    await inner.advance(500);
    pacer.push(audio(new Int16Array(800)));
    await inner.advance(500);
    expect(pacer.stats.lateFrames).toBe(1);
    // Nor is a pause: frames held back on purpose are not late when resume() sends them.
    pacer.push(audio(new Int16Array(8000)));
    pacer.pause();
    await inner.advance(500);
    pacer.resume();
    await inner.advance(1500);
    expect(pacer.stats.lateFrames).toBe(1);
    expect(pacer.stats.framesSent).toBe(50 + 5 + 50);
  });

  it('clear() drops the queue, stops sending at once, cancels its timer and reports what it dropped', async () => {
    const { clock, sent, pacer } = setup();
    pacer.push(audio(ramp(8000)), 'end');
    await clock.advance(100);
    const before = sent.length;
    expect(pacer.sentMs()).toBe(220);
    const idle = pacer.idle();
    expect(pacer.clear()).toBe(780);
    await idle;
    expect(pacer.queuedMs()).toBe(0);
    expect(clock.pending()).toBe(0);
    await clock.advance(2000);
    expect(sent.length).toBe(before);
    expect(sent.some((s) => s.markId === 'end')).toBe(false);

    // New audio starts a fresh run immediately (the far end was flushed too).
    pacer.push(audio(ramp(1600)));
    expect(sent.length).toBe(before + 6);
    expect(sent.at(-6)!.frame.timestampMs).toBe(2100);
  });

  it('clear() from inside send stops the frames that were already due', () => {
    const clock = new VirtualClock();
    let n = 0;
    const pacer: Pacer = new Pacer({ clock, sampleRate: 8000, send: () => { if (++n === 3) pacer.clear(); } });
    pacer.push(audio(ramp(8000)));
    expect(n).toBe(3);
    expect(clock.pending()).toBe(0);
  });

  it('delivers each mark with the frame that holds the last sample of its chunk', async () => {
    const { clock, sent, pacer } = setup();
    pacer.push(audio(ramp(240)), 'a'); // ends at 240: inside frame 1
    pacer.push(audio(ramp(240)), 'b'); // ends at 480: last sample of frame 2
    pacer.push(audio(ramp(240)), 'c'); // ends at 720: inside frame 4, a partial frame
    // Frames 0–3 go at once; frame 4 is 80 samples and waits for more audio until the sent audio has
    // run out (at 80 ms) plus the 10 ms grace.
    expect(sent.map((s) => s.markId)).toEqual([undefined, 'a', 'b', undefined]);
    await clock.advance(89);
    expect(sent.length).toBe(4);
    await clock.advance(1);
    expect(sent.length).toBe(5);
    expect(sent[4]).toMatchObject({ at: 90, markId: 'c', frame: { timestampMs: 90 } });
    expect(Array.from(sent[4].frame.samples.subarray(80)).every((v) => v === 0)).toBe(true);
  });

  it('a partial frame is completed by audio that arrives in time instead of being padded', async () => {
    const { clock, sent, pacer } = setup();
    pacer.push(audio(ramp(400, 1)), 'x'); // 2 frames + 80 samples
    await clock.advance(30);
    pacer.push(audio(ramp(80, 401)), 'y');
    // Frame 2 holds the end of both chunks: 'x' rides on it, 'y' follows alone.
    expect(sent.map((s) => [s.markId, s.frame.samples.length])).toEqual([[undefined, 160], [undefined, 160], ['x', 160], ['y', 0]]);
    expect(Array.from(sent[2].frame.samples)).toEqual(Array.from(ramp(160, 321)));
  });

  it('two marks ending in one frame: the second follows as an empty frame, in order', async () => {
    const { clock, sent, pacer } = setup();
    pacer.push(audio(ramp(40)), 'a');
    pacer.push(audio(ramp(40)), 'b');
    pacer.push(audio(ramp(160)), 'c');
    expect(sent.length).toBe(2); // back-to-back pushes are not split by padding
    await clock.advance(30);
    const marks = sent.filter((s) => s.markId).map((s) => [s.markId, s.frame.samples.length]);
    expect(marks).toEqual([['a', 160], ['b', 0], ['c', 160]]);
  });

  it('a mark pushed with no audio after everything was sent arrives at once', async () => {
    const { clock, sent, pacer } = setup();
    pacer.push(audio(ramp(320)));
    await clock.advance(500);
    pacer.push(audio(new Int16Array(0)), 'done');
    expect(sent.at(-1)).toMatchObject({ markId: 'done', at: 500, frame: { timestampMs: 500 } });
    expect(sent.at(-1)!.frame.samples.length).toBe(0);
  });

  it('flush() pads a trailing partial frame so it goes out on schedule', async () => {
    const { clock, sent, pacer } = setup({ leadMs: 40 });
    pacer.push(audio(ramp(500)), 'end');
    pacer.flush();
    expect(pacer.queuedMs()).toBe(40); // 340 samples left, padded to 2 frames
    await clock.advance(20);
    await clock.advance(20);
    expect(sent.at(-1)).toMatchObject({ at: 40, markId: 'end', frame: { timestampMs: 60 } });
  });

  it('idle resolves when everything was sent and onIdle fires once per busy spell', async () => {
    let idles = 0;
    const { clock, pacer } = setup({ onIdle: () => idles++ });
    await pacer.idle(); // nothing queued: at once
    pacer.push(audio(ramp(1600)));
    let done = false;
    void pacer.idle().then(() => { done = true; });
    await clock.advance(79); // 10 frames: 6 at once, then at 20, 40, 60, 80
    expect(done).toBe(false);
    await clock.advance(1);
    expect(done).toBe(true);
    expect(idles).toBe(1);
    pacer.push(audio(new Int16Array(0)));
    await clock.advance(100);
    expect(idles).toBe(1);
  });

  it('a lone chunk shorter than a frame goes out padded after the grace', async () => {
    const { clock, sent, pacer } = setup();
    pacer.push(audio(ramp(80, 1)), 'short');
    expect(sent.length).toBe(0);
    await clock.advance(10);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ at: 10, markId: 'short', frame: { timestampMs: 10 } });
    expect(Array.from(sent[0].frame.samples.subarray(0, 80))).toEqual(Array.from(ramp(80, 1)));
    expect(pacer.queuedMs()).toBe(0);
  });

  it('a gap in the input starts a new run at the time audio resumes', async () => {
    const { clock, sent, pacer } = setup();
    pacer.push(audio(ramp(320)));
    await clock.advance(1000);
    pacer.push(audio(ramp(320)));
    expect(sent.map((s) => s.frame.timestampMs)).toEqual([0, 20, 1000, 1020]);
  });

  it('accepts audio pushed from inside send', async () => {
    const clock = new VirtualClock();
    const got: number[] = [];
    let fed = 0;
    const pacer: Pacer = new Pacer({
      clock, sampleRate: 8000,
      send: (f) => { got.push(f.samples[0]); if (fed < 20) { fed++; pacer.push(audio(Int16Array.of(...new Array(160).fill(fed)))); } },
    });
    pacer.push(audio(new Int16Array(160)));
    await clock.advance(1000);
    expect(got).toEqual(Array.from({ length: 21 }, (_, i) => i));
  });

  it('pause() holds frames back and resume() continues on the same timeline if audio is still playing', async () => {
    const { clock, sent, pacer } = setup();
    pacer.push(audio(ramp(8000)));
    await clock.advance(40); // frames 0–7 sent, playing until 160
    pacer.pause();
    expect(pacer.isPaused()).toBe(true);
    await clock.advance(100);
    expect(sent.length).toBe(8);
    expect(clock.pending()).toBe(0);
    pacer.resume(); // t = 140: frame 7 still playing, so the timeline carries on without a gap
    expect(sent.length).toBe(8 + 5); // back up to the 120 ms lead: 20 ms still playing + 5 frames
    expect(sent.map((s) => s.frame.timestampMs).slice(6, 10)).toEqual([120, 140, 160, 180]);
  });

  it('after a long pause the next frames start a new run; clear() ends a pause', async () => {
    const { clock, sent, pacer } = setup();
    pacer.pause();
    pacer.push(audio(ramp(1600)));
    expect(sent.length).toBe(0);
    await clock.advance(1000);
    pacer.resume();
    expect(sent.map((s) => s.frame.timestampMs)).toEqual([1000, 1020, 1040, 1060, 1080, 1100]);
    pacer.pause();
    expect(pacer.clear()).toBe(80);
    expect(pacer.isPaused()).toBe(false);
    pacer.push(audio(ramp(160)));
    expect(sent.at(-1)).toMatchObject({ at: 1000, frame: { timestampMs: 1000 } });
  });

  it('rejects audio at another rate', () => {
    const { pacer } = setup();
    expect(() => pacer.push(audio(ramp(320), 16000))).toThrow(/8000 Hz/);
  });

  it('keeps a Twilio-like transport fed without gaps and its buffer within the lead', async () => {
    const clock = new VirtualClock();
    const transport = new FakeTransport(clock, 8000);
    const played: string[] = [];
    transport.on((e) => { if (e.type === 'played') played.push(e.markId); });
    const pacer = new Pacer({ clock, sampleRate: 8000, send: (f, m) => transport.sendAudio(f, m) });
    // TTS-like bursts: 4 chunks of 500 ms, each marked, pushed 50 ms apart.
    for (let i = 0; i < 4; i++) {
      pacer.push(audio(ramp(4000)), `s${i}`);
      await clock.advance(50);
    }
    let maxBuffered = 0;
    for (let t = 0; t < 2100; t += 5) {
      maxBuffered = Math.max(maxBuffered, transport.bufferedMs());
      await clock.advance(5);
    }
    expect(maxBuffered).toBeLessThanOrEqual(120);
    expect(played).toEqual(['s0', 's1', 's2', 's3']);
    const spans = transport.played;
    expect(spans.reduce((t, p) => t + p.samples, 0)).toBe(16000);
    for (let i = 1; i < spans.length; i++) expect(spans[i].startMs).toBe(spans[i - 1].endMs);
  });
});
