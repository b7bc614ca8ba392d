/**
 * Deepgram speech-to-text and Aura text-to-speech against a loopback Deepgram: the shared contracts, then
 * what is Deepgram's own — the listen query (model per language, keyterm vs keywords), μ-law upstream,
 * KeepAlive on an idle socket, CloseStream on close, UtteranceEnd as the backstop turn end, and the speak
 * socket's Flush/Clear/Close semantics with one warm socket per call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TtsEvent } from '../../src/engine/types.js';
import { ProviderError } from '../../src/engine/types.js';
import { createDeepgramStt, type SttConfig } from '../../src/providers/stt/deepgram.js';
import { IDLE_BATCH_MS } from '../../src/providers/stt/socketSession.js';
import { createDeepgramTts } from '../../src/providers/tts/deepgram.js';
import { startDeepgramFake, type DeepgramFake } from '../fakes/deepgram.js';
import { silenceAudio, speechAudio } from '../fakes/speech.js';
import { WORD_MS } from './contract/harness.js';
import { sttContract } from './contract/stt.js';
import { ttsContract } from './contract/tts.js';
import { collect, drain, failure, feed, finals, normWords as words, samplesOf, until } from './helpers.js';

const KEY = 'dg-test-key-123';

sttContract('deepgram', async () => {
  const fake = await startDeepgramFake(KEY);
  return {
    make: (key = KEY) => createDeepgramStt({ apiKey: key, baseUrl: fake.url }, { language: 'en' }),
    validKey: KEY, fake: fake.stt, sampleRates: [8000, 16000], speechEvents: true, interim: true, words: true, reconnects: true,
  };
});

ttsContract('deepgram', async () => {
  const fake = await startDeepgramFake(KEY);
  return {
    make: (key = KEY) => createDeepgramTts({ apiKey: key, baseUrl: fake.url }, { type: 'voice_deepgram', model: 'aura-2-thalia-en' }),
    validKey: KEY, fake: fake.tts, sampleRates: [8000, 16000, 24000], words: false,
  };
});

const wordSamples = (n: number, rate: number) => (n * WORD_MS * rate) / 1000;

// ---- speech to text ----

describe('Deepgram STT specifics', () => {
  let fake: DeepgramFake;
  beforeAll(async () => { fake = await startDeepgramFake(KEY); });
  afterAll(async () => { await fake.close(); });

  const stt = (cfg: Partial<SttConfig> = {}, key = KEY) => createDeepgramStt({ apiKey: key, baseUrl: fake.url }, { language: 'en', ...cfg });

  async function openAndClose(cfg: Partial<SttConfig>, opts: { language?: string; keywords?: Record<string, number> } = {}): Promise<URLSearchParams> {
    const session = await stt(cfg).open({ sampleRate: 16000, language: opts.language ?? 'en', keywords: opts.keywords });
    await session.close();
    return fake.stt.queries.at(-1)!;
  }

  it('asks for Nova-3 live transcription tuned for turn-taking: interim results, endpointing, utterance ends, VAD events', async () => {
    const q = await openAndClose({});
    expect(Object.fromEntries(q)).toEqual({
      model: 'nova-3', language: 'en', encoding: 'linear16', sample_rate: '16000', channels: '1', interim_results: 'true',
      endpointing: '300', utterance_end_ms: '1000', vad_events: 'true', smart_format: 'true', punctuate: 'true',
    });
  });

  it('honours the transcriber\'s model, language and endpointing settings', async () => {
    const q = await openAndClose({ model: 'nova-2-phonecall', endpointing: false, utterance_end_ms: 1500 }, { language: 'es-419' });
    expect(q.get('model')).toBe('nova-2-phonecall');
    expect(q.get('language')).toBe('es-419');
    expect(q.get('endpointing')).toBe('false');
    expect(q.get('utterance_end_ms')).toBe('1500');
  });

  it('boosts the agent\'s keywords as keyterms on Nova-3 (dropping suppressions it cannot express)', async () => {
    const q = await openAndClose({ keywords: { Switchboard: 2, 'Acme Dental': 5, umm: -3 } }, { keywords: { Zyrtec: 1 } });
    expect(q.getAll('keyterm')).toEqual(['Switchboard', 'Acme Dental', 'Zyrtec']);
    expect(q.has('keywords')).toBe(false);
  });

  it('boosts keywords with their intensifiers on Nova-2', async () => {
    const q = await openAndClose({ model: 'nova-2', keywords: { Switchboard: 2, umm: -3 } });
    expect(q.getAll('keywords')).toEqual(['Switchboard:2', 'umm:-3']);
    expect(q.has('keyterm')).toBe(false);
  });

  it('streams μ-law for telephony when asked, and the words are still heard right', async () => {
    fake.stt.script('press one for billing');
    const before = fake.stt.audioBytes;
    const session = await stt({ encoding: 'mulaw' }).open({ sampleRate: 8000, language: 'en' });
    const events = collect(session);
    await feed(session, silenceAudio(200, 8000), 8000);
    await feed(session, speechAudio(1000, 8000), 8000);
    await feed(session, silenceAudio(800, 8000), 8000);
    await until(() => finals(events).some((e) => e.endOfTurn), 'the final');
    await session.close();
    expect(fake.stt.queries.at(-1)!.get('encoding')).toBe('mulaw');
    // One byte per sample: 2 s of 8 kHz audio.
    expect(fake.stt.audioBytes - before).toBe(16000);
    expect(words(finals(events).map((e) => e.text).join(' '))).toEqual(words('press one for billing'));
  });

  it('keeps an idle socket open with KeepAlive messages, and sends none while audio flows', async () => {
    fake.stt.idleTimeoutMs = 800;
    try {
      const session = await stt({ keepAliveMs: 250 }).open({ sampleRate: 16000, language: 'en' });
      const events = collect(session);
      const count = () => fake.stt.controlMessages.filter((m) => m.type === 'KeepAlive').length;
      await feed(session, silenceAudio(600, 16000), 16000);
      const whileStreaming = count();
      await new Promise((r) => setTimeout(r, 2000)); // idle for 2.5× the server's timeout
      expect(fake.stt.lastClose).toBeUndefined();
      expect(count() - whileStreaming).toBeGreaterThanOrEqual(3);
      expect(whileStreaming).toBe(0);
      fake.stt.script('still here');
      await feed(session, speechAudio(700, 16000), 16000);
      await feed(session, silenceAudio(700, 16000), 16000);
      await until(() => finals(events).some((e) => e.endOfTurn), 'a final after the idle spell');
      await session.close();
      expect(events.filter((e) => e.type === 'error')).toEqual([]);
      expect(words(finals(events).map((e) => e.text).join(' '))).toEqual(['still', 'here']);
    } finally {
      fake.stt.idleTimeoutMs = 10_000;
    }
  });

  it('close sends CloseStream, delivers the words still being spoken, and Deepgram ends the socket normally', async () => {
    fake.stt.script('and one more thing');
    const session = await stt().open({ sampleRate: 16000, language: 'en' });
    const events = collect(session);
    await feed(session, speechAudio(900, 16000), 16000);
    await session.close(); // mid-utterance: no trailing silence, so only CloseStream can finalize it
    expect(fake.stt.controlMessages.at(-1)).toEqual({ type: 'CloseStream' });
    expect(fake.stt.lastClose).toEqual({ code: 1000, by: 'server' });
    expect(words(finals(events).map((e) => e.text).join(' '))).toEqual(words('and one more thing'));
    expect(fake.stt.emptyFrames).toBe(0);
  });

  it('UtteranceEnd ends the turn when endpointing never marked a final speech_final', async () => {
    fake.stt.finalsWithoutSpeechFinal = true;
    try {
      fake.stt.script('I need a refund');
      const session = await stt().open({ sampleRate: 16000, language: 'en' });
      const events = collect(session);
      await feed(session, speechAudio(900, 16000), 16000);
      await feed(session, silenceAudio(500, 16000), 16000);
      await until(() => finals(events).length > 0, 'the final');
      expect(finals(events).some((e) => e.endOfTurn)).toBe(false);
      await feed(session, silenceAudio(1000, 16000), 16000);
      await until(() => finals(events).some((e) => e.endOfTurn), 'the end of turn from UtteranceEnd');
      await session.close();
      const ended = events.findIndex((e) => e.type === 'speech_ended');
      const turnEnd = events.findIndex((e) => e.type === 'final' && e.endOfTurn);
      expect(ended).toBeGreaterThan(turnEnd);
      expect(words(finals(events).map((e) => e.text).join(' '))).toEqual(words('I need a refund'));
      // The turn ends where the words ended, on the session's timeline.
      const last = finals(events).at(-1)!;
      expect(last.endMs).toBeGreaterThanOrEqual(800);
      expect(last.endMs).toBeLessThanOrEqual(1000);
    } finally {
      fake.stt.finalsWithoutSpeechFinal = false;
    }
  });

  // 8 kHz linear16: 320 bytes a 20 ms frame; an idle message holds IDLE_BATCH_MS of them.
  const FRAME_BYTES = 320;
  const IDLE_FRAMES = IDLE_BATCH_MS / 20;

  it('paced idle, audio goes out in 100 ms messages; live again, what was held goes at once, then every frame; no byte twice or lost', async () => {
    fake.stt.script('where is my parcel');
    const session = await stt().open({ sampleRate: 8000, language: 'en' });
    const events = collect(session);
    const m0 = fake.stt.audioMessages;
    const b0 = fake.stt.audioBytes;
    session.pace!('idle');
    let t = await feed(session, silenceAudio(260, 8000), 8000); // 13 frames: two full batches, three held
    await until(() => fake.stt.audioBytes - b0 === 2 * IDLE_FRAMES * FRAME_BYTES || undefined, 'the two idle batches');
    expect(fake.stt.audioMessages - m0).toBe(2);
    session.pace!('live');
    await until(() => fake.stt.audioBytes - b0 === 13 * FRAME_BYTES || undefined, 'the held frames, sent when live');
    expect(fake.stt.audioMessages - m0).toBe(3);
    t = await feed(session, speechAudio(1000, 8000), 8000, t);
    t = await feed(session, silenceAudio(800, 8000), 8000, t);
    await until(() => finals(events).some((e) => e.endOfTurn), 'the final');
    await session.close();
    expect(fake.stt.audioMessages - m0).toBe(3 + 90);
    expect(fake.stt.audioBytes - b0).toBe((13 + 90) * FRAME_BYTES);
    expect(words(finals(events).map((e) => e.text).join(' '))).toEqual(words('where is my parcel'));
    // The held silence came first, in order: the words start after it on the session's timeline.
    expect(finals(events)[0].startMs).toBeGreaterThanOrEqual(200);
  });

  it('words spoken while idle (speech no VAD caught) are still transcribed, in a fifth of the messages', async () => {
    fake.stt.script('cancel my order');
    const session = await stt().open({ sampleRate: 8000, language: 'en' });
    const events = collect(session);
    const m0 = fake.stt.audioMessages;
    session.pace!('idle');
    let t = await feed(session, silenceAudio(200, 8000), 8000);
    t = await feed(session, speechAudio(1000, 8000), 8000, t);
    await feed(session, silenceAudio(800, 8000), 8000, t);
    await until(() => finals(events).some((e) => e.endOfTurn), 'the final');
    await session.close();
    expect(fake.stt.audioMessages - m0).toBe(100 / IDLE_FRAMES);
    expect(words(finals(events).map((e) => e.text).join(' '))).toEqual(words('cancel my order'));
  });

  it('close sends what idle held back before CloseStream, so the last words are heard', async () => {
    fake.stt.script('goodbye');
    const session = await stt().open({ sampleRate: 8000, language: 'en' });
    const events = collect(session);
    const b0 = fake.stt.audioBytes;
    session.pace!('idle');
    await feed(session, speechAudio(500, 8000), 8000); // 25 frames: 5 messages
    await feed(session, speechAudio(60, 8000), 8000, 500); // 3 more, held
    await session.close();
    expect(fake.stt.audioBytes - b0).toBe(28 * FRAME_BYTES);
    expect(fake.stt.controlMessages.at(-1)).toEqual({ type: 'CloseStream' });
    expect(words(finals(events).map((e) => e.text).join(' '))).toEqual(words('goodbye'));
  });

  it('a socket dropped while idle reconnects and replays the held audio once: the turn is transcribed whole', async () => {
    fake.stt.script('I would like to change my booking');
    fake.stt.dropDuringNextUtterance();
    const before = fake.stt.connections;
    const session = await stt().open({ sampleRate: 8000, language: 'en' });
    const events = collect(session);
    session.pace!('idle');
    let t = await feed(session, silenceAudio(500, 8000), 8000);
    t = await feed(session, speechAudio(1500, 8000), 8000, t);
    await feed(session, silenceAudio(1000, 8000), 8000, t);
    await until(() => finals(events).some((e) => e.endOfTurn), 'the turn after reconnect', 6000);
    await session.close();
    expect(fake.stt.connections - before).toBe(2);
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    expect(words(finals(events).map((e) => e.text).join(' '))).toEqual(words('I would like to change my booking'));
    // No final came before the drop, so the new socket got all 3 s: replayed once, never the held part again.
    expect(fake.stt.lastConnectionAudioBytes).toBe(150 * FRAME_BYTES);
  });

  it('a refused key reports Deepgram\'s reason and never echoes the key', async () => {
    const err = await failure(stt({}, 'not-the-key-xyz').open({ sampleRate: 16000, language: 'en' }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('auth');
    expect(err.message).toContain('Invalid credentials');
    expect(err.message).not.toContain('not-the-key-xyz');
  });
});

// ---- text to speech ----

describe('Deepgram TTS specifics', () => {
  let fake: DeepgramFake;
  beforeAll(async () => { fake = await startDeepgramFake(KEY); });
  afterAll(async () => { await fake.close(); });

  const tts = (voice: Record<string, unknown> = { type: 'voice_deepgram', model: 'aura-2-andromeda-en' }) =>
    createDeepgramTts({ apiKey: KEY, baseUrl: fake.url }, voice);
  const signal = () => new AbortController().signal;
  const sentSince = (from: number) => fake.tts.messages.slice(from).map((m) => m.type);

  it('opens the speak socket with the stored voice model, raw linear16 and the caller\'s rate', async () => {
    const p = tts();
    const s = await p.open({ sampleRate: 16000 }, signal());
    const events = drain(s.events());
    s.pushText('Hi.');
    s.flush();
    await events;
    await p.dispose?.();
    expect(Object.fromEntries(fake.tts.queries.at(-1)!)).toEqual({ model: 'aura-2-andromeda-en', encoding: 'linear16', sample_rate: '16000' });
  });

  it('falls back to Deepgram\'s default Aura voice when the stored model is empty', async () => {
    const p = tts({ type: 'voice_deepgram', model: null });
    const s = await p.open({ sampleRate: 8000 }, signal());
    s.flush();
    await drain(s.events());
    await p.dispose?.();
    expect(fake.tts.queries.at(-1)!.get('model')).toBe('aura-2-thalia-en');
  });

  it('streams text as it comes and ends the reply with one Flush; done follows Flushed', async () => {
    const from = fake.tts.messages.length;
    const p = tts();
    const s = await p.open({ sampleRate: 24000 }, signal());
    const it = s.events()[Symbol.asyncIterator]();
    s.pushText('Your table is booked. ');
    // The first sentence is voiced before the reply is flushed: no waiting for the LLM to finish.
    const first = await it.next();
    expect(first.value).toMatchObject({ type: 'audio' });
    s.pushText('See you at');
    s.pushText(' eight');
    s.flush();
    const rest: TtsEvent[] = [first.value as TtsEvent];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    await p.dispose?.();
    expect(sentSince(from)).toEqual(['Speak', 'Speak', 'Speak', 'Flush']);
    expect(rest.at(-1)).toEqual({ type: 'done' });
    expect(samplesOf(rest)).toBe(wordSamples(8, 24000));
  });

  it('a reply with no text sends no Flush (they are rate-limited) and is done at once', async () => {
    const from = fake.tts.messages.length;
    const p = tts();
    const s = await p.open({ sampleRate: 16000 }, signal());
    s.pushText('  ');
    s.flush();
    const got = await drain(s.events());
    await p.dispose?.();
    expect(got).toEqual([{ type: 'done' }]);
    await until(() => sentSince(from).length > 0, 'the whitespace, which still separates words');
    expect(sentSince(from)).toEqual(['Speak']);
  });

  it('cancel sends Clear; after Cleared the same socket voices the next reply with none of the old audio', async () => {
    const before = fake.tts.connections;
    const from = fake.tts.messages.length;
    const p = tts();
    const a = await p.open({ sampleRate: 16000 }, signal());
    const it = a.events()[Symbol.asyncIterator]();
    a.pushText('This answer is long enough to be interrupted well before its end, and then some more words follow. ');
    a.flush();
    await it.next();
    a.cancel();
    expect((await it.next()).done).toBe(true);

    // The next reply starts at once, while the cleared audio may still be on the wire.
    const b = await p.open({ sampleRate: 16000 }, signal());
    const events = drain(b.events());
    b.pushText('Of course, go ahead.');
    b.flush();
    const got = await events;
    await p.dispose?.();
    expect(got.at(-1)).toEqual({ type: 'done' });
    expect(samplesOf(got)).toBe(wordSamples(4, 16000));
    expect(sentSince(from)).toEqual(['Speak', 'Flush', 'Clear', 'Speak', 'Flush']);
    expect(fake.tts.connections - before).toBe(1);
  });

  it('pre-connects, and every reply of the call reuses that one socket', async () => {
    const before = fake.tts.connections;
    const p = tts();
    p.preconnect!({ sampleRate: 8000 });
    await until(() => fake.tts.connections > before, 'the pre-connection');
    for (const text of ['Hello.', 'How can I help?', 'Goodbye.']) {
      const s = await p.open({ sampleRate: 8000 }, signal());
      const events = drain(s.events());
      s.pushText(text);
      s.flush();
      expect((await events).at(-1)).toEqual({ type: 'done' });
    }
    await p.dispose?.();
    expect(fake.tts.connections - before).toBe(1);
  });

  it('when Deepgram refuses a Flush (rate limit), the reply still completes via Close, on a fresh socket afterwards', async () => {
    fake.tts.flushLimit = 1;
    try {
      const before = fake.tts.connections;
      const from = fake.tts.messages.length;
      const p = tts();
      const results: TtsEvent[][] = [];
      for (const text of ['First reply here.', 'Second reply here.', 'Third reply here.']) {
        const s = await p.open({ sampleRate: 16000 }, signal());
        const events = drain(s.events());
        s.pushText(text);
        s.flush();
        results.push(await events);
      }
      await p.dispose?.();
      for (const got of results) {
        expect(got.at(-1)).toEqual({ type: 'done' });
        expect(samplesOf(got)).toBe(wordSamples(3, 16000));
      }
      expect(sentSince(from)).toContain('Close');
      expect(fake.tts.connections - before).toBe(2);
    } finally {
      fake.tts.flushLimit = 20;
    }
  });

  it('a reply that gets no audio once its text is complete fails with a timeout; the next reply gets a fresh socket', async () => {
    fake.tts.hangNextReply();
    const before = fake.tts.connections;
    const p = createDeepgramTts({ apiKey: KEY, baseUrl: fake.url }, { type: 'voice_deepgram', model: 'aura-2-andromeda-en' }, { firstAudioTimeoutMs: 300 });
    const s = await p.open({ sampleRate: 16000 }, signal());
    const events = drain(s.events());
    s.pushText('Are you still there');
    s.flush();
    const outcome = await Promise.race([failure(events), new Promise<'hung'>((r) => setTimeout(() => r('hung'), 3000))]);
    expect(outcome).toBeInstanceOf(ProviderError);
    expect((outcome as ProviderError).kind).toBe('timeout');

    const next = await p.open({ sampleRate: 16000 }, signal());
    const got = drain(next.events());
    next.pushText('Hello again.');
    next.flush();
    expect((await got).at(-1)).toEqual({ type: 'done' });
    await p.dispose?.();
    expect(fake.tts.connections - before).toBe(2);
  });

  it('a slow first audio within the deadline is not cut short', async () => {
    fake.tts.delayNextFirstByte(400);
    const p = createDeepgramTts({ apiKey: KEY, baseUrl: fake.url }, { type: 'voice_deepgram', model: 'aura-2-andromeda-en' }, { firstAudioTimeoutMs: 1500 });
    const s = await p.open({ sampleRate: 16000 }, signal());
    const events = drain(s.events());
    s.pushText('Just a moment');
    s.flush();
    const got = await events;
    await p.dispose?.();
    expect(got.at(-1)).toEqual({ type: 'done' });
    expect(samplesOf(got)).toBe(wordSamples(3, 16000));
  });

  it('a rate Deepgram cannot produce is refused before connecting', async () => {
    const err = await failure(tts().open({ sampleRate: 22050 }, signal()));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.kind).toBe('protocol');
  });
});
