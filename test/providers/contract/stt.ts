/**
 * The speech-to-text contract every adapter passes against its vendor's fake: speech in, transcript
 * events out in a sane order, the credential presented, failures typed, a dropped socket survived
 * without losing the turn, and a clean close.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SttEvent } from '../../../src/engine/types.js';
import { ProviderError } from '../../../src/engine/types.js';
import { silenceAudio, speechAudio, toFrames } from '../../fakes/speech.js';
import { collect, failure, feed, finals, finalText, normWords as words, until } from '../helpers.js';
import type { SttHarness } from './harness.js';

export function sttContract(name: string, makeHarness: () => Promise<SttHarness>): void {
  describe(`STT contract: ${name}`, () => {
    let h: SttHarness;
    beforeAll(async () => { h = await makeHarness(); });
    afterAll(async () => { await h?.fake.close(); });

    for (const rate of [8000, 16000]) {
      it(`transcribes an utterance at ${rate} Hz: interim before final, final text as spoken, end of turn`, async ({ skip }) => {
        if (!h.sampleRates.includes(rate)) return skip();
        h.fake.script('book a table for two tonight');
        const stt = h.make();
        const session = await stt.open({ sampleRate: rate, language: 'en' });
        const events = collect(session);
        let t = await feed(session, silenceAudio(200, rate), rate, 0);
        t = await feed(session, speechAudio(1200, rate), rate, t);
        await feed(session, silenceAudio(900, rate), rate, t);
        await until(() => finals(events).some((e) => e.endOfTurn), 'an end-of-turn final');
        await session.close();
        await stt.dispose?.();

        expect(words(finalText(events))).toEqual(words('book a table for two tonight'));
        const firstFinal = events.findIndex((e) => e.type === 'final');
        if (h.interim) {
          const firstInterim = events.findIndex((e) => e.type === 'interim');
          expect(firstInterim).toBeGreaterThanOrEqual(0);
          expect(firstInterim).toBeLessThan(firstFinal);
        }
        if (h.speechEvents) {
          const started = events.findIndex((e) => e.type === 'speech_started');
          expect(started).toBeGreaterThanOrEqual(0);
          expect(started).toBeLessThan(firstFinal);
        }
        const f = finals(events)[0];
        // Times are on the session's audio timeline: the speech started after 200 ms of silence.
        expect(f.startMs).toBeGreaterThanOrEqual(100);
        expect(f.endMs).toBeGreaterThan(f.startMs);
        expect(f.endMs).toBeLessThanOrEqual(2400);
        if (h.words) {
          const ws = finals(events).flatMap((e) => e.words ?? []);
          expect(words(ws.map((w) => w.word).join(' '))).toEqual(words('book a table for two tonight'));
          for (let i = 1; i < ws.length; i++) expect(ws[i].startMs).toBeGreaterThanOrEqual(ws[i - 1].startMs);
        }
        expect(events.some((e) => e.type === 'error')).toBe(false);
        expect(h.fake.audioBytes).toBeGreaterThan(0);
      });
    }

    it('transcribes two utterances in one session as two turns, in order', async () => {
      const rate = h.sampleRates[0];
      h.fake.script('hello there', 'what time is it');
      const stt = h.make();
      const session = await stt.open({ sampleRate: rate, language: 'en' });
      const events = collect(session);
      let t = await feed(session, speechAudio(800, rate), rate, 0);
      t = await feed(session, silenceAudio(900, rate), rate, t);
      await until(() => finals(events).filter((e) => e.endOfTurn).length >= 1, 'first turn');
      t = await feed(session, speechAudio(900, rate), rate, t);
      await feed(session, silenceAudio(900, rate), rate, t);
      await until(() => finals(events).filter((e) => e.endOfTurn).length >= 2, 'second turn');
      await session.close();
      const turnEnds = finals(events).filter((e) => e.endOfTurn);
      expect(words(finalText(events))).toEqual(words('hello there what time is it'));
      expect(turnEnds[1].startMs).toBeGreaterThan(turnEnds[0].endMs);
    });

    it('presents the configured key to the vendor', async () => {
      const rate = h.sampleRates[0];
      const stt = h.make();
      const session = await stt.open({ sampleRate: rate, language: 'en' });
      await feed(session, silenceAudio(100, rate), rate, 0, 0);
      await session.close();
      expect(h.fake.lastKey).toBe(h.validKey);
    });

    it('ends the stream the vendor\'s way on close (end-of-audio message), and close resolves', async () => {
      const rate = h.sampleRates[0];
      h.fake.script('goodbye');
      const stt = h.make();
      const session = await stt.open({ sampleRate: rate, language: 'en' });
      const events = collect(session);
      await feed(session, speechAudio(600, rate), rate, 0);
      await feed(session, silenceAudio(600, rate), rate, 600);
      await until(() => finals(events).length > 0, 'a final');
      await session.close();
      expect(h.fake.gracefulClose).toBe(true);
    });

    it('a wrong key fails open with an auth error', async () => {
      const err = await failure(h.make('wrong-key').open({ sampleRate: h.sampleRates[0], language: 'en' }).then(async (s) => {
        // Vendors that accept the socket first reject the key in a message: wait for it.
        const events = collect(s);
        s.push(toFrames(silenceAudio(100, h.sampleRates[0]), h.sampleRates[0])[0]);
        const e = await until(() => events.find((x) => x.type === 'error'), 'an error event', 3000);
        throw (e as Extract<SttEvent, { type: 'error' }>).error;
      }));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.kind).toBe('auth');
      expect(err.message).not.toContain(h.validKey);
    });

    it('an exhausted quota fails with a quota error', async () => {
      h.fake.failNext('quota');
      const err = await failure(h.make().open({ sampleRate: h.sampleRates[0], language: 'en' }));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.kind).toBe('quota');
    });

    it('a vendor outage fails with a retryable unavailable error', async () => {
      h.fake.failNext('unavailable');
      const err = await failure(h.make().open({ sampleRate: h.sampleRates[0], language: 'en' }));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.kind).toBe('unavailable');
      expect(err.retryable).toBe(true);
    });

    it('a socket dropped mid-utterance is reconnected once and the turn is still transcribed', async ({ skip }) => {
      if (!h.reconnects) return skip();
      const rate = h.sampleRates[0];
      h.fake.script('I would like to change my booking');
      h.fake.dropDuringNextUtterance();
      const before = h.fake.connections;
      const stt = h.make();
      const session = await stt.open({ sampleRate: rate, language: 'en' });
      const events = collect(session);
      let t = await feed(session, silenceAudio(500, rate), rate, 0);
      t = await feed(session, speechAudio(1500, rate), rate, t);
      t = await feed(session, silenceAudio(1000, rate), rate, t);
      await until(() => finals(events).some((e) => e.endOfTurn), 'the turn after reconnect', 6000);
      await session.close();
      expect(h.fake.connections - before).toBe(2);
      expect(events.filter((e) => e.type === 'error')).toEqual([]);
      expect(words(finalText(events))).toEqual(words('I would like to change my booking'));
      // Times after the reconnect stay on the session's timeline, not the new socket's.
      expect(finals(events)[0].startMs).toBeGreaterThanOrEqual(300);
    });

    it('pre-connects, and the first open adopts the warm connection', async ({ skip }) => {
      const rate = h.sampleRates[0];
      const stt = h.make();
      if (!stt.preconnect) return skip();
      const before = h.fake.connections;
      stt.preconnect({ sampleRate: rate, language: 'en' });
      await until(() => h.fake.connections > before || undefined, 'the pre-connection', 3000);
      const session = await stt.open({ sampleRate: rate, language: 'en' });
      h.fake.script('warm start');
      const events = collect(session);
      await feed(session, speechAudio(700, rate), rate, 0);
      await feed(session, silenceAudio(800, rate), rate, 700);
      await until(() => finals(events).some((e) => e.endOfTurn), 'a final on the warm socket');
      await session.close();
      expect(h.fake.connections - before).toBe(1);
      expect(words(finalText(events))).toEqual(words('warm start'));
    });

    it('an aborted open does not leave a connection behind', async () => {
      const ac = new AbortController();
      ac.abort(new Error('call ended during setup'));
      await expect(h.make().open({ sampleRate: h.sampleRates[0], language: 'en' }, ac.signal)).rejects.toThrow();
    });
  });
}
