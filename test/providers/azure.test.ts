/**
 * Azure AI Speech against its loopback fake: the shared STT and TTS contracts, then what is particular
 * to Azure (locales, phrase lists, word timings in ticks, one reconnect, SSML built from the stored
 * voice, output formats per call rate, which hosts a base URL leads to).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ProviderError, type SttEvent, type TtsEvent } from '../../src/engine/types.js';
import { azureLocale, azureSttEndpoint, createAzureStt } from '../../src/providers/stt/azure.js';
import { azureTtsBase, createAzureTts } from '../../src/providers/tts/azure.js';
import type { VendorAccess } from '../../src/providers/types.js';
import { AZURE_KEY, RECOGNITION_PATH, startAzureFake, type AzureFake } from '../fakes/azure.js';
import { silenceAudio, speechAudio } from '../fakes/speech.js';
import { STT_HARNESS_DEFAULTS, TTS_RATES, WORD_MS } from './contract/harness.js';
import { sttContract } from './contract/stt.js';
import { ttsContract } from './contract/tts.js';
import { collect, failure, feed, finals, never, samplesOf, say, until } from './helpers.js';

const access = (fake: AzureFake, key = AZURE_KEY): VendorAccess => ({ apiKey: key, baseUrl: fake.url, extra: { region: 'westus' } });
const VOICE = { type: 'voice_azure', voice_name: 'en-US-AvaNeural', pitch: null, rate: null };

sttContract('azure', async () => {
  const fake = await startAzureFake();
  return {
    make: (key = AZURE_KEY) => createAzureStt(access(fake, key), { language: 'en' }),
    validKey: AZURE_KEY,
    fake: fake.stt,
    ...STT_HARNESS_DEFAULTS,
  };
});

ttsContract('azure', async () => {
  const fake = await startAzureFake();
  // Requests carry sentences, not sessions: the contract's "text received" is what arrived since make().
  let mark = 0;
  const tts = Object.create(fake.tts, { receivedText: { get: () => fake.tts.receivedText.slice(mark).trim() } }) as typeof fake.tts;
  return {
    make: (key = AZURE_KEY) => {
      mark = fake.tts.receivedText.length;
      return createAzureTts(access(fake, key), VOICE);
    },
    validKey: AZURE_KEY,
    fake: tts,
    sampleRates: TTS_RATES,
    words: false,
  };
});

async function speak(fake: AzureFake, voice: Record<string, unknown>, text: string, sampleRate: number): Promise<TtsEvent[]> {
  return say(await createAzureTts(access(fake), voice).open({ sampleRate }, never()), text);
}

// ---- speech to text ----

describe('Azure speech-to-text', () => {
  let fake: AzureFake;
  beforeAll(async () => { fake = await startAzureFake(); });
  afterAll(async () => { await fake.close(); });

  it('asks for a full locale: the agent\'s "en" becomes en-US, a full locale passes through', async () => {
    const stt = createAzureStt(access(fake), { language: 'en' });
    const a = await stt.open({ sampleRate: 8000, language: 'en' });
    await a.close();
    expect(fake.stt.lastQuery?.get('language')).toBe('en-US');
    const b = await stt.open({ sampleRate: 8000, language: 'es-MX' });
    await b.close();
    expect(fake.stt.lastQuery?.get('language')).toBe('es-MX');
    expect(azureLocale('de')).toBe('de-DE');
  });

  it('sends the agent\'s keywords to the service as a phrase list', async () => {
    const stt = createAzureStt(access(fake), { language: 'en' });
    const s = await stt.open({ sampleRate: 16000, language: 'en', keywords: { Luigi: 3, 'Trattoria Roma': 1.5 } });
    await feed(s, silenceAudio(100, 16000), 16000, 0);
    await s.close();
    expect(fake.stt.phrases).toEqual(['Luigi', 'Trattoria Roma']);
    expect(fake.stt.violations).toEqual([]);
  });

  it('a pre-connected recognizer still carries the call\'s keywords, on the same connection', async () => {
    const stt = createAzureStt(access(fake), { language: 'en', keywords: { Bellini: 2 } });
    stt.preconnect!({ sampleRate: 8000, language: 'en' });
    const before = fake.stt.connections;
    await until(() => fake.stt.connections > before, 'the pre-connection');
    const s = await stt.open({ sampleRate: 8000, language: 'en', keywords: { Bellini: 2, Negroni: 1 } });
    await feed(s, silenceAudio(100, 8000), 8000, 0);
    await s.close();
    expect(fake.stt.connections - before).toBe(1);
    expect(fake.stt.phrases).toEqual(['Bellini', 'Negroni']);
  });

  it('reports word timings on the session timeline, inside their final', async () => {
    fake.stt.script('table for four please');
    const s = await createAzureStt(access(fake), { language: 'en' }).open({ sampleRate: 16000, language: 'en' });
    const events = collect(s);
    let t = await feed(s, silenceAudio(400, 16000), 16000, 0);
    t = await feed(s, speechAudio(1000, 16000), 16000, t);
    await feed(s, silenceAudio(700, 16000), 16000, t);
    const f = await until(() => finals(events)[0], 'a final');
    await s.close();
    expect(f.text).toBe('Table for four please.');
    expect(f.words?.map((w) => w.word)).toEqual(['table', 'for', 'four', 'please']);
    // Speech began after 400 ms of silence; ticks (100 ns) must have become milliseconds.
    expect(f.startMs).toBeGreaterThanOrEqual(350);
    expect(f.startMs).toBeLessThan(500);
    expect(f.words![0].startMs).toBeCloseTo(f.startMs, 0);
    expect(f.words!.at(-1)!.endMs).toBeCloseTo(f.endMs, 0);
  });

  it('survives a dropped connection in each of two turns, keeping one timeline', async () => {
    fake.stt.script('first try', 'second try');
    const before = fake.stt.connections;
    const s = await createAzureStt(access(fake), { language: 'en' }).open({ sampleRate: 8000, language: 'en' });
    const events = collect(s);
    fake.stt.dropDuringNextUtterance();
    let t = await feed(s, speechAudio(800, 8000), 8000, 0);
    t = await feed(s, silenceAudio(600, 8000), 8000, t);
    await until(() => finals(events)[0], 'the first turn');
    fake.stt.dropDuringNextUtterance();
    t = await feed(s, speechAudio(800, 8000), 8000, t);
    await feed(s, silenceAudio(600, 8000), 8000, t);
    await until(() => finals(events)[1], 'the second turn');
    await s.close();
    expect(fake.stt.connections - before).toBe(3);
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    const [a, b] = finals(events);
    expect([a.text, b.text]).toEqual(['First try.', 'Second try.']);
    expect(b.startMs).toBeGreaterThanOrEqual(1300);
    expect(b.startMs).toBeGreaterThan(a.endMs);
  });

  it('a reconnect the service refuses ends the session with a typed error', async () => {
    fake.stt.script('this will not make it');
    const s = await createAzureStt(access(fake), { language: 'en' }).open({ sampleRate: 8000, language: 'en' });
    const events = collect(s);
    fake.stt.failNext('unavailable');
    fake.stt.dropDuringNextUtterance();
    await feed(s, speechAudio(800, 8000), 8000, 0);
    const e = await until(() => events.find((x) => x.type === 'error'), 'an error event');
    await s.close();
    const error = (e as Extract<SttEvent, { type: 'error' }>).error;
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.kind).toBe('unavailable');
    expect(finals(events)).toEqual([]);
  });

  it('close() is bounded when the service hangs (no turn.end, no answer to the closing handshake)', async () => {
    const s = await createAzureStt(access(fake), { language: 'en' }).open({ sampleRate: 8000, language: 'en' });
    await feed(s, silenceAudio(200, 8000), 8000, 0);
    fake.stt.hangNextEndOfAudio();
    const started = performance.now();
    const outcome = await Promise.race([s.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('hung'), 6000))]);
    expect(outcome).toBe('closed');
    // The end-of-turn wait (1.5 s) plus the dispose bound (1 s), with room for a slow machine.
    expect(performance.now() - started).toBeLessThan(4000);
  }, 15_000);

  it('never puts the key in an error (the SDK carries it in the URL)', async () => {
    fake.stt.failNext('quota');
    const err = await failure(createAzureStt(access(fake), { language: 'en' }).open({ sampleRate: 8000, language: 'en' }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('quota');
    expect(err.message).not.toContain(AZURE_KEY);
  });

  it('an unreachable host is a network error', async () => {
    const err = await failure(createAzureStt({ apiKey: AZURE_KEY, baseUrl: 'http://127.0.0.1:1' }, { language: 'en' })
      .open({ sampleRate: 8000, language: 'en' }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('network');
  });

  it('connects to the regional stt host by default, to a custom base URL as is, to extra.sttUrl when given', () => {
    expect(azureSttEndpoint({ apiKey: 'k', baseUrl: 'https://westeurope.api.cognitive.microsoft.com' }))
      .toBe(`wss://westeurope.stt.speech.microsoft.com${RECOGNITION_PATH}`);
    expect(azureSttEndpoint({ apiKey: 'k', baseUrl: 'http://127.0.0.1:5000/' })).toBe(`ws://127.0.0.1:5000${RECOGNITION_PATH}`);
    expect(azureSttEndpoint({ apiKey: 'k', baseUrl: 'https://proxy.example.com/azure' })).toBe(`wss://proxy.example.com/azure${RECOGNITION_PATH}`);
    expect(azureSttEndpoint({ apiKey: 'k', baseUrl: 'https://x.api.cognitive.microsoft.com', extra: { sttUrl: 'wss://speech.internal:8443' } }))
      .toBe(`wss://speech.internal:8443${RECOGNITION_PATH}`);
  });

  it('the fake refuses a client that skips the protocol (so the passing tests mean something)', async () => {
    const ws = new WebSocket(`${fake.wsUrl}${RECOGNITION_PATH}?language=en-US&format=detailed`, { headers: { 'Ocp-Apim-Subscription-Key': AZURE_KEY } });
    await new Promise((r) => ws.once('open', r));
    const head = Buffer.from('Path: audio\r\nX-RequestId: 0123456789abcdef0123456789abcdef\r\nX-Timestamp: 2025-01-01T00:00:00Z\r\n', 'latin1');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(head.length);
    ws.send(Buffer.concat([len, head, Buffer.alloc(320)]));
    const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
    expect(code).toBe(1007);
    expect(fake.stt.violations.at(-1)).toBe('audio before speech.context');
  });
});

// ---- text to speech ----

describe('Azure text-to-speech', () => {
  let fake: AzureFake;
  beforeAll(async () => { fake = await startAzureFake(); });
  afterAll(async () => { await fake.close(); });

  it('speaks with the stored voice: its name, locale, rate and pitch', async () => {
    await speak(fake, { type: 'voice_azure', voice_name: 'en-GB-RyanNeural', pitch: -10, rate: 30 }, 'Good evening.', 16000);
    expect(fake.tts.lastSsml).toMatchObject({ voice: 'en-GB-RyanNeural', lang: 'en-GB', rate: '+30%', pitch: '-10%', text: 'Good evening.' });
  });

  it('uses Vocode\'s defaults (rate +15%, pitch 0) when the voice leaves them null', async () => {
    await speak(fake, VOICE, 'Hello there.', 16000);
    expect(fake.tts.lastSsml).toMatchObject({ voice: 'en-US-AvaNeural', lang: 'en-US', rate: '+15%', pitch: '+0%' });
  });

  it('escapes text that is not XML-safe, and it is still spoken', async () => {
    const got = await speak(fake, VOICE, 'Tom & Jerry say "<hi>" & it\'s fine', 16000);
    expect(fake.tts.lastSsml?.text).toBe('Tom & Jerry say "<hi>" & it\'s fine');
    expect(samplesOf(got)).toBe((8 * WORD_MS * 16000) / 1000);
    expect(got.at(-1)).toEqual({ type: 'done' });
  });

  it('asks for raw PCM at the call rate, and for 48 kHz resampled down when the rate has no format', async () => {
    await speak(fake, VOICE, 'One two.', 8000);
    expect(fake.tts.lastSsml?.format).toBe('raw-8khz-16bit-mono-pcm');
    expect(fake.tts.lastHeaders?.['content-type']).toBe('application/ssml+xml');
    expect(fake.tts.lastHeaders?.['user-agent']).toBeTruthy();
    const got = await speak(fake, VOICE, 'One two three four.', 44100);
    expect(fake.tts.lastSsml?.format).toBe('raw-48khz-16bit-mono-pcm');
    expect(Math.abs(samplesOf(got) - (4 * WORD_MS * 44100) / 1000)).toBeLessThan(44100 * 0.03);
  });

  it('posts to the regional tts host by default, to a custom base URL as is, to extra.ttsUrl when given', () => {
    expect(azureTtsBase({ apiKey: 'k', baseUrl: 'https://eastus.api.cognitive.microsoft.com' })).toBe('https://eastus.tts.speech.microsoft.com');
    expect(azureTtsBase({ apiKey: 'k', baseUrl: 'http://127.0.0.1:5000/' })).toBe('http://127.0.0.1:5000');
    expect(azureTtsBase({ apiKey: 'k', baseUrl: 'https://x.api.cognitive.microsoft.com', extra: { ttsUrl: 'http://tts.internal:8080/' } })).toBe('http://tts.internal:8080');
  });
});
