import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SttEvent } from '../../src/engine/types.js';
import { createAssemblyAIStt, type SttConfig } from '../../src/providers/stt/assemblyai.js';
import { startAssemblyAIFake, type AssemblyAIFake } from '../fakes/assemblyai.js';
import { silenceAudio, speechAudio } from '../fakes/speech.js';
import { STT_HARNESS_DEFAULTS } from './contract/harness.js';
import { sttContract } from './contract/stt.js';
import { collect, failure, feed, until } from './helpers.js';

const KEY = 'aai-test-key';

sttContract('assemblyai', async () => {
  const fake = await startAssemblyAIFake(KEY);
  return {
    make: (key = KEY) => createAssemblyAIStt({ apiKey: key, baseUrl: fake.url }, { language: 'en' }),
    validKey: KEY,
    fake,
    ...STT_HARNESS_DEFAULTS,
  };
});

describe('AssemblyAI v3 streaming specifics', () => {
  let fake: AssemblyAIFake;
  const make = (cfg: Partial<SttConfig> = {}, key = KEY) => createAssemblyAIStt({ apiKey: key, baseUrl: fake.url }, { language: 'en', ...cfg });
  beforeAll(async () => { fake = await startAssemblyAIFake(KEY); });
  afterAll(async () => { await fake.close(); });

  it('connects with the documented query: rate, PCM16, model, formatted turns and boosted key terms', async () => {
    const session = await make({ keywords: { Switchboard: 5, 'table for two': 2, um: -3 } }).open({ sampleRate: 8000, language: 'en-US' });
    await session.close();
    const q = fake.lastQuery!;
    expect(q.get('sample_rate')).toBe('8000');
    expect(q.get('encoding')).toBe('pcm_s16le');
    expect(q.get('speech_model')).toBe('universal-streaming-english');
    expect(q.get('format_turns')).toBe('true');
    // A JSON list in one parameter; AssemblyAI cannot suppress words, so negative boosts are left out.
    expect(JSON.parse(q.get('keyterms_prompt')!)).toEqual(['Switchboard', 'table for two']);
    expect(fake.lastKey).toBe(KEY);
  });

  it('uses the multilingual model for other languages and passes turn-detection tunables through', async () => {
    const session = await make({ language: 'es', max_turn_silence: 900, end_of_turn_confidence_threshold: 0.6 }).open({ sampleRate: 16000, language: 'es' });
    await session.close();
    expect(fake.lastQuery!.get('speech_model')).toBe('universal-streaming-multilingual');
    expect(fake.lastQuery!.get('max_turn_silence')).toBe('900');
    expect(fake.lastQuery!.get('end_of_turn_confidence_threshold')).toBe('0.6');
  });

  it('batches 20 ms frames into 50–1000 ms audio messages and sends the tail before Terminate', async () => {
    const before = fake.chunkMs.length;
    const bytesBefore = fake.audioBytes;
    const session = await make().open({ sampleRate: 16000, language: 'en' });
    const errors: SttEvent[] = [];
    session.on((e) => { if (e.type === 'error') errors.push(e); });
    await feed(session, silenceAudio(430, 16000), 16000); // 21.5 frames: the last batch is short
    await session.close();
    const sizes = fake.chunkMs.slice(before);
    expect(sizes.length).toBeGreaterThan(1);
    for (const ms of sizes) expect(ms).toBeGreaterThanOrEqual(50);
    for (const ms of sizes) expect(ms).toBeLessThanOrEqual(1000);
    // Every pushed sample arrived (the tail padded up to 50 ms), then Terminate, then a clean close.
    expect(fake.audioBytes - bytesBefore).toBeGreaterThanOrEqual(430 * 16 * 2);
    expect(fake.controlMessages.at(-1)).toEqual({ type: 'Terminate' });
    expect(fake.gracefulClose).toBe(true);
    expect(errors).toEqual([]);
  });

  it('reports one final per turn, the formatted one, with word timings on the session timeline', async () => {
    fake.script('book a table for two');
    const session = await make().open({ sampleRate: 16000, language: 'en' });
    const events = collect(session);
    await feed(session, silenceAudio(300, 16000), 16000);
    await feed(session, speechAudio(1000, 16000), 16000, 300);
    await feed(session, silenceAudio(600, 16000), 16000, 1300);
    await until(() => events.some((e) => e.type === 'final'), 'a final');
    await session.close();
    const finals = events.filter((e): e is Extract<SttEvent, { type: 'final' }> => e.type === 'final');
    expect(finals).toHaveLength(1);
    expect(finals[0].text).toBe('Book a table for two.');
    expect(finals[0].endOfTurn).toBe(true);
    expect(finals[0].words!.map((w) => w.word)).toEqual(['Book', 'a', 'table', 'for', 'two.']);
    expect(finals[0].startMs).toBeGreaterThanOrEqual(250);
    expect(finals[0].endMs).toBeLessThanOrEqual(1400);
    const interims = events.filter((e) => e.type === 'interim');
    expect(interims.length).toBeGreaterThan(0);
    expect(events.findIndex((e) => e.type === 'speech_started')).toBeLessThan(events.findIndex((e) => e.type === 'interim'));
  });

  it('with format_turns off, the unformatted end-of-turn Turn is the final', async () => {
    fake.script('Call me back.');
    const session = await make({ format_turns: false }).open({ sampleRate: 8000, language: 'en' });
    const events = collect(session);
    await feed(session, speechAudio(700, 8000), 8000);
    await feed(session, silenceAudio(600, 8000), 8000, 700);
    await until(() => events.some((e) => e.type === 'final'), 'a final');
    await session.close();
    expect(fake.lastQuery!.get('format_turns')).toBe('false');
    expect(events.filter((e) => e.type === 'final').map((e) => (e as { text: string }).text)).toEqual(['call me back']);
  });

  it('a concurrency limit (1008 "Too many concurrent sessions" or 3009) is a quota error, not auth', async () => {
    fake.failNextWith(1008, 'Unauthorized Connection: Too many concurrent sessions');
    expect((await failure(make().open({ sampleRate: 16000, language: 'en' }))).kind).toBe('quota');
    fake.failNextWith(3009, 'Unauthorized Connection: Too many concurrent sessions');
    expect((await failure(make().open({ sampleRate: 16000, language: 'en' }))).kind).toBe('quota');
  });

  it('a wrong key is an auth error carrying the vendor reason, not the key', async () => {
    const err = await failure(make({}, 'not-the-key').open({ sampleRate: 16000, language: 'en' }));
    expect(err.kind).toBe('auth');
    expect(err.message).toContain('Invalid API key');
    expect(err.message).not.toContain('not-the-key');
  });

  it('a refused upgrade (HTTP 503) is a retryable unavailable error', async () => {
    fake.rejectNextUpgrade(503);
    const err = await failure(make().open({ sampleRate: 16000, language: 'en' }));
    expect(err.kind).toBe('unavailable');
    expect(err.retryable).toBe(true);
  });

  it('no Begin within the connect timeout is a timeout error', async () => {
    fake.holdNextBegin();
    const err = await failure(make({ connectTimeoutMs: 300 }).open({ sampleRate: 16000, language: 'en' }));
    expect(err.kind).toBe('timeout');
  });

  it('aborting while waiting for Begin closes the socket at once', async () => {
    fake.holdNextBegin();
    const ac = new AbortController();
    const before = fake.connections;
    const opening = make().open({ sampleRate: 16000, language: 'en' }, ac.signal);
    await until(() => fake.connections > before, 'the connection');
    const abortedAt = performance.now();
    ac.abort(new Error('caller hung up'));
    await expect(opening).rejects.toThrow('caller hung up');
    await until(() => (fake.lastClientCloseAt ?? 0) >= abortedAt, 'the socket to close');
    expect(fake.lastClientCloseAt! - abortedAt).toBeLessThan(50);
  });

  it('a protocol error mid-session (3006) is reported once and not retried', async () => {
    const session = await make().open({ sampleRate: 16000, language: 'en' });
    const events = collect(session);
    const before = fake.connections;
    fake.failOpenConnections(3006, 'Invalid Message Type: Bogus');
    const e = await until(() => events.find((x) => x.type === 'error'), 'the error event');
    expect((e as Extract<SttEvent, { type: 'error' }>).error.kind).toBe('protocol');
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.connections).toBe(before);
    expect(events.filter((x) => x.type === 'error')).toHaveLength(1);
    await session.close();
  });

  it('a server error mid-session (3005) reconnects instead of failing the call', async () => {
    fake.script('still here');
    const session = await make().open({ sampleRate: 16000, language: 'en' });
    const events = collect(session);
    const before = fake.connections;
    fake.failOpenConnections(3005, 'Session Cancelled: An error occurred');
    await until(() => fake.connections > before, 'the reconnect');
    await feed(session, speechAudio(700, 16000), 16000);
    await feed(session, silenceAudio(600, 16000), 16000, 700);
    await until(() => events.some((x) => x.type === 'final'), 'a final on the new socket');
    await session.close();
    expect(events.filter((x) => x.type === 'error')).toEqual([]);
    expect(events.filter((x) => x.type === 'final').map((x) => (x as { text: string }).text)).toEqual(['Still here.']);
  });
});
