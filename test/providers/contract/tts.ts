/**
 * The text-to-speech contract every adapter passes against its vendor's fake: streamed text in, audio of
 * the right length at the requested rate out, word timings in order where the vendor gives them, `done`
 * last, cancel closing the vendor stream within 50 ms, and failures typed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError, type TtsEvent } from '../../../src/engine/types.js';
import { drain, failure, normWords as norm, samplesOf, say, wordsOf } from '../helpers.js';
import { WORD_MS, type TtsHarness } from './harness.js';

/** Opens and consumes one session; failures may surface at open or while reading events. */
async function speak(h: TtsHarness, key: string | undefined, text: string[]): Promise<TtsEvent[]> {
  const session = await h.make(key).open({ sampleRate: h.sampleRates[0] }, new AbortController().signal);
  return say(session, ...text);
}

export function ttsContract(name: string, makeHarness: () => Promise<TtsHarness>): void {
  describe(`TTS contract: ${name}`, () => {
    let h: TtsHarness;
    beforeAll(async () => { h = await makeHarness(); });
    afterAll(async () => { await h?.fake.close(); });

    for (const rate of [8000, 16000, 24000]) {
      it(`voices streamed text at ${rate} Hz: all of it, in order, ending with done`, async ({ skip }) => {
        if (!h.sampleRates.includes(rate)) return skip();
        const tts = h.make();
        const session = await tts.open({ sampleRate: rate }, new AbortController().signal);
        const events = drain(session.events());
        const pieces = ['Sure', ', I can', ' book that. ', 'What time', ' works for you', '?'];
        for (const p of pieces) session.pushText(p);
        session.flush();
        const got = await events;
        await tts.dispose?.();
        const spoken = 'Sure, I can book that. What time works for you?';
        expect(norm(h.fake.receivedText)).toEqual(norm(spoken));
        expect(got.at(-1)).toEqual({ type: 'done' });
        expect(got.filter((e) => e.type === 'done')).toHaveLength(1);
        const expectedSamples = (norm(spoken).length * WORD_MS * rate) / 1000;
        // Resampling filters may add or hold back a few ms; anything else means lost or doubled audio.
        expect(Math.abs(samplesOf(got) - expectedSamples)).toBeLessThan(rate * 0.03);
        for (const e of got) if (e.type === 'audio') expect(e.samples).toBeInstanceOf(Int16Array);
        if (h.words) {
          const ws = wordsOf(got);
          expect(norm(ws.map((w) => w.word).join(' '))).toEqual(norm(spoken));
          for (let i = 1; i < ws.length; i++) expect(ws[i].startMs).toBeGreaterThanOrEqual(ws[i - 1].startMs);
          const lastEnd = ws.at(-1)!.endMs;
          expect(Math.abs(lastEnd - norm(spoken).length * WORD_MS)).toBeLessThan(WORD_MS);
        }
      });
    }

    it('presents the configured key', async () => {
      await speak(h, undefined, ['Hello there.']);
      expect(h.fake.lastKey).toBe(h.validKey);
    });

    it('a flush with no text ends with done and no audio', async () => {
      const got = await speak(h, undefined, []);
      expect(samplesOf(got)).toBe(0);
      expect(got.at(-1)).toEqual({ type: 'done' });
    });

    it('cancel mid-reply stops the audio and closes the vendor stream within 50 ms', async () => {
      const session = await h.make().open({ sampleRate: h.sampleRates[0] }, new AbortController().signal);
      const it = session.events()[Symbol.asyncIterator]();
      session.pushText('This is a long answer that the caller will interrupt before it is finished, ');
      session.pushText('and it keeps going for quite a while so there is plenty left to cancel. ');
      session.flush();
      const first = await it.next();
      expect(first.done).toBe(false);
      const cancelledAt = performance.now();
      session.cancel();
      // Whatever was already buffered may still drain, but the stream must end promptly and not with more than the text.
      const rest: TtsEvent[] = [];
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        rest.push(r.value);
      }
      expect(rest.some((e) => e.type === 'done')).toBe(false);
      const deadline = Date.now() + 1000;
      while (h.fake.lastCancelAt === undefined || h.fake.lastCancelAt < cancelledAt) {
        if (Date.now() > deadline) throw new Error('the vendor never saw the cancel');
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(h.fake.lastCancelAt - cancelledAt).toBeLessThan(50);
    });

    it('aborting the open signal cancels like cancel()', async () => {
      const ac = new AbortController();
      const session = await h.make().open({ sampleRate: h.sampleRates[0] }, ac.signal);
      const events = drain(session.events());
      session.pushText('Hello, this will be aborted. ');
      ac.abort(new Error('barge-in'));
      session.flush();
      const got = await events.catch(() => []);
      expect(got.some((e) => e.type === 'done')).toBe(false);
    });

    it('a wrong key is an auth error that does not echo the key', async () => {
      const err = await failure(speak(h, 'wrong-key-abc', ['Hello there.']));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.kind).toBe('auth');
      expect(err.message).not.toContain('wrong-key-abc');
    });

    it('an exhausted quota is a quota error; an outage is unavailable', async () => {
      h.fake.failNext('quota');
      const q = await failure(speak(h, undefined, ['Hello there.']));
      expect(q).toBeInstanceOf(ProviderError);
      expect(q.kind).toBe('quota');
      h.fake.failNext('unavailable');
      const u = await failure(speak(h, undefined, ['Hello there.']));
      expect(u).toBeInstanceOf(ProviderError);
      expect(u.kind).toBe('unavailable');
    });

    it('a stream cut mid-reply fails with a network error after the audio already received', async () => {
      h.fake.dropNextMidStream();
      const session = await h.make().open({ sampleRate: h.sampleRates[0] }, new AbortController().signal);
      const got: TtsEvent[] = [];
      const err = await failure((async () => {
        const events = session.events();
        session.pushText('One two three four five six seven eight nine ten eleven twelve.');
        session.flush();
        for await (const e of events) got.push(e);
      })());
      expect(err).toBeInstanceOf(ProviderError);
      expect(['network', 'protocol', 'unavailable']).toContain(err.kind);
      expect(got.some((e) => e.type === 'done')).toBe(false);
    });

    it('a slow first byte still produces the audio (no premature timeout under 1 s)', async () => {
      h.fake.delayNextFirstByte(400);
      const got = await speak(h, undefined, ['Just a moment please.']);
      expect(samplesOf(got)).toBeGreaterThan(0);
      expect(got.at(-1)).toEqual({ type: 'done' });
    });
  });
}
