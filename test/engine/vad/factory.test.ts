import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.js';
import { FIXTURES, fixture, runVad, toFrames } from './audio.js';
import { EnergyVad, SileroVad, createVad, type VadLogger } from '../../../src/engine/vad/index.js';

function fakeLogger() {
  const warnings: { obj: object; msg: string }[] = [];
  const logger: VadLogger = { warn: (obj, msg) => { warnings.push({ obj, msg }); } };
  return { logger, warnings };
}

describe('createVad', () => {
  it('builds the kind asked for', async () => {
    const { logger, warnings } = fakeLogger();
    const s = await createVad({ kind: 'silero', logger });
    expect(s).toBeInstanceOf(SileroVad);
    expect(s.kind).toBe('silero');
    const e = await createVad({ kind: 'energy', logger, marginDb: 12 });
    expect(e).toBeInstanceOf(EnergyVad);
    expect(warnings).toEqual([]);
  });

  it.each([
    ['a missing model file', '/nonexistent/silero.onnx'],
    ['a file that is not a model', FIXTURES + 'yes-16k.wav'],
  ])('falls back to the energy detector, with a warning, when Silero cannot load: %s', async (_what, modelPath) => {
    const { logger, warnings } = fakeLogger();
    const vad = await createVad({ kind: 'silero', modelPath, logger, minSilenceMs: 500, energy: { marginDb: 12 } });
    expect(vad.kind).toBe('energy');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toMatch(/Silero VAD unavailable.*energy/);
    expect(warnings[0].obj).toMatchObject({ modelPath, err: expect.any(Error) });
    // timing options carry over: a 500 ms hangover shows in when speech_end is emitted
    const pcm = fixture('yes-16k.wav');
    const frames = toFrames(pcm.samples, 16000);
    let endFrame = -1;
    for (let i = 0; i < frames.length; i++) if ((await vad.push(frames[i])).some((e) => e.type === 'speech_end')) endFrame = i;
    const lastSpeechMs = 1060;
    expect(frames[endFrame].timestampMs + 20 - lastSpeechMs).toBeGreaterThanOrEqual(480);
    // and the fallback still works as a detector
    const again = await createVad({ kind: 'silero', modelPath, logger });
    expect((await runVad(again, frames)).events.map((e) => e.type)).toEqual(['speech_start', 'speech_end']);
  });

  it('bad options are a configuration error, not a reason to fall back', async () => {
    await expect(createVad({ kind: 'silero', sampleRate: 44100 })).rejects.toThrow(/8000 or 16000/);
    await expect(createVad({ kind: 'silero', threshold: 0.3, negativeThreshold: 0.5 })).rejects.toThrow(/negativeThreshold/);
  });

  it('takes the app’s pino logger', async () => {
    const logger: VadLogger = createLogger('silent');
    expect((await createVad({ kind: 'silero', modelPath: '/nope.onnx', logger })).kind).toBe('energy');
  });
});
