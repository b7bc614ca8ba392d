import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/engine/clock.js';
import { FakeTransport } from '../../src/engine/testkit/fakeTransport.js';
import { ScriptedLlm } from '../../src/engine/testkit/scriptedLlm.js';
import { ScriptedStt } from '../../src/engine/testkit/scriptedStt.js';
import { ScriptedTts } from '../../src/engine/testkit/scriptedTts.js';
import type { LlmChunk, SttEvent, TransportEvent, TtsEvent } from '../../src/engine/types.js';

const frame = (ms: number, rate = 8000, t = 0) => ({ samples: new Int16Array((rate * ms) / 1000), sampleRate: rate, timestampMs: t });

describe('VirtualClock', () => {
  it('fires timers in time order only when advanced, and sleep honours abort', async () => {
    const clock = new VirtualClock();
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@20'), 20);
    clock.setTimeout(() => fired.push('a@10'), 10);
    const cancelled = clock.setTimeout(() => fired.push('never'), 15);
    cancelled.cancel();
    expect(fired).toEqual([]);
    await clock.advance(25);
    expect(fired).toEqual(['a@10', 'b@20']);
    expect(clock.now()).toBe(25);
    const ac = new AbortController();
    const slept = clock.sleep(100, ac.signal);
    ac.abort(new Error('stop'));
    await expect(slept).rejects.toThrow('stop');
    expect(clock.pending()).toBe(0);
  });
});

describe('FakeTransport (Twilio buffer semantics)', () => {
  it('plays queued audio in real time and reports a mark only once its audio has played', async () => {
    const clock = new VirtualClock();
    const t = new FakeTransport(clock);
    const events: TransportEvent[] = [];
    t.on((e) => events.push(e));
    for (let i = 0; i < 10; i++) t.sendAudio(frame(20), i === 4 ? 'm1' : i === 9 ? 'm2' : undefined);
    expect(t.bufferedMs()).toBe(200);
    await clock.advance(99);
    expect(events).toEqual([]);
    await clock.advance(1);
    expect(events).toEqual([{ type: 'played', markId: 'm1' }]);
    await clock.advance(100);
    expect(events.map((e) => (e as { markId: string }).markId)).toEqual(['m1', 'm2']);
    expect(t.heardMs()).toBe(200);
  });

  it('clear() cuts the playing frame, drops the rest, and never reports dropped marks', async () => {
    const clock = new VirtualClock();
    const t = new FakeTransport(clock);
    const marks: string[] = [];
    t.on((e) => { if (e.type === 'played') marks.push(e.markId); });
    for (let i = 0; i < 50; i++) t.sendAudio(frame(20), `m${i}`);
    await clock.advance(130);
    t.clear();
    await clock.advance(2000);
    expect(marks).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    expect(t.heardMs()).toBe(130);
    expect(t.heardAfter(130)).toBe(0);
    expect(t.bufferedMs()).toBe(0);
  });

  it('rejects audio at the wrong rate', () => {
    expect(() => new FakeTransport(new VirtualClock(), 8000).sendAudio(frame(20, 16000))).toThrow('8000 Hz');
  });
});

describe('ScriptedLlm', () => {
  const run = async (llm: ScriptedLlm, clock: VirtualClock, text: string, signal = new AbortController().signal) => {
    const out: LlmChunk[] = [];
    const p = (async () => { for await (const c of llm.stream({ messages: [{ role: 'user', content: text }], tools: [], temperature: 0 }, signal)) out.push(c); })();
    return { out, p };
  };

  it('streams the matching rule word by word after the first-token delay, then tool calls', async () => {
    const clock = new VirtualClock();
    const llm = new ScriptedLlm(clock, { firstTokenMs: 200, perWordMs: 50, rules: [{ when: 'order', reply: 'Let me check that.', toolCalls: [{ name: 'lookup', arguments: '{"id":"7"}' }] }] });
    const { out, p } = await run(llm, clock, 'Where is my ORDER?');
    await clock.advance(199);
    expect(out).toEqual([]);
    await clock.advance(1);
    expect(out).toEqual([{ type: 'text', text: 'Let ' }]);
    await clock.advance(1000);
    await p;
    expect(out.filter((c) => c.type === 'text').map((c) => (c as { text: string }).text).join('')).toBe('Let me check that.');
    expect(out.find((c) => c.type === 'tool_call')).toMatchObject({ call: { name: 'lookup', arguments: '{"id":"7"}' } });
  });

  it('stops at once when aborted, and fails on demand with a typed error', async () => {
    const clock = new VirtualClock();
    const llm = new ScriptedLlm(clock, { perWordMs: 100, rules: [{ when: 'long', reply: 'one two three four five' }, { when: 'boom', reply: 'a b c', error: { kind: 'quota', afterWords: 2 } }] });
    const ac = new AbortController();
    const { out, p } = await run(llm, clock, 'long', ac.signal);
    await clock.advance(150);
    const aborted = p.catch((e: unknown) => e);
    ac.abort(new Error('barge-in'));
    expect(await aborted).toMatchObject({ message: 'barge-in' });
    await clock.advance(1000);
    expect(out).toHaveLength(2);
    const failing = await run(llm, clock, 'boom');
    const failure = failing.p.catch((e: unknown) => e);
    await clock.advance(1000);
    expect(await failure).toMatchObject({ kind: 'quota' });
    expect(failing.out).toHaveLength(2);
  });
});

describe('ScriptedTts', () => {
  it('turns words into timed audio with word timings, and stops when cancelled', async () => {
    const clock = new VirtualClock();
    const tts = new ScriptedTts(clock, { msPerWord: 200, firstAudioMs: 50 });
    const s = await tts.open({ sampleRate: 8000 }, new AbortController().signal);
    const events: TtsEvent[] = [];
    const p = (async () => { for await (const e of s.events()) events.push(e); })();
    s.pushText('Hello there ');
    s.pushText('friend');
    s.flush();
    await clock.advance(100);
    await p;
    const audio = events.filter((e) => e.type === 'audio').reduce((n, e) => n + (e as { samples: Int16Array }).samples.length, 0);
    expect(audio).toBe(3 * 1600);
    expect(events.filter((e) => e.type === 'words').flatMap((e) => (e as { words: { word: string; startMs: number }[] }).words))
      .toEqual([{ word: 'Hello', startMs: 0, endMs: 200 }, { word: 'there', startMs: 200, endMs: 400 }, { word: 'friend', startMs: 400, endMs: 600 }]);
    expect(events.at(-1)).toEqual({ type: 'done' });
  });

  it('drops the socket mid-reply when told to', async () => {
    const clock = new VirtualClock();
    const tts = new ScriptedTts(clock, { failAfterWords: 1 });
    const s = await tts.open({ sampleRate: 8000 }, new AbortController().signal);
    s.pushText('one two three');
    s.flush();
    const seen: string[] = [];
    const failure = (async () => { for await (const e of s.events()) seen.push(e.type); })().catch((e: unknown) => e);
    await clock.advance(10);
    expect(await failure).toMatchObject({ kind: 'network' });
    expect(seen.filter((t) => t === 'words')).toHaveLength(1);
  });
});

describe('ScriptedStt', () => {
  it('emits speech start, interims, speech end and the final at scripted times', async () => {
    const clock = new VirtualClock();
    const stt = new ScriptedStt(clock);
    const session = await stt.open();
    const events: (SttEvent & { t: number })[] = [];
    session.on((e) => events.push({ ...e, t: clock.now() }));
    const said = stt.say({ text: 'I need a plumber', inMs: 100, durationMs: 1000, interimEveryMs: 250, finalDelayMs: 80 });
    await clock.advance(2000);
    await said;
    expect(events.map((e) => `${e.type}@${e.t}`)).toEqual([
      'speech_started@100', 'interim@350', 'interim@600', 'interim@850', 'speech_ended@1100', 'final@1180',
    ]);
    expect(events.at(-1)).toMatchObject({ text: 'I need a plumber', startMs: 100, endMs: 1100, endOfTurn: true });
  });
});
