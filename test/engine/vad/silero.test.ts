import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AudioFrame } from '../../../src/engine/audio/frame.js';
import { SileroVad, createSileroVad, loadSileroRuntime, type VadEvent } from '../../../src/engine/vad/index.js';
import {
  FIXTURES, activeSpan, addNoise, concat, fixture, pinkNoise, runInterleaved, runVad, silence, toFrames, tone, whiteNoise,
} from './audio.js';
import { startWorkerExecutor } from '../../../src/engine/vad/sileroThread.js';
import { SileroBatcher, createSileroSession, inlineExecutor } from '../../../src/engine/vad/sileroBatch.js';
import { createRequire } from 'node:module';

const RATES = [16000, 8000] as const;
const k = (rate: number) => `${rate / 1000}k`;

/** Exactly one speech segment whose edges are within `tol` ms of the truth. */
function expectOneSegment(events: VadEvent[], truth: { startMs: number; endMs: number }, tol = { start: 100, end: 100 }) {
  expect(events.map((e) => e.type)).toEqual(['speech_start', 'speech_end']);
  const [start, end] = events as [Extract<VadEvent, { type: 'speech_start' }>, Extract<VadEvent, { type: 'speech_end' }>];
  expect(Math.abs(start.atMs - truth.startMs)).toBeLessThanOrEqual(tol.start);
  expect(Math.abs(end.atMs - truth.endMs)).toBeLessThanOrEqual(tol.end);
  expect(end.durationMs).toBeCloseTo(end.atMs - start.atMs, 5);
}

describe('Silero v5 model plumbing', () => {
  it('loads the model once per process, with the model resolved from @ricky0123/vad-web; all calls share its batchers', async () => {
    const [a, b] = await Promise.all([loadSileroRuntime(), loadSileroRuntime()]);
    expect(a).toBe(b);
    expect(a.batcher(8000)).toBe(b.batcher(8000));
    expect(a.modelPath).toMatch(/node_modules\/@ricky0123\/vad-web\/dist\/silero_vad_v5\.onnx$/);
    const v1 = await createSileroVad();
    const v2 = await createSileroVad();
    expect(v1).not.toBe(v2);
  });

  it('runs the model in a worker thread and batches the windows of concurrent calls, changing no call\'s probabilities', async () => {
    const runtime = await loadSileroRuntime();
    expect(runtime.executor.mode).toBe('worker');
    expect(runtime.workerError).toBeUndefined();
    const frames = toFrames(fixture('utterance-8k.wav').samples, 8000).slice(0, 50);
    const vads = await Promise.all(Array.from({ length: 12 }, () => createSileroVad()));
    const before = { ...runtime.batcher(8000).stats };
    // All twelve calls' frames arrive together, as on a busy node: their windows share model runs.
    const probs: number[][] = vads.map(() => []);
    for (const f of frames) await Promise.all(vads.map(async (v, i) => { await v.push(f); probs[i].push(v.probability); }));
    const after = runtime.batcher(8000).stats;
    const rows = after.rows - before.rows;
    const runs = after.runs - before.runs;
    expect(rows).toBe(12 * Math.floor((50 * 160) / 256));
    expect(rows / runs).toBeGreaterThanOrEqual(6);
    // and batching changed nothing: every call got what it gets alone
    const alone = await runVad(await createSileroVad(), frames);
    for (const p of probs) expect(p).toEqual(alone.probs);
  });

  it('on a busy node, windows that arrive spread over time (calls on their own media clocks) still share runs', async () => {
    const runtime = await loadSileroRuntime();
    const frames = toFrames(fixture('utterance-8k.wav').samples, 8000).slice(0, 100);
    const vads = await Promise.all(Array.from({ length: 16 }, () => createSileroVad()));
    const before = { ...runtime.batcher(8000).stats };
    // Sixteen calls in real time, each on its own phase: a frame of one call every 1.25 ms. (16 calls make
    // 500 windows a second: a busy node after the first second.)
    const waits: Promise<unknown>[] = [];
    const t0 = performance.now();
    let busy = before;
    for (let k = 0; k < frames.length; k++) {
      if (k === 60) busy = { ...runtime.batcher(8000).stats }; // the node has measured its rate by now
      for (let i = 0; i < vads.length; i++) {
        const due = t0 + k * 20 + i * 1.25;
        while (performance.now() < due) await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
        waits.push(vads[i].push(frames[k]));
      }
    }
    await Promise.all(waits);
    const after = runtime.batcher(8000).stats;
    const rows = after.rows - before.rows;
    const runs = after.runs - before.runs;
    expect(rows).toBe(16 * Math.floor((100 * 160) / 256));
    expect(rows / runs).toBeGreaterThan(1);
    // Busy: 500 windows a second gathered for 8 ms is ≈4 a run; running each as it came would be ≈1.
    expect((after.rows - busy.rows) / (after.runs - busy.runs)).toBeGreaterThanOrEqual(3);
  }, 20_000);

  it('a worker that cannot load the model says which file, and a closed one refuses work', async () => {
    await expect(startWorkerExecutor('/nonexistent/silero.onnx')).rejects.toThrow(/could not load \/nonexistent\/silero\.onnx/);
    const ex = await startWorkerExecutor((await loadSileroRuntime()).modelPath);
    const rows = 2;
    const got = await ex.run({ input: new Float32Array(rows * 288), state: new Float32Array(rows * 256), rows, rowLength: 288, rate: 8000 });
    expect(got.output.length).toBe(rows);
    expect(got.state.length).toBe(rows * 256);
    await ex.close();
    await expect(ex.run({ input: new Float32Array(288), state: new Float32Array(256), rows: 1, rowLength: 288, rate: 8000 })).rejects.toThrow(/closed/);
  });

  it('a batch whose arrays went to a worker that died leaves the next batches working, with the same results', async () => {
    const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof import('onnxruntime-node');
    const inline = inlineExecutor(ort, await createSileroSession(ort, (await loadSileroRuntime()).modelPath));
    let dies = true;
    // The first batch's arrays are moved away (as to a worker thread) and never come back.
    const batcher = new SileroBatcher({
      mode: 'worker',
      run: async (req) => {
        if (!dies) return inline.run(req);
        dies = false;
        structuredClone(req.input, { transfer: [req.input.buffer as ArrayBuffer, req.state.buffer as ArrayBuffer] });
        throw new Error('Silero worker exited (code 1)');
      },
      close: async () => {},
    }, 8000);
    const window = () => Float32Array.from({ length: 288 }, (_, i) => Math.sin(i / 5) * 0.3);
    await expect(batcher.infer(window(), new Float32Array(256))).rejects.toThrow(/exited/);
    const state = new Float32Array(256);
    const again = await batcher.infer(window(), state);
    const alone = await inline.run({ input: window(), state: new Float32Array(256), rows: 1, rowLength: 288, rate: 8000 });
    expect(again).toBeCloseTo(alone.output[0], 6);
    expect(Array.from(state)).toEqual(Array.from(alone.state));
  });

  // silero-v5-reference.json was computed by fixtures/reference.py, which feeds the model exactly as
  // silero-vad's OnnxWrapper does (context of the previous 64/32 samples prepended to each window).
  // A missing or misplaced context, wrong scaling, wrong sr or state handling all move these numbers.
  const reference = JSON.parse(readFileSync(FIXTURES + 'silero-v5-reference.json', 'utf8')) as Record<string, number[]>;
  const cases = ['utterance-16k', 'utterance-8k', 'yes-16k', 'yes-8k'].flatMap((name) => (['worker', 'inline'] as const).map((thread) => [name, thread] as const));
  it.each(cases)('per-window probabilities match the reference implementation: %s, inference %s', async (name, thread) => {
    const pcm = fixture(`${name}.wav`);
    const window = pcm.sampleRate === 16000 ? 512 : 256;
    const vad = await createSileroVad({ thread });
    const got: number[] = [];
    // push whole windows so each push yields exactly one model run
    for (let o = 0; o + window <= pcm.samples.length; o += window) {
      await vad.push({ samples: pcm.samples.subarray(o, o + window), sampleRate: pcm.sampleRate, timestampMs: (o * 1000) / pcm.sampleRate });
      got.push(vad.probability);
    }
    const want = reference[name];
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `window ${i}`).toBeLessThan(1e-4);
  });
});

describe.each(RATES)('Silero VAD at %i Hz', (rate) => {
  it('digital silence and −70 dBFS hiss: no speech', async () => {
    for (const x of [silence(3000, rate), whiteNoise(3000, rate, -70, 3)]) {
      const run = await runVad(await createSileroVad(), toFrames(x, rate));
      expect(run.events).toEqual([]);
      expect(Math.max(...run.probs)).toBeLessThan(0.1);
    }
  });

  it('a recorded utterance with word gaps: exactly one start/end pair, within 100 ms of the truth', async () => {
    const pcm = fixture(`utterance-${k(rate)}.wav`);
    const truth = activeSpan(pcm); // 1000–3770 ms
    const run = await runVad(await createSileroVad(), toFrames(pcm.samples, rate));
    expectOneSegment(run.events, truth);
  });

  it('the same utterance in white noise at 20 dB SNR and pink noise at 10 dB SNR: still one pair (the end runs later in noise)', async () => {
    const pcm = fixture(`utterance-${k(rate)}.wav`);
    const truth = activeSpan(pcm);
    for (const [noise, snr] of [[whiteNoise(5000, rate, -30, 11), 20], [pinkNoise(5000, rate, -30, 12), 10]] as const) {
      const run = await runVad(await createSileroVad(), toFrames(addNoise(pcm.samples, noise, snr, rate), rate));
      expectOneSegment(run.events, truth, { start: 100, end: 300 });
    }
  });

  it('a short "yes" (≈260 ms) is detected once', async () => {
    const pcm = fixture(`yes-${k(rate)}.wav`);
    const truth = activeSpan(pcm);
    expect(truth.endMs - truth.startMs).toBeLessThanOrEqual(300);
    const run = await runVad(await createSileroVad(), toFrames(pcm.samples, rate));
    expectOneSegment(run.events, truth);
    expect(Math.max(...run.probs)).toBeGreaterThan(0.9);
  });

  it('steady noise at a moderate level is not speech (white −30 dBFS, pink −25 dBFS, from the start or after silence)', async () => {
    const cases = [
      whiteNoise(5000, rate, -30, 21),
      pinkNoise(5000, rate, -25, 22),
      concat(silence(1000, rate), pinkNoise(4000, rate, -30, 23)),
    ];
    for (const x of cases) {
      const run = await runVad(await createSileroVad(), toFrames(x, rate));
      expect(run.events).toEqual([]);
      expect(Math.max(...run.probs)).toBeLessThan(0.5);
    }
  });

  it('a steady tone and a tone burst are not speech', async () => {
    for (const x of [tone(3000, rate, 440, -20), concat(silence(1000, rate), tone(1000, rate, 1000, -20), silence(1000, rate))]) {
      const run = await runVad(await createSileroVad(), toFrames(x, rate));
      expect(run.events).toEqual([]);
    }
  });

  it('event times follow the frames’ timeline', async () => {
    const pcm = fixture(`yes-${k(rate)}.wav`);
    const base = (await runVad(await createSileroVad(), toFrames(pcm.samples, rate))).events;
    const shifted = (await runVad(await createSileroVad(), toFrames(pcm.samples, rate, 123_456))).events;
    expect(shifted.map((e) => e.type)).toEqual(base.map((e) => e.type));
    shifted.forEach((e, i) => expect(e.atMs - base[i].atMs).toBeCloseTo(123_456, 0));
  });

  it('frame size does not matter: 10 ms, 20 ms and 60 ms frames give the same events', async () => {
    const pcm = fixture(`utterance-${k(rate)}.wav`);
    const results: VadEvent[][] = [];
    for (const ms of [10, 20, 60]) {
      const n = (rate * ms) / 1000;
      const frames: AudioFrame[] = [];
      for (let o = 0; o + n <= pcm.samples.length; o += n) frames.push({ samples: pcm.samples.slice(o, o + n), sampleRate: rate, timestampMs: (o * 1000) / rate });
      results.push((await runVad(await createSileroVad(), frames)).events);
    }
    expect(results[0]).toHaveLength(2);
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });

  it('flush closes speech cut off mid-utterance; reset makes the detector as good as new', async () => {
    const pcm = fixture(`utterance-${k(rate)}.wav`);
    const vad = await createSileroVad();
    const cut = toFrames(pcm.samples.subarray(0, rate * 2), rate); // 2 s: speech from 1 s still going
    const run = await runVad(vad, cut);
    expect(run.events.map((e) => e.type)).toEqual(['speech_start', 'speech_end']);
    expect(run.events[1].atMs).toBeGreaterThan(1900);
    expect(run.events[1].atMs).toBeLessThanOrEqual(2000);

    await vad.reset();
    const again = await runVad(vad, toFrames(pcm.samples, rate));
    const fresh = await runVad(await createSileroVad(), toFrames(pcm.samples, rate));
    expect(again).toEqual(fresh);
  });

  it('reset and flush issued without awaiting keep their place among the pushes around them', async () => {
    const pcm = fixture(`utterance-${k(rate)}.wav`);
    const frames = toFrames(pcm.samples, rate);
    const vad = await createSileroVad();
    // 1.5 s (speech from 1 s still going) is not a whole number of 32 ms windows: the part of a window left
    // at the reset goes with it.
    const before = toFrames(pcm.samples.subarray(0, rate * 1.5), rate);
    const pending = before.map((f) => vad.push(f));
    const flushed = vad.flush();
    const reset = vad.reset();
    const after = frames.map((f) => vad.push(f));
    const tail = vad.flush();
    const eventsBefore = (await Promise.all(pending)).flat().concat(await flushed);
    await reset;
    const eventsAfter = (await Promise.all(after)).flat().concat(await tail);
    const fresh = await runVad(await createSileroVad(), frames);
    expect(eventsAfter).toEqual(fresh.events);
    // The speech running at 1.5 s is closed by the first flush, before the reset.
    expect(eventsBefore.map((e) => e.type)).toEqual(['speech_start', 'speech_end']);
  });

  it('a push\'s handlers see the state it left although a reset is queued behind it; answers come in call order', async () => {
    const vad = await createSileroVad();
    // Before any frame: nothing to flush or forget.
    expect(await vad.flush()).toEqual([]);
    expect(await vad.reset()).toBeUndefined();
    const frames = toFrames(fixture(`utterance-${k(rate)}.wav`).samples.subarray(0, rate * 1.5), rate);
    const order: string[] = [];
    let last = { speaking: false, probability: 0 };
    const pushes = frames.map((f, i) => vad.push(f).then(() => { order.push(`push ${i}`); last = { speaking: vad.speaking, probability: vad.probability }; }));
    const reset = vad.reset().then(() => order.push('reset'));
    const after = vad.push(frames[0]).then(() => order.push('push after'));
    await Promise.all([...pushes, reset, after]);
    // At 1.5 s the caller is mid-word: the last push's handler sees speech, not the reset's blank state.
    expect(last.speaking).toBe(true);
    expect(last.probability).toBeGreaterThan(0.5);
    expect(order).toEqual([...frames.map((_, i) => `push ${i}`), 'reset', 'push after']);
    expect(vad.speaking).toBe(false);
  });
});

describe('Silero VAD: calls are isolated', () => {
  it('two calls interleaving frames (awaited one by one) get exactly what each gets alone', async () => {
    const a = toFrames(addNoise(fixture('utterance-16k.wav').samples, pinkNoise(5000, 16000, -30, 31), 15, 16000), 16000);
    const b = toFrames(concat(fixture('yes-16k.wav').samples, fixture('yes-16k.wav').samples, silence(1000, 16000)), 16000, 500);
    const aloneA = await runVad(await createSileroVad(), a);
    const aloneB = await runVad(await createSileroVad(), b);
    expect(aloneA.events).toHaveLength(2);
    expect(aloneB.events).toHaveLength(4);

    const [ra, rb] = await runInterleaved(await createSileroVad(), a, await createSileroVad(), b);
    expect(ra).toEqual(aloneA);
    expect(rb).toEqual(aloneB);
  });

  it('many calls pushing concurrently without awaiting: per-call order kept, results identical to alone', async () => {
    const streams = [
      toFrames(fixture('utterance-16k.wav').samples, 16000),
      toFrames(fixture('yes-16k.wav').samples, 16000),
      toFrames(addNoise(fixture('utterance-16k.wav').samples, whiteNoise(5000, 16000, -30, 41), 20, 16000), 16000),
      toFrames(whiteNoise(3000, 16000, -35, 42), 16000),
    ];
    const alone = [];
    for (const s of streams) alone.push(await runVad(await createSileroVad(), s));

    const vads = await Promise.all(streams.map(() => createSileroVad()));
    const runs = streams.map(() => ({ events: [] as VadEvent[], probs: [] as number[] }));
    const pending: Promise<unknown>[] = [];
    const longest = Math.max(...streams.map((s) => s.length));
    for (let i = 0; i < longest; i++) {
      streams.forEach((s, c) => {
        if (i >= s.length) return;
        // fire and forget: each push is queued behind the previous one of the same call
        pending.push(vads[c].push(s[i]).then((ev) => { runs[c].events.push(...ev); runs[c].probs[i] = vads[c].probability; }));
      });
    }
    await Promise.all(pending);
    for (let c = 0; c < streams.length; c++) runs[c].events.push(...(await vads[c].flush()));
    expect(runs).toEqual(alone);
  });
});

describe('Silero VAD: input checks', () => {
  it('rejects rates other than 8/16 kHz and a rate change mid-call', async () => {
    const runtime = await loadSileroRuntime();
    const vad = new SileroVad(runtime);
    await expect(vad.push({ samples: new Int16Array(960), sampleRate: 48000, timestampMs: 0 })).rejects.toThrow(/8000 or 16000/);
    await vad.push({ samples: new Int16Array(320), sampleRate: 16000, timestampMs: 0 });
    await expect(vad.push({ samples: new Int16Array(160), sampleRate: 8000, timestampMs: 20 })).rejects.toThrow(/16000 Hz/);
    expect(vad.sampleRate).toBe(16000);
    expect(() => new SileroVad(runtime, { sampleRate: 22050 })).toThrow(/8000 or 16000/);
  });

  it('copies the frame: reusing the caller’s buffer does not change the result', async () => {
    const pcm = fixture('yes-16k.wav');
    const frames = toFrames(pcm.samples, 16000);
    const want = await runVad(await createSileroVad(), frames);
    const vad = await createSileroVad();
    const buf = new Int16Array(320);
    const pending = frames.map((f) => { buf.set(f.samples); return vad.push({ ...f, samples: buf }); });
    buf.fill(0);
    const events = (await Promise.all(pending)).flat();
    events.push(...(await vad.flush()));
    expect(events).toEqual(want.events);
  });
});
