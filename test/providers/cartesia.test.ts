import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/engine/types.js';
import { CARTESIA_VERSION, createCartesiaTts } from '../../src/providers/tts/cartesia.js';
import { startCartesiaFake, type CartesiaFake } from '../fakes/cartesia.js';
import { ttsContract } from './contract/tts.js';
import { TTS_RATES, WORD_MS } from './contract/harness.js';
import { failure, never, samplesOf as samples, say, until as waitFor, wordsOf as words } from './helpers.js';

/** The fake hears the client a moment after it sends. */
const until = (cond: () => boolean) => waitFor(cond, 'condition', 1000);

const KEY = 'sk_car_test';
const VOICE = { type: 'voice_cartesia', voice_id: 'a0e99841-438c-4a64-b679-ae501e7d6091', model_id: null, language: null, speed: null, emotion: null };

ttsContract('cartesia', async () => {
  const fake = await startCartesiaFake(KEY);
  return {
    make: (key = KEY) => createCartesiaTts({ apiKey: key, baseUrl: fake.url }, VOICE),
    validKey: KEY,
    fake,
    sampleRates: TTS_RATES,
    words: true,
  };
});

describe('Cartesia TTS socket', () => {
  let fake: CartesiaFake;
  beforeAll(async () => { fake = await startCartesiaFake(KEY); });
  afterAll(async () => { await fake.close(); });

  const make = (voice: Record<string, unknown> = VOICE) => createCartesiaTts({ apiKey: KEY, baseUrl: fake.url }, voice);

  it('streams the reply as continuations of one context with the documented request fields', async () => {
    const tts = make({ ...VOICE, model_id: 'sonic-2-2025-03-07', language: 'es-MX', speed: 'fast', emotion: ['positivity:high', 'curiosity'] });
    const got = await say(await tts.open({ sampleRate: 16000 }, never()), 'Hola, ', '¿cómo estás?');
    await tts.dispose?.();
    const conn = fake.log.at(-1)!;
    expect(conn.headers['x-api-key']).toBe(KEY);
    expect(conn.headers['cartesia-version']).toBe(CARTESIA_VERSION);
    const fixed = {
      model_id: 'sonic-2-2025-03-07',
      voice: { mode: 'id', id: VOICE.voice_id, __experimental_controls: { speed: 'fast', emotion: ['positivity:high', 'curiosity'] } },
      language: 'es',
      output_format: { container: 'raw', encoding: 'pcm_s16le', sample_rate: 16000 },
      add_timestamps: true,
      context_id: expect.any(String),
    };
    expect(conn.messages).toEqual([
      expect.objectContaining({ ...fixed, transcript: 'Hola, ', continue: true }),
      expect.objectContaining({ ...fixed, transcript: '¿cómo estás?', continue: true }),
      expect.objectContaining({ ...fixed, transcript: '', continue: false }),
    ]);
    expect(new Set(conn.messages.map((m) => m.context_id)).size).toBe(1);
    expect(samples(got)).toBe(3 * WORD_MS * 16);
    expect(fake.errors).toEqual([]);
  });

  it('defaults to sonic-2 in English with no controls, and clamps a numeric speed to the documented range', async () => {
    const tts = make({ ...VOICE, speed: 2 });
    await say(await tts.open({ sampleRate: 8000 }, never()), 'Hi.');
    await tts.dispose?.();
    const first = fake.log.at(-1)!.messages[0];
    expect(first).toMatchObject({ model_id: 'sonic-2', language: 'en', voice: { mode: 'id', id: VOICE.voice_id, __experimental_controls: { speed: 1 } } });
    const plain = make();
    await say(await plain.open({ sampleRate: 8000 }, never()), 'Hi.');
    await plain.dispose?.();
    expect(fake.log.at(-1)!.messages[0].voice).toEqual({ mode: 'id', id: VOICE.voice_id });
  });

  it('turns word timestamps in seconds into millisecond word timings from the reply start', async () => {
    const tts = make();
    const got = await say(await tts.open({ sampleRate: 8000 }, never()), 'Three small words');
    await tts.dispose?.();
    expect(words(got)).toEqual([
      { word: 'Three', startMs: 0, endMs: 100 },
      { word: 'small', startMs: 100, endMs: 200 },
      { word: 'words', startMs: 200, endMs: 300 },
    ]);
  });

  it('the preconnected socket serves every reply of the call, each in its own context', async () => {
    const before = fake.connections;
    const tts = make();
    tts.preconnect!({ sampleRate: 8000 });
    await until(() => fake.connections === before + 1);
    const a = await say(await tts.open({ sampleRate: 8000 }, never()), 'First reply.');
    const b = await say(await tts.open({ sampleRate: 16000 }, never()), 'Second reply.');
    expect(a.at(-1)).toEqual({ type: 'done' });
    expect(samples(b)).toBe(2 * WORD_MS * 16);
    expect(fake.connections).toBe(before + 1);
    const ids = new Set(fake.log.at(-1)!.messages.map((m) => m.context_id));
    expect(ids.size).toBe(2);
    await tts.dispose?.();
  });

  it('cancel sends a context cancel, drops what still arrives for it, and keeps the socket for the next reply', async () => {
    const tts = make();
    const s = await tts.open({ sampleRate: 8000 }, never());
    const it = s.events()[Symbol.asyncIterator]();
    s.pushText('A long answer that the caller interrupts before the end of it arrives here. ');
    s.flush();
    await it.next();
    s.cancel();
    expect((await it.next()).done).toBe(true);
    const conn = fake.log.at(-1)!;
    const id = conn.messages[0].context_id;
    await until(() => conn.messages.some((m) => m.cancel === true));
    expect(conn.messages.at(-1)).toEqual({ context_id: id, cancel: true });
    const got = await say(await tts.open({ sampleRate: 8000 }, never()), 'Next.');
    expect(got).toContainEqual({ type: 'done' });
    expect(fake.log.at(-1)).toBe(conn);
    await tts.dispose?.();
  });

  it('an error answered for one context fails that reply with its kind and leaves the socket serving', async () => {
    const tts = make();
    fake.failNextRequest(429, 'Too Many Requests: concurrency limit reached');
    const err = await failure(say(await tts.open({ sampleRate: 8000 }, never()), 'Hello.'));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('quota');
    fake.failNextRequest(400, 'Invalid model: The model is not valid, make sure it is a valid model ID.');
    const bad = await failure(say(await tts.open({ sampleRate: 8000 }, never()), 'Hello.'));
    expect(bad.kind).toBe('protocol');
    expect(bad.message).toContain('Invalid model');
    const ok = await say(await tts.open({ sampleRate: 8000 }, never()), 'Still here.');
    expect(ok.at(-1)).toEqual({ type: 'done' });
    await tts.dispose?.();
  });

  it('sends the API version pinned on the account connection when there is one', async () => {
    const tts = createCartesiaTts({ apiKey: KEY, baseUrl: fake.url, extra: { api_version: '2025-04-16' } }, VOICE);
    await say(await tts.open({ sampleRate: 8000 }, never()), 'Versioned.');
    await tts.dispose?.();
    expect(fake.log.at(-1)!.headers['cartesia-version']).toBe('2025-04-16');
  });

  it('a refused key fails the open with an auth error naming the vendor, not the key', async () => {
    const tts = createCartesiaTts({ apiKey: 'sk_car_wrong', baseUrl: fake.url }, VOICE);
    const err = await failure(tts.open({ sampleRate: 8000 }, never()));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('auth');
    expect(err.message).toMatch(/^cartesia: HTTP 401/);
    expect(err.message).not.toContain('sk_car_wrong');
  });
});
