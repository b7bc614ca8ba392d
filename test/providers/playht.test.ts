/**
 * PlayHT against its fake: the shared TTS contract, then the request PlayHT receives (headers, the
 * stored voice's fields, the engine per stored version) and the WAV framing handled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TtsEvent } from '../../src/engine/types.js';
import { ProviderError } from '../../src/engine/types.js';
import { createPlayHTTts, voiceEngineFor } from '../../src/providers/tts/playht.js';
import { startPlayHTFake, type PlayHTFake } from '../fakes/playht.js';
import { TTS_RATES, WORD_MS } from './contract/harness.js';
import { ttsContract } from './contract/tts.js';
import { failure, never, samplesOf, say } from './helpers.js';

const KEY = 'playht-secret-key-1';
const USER = 'user-abc123';
const VOICE = 's3://voice-cloning-zero-shot/test/manifest.json';

ttsContract('playht', async () => {
  const fake = await startPlayHTFake(KEY, USER);
  return {
    validKey: KEY,
    fake,
    sampleRates: TTS_RATES,
    words: false,
    make: (key = KEY) => {
      fake.resetReceivedText();
      return createPlayHTTts({ apiKey: key, baseUrl: fake.url, extra: { user_id: USER } }, { type: 'voice_play_ht', voice_id: VOICE, version: '2' });
    },
  };
});

async function speak(fake: PlayHTFake, voice: Record<string, unknown>, text: string, rate = 16000, extra: Record<string, string> = { user_id: USER }): Promise<TtsEvent[]> {
  const tts = createPlayHTTts({ apiKey: KEY, baseUrl: fake.url, extra }, voice);
  return say(await tts.open({ sampleRate: rate }, never()), text);
}

describe('PlayHT specifics', () => {
  let fake: PlayHTFake;
  beforeAll(async () => { fake = await startPlayHTFake(KEY, USER); });
  afterAll(async () => { await fake.close(); });

  it('sends the key, user id and every stored voice setting, asking for WAV at the call rate', async () => {
    await speak(fake, {
      type: 'voice_play_ht', voice_id: VOICE, version: '2', speed: 1.1, quality: 'draft', temperature: 0.7, top_p: 0.9,
      text_guidance: 1, voice_guidance: 3, experimental_remove_silence: null,
    }, 'Hello there.', 8000);
    const r = fake.requests.at(-1)!;
    expect(r.headers.authorization).toBe(KEY);
    expect(r.headers['x-user-id']).toBe(USER);
    expect(r.body).toEqual({
      text: 'Hello there.', voice: VOICE, output_format: 'wav', sample_rate: 8000, voice_engine: 'PlayHT2.0-turbo',
      speed: 1.1, quality: 'draft', temperature: 0.7, top_p: 0.9, text_guidance: 1, voice_guidance: 3,
    });
  });

  it('leaves unset fields to PlayHT and uses Play3.0-mini when no version is stored', async () => {
    await speak(fake, { type: 'voice_play_ht', voice_id: VOICE, version: null, speed: null, quality: null }, 'Hello there.');
    const body = fake.requests.at(-1)!.body;
    expect(body.voice_engine).toBe('Play3.0-mini');
    expect(Object.keys(body).sort()).toEqual(['output_format', 'sample_rate', 'text', 'voice', 'voice_engine']);
    expect(voiceEngineFor('1')).toBe('Play3.0-mini');
  });

  it('the user id stored on the voice is used when the connection has none', async () => {
    await speak(fake, { type: 'voice_play_ht', voice_id: VOICE, api_user_id: USER }, 'Hello there.', 16000, {});
    expect(fake.requests.at(-1)!.headers['x-user-id']).toBe(USER);
  });

  it('without any user id, open fails with an auth error', async () => {
    const err = await failure(speak(fake, { type: 'voice_play_ht', voice_id: VOICE }, 'Hi.', 16000, {}));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('auth');
  });

  it('drops the WAV header: the audio is exactly the spoken words', async () => {
    const got = await speak(fake, { type: 'voice_play_ht', voice_id: VOICE }, 'One two three four.', 16000);
    expect(samplesOf(got)).toBe((4 * WORD_MS * 16000) / 1000);
  });

  it('experimental_remove_silence trims the lead-in silence', async () => {
    fake.leadingSilenceNext(300);
    const kept = await speak(fake, { type: 'voice_play_ht', voice_id: VOICE }, 'One two.', 16000);
    fake.leadingSilenceNext(300);
    const trimmed = await speak(fake, { type: 'voice_play_ht', voice_id: VOICE, experimental_remove_silence: true }, 'One two.', 16000);
    expect(samplesOf(kept)).toBe((500 * 16000) / 1000);
    expect(Math.abs(samplesOf(trimmed) - (200 * 16000) / 1000)).toBeLessThan(16000 * 0.005);
  });

  it('an out-of-range setting is a protocol error carrying PlayHT\'s message', async () => {
    const err = await failure(speak(fake, { type: 'voice_play_ht', voice_id: VOICE, voice_guidance: 9 }, 'Hi there.'));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('protocol');
    expect(err.message).toContain('voice_guidance');
  });
});
