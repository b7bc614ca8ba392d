/**
 * OpenAI audio against its fake: the shared STT and TTS contracts, then what is OpenAI-specific (the
 * request shapes, 24 kHz PCM resampled, whisper-1 word timings, keywords as a prompt, the Vocode voice).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SttEvent } from '../../src/engine/types.js';
import { ProviderError } from '../../src/engine/types.js';
import { createOpenAIStt, isoLanguage, promptFor } from '../../src/providers/stt/openai.js';
import { createOpenAITts, createVocodeVoiceTts } from '../../src/providers/tts/openai.js';
import { startOpenAIAudioFake, type OpenAIAudioFake } from '../fakes/openaiAudio.js';
import { silenceAudio, speechAudio } from '../fakes/speech.js';
import { sttContract } from './contract/stt.js';
import { ttsContract } from './contract/tts.js';
import { TTS_RATES, WORD_MS } from './contract/harness.js';
import { collect, failure, feed as feedAt, never, samplesOf, say, until } from './helpers.js';

/** Frames every 1 ms: OpenAI's per-utterance requests need no vendor-side pacing. */
const feed = (session: Parameters<typeof feedAt>[0], samples: Int16Array, rate: number, startMs: number) => feedAt(session, samples, rate, startMs, 1);

const KEY = 'sk-test-openai-audio-1234';

ttsContract('openai', async () => {
  const fake = await startOpenAIAudioFake(KEY);
  return {
    validKey: KEY,
    fake: fake.tts,
    sampleRates: TTS_RATES,
    words: false,
    make: (key = KEY) => {
      fake.resetReceivedText();
      return createOpenAITts({ apiKey: key, baseUrl: fake.url }, { type: 'voice_openai', voice: 'coral', model: null, speed: null, instructions: null });
    },
  };
});

sttContract('openai', async () => {
  const fake = await startOpenAIAudioFake(KEY);
  return {
    validKey: KEY,
    fake: fake.stt,
    sampleRates: [8000, 16000],
    speechEvents: true,
    interim: true,
    words: false,
    reconnects: false,
    make: (key = KEY) => createOpenAIStt({ apiKey: key, baseUrl: fake.url }, { language: 'en' }),
  };
});

describe('OpenAI speech specifics', () => {
  let fake: OpenAIAudioFake;
  beforeAll(async () => { fake = await startOpenAIAudioFake(KEY); });
  afterAll(async () => { await fake.close(); });

  async function speak(voice: Record<string, unknown>, text: string, rate = 8000, extra?: Record<string, string>) {
    const tts = (voice.type === 'voice_vocode' ? createVocodeVoiceTts : createOpenAITts)({ apiKey: KEY, baseUrl: fake.url, extra }, voice);
    return say(await tts.open({ sampleRate: rate }, never()), text);
  }

  it('sends the stored voice, model, speed and instructions, asking for raw PCM', async () => {
    await speak({ type: 'voice_openai', voice: 'nova', model: 'gpt-4o-mini-tts', speed: 1.25, instructions: 'Sound upbeat.' }, 'Hello there.', 8000, { organization: 'org-42' });
    const r = fake.tts.speechRequests.at(-1)!;
    expect(r.body).toEqual({ model: 'gpt-4o-mini-tts', voice: 'nova', input: 'Hello there.', response_format: 'pcm', speed: 1.25, instructions: 'Sound upbeat.' });
    expect(r.headers['openai-organization']).toBe('org-42');
  });

  it('leaves instructions out for tts-1, which refuses them', async () => {
    const got = await speak({ type: 'voice_openai', voice: 'alloy', model: 'tts-1', speed: null, instructions: 'Whisper.' }, 'Hello there.');
    expect(fake.tts.speechRequests.at(-1)!.body).not.toHaveProperty('instructions');
    expect(got.at(-1)).toEqual({ type: 'done' });
  });

  it('resamples the 24 kHz stream to the call rate (two words → 200 ms)', async () => {
    const got = await speak({ type: 'voice_openai', voice: 'alloy' }, 'Hello there.', 16000);
    expect(Math.abs(samplesOf(got) - (2 * WORD_MS * 16000) / 1000)).toBeLessThan(16000 * 0.03);
  });

  it('voices a Vocode built-in voice with its mapped OpenAI voice', async () => {
    await speak({ type: 'voice_vocode', voice_id: 'joe' }, 'Hello there.');
    expect(fake.tts.speechRequests.at(-1)!.body).toMatchObject({ voice: 'ash', model: 'gpt-4o-mini-tts' });
  });

  it('a voice OpenAI does not have is a protocol error, not a retryable one', async () => {
    const err = await failure(speak({ type: 'voice_openai', voice: 'not-a-voice' }, 'Hello there.'));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('protocol');
    expect(err.retryable).toBe(false);
  });
});

describe('OpenAI transcription specifics', () => {
  let fake: OpenAIAudioFake;
  beforeAll(async () => { fake = await startOpenAIAudioFake(KEY); });
  afterAll(async () => { await fake.close(); });

  async function utterance(model: string | undefined, opts: { language?: string; keywords?: Record<string, number> } = {}, rate = 16000) {
    const stt = createOpenAIStt({ apiKey: KEY, baseUrl: fake.url }, { model, language: 'en' });
    const session = await stt.open({ sampleRate: rate, language: opts.language ?? 'en-US', keywords: opts.keywords });
    const events = collect(session);
    let t = await feed(session, silenceAudio(300, rate), rate, 0);
    t = await feed(session, speechAudio(1000, rate), rate, t);
    await feed(session, silenceAudio(700, rate), rate, t);
    await until(() => events.some((e) => e.type === 'final'), 'a final');
    await session.close();
    return events;
  }

  it('sends one WAV per utterance with model, ISO language, streaming and the keywords as a prompt', async () => {
    fake.stt.script('call Acme about Zyxel');
    const events = await utterance(undefined, { keywords: { Acme: 2, Zyxel: 1, ignored: -3 } });
    const r = fake.stt.transcriptions.at(-1)!;
    expect(r.fileName).toMatch(/\.wav$/);
    expect(r.sampleRate).toBe(16000);
    expect(r.fields).toMatchObject({ model: ['gpt-4o-transcribe'], language: ['en'], stream: ['true'], response_format: ['json'], prompt: ['Vocabulary: Acme, Zyxel.'] });
    // Only the utterance (plus a little pre-roll) is sent, not the silence around it.
    expect(r.samples / 16000).toBeGreaterThan(0.9);
    expect(r.samples / 16000).toBeLessThan(1.6);
    const final = events.find((e) => e.type === 'final') as Extract<SttEvent, { type: 'final' }>;
    expect(final).toMatchObject({ text: 'call Acme about Zyxel', endOfTurn: true });
    expect(final.startMs).toBeGreaterThan(150);
    expect(final.startMs).toBeLessThan(320);
    const interims = events.filter((e) => e.type === 'interim').map((e) => (e as { text: string }).text);
    expect(interims.at(-1)).toBe('call Acme about Zyxel');
    expect(events.map((e) => e.type).indexOf('speech_ended')).toBeLessThan(events.map((e) => e.type).indexOf('final'));
  });

  it('whisper-1 asks for verbose_json word timestamps and reports them on the session timeline', async () => {
    fake.stt.script('one two three');
    const events = await utterance('whisper-1');
    const r = fake.stt.transcriptions.at(-1)!;
    expect(r.fields).toMatchObject({ model: ['whisper-1'], response_format: ['verbose_json'], 'timestamp_granularities[]': ['word'] });
    expect(r.fields.stream).toBeUndefined();
    const final = events.find((e) => e.type === 'final') as Extract<SttEvent, { type: 'final' }>;
    expect(final.words?.map((w) => w.word)).toEqual(['one', 'two', 'three']);
    expect(final.words![0].startMs).toBeCloseTo(final.startMs, 0);
    expect(final.words![2].endMs).toBeGreaterThan(final.startMs + 900);
  });

  it('a language that is not an ISO code is left for OpenAI to detect', async () => {
    expect(isoLanguage('multi')).toBeUndefined();
    expect(isoLanguage('pt-BR')).toBe('pt');
    expect(promptFor(undefined, undefined)).toBeUndefined();
    fake.stt.script('hola');
    await utterance(undefined, { language: 'multi' });
    expect(fake.stt.transcriptions.at(-1)!.fields.language).toBeUndefined();
  });

  it('an unknown model fails open (model check), before the caller speaks', async () => {
    const stt = createOpenAIStt({ apiKey: KEY, baseUrl: fake.url }, { model: 'gpt-9-transcribe', language: 'en' });
    const err = await failure(stt.open({ sampleRate: 8000, language: 'en' }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('protocol');
  });

  it('a response cut mid-stream is retried once and the turn still arrives', async () => {
    fake.stt.script('dropped then retried');
    fake.stt.dropDuringNextUtterance();
    const before = fake.stt.transcriptions.length;
    const events = await utterance(undefined);
    expect(fake.stt.transcriptions.length - before).toBe(2);
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    expect(events.find((e) => e.type === 'final')).toMatchObject({ text: 'dropped then retried' });
  });

  it('emits nothing once close() has resolved, even a final that was already waiting behind a slow one', async () => {
    fake.stt.script('after the stall');
    const stt = createOpenAIStt({ apiKey: KEY, baseUrl: fake.url }, { model: 'whisper-1', language: 'en', closeWaitMs: 300 });
    const session = await stt.open({ sampleRate: 16000, language: 'en' });
    const events = collect(session);
    const before = fake.stt.transcriptions.length;
    fake.stt.stallNextTranscription();
    let t = await feed(session, silenceAudio(300, 16000), 16000, 0);
    t = await feed(session, speechAudio(800, 16000), 16000, t);
    t = await feed(session, silenceAudio(700, 16000), 16000, t);
    t = await feed(session, speechAudio(800, 16000), 16000, t);
    await feed(session, silenceAudio(700, 16000), 16000, t);
    // Both utterances were sent; the second was answered, its final held back behind the stalled first.
    await until(() => fake.stt.transcriptions.length - before === 2, 'both requests');
    await new Promise((r) => setTimeout(r, 150));
    expect(events.filter((e) => e.type === 'final')).toEqual([]);
    await session.close();
    const atClose = events.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(events.slice(atClose)).toEqual([]);
  });

  it('closing while the caller is still talking transcribes what was said', async () => {
    fake.stt.script('still talking');
    const stt = createOpenAIStt({ apiKey: KEY, baseUrl: fake.url }, { language: 'en' });
    const session = await stt.open({ sampleRate: 8000, language: 'en' });
    const events = collect(session);
    await feed(session, speechAudio(800, 8000), 8000, 0);
    await session.close();
    expect(events.find((e) => e.type === 'final')).toMatchObject({ text: 'still talking', endOfTurn: true });
    expect(fake.stt.gracefulClose).toBe(true);
  });
});
