import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SttEvent } from '../../src/engine/types.js';
import type { VendorAccess } from '../../src/providers/types.js';
import { createGladiaStt, type SttConfig } from '../../src/providers/stt/gladia.js';
import { startGladiaFake, type GladiaFake } from '../fakes/gladia.js';
import { silenceAudio, speechAudio } from '../fakes/speech.js';
import { STT_HARNESS_DEFAULTS } from './contract/harness.js';
import { sttContract } from './contract/stt.js';
import { collect, failure, feed, until } from './helpers.js';

const KEY = 'gladia-test-key';

sttContract('gladia', async () => {
  const fake = await startGladiaFake(KEY);
  return {
    make: (key = KEY) => createGladiaStt({ apiKey: key, baseUrl: fake.url }, { language: 'en' }),
    validKey: KEY,
    fake,
    ...STT_HARNESS_DEFAULTS,
  };
});

describe('Gladia live v2 specifics', () => {
  let fake: GladiaFake;
  const make = (cfg: Partial<SttConfig> = {}, access: Partial<VendorAccess> = {}) =>
    createGladiaStt({ apiKey: KEY, baseUrl: fake.url, ...access }, { language: 'en', ...cfg });
  beforeAll(async () => { fake = await startGladiaFake(KEY); });
  afterAll(async () => { await fake.close(); });

  it('initiates the session with the documented config: raw PCM16 mono at the call rate, language, events', async () => {
    const session = await make().open({ sampleRate: 8000, language: 'en-US' });
    await session.close();
    const body = fake.inits.at(-1)!;
    expect(body).toMatchObject({
      encoding: 'wav/pcm', bit_depth: 16, sample_rate: 8000, channels: 1, model: 'solaria-1',
      language_config: { languages: ['en'], code_switching: false },
      messages_config: { receive_partial_transcripts: true, receive_final_transcripts: true, receive_speech_events: true },
    });
    expect(body.realtime_processing).toBeUndefined();
    expect(fake.lastKey).toBe(KEY);
  });

  it('turns keyword boosts into custom vocabulary and honours the region and endpointing settings', async () => {
    const session = await make({ keywords: { Switchboard: 10, 'table for two': 3, um: -2 }, endpointing: 0.5 }, { extra: { region: 'eu-west' } })
      .open({ sampleRate: 16000, language: 'fr' });
    await session.close();
    const body = fake.inits.at(-1)!;
    expect(body.realtime_processing).toEqual({
      custom_vocabulary: true,
      custom_vocabulary_config: { vocabulary: [{ value: 'Switchboard', intensity: 1 }, { value: 'table for two', intensity: 0.3 }] },
    });
    expect(body.endpointing).toBe(0.5);
    expect(body.language_config).toEqual({ languages: ['fr'], code_switching: false });
    expect(fake.lastInitQuery!.get('region')).toBe('eu-west');
  });

  it('reports finals with trimmed text and words, in ms on the session timeline', async () => {
    fake.script('book a table');
    const session = await make().open({ sampleRate: 16000, language: 'en' });
    const events = collect(session);
    await feed(session, silenceAudio(400, 16000), 16000);
    await feed(session, speechAudio(900, 16000), 16000, 400);
    await feed(session, silenceAudio(600, 16000), 16000, 1300);
    await until(() => events.some((e) => e.type === 'final'), 'a final');
    await session.close();
    const final = events.find((e): e is Extract<SttEvent, { type: 'final' }> => e.type === 'final')!;
    expect(final.text).toBe('book a table');
    expect(final.endOfTurn).toBe(true);
    expect(final.words!.map((w) => w.word)).toEqual(['book', 'a', 'table']);
    expect(final.startMs).toBeGreaterThanOrEqual(350);
    expect(final.startMs).toBeLessThan(500);
    expect(final.words![0].startMs).toBe(final.startMs);
    expect(final.endMs).toBeLessThanOrEqual(1400);
    const ended = events.find((e) => e.type === 'speech_ended') as { atMs: number } | undefined;
    expect(ended?.atMs).toBeGreaterThan(1000);
  });

  it('closes with stop_recording and no other control message', async () => {
    const session = await make().open({ sampleRate: 16000, language: 'en' });
    const before = fake.controlMessages.length;
    await feed(session, silenceAudio(100, 16000), 16000);
    await session.close();
    expect(fake.controlMessages.slice(before)).toEqual([{ type: 'stop_recording' }]);
    expect(fake.gracefulClose).toBe(true);
  });

  it('a config Gladia refuses (unknown model) is a protocol error with the vendor\'s reason', async () => {
    const err = await failure(make({ model: 'nova-2' }).open({ sampleRate: 16000, language: 'en' }));
    expect(err.kind).toBe('protocol');
    expect(err.message).toContain('400');
  });

  it('a rate Gladia does not take is refused by the vendor, not silently resampled', async () => {
    const err = await failure(make().open({ sampleRate: 22050, language: 'en' }));
    expect(err.kind).toBe('protocol');
  });

  it('a slow init answer is a timeout error', async () => {
    fake.delayNextInit(1000);
    const err = await failure(make({ connectTimeoutMs: 200 }).open({ sampleRate: 16000, language: 'en' }));
    expect(err.kind).toBe('timeout');
    expect(err.retryable).toBe(true);
  });

  it('aborting during the init request cancels it at once', async () => {
    fake.delayNextInit(2000);
    const ac = new AbortController();
    const opening = make().open({ sampleRate: 16000, language: 'en' }, ac.signal);
    await new Promise((r) => setTimeout(r, 100));
    const abortedAt = performance.now();
    ac.abort(new Error('caller hung up'));
    await expect(opening).rejects.toThrow('caller hung up');
    await until(() => (fake.lastInitClientCloseAt ?? 0) >= abortedAt, 'the request to close');
    expect(fake.lastInitClientCloseAt! - abortedAt).toBeLessThan(50);
  });

  it('an init answer without a socket url is a protocol error', async () => {
    fake.answerNextInit({ id: 'x', created_at: new Date().toISOString() });
    const err = await failure(make().open({ sampleRate: 16000, language: 'en' }));
    expect(err.kind).toBe('protocol');
  });

  it('a socket that cannot be opened after a successful init deletes that session on Gladia\'s side', async () => {
    fake.refuseNextSocket(503);
    const before = fake.sessionIds.length;
    const err = await failure(make().open({ sampleRate: 16000, language: 'en' }));
    expect(err.kind).toBe('unavailable');
    expect(fake.sessionIds.length - before).toBe(1);
    const id = fake.sessionIds.at(-1)!;
    await until(() => fake.deleted.includes(id), 'the session to be deleted');
  });

  it('a session in use is not deleted, and closing it normally sends no DELETE', async () => {
    const deletedBefore = fake.deleted.length;
    const session = await make().open({ sampleRate: 16000, language: 'en' });
    await feed(session, silenceAudio(100, 16000), 16000);
    await session.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.deleted.length).toBe(deletedBefore);
  });

  it('a dropped socket is replaced by a new session (new init, new socket)', async () => {
    fake.script('change my booking');
    fake.dropDuringNextUtterance();
    const inits = fake.inits.length;
    const session = await make().open({ sampleRate: 16000, language: 'en' });
    const events = collect(session);
    await feed(session, silenceAudio(300, 16000), 16000);
    await feed(session, speechAudio(1000, 16000), 16000, 300);
    await feed(session, silenceAudio(700, 16000), 16000, 1300);
    await until(() => events.some((e) => e.type === 'final'), 'the final after the reconnect');
    await session.close();
    expect(fake.inits.length - inits).toBe(2);
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    const final = events.find((e): e is Extract<SttEvent, { type: 'final' }> => e.type === 'final')!;
    expect(final.text).toBe('change my booking');
    expect(final.startMs).toBeGreaterThanOrEqual(250);
  });
});
