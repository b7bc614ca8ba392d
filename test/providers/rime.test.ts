/**
 * Rime against its fake: the shared TTS contract (with word timings), then the socket settings, the
 * sentence-by-sentence flushing, pre-connection and the host mapping.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/engine/types.js';
import { createRimeTts, rimeSocketBase } from '../../src/providers/tts/rime.js';
import { startRimeFake, type RimeFake } from '../fakes/rime.js';
import { TTS_RATES } from './contract/harness.js';
import { ttsContract } from './contract/tts.js';
import { drain, failure, never, say, wordsOf } from './helpers.js';

const KEY = 'rime-key-0001';

ttsContract('rime', async () => {
  const fake = await startRimeFake(KEY);
  return {
    validKey: KEY,
    fake,
    sampleRates: TTS_RATES,
    words: true,
    make: (key = KEY) => {
      fake.resetReceivedText();
      return createRimeTts({ apiKey: key, baseUrl: fake.url }, { type: 'voice_rime', speaker: 'cove', speed_alpha: null, model_id: 'mistv2' });
    },
  };
});

describe('Rime specifics', () => {
  let fake: RimeFake;
  beforeAll(async () => { fake = await startRimeFake(KEY); });
  afterAll(async () => { await fake.close(); });

  it('opens /ws3 with the stored voice, PCM at the call rate and segment=never', async () => {
    const tts = createRimeTts({ apiKey: KEY, baseUrl: fake.url }, { type: 'voice_rime', speaker: 'luna', speed_alpha: 0.9, model_id: 'mist' });
    const s = await tts.open({ sampleRate: 8000 }, never());
    await say(s, 'Hello there.');
    expect(Object.fromEntries(fake.sockets.at(-1)!)).toEqual({ speaker: 'luna', modelId: 'mist', audioFormat: 'pcm', samplingRate: '8000', segment: 'never', speedAlpha: '0.9' });
  });

  it('sends no speedAlpha to arcana, and maps the stored v1 model to mist', async () => {
    for (const model_id of ['arcana', 'v1']) {
      const tts = createRimeTts({ apiKey: KEY, baseUrl: fake.url }, { type: 'voice_rime', speaker: 'astra', speed_alpha: 1.2, model_id });
      const s = await tts.open({ sampleRate: 16000 }, never());
      s.flush();
      await drain(s.events());
    }
    const [arcana, v1] = fake.sockets.slice(-2);
    expect(arcana.get('modelId')).toBe('arcana');
    expect(arcana.has('speedAlpha')).toBe(false);
    expect(v1.get('modelId')).toBe('mist');
  });

  it('flushes each sentence as soon as it is complete, then ends with eos', async () => {
    const tts = createRimeTts({ apiKey: KEY, baseUrl: fake.url }, { type: 'voice_rime', speaker: 'cove' });
    const s = await tts.open({ sampleRate: 16000 }, never());
    const from = fake.messages.length;
    const events = drain(s.events());
    s.pushText('The first sentence is here. And the');
    await new Promise((r) => setTimeout(r, 20));
    expect(fake.messages.slice(from)).toEqual([{ text: 'The first sentence is here.' }, { operation: 'flush' }]);
    s.pushText(' second one.');
    s.flush();
    const got = await events;
    expect(fake.messages.slice(from + 2)).toEqual([{ text: ' And the second one.' }, { operation: 'flush' }, { operation: 'eos' }]);
    // Timings of the second synthesis continue after the first one's audio.
    const words = wordsOf(got);
    expect(words.map((w) => w.word).join(' ')).toBe('The first sentence is here. And the second one.');
    expect(words[5].startMs).toBeCloseTo(500, 0);
  });

  it('pre-connects, the first reply adopts the warm socket, and the next reply finds one ready', async () => {
    const tts = createRimeTts({ apiKey: KEY, baseUrl: fake.url }, { type: 'voice_rime', speaker: 'cove' });
    const before = fake.connections;
    tts.preconnect!({ sampleRate: 16000 });
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.connections - before).toBe(1);
    const s = await tts.open({ sampleRate: 16000 }, never());
    const got = await say(s, 'Warm start here.');
    expect(got.at(-1)).toEqual({ type: 'done' });
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.connections - before).toBe(2); // the one used plus the one waiting for the next reply
    await tts.dispose!();
  });

  it('a setting Rime refuses fails open as a protocol error', async () => {
    const tts = createRimeTts({ apiKey: KEY, baseUrl: fake.url }, { type: 'voice_rime', speaker: 'cove', model_id: 'nope' });
    const err = await failure(tts.open({ sampleRate: 16000 }, never()));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('protocol');
  });

  it('talks to users-ws.rime.ai for the default base URL, and to any other base as given', () => {
    expect(rimeSocketBase('https://users.rime.ai')).toBe('wss://users-ws.rime.ai');
    expect(rimeSocketBase('http://127.0.0.1:9000')).toBe('ws://127.0.0.1:9000');
    expect(rimeSocketBase('https://rime.internal.example')).toBe('wss://rime.internal.example');
  });
});
