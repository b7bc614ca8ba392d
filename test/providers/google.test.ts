import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { ProviderError, type SttEvent } from '../../src/engine/types.js';
import { createGoogleStt, googleLanguage, grpcError, speechContexts, type SttConfig } from '../../src/providers/stt/google.js';
import { silenceAudio, speechAudio } from '../fakes/speech.js';
import { configProblem, startGoogleSpeechFake, type GoogleSpeechFake } from '../fakes/googleSpeech.js';
import { STT_HARNESS_DEFAULTS } from './contract/harness.js';
import { sttContract } from './contract/stt.js';
import { collect, failure, feed, finals, until } from './helpers.js';

sttContract('google', async () => {
  const fake = await startGoogleSpeechFake();
  return {
    make: (key) => createGoogleStt({ apiKey: key ?? fake.validKey, baseUrl: fake.url }, { language: 'en' }),
    validKey: fake.validKey,
    fake,
    ...STT_HARNESS_DEFAULTS,
  };
});

describe('Google Speech-to-Text adapter', () => {
  let fake: GoogleSpeechFake;
  const make = (cfg: Partial<SttConfig> = {}, key?: string) => createGoogleStt({ apiKey: key ?? fake.validKey, baseUrl: fake.url }, { language: 'en', ...cfg });
  beforeAll(async () => { fake = await startGoogleSpeechFake(); });
  afterAll(async () => { await fake.close(); });

  it('sends the documented streaming config: LINEAR16 at the call rate, region-qualified language, model, words, punctuation, boosts, interim and voice events', async () => {
    const stt = make({ model: 'latest_short', keywords: { Luigi: 5 } });
    const session = await stt.open({ sampleRate: 8000, language: 'en', keywords: { tiramisu: 2 } });
    await session.close();
    await stt.dispose?.();
    expect(fake.lastConfig).toMatchObject({
      config: {
        encoding: 'LINEAR16', sampleRateHertz: 8000, languageCode: 'en-US', model: 'latest_short',
        enableWordTimeOffsets: true, enableAutomaticPunctuation: true,
        speechContexts: [{ phrases: ['Luigi'], boost: 5 }, { phrases: ['tiramisu'], boost: 2 }],
      },
      interimResults: true,
      enableVoiceActivityEvents: true,
    });
    expect(fake.lastConfig!.singleUtterance ?? false).toBe(false);
  });

  it('maps languages and boosts the way Google takes them, and the fake rejects what Google rejects', () => {
    expect(googleLanguage('en')).toBe('en-US');
    expect(googleLanguage('pt-PT')).toBe('pt-PT');
    expect(speechContexts({ a: 0, b: 50 })).toEqual([{ phrases: ['a'], boost: 1 }, { phrases: ['b'], boost: 20 }]);
    const ok = { config: { encoding: 'LINEAR16', sampleRateHertz: 16000, languageCode: 'en-US' } };
    expect(configProblem(ok)).toBeUndefined();
    expect(configProblem({ config: { ...ok.config, languageCode: 'en' } })).toMatch(/language/);
    expect(configProblem({ config: { ...ok.config, encoding: 'MULAW' } })).toMatch(/encoding/);
    expect(configProblem({ config: { ...ok.config, model: 'nova-2' } })).toMatch(/model/);
  });

  it('word offsets and finals land on the session timeline, trimmed of the leading space Google puts on later results', async () => {
    fake.script('first one', 'second one');
    const stt = make();
    const session = await stt.open({ sampleRate: 16000, language: 'en' });
    const events = collect(session);
    let t = await feed(session, silenceAudio(300, 16000), 16000, 0);
    t = await feed(session, speechAudio(700, 16000), 16000, t);
    t = await feed(session, silenceAudio(700, 16000), 16000, t);
    t = await feed(session, speechAudio(700, 16000), 16000, t);
    await feed(session, silenceAudio(700, 16000), 16000, t);
    await until(() => finals(events).length >= 2, 'two finals');
    await session.close();
    await stt.dispose?.();
    const [a, b] = finals(events);
    expect(a.text).toBe('First one.');
    expect(b.text).toBe('Second one.');
    expect(a.words?.[0].startMs).toBeGreaterThanOrEqual(250);
    expect(b.startMs).toBeGreaterThan(a.endMs);
    expect(b.words?.map((w) => w.word)).toEqual(['Second', 'one.']);
  });

  it('rotates to a new stream before Google\'s per-stream limit and keeps transcribing across it', async () => {
    fake.setStreamLimit(2050);
    fake.script('one two', 'three four', 'five six');
    const callsBefore = fake.calls;
    const stt = make({ streamLimitMs: 2000 });
    const session = await stt.open({ sampleRate: 8000, language: 'en' });
    const events = collect(session);
    // Half real time: Google's voice events lag the audio a little, as they do on a live call.
    let t = await feed(session, speechAudio(500, 8000), 8000, 0, 10);
    t = await feed(session, silenceAudio(1400, 8000), 8000, t, 10);
    t = await feed(session, speechAudio(500, 8000), 8000, t, 10);
    t = await feed(session, silenceAudio(900, 8000), 8000, t, 10);
    t = await feed(session, speechAudio(500, 8000), 8000, t, 10);
    await feed(session, silenceAudio(700, 8000), 8000, t, 10);
    await until(() => finals(events).length >= 3, 'three finals', 6000);
    await session.close();
    await stt.dispose?.();
    fake.setStreamLimit(305_000);
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    expect(finals(events).map((f) => f.text)).toEqual(['One two.', 'Three four.', 'Five six.']);
    expect(fake.calls - callsBefore).toBeGreaterThanOrEqual(3);
    // The third utterance started at 3300 ms of session audio, whatever stream heard it.
    expect(finals(events)[2].startMs).toBeGreaterThanOrEqual(3250);
  });

  it('when Google ends a stream at its limit first (OUT_OF_RANGE), the session carries on in a new stream', async () => {
    fake.setStreamLimit(1500);
    fake.script('still here');
    const callsBefore = fake.calls;
    const stt = make();
    const session = await stt.open({ sampleRate: 8000, language: 'en' });
    const events = collect(session);
    // Google cuts the stream 200 ms into the utterance.
    let t = await feed(session, silenceAudio(1300, 8000), 8000, 0);
    t = await feed(session, speechAudio(600, 8000), 8000, t);
    await feed(session, silenceAudio(600, 8000), 8000, t);
    await until(() => finals(events).length >= 1, 'a final after the limit');
    await session.close();
    await stt.dispose?.();
    fake.setStreamLimit(305_000);
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    expect(finals(events)[0].text).toBe('Still here.');
    expect(finals(events)[0].startMs).toBeGreaterThanOrEqual(1250);
    expect(fake.calls - callsBefore).toBe(2);
  });

  it('authenticates with a service account (self-signed JWT bearer) instead of a key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const email = 'stt@test-project.iam.gserviceaccount.com';
    fake.trustServiceAccount(email, publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const sa = JSON.stringify({ type: 'service_account', project_id: 'test-project', client_email: email, private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
    fake.script('signed in');
    const stt = createGoogleStt({ apiKey: '', baseUrl: fake.url, extra: { service_account_json: sa } }, { language: 'en-GB' });
    const session = await stt.open({ sampleRate: 16000, language: 'en-GB' });
    const events = collect(session);
    const t = await feed(session, speechAudio(600, 16000), 16000, 0);
    await feed(session, silenceAudio(500, 16000), 16000, t);
    await until(() => finals(events).length >= 1, 'a final');
    await session.close();
    await stt.dispose?.();
    expect(finals(events)[0].text).toBe('Signed in.');
    expect(fake.lastKey?.split('.')).toHaveLength(3);

    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const forged = createGoogleStt({ apiKey: '', baseUrl: fake.url, extra: { service_account_json: JSON.stringify({ client_email: email, private_key: other }) } }, { language: 'en' });
    const err = await failure(forged.open({ sampleRate: 16000, language: 'en' }));
    expect(err.kind).toBe('auth');
    await forged.dispose?.();
  });

  it('a malformed service account and a missing key are auth errors', async () => {
    const broken = createGoogleStt({ apiKey: '', baseUrl: fake.url, extra: { service_account_json: '{not json' } }, { language: 'en' });
    expect((await failure(broken.open({ sampleRate: 8000, language: 'en' }))).kind).toBe('auth');
    const none = createGoogleStt({ apiKey: '', baseUrl: fake.url }, { language: 'en' });
    expect((await failure(none.open({ sampleRate: 8000, language: 'en' }))).kind).toBe('auth');
  });

  it('a config Google rejects fails open with a protocol error', async () => {
    const stt = make({ model: 'nova-3' });
    const err = await failure(stt.open({ sampleRate: 16000, language: 'en' }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('protocol');
    expect(err.message).toMatch(/model/);
    await stt.dispose?.();
  });

  it('gRPC statuses become typed errors', () => {
    expect(grpcError({ code: grpc.status.UNAUTHENTICATED, details: 'x' }).kind).toBe('auth');
    expect(grpcError({ code: grpc.status.INVALID_ARGUMENT, details: 'x', reason: 'API_KEY_INVALID' }).kind).toBe('auth');
    expect(grpcError({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'x' }).kind).toBe('quota');
    expect(grpcError({ code: grpc.status.DEADLINE_EXCEEDED, details: 'x' }).kind).toBe('timeout');
    expect(grpcError({ code: grpc.status.UNAVAILABLE, details: 'The service is currently unavailable.' }).kind).toBe('unavailable');
    expect(grpcError({ code: grpc.status.UNAVAILABLE, details: 'Connection dropped' }).kind).toBe('network');
  });

  it('a failure after the stream was accepted arrives as an error event, not a reconnect loop', async () => {
    const stt = make();
    const session = await stt.open({ sampleRate: 8000, language: 'en' });
    const events = collect(session);
    // A second config mid-stream is malformed: Google ends the call with INVALID_ARGUMENT.
    (session as unknown as { live: { call: { write(m: unknown): void } } }).live.call.write({ streamingConfig: { config: { encoding: 'LINEAR16' } } });
    const e = await until(() => events.find((x) => x.type === 'error'), 'an error event', 3000);
    expect((e as Extract<SttEvent, { type: 'error' }>).error.kind).toBe('protocol');
    await session.close();
    await stt.dispose?.();
  });
});
