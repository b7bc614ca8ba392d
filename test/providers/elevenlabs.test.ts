import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/engine/types.js';
import { AlignmentWords, createElevenLabsTts, elevenLabsCloseError } from '../../src/providers/tts/elevenlabs.js';
import { startElevenLabsFake, type ElevenLabsFake } from '../fakes/elevenlabs.js';
import { ttsContract } from './contract/tts.js';
import { TTS_RATES, WORD_MS } from './contract/harness.js';
import { drain, failure, never, samplesOf as samples, say, until as waitFor, wordsOf as words } from './helpers.js';

/** The fake hears the client a moment after it sends. */
const until = (cond: () => boolean) => waitFor(cond, 'condition', 1000);

const KEY = 'xi-test-key';
const VOICE = {
  type: 'voice_eleven_labs', voice_id: 'voice-123', stability: 0.4, similarity_boost: 0.8, api_key: null,
  optimize_streaming_latency: 3, model_id: null, experimental_input_streaming: true,
};

ttsContract('elevenlabs', async () => {
  const fake = await startElevenLabsFake(KEY);
  return {
    make: (key = KEY) => createElevenLabsTts({ apiKey: key, baseUrl: fake.url }, VOICE),
    validKey: KEY,
    fake,
    sampleRates: TTS_RATES,
    words: true,
  };
});

describe('ElevenLabs multi-context socket', () => {
  let fake: ElevenLabsFake;
  beforeAll(async () => { fake = await startElevenLabsFake(KEY); });
  afterAll(async () => { await fake.close(); });

  const make = (voice: Record<string, unknown> = VOICE) => createElevenLabsTts({ apiKey: KEY, baseUrl: fake.url }, voice);

  it('asks for the voice, model, PCM at the caller rate and per-chunk alignment, and sends the voice settings first', async () => {
    const tts = make({ ...VOICE, style: 0.2, use_speaker_boost: true, speed: 1.1 });
    const got = await say(await tts.open({ sampleRate: 16000 }, never()), 'Hello there. ');
    await tts.dispose?.();
    const conn = fake.log.at(-1)!;
    expect(conn.voiceId).toBe('voice-123');
    expect(conn.query.get('model_id')).toBe('eleven_flash_v2_5');
    expect(conn.query.get('output_format')).toBe('pcm_16000');
    expect(conn.query.get('sync_alignment')).toBe('true');
    expect(conn.messages[0]).toMatchObject({
      text: ' ',
      voice_settings: { stability: 0.4, similarity_boost: 0.8, style: 0.2, use_speaker_boost: true, speed: 1.1 },
      generation_config: { chunk_length_schedule: expect.any(Array) },
    });
    const ctx = conn.messages[0].context_id;
    expect(conn.messages.slice(1, 4)).toEqual([
      { text: 'Hello there. ', context_id: ctx },
      { text: '', context_id: ctx, flush: true },
      { context_id: ctx, close_context: true },
    ]);
    expect(samples(got)).toBe(2 * WORD_MS * 16);
    expect(fake.violations).toEqual([]);
  });

  it('uses the stored model_id and resamples a rate the vendor does not offer', async () => {
    const tts = make({ ...VOICE, model_id: 'eleven_turbo_v2_5' });
    const got = await say(await tts.open({ sampleRate: 48000 }, never()), 'One two three four.');
    await tts.dispose?.();
    const conn = fake.log.at(-1)!;
    expect(conn.query.get('model_id')).toBe('eleven_turbo_v2_5');
    expect(conn.query.get('output_format')).toBe('pcm_44100');
    expect(Math.abs(samples(got) - 4 * WORD_MS * 48)).toBeLessThan(48000 * 0.03);
  });

  it('builds word timings from character alignment split across audio messages', async () => {
    const tts = make();
    const text = 'Extraordinarily long words straddle message boundaries quite often indeed.';
    const got = await say(await tts.open({ sampleRate: 8000 }, never()), text);
    await tts.dispose?.();
    const ws = words(got);
    expect(ws.map((w) => w.word)).toEqual(text.split(' '));
    ws.forEach((w, i) => {
      expect(w.startMs).toBeCloseTo(i * WORD_MS, -1);
      expect(w.endMs).toBeCloseTo((i + 1) * WORD_MS, -1);
    });
  });

  it('timings continue across the chunks of a long reply instead of restarting at zero', async () => {
    const tts = make();
    // Over the first chunk_length_schedule entry, so the vendor generates it in several chunks.
    const pieces = Array.from({ length: 30 }, (_, i) => `word${i} `);
    const got = await say(await tts.open({ sampleRate: 16000 }, never()), ...pieces);
    await tts.dispose?.();
    const ws = words(got);
    expect(ws).toHaveLength(30);
    expect(ws[29].startMs).toBeCloseTo(29 * WORD_MS, -1);
    expect(samples(got)).toBe(30 * WORD_MS * 16);
  });

  it('serves successive replies over the preconnected socket, with the voice settings only in its first message', async () => {
    const before = fake.connections;
    const tts = make();
    tts.preconnect!({ sampleRate: 8000 });
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.connections).toBe(before + 1);
    await say(await tts.open({ sampleRate: 8000 }, never()), 'First reply.');
    await say(await tts.open({ sampleRate: 8000 }, never()), 'Second reply.');
    expect(fake.connections).toBe(before + 1);
    const conn = fake.log.at(-1)!;
    const inits = conn.messages.filter((m) => m.text === ' ');
    expect(inits).toHaveLength(2);
    expect(inits[0].voice_settings).toBeDefined();
    expect(inits[1].voice_settings).toBeUndefined();
    expect(inits[0].context_id).not.toBe(inits[1].context_id);
    await tts.dispose?.();
    await until(() => conn.closedAt !== undefined);
    expect(conn.messages.at(-1)).toEqual({ close_socket: true });
    expect(fake.violations).toEqual([]);
  });

  it('a barge-in before the text is complete closes only the context; the socket serves the next reply', async () => {
    const tts = make();
    const s1 = await tts.open({ sampleRate: 8000 }, never());
    const ev1 = drain(s1.events());
    s1.pushText('This reply gets interrupted while the model is still writing it ');
    s1.cancel();
    expect(await ev1).toEqual([]);
    const conn = fake.log.at(-1)!;
    await until(() => conn.messages.at(-1)?.close_context === true);
    const got = await say(await tts.open({ sampleRate: 8000 }, never()), 'Next one.');
    expect(got.at(-1)).toEqual({ type: 'done' });
    expect(fake.log.at(-1)).toBe(conn);
    await tts.dispose?.();
  });

  it('a barge-in after the text is complete closes the socket (a flushed context would keep going) and re-opens one', async () => {
    const tts = make();
    const s = await tts.open({ sampleRate: 8000 }, never());
    const it = s.events()[Symbol.asyncIterator]();
    s.pushText('A long finished answer that is still being voiced when the caller starts talking over it.');
    s.flush();
    await it.next();
    const conn = fake.log.at(-1)!;
    s.cancel();
    expect((await it.next()).done).toBe(true);
    await until(() => conn.closedAt !== undefined && fake.log.at(-1) !== conn);
    const got = await say(await tts.open({ sampleRate: 8000 }, never()), 'Fresh socket.');
    expect(got.at(-1)).toEqual({ type: 'done' });
    expect(fake.log.at(-1)!.messages[0].voice_settings).toBeDefined();
    await tts.dispose?.();
  });

  it('an exhausted quota is a quota error even though the vendor closes with 1008 like a bad key', async () => {
    fake.failNext('quota');
    const tts = make();
    const err = await failure(say(await tts.open({ sampleRate: 8000 }, never()), 'Hello.'));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('quota');
    await tts.dispose?.();
  });
});

describe('ElevenLabs error and alignment mapping', () => {
  it('reads the kind from the error text rather than the shared 1008 code', () => {
    expect(elevenLabsCloseError(1008, 'Invalid API key', { error: 'invalid_api_key', message: 'Invalid API key' }).kind).toBe('auth');
    expect(elevenLabsCloseError(1008, 'This request exceeds your quota', undefined).kind).toBe('quota');
    expect(elevenLabsCloseError(1008, 'Have not received a new text input within the timeout of 20 seconds.', undefined).kind).toBe('timeout');
    expect(elevenLabsCloseError(1011, 'Internal server error', undefined).kind).toBe('unavailable');
    expect(elevenLabsCloseError(1006, '', undefined).kind).toBe('network');
  });

  it('joins a word whose characters arrive in two alignments, offset by the audio before each', () => {
    const w = new AlignmentWords();
    const first = w.push({ chars: ['H', 'i', ' ', 'y', 'o'], starts: [0, 50, 100, 100, 125], durations: [50, 50, 0, 25, 25] }, 0);
    expect(first).toEqual([{ word: 'Hi', startMs: 0, endMs: 100 }]);
    const second = w.push({ chars: ['u', '!'], starts: [0, 25], durations: [25, 25] }, 150);
    expect(second).toEqual([]);
    expect(w.finish()).toEqual([{ word: 'you!', startMs: 100, endMs: 200 }]);
  });
});
