/**
 * The real engine through real adapters and their vendors' fakes: one call per provider kind (STT through
 * Deepgram, LLM through OpenAI chat, TTS through ElevenLabs), then one call with all three and a barge-in.
 * Sockets are real, so time is real: RealClock, and waits poll for what the call has done.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, ConversationEvent, EngineAgent, ToolOutcome } from '../../src/engine/index.js';
import { ENGINE_AGENT_DEFAULTS, RealClock, startConversation } from '../../src/engine/index.js';
import { FakeTransport } from '../../src/engine/testkit/fakeTransport.js';
import { ScriptedLlm } from '../../src/engine/testkit/scriptedLlm.js';
import { ScriptedStt } from '../../src/engine/testkit/scriptedStt.js';
import { ScriptedTts } from '../../src/engine/testkit/scriptedTts.js';
import type { LanguageModel, SpeechToText, TextToSpeech, ToolCall } from '../../src/engine/types.js';
import { createEnergyVad, type VoiceActivityDetector } from '../../src/engine/vad/index.js';
import { createOpenAILlm } from '../../src/providers/llm/openai.js';
import { createDeepgramStt } from '../../src/providers/stt/deepgram.js';
import { createElevenLabsTts } from '../../src/providers/tts/elevenlabs.js';
import { startDeepgramFake, type DeepgramFake } from '../fakes/deepgram.js';
import { startElevenLabsFake, type ElevenLabsFake } from '../fakes/elevenlabs.js';
import { startOpenAIChatFake, type OpenAIChatFake } from '../fakes/openai.js';
import { silenceAudio, speechAudio, toFrames } from '../fakes/speech.js';
import { WORD_MS } from './contract/harness.js';
import { until } from './helpers.js';

const RATE = 8000;
const PROMPT = 'You are the booking assistant of Luigi\'s. Be brief.';
const DG_KEY = 'dg-e2e-key';
const OPENAI_KEY = 'sk-e2e-openai';
const XI_KEY = 'xi-e2e-key';
const XI_VOICE = {
  type: 'voice_eleven_labs', voice_id: 'voice-e2e', stability: 0.5, similarity_boost: 0.75, api_key: null,
  optimize_streaming_latency: null, model_id: null, experimental_input_streaming: true,
};

type Json = Record<string, unknown>;

/** One call through the public entry point, as telephony and browser transports start calls. */
async function call(o: {
  stt: SpeechToText; llm: LanguageModel; tts: TextToSpeech; clock?: RealClock;
  agent?: Partial<EngineAgent>; runTool?: (c: ToolCall, s: AbortSignal) => Promise<ToolOutcome>; vad?: VoiceActivityDetector;
}) {
  const clock = o.clock ?? new RealClock();
  const transport = new FakeTransport(clock, RATE);
  const startedAt = clock.now();
  const conv: Conversation = await startConversation({
    agent: { ...ENGINE_AGENT_DEFAULTS, prompt: PROMPT, idleTimeSeconds: null, ...o.agent },
    transport, stt: o.stt, llm: o.llm, tts: o.tts, clock, runTool: o.runTool, vad: o.vad,
  });
  const events: ConversationEvent[] = [];
  conv.on((e) => events.push(e));
  const lines = () => conv.transcript.lines.map((l) => `${l.sender}: ${l.text}${l.interrupted ? '-' : ''}`);
  const bot = () => conv.transcript.lines.filter((l) => l.sender === 'BOT');
  /** The caller's audio, as a carrier delivers it: 20 ms frames, at twice real time unless `paceMs` says otherwise. */
  const say = async (samples: Int16Array, paceMs = 10) => {
    for (const frame of toFrames(samples, RATE, clock.now() - startedAt)) {
      transport.callerAudio(frame);
      await new Promise((r) => setTimeout(r, paceMs));
    }
  };
  const speech = (ms: number, paceMs?: number) => say(speechAudio(ms, RATE), paceMs);
  const silence = (ms: number, paceMs?: number) => say(silenceAudio(ms, RATE), paceMs);
  return { clock, transport, conv, events, lines, bot, say, speech, silence, startedAt };
}

const playedSamples = (t: FakeTransport) => t.played.reduce((n, p) => n + p.samples, 0);

describe('end to end through the vendor fakes', () => {
  let deepgram: DeepgramFake;
  let openai: OpenAIChatFake;
  let eleven: ElevenLabsFake;
  beforeAll(async () => {
    [deepgram, openai, eleven] = await Promise.all([
      startDeepgramFake(DG_KEY),
      startOpenAIChatFake({ validKey: OPENAI_KEY, prefix: '/v1' }),
      startElevenLabsFake(XI_KEY),
    ]);
  });
  afterAll(async () => { await Promise.all([deepgram?.close(), openai?.close(), eleven?.close()]); });

  const deepgramStt = () => createDeepgramStt({ apiKey: DG_KEY, baseUrl: deepgram.url }, { language: 'en' });
  const openaiLlm = () => createOpenAILlm({ apiKey: OPENAI_KEY, baseUrl: `${openai.url}/v1` }, { model: 'gpt-4o-mini' });
  const elevenTts = () => createElevenLabsTts({ apiKey: XI_KEY, baseUrl: eleven.url }, XI_VOICE);

  it('STT through Deepgram: the caller\'s audio becomes the HUMAN line and the agent answers it', async () => {
    const clock = new RealClock();
    const llm = new ScriptedLlm(clock, { rules: [{ when: 'order', reply: 'It ships today.' }], fallback: 'Sorry?' });
    const stt = deepgramStt();
    const c = await call({ clock, stt, llm, tts: new ScriptedTts(clock, { msPerWord: 100 }) });
    deepgram.stt.script('where is my order');
    await c.silence(200);
    await c.speech(1000);
    await c.silence(600);
    await until(() => c.bot().length > 0, 'the agent\'s answer', 5000);
    await c.conv.end();
    await stt.dispose?.();

    expect(c.lines()).toEqual(['HUMAN: Where is my order.', 'BOT: It ships today.']);
    expect(llm.requests[0].messages).toEqual([
      { role: 'system', content: PROMPT },
      { role: 'user', content: 'Where is my order.' },
    ]);
    expect(deepgram.stt.queries.at(-1)!.get('sample_rate')).toBe(String(RATE));
    expect(c.events.filter((e) => e.type === 'error')).toEqual([]);
    // Closing the call closed the vendor stream Deepgram's way.
    expect(deepgram.stt.gracefulClose).toBe(true);
  });

  it('while the caller listens, Deepgram gets their audio in 100 ms messages; when they speak again, frame by frame, and the turn is answered', async () => {
    const clock = new RealClock();
    const llm = new ScriptedLlm(clock, { rules: [{ when: 'order', reply: 'It ships today.' }, { when: 'refund', reply: 'Within a week.' }], fallback: 'Sorry?' });
    const stt = deepgramStt();
    const c = await call({ clock, stt, llm, tts: new ScriptedTts(clock, { msPerWord: 100 }), vad: createEnergyVad() });
    deepgram.stt.script('where is my order', 'and my refund');
    const m0 = deepgram.stt.audioMessages;
    const b0 = deepgram.stt.audioBytes;
    await c.silence(200, 20); // real time, as a carrier sends it: the VAD's clock is the call's
    await c.speech(1000, 20);
    await c.silence(600, 20);
    await until(() => c.bot().length > 0, 'the first answer', 5000);
    // Until the caller's turn was closed (final, and 300 ms of silence for the VAD), every frame went on its own.
    expect(deepgram.stt.audioMessages - m0).toBeGreaterThanOrEqual(75);
    expect(deepgram.stt.audioMessages - m0).toBeLessThan(90);
    const quiet = deepgram.stt.audioMessages;
    await c.silence(1000, 20);
    const quietMessages = deepgram.stt.audioMessages - quiet;
    expect(quietMessages).toBeGreaterThanOrEqual(9);
    expect(quietMessages).toBeLessThanOrEqual(11);
    await c.speech(1000, 20);
    await c.silence(600, 20);
    await until(() => c.bot().length > 1, 'the second answer', 5000);
    await c.conv.end();
    await stt.dispose?.();
    expect(c.lines()).toEqual(['HUMAN: Where is my order.', 'BOT: It ships today.', 'HUMAN: And my refund.', 'BOT: Within a week.']);
    // Every 20 ms of the caller reached Deepgram once: 220 frames of 8 kHz linear16.
    expect(deepgram.stt.audioBytes - b0).toBe(220 * 320);
    expect(c.events.filter((e) => e.type === 'error')).toEqual([]);
  });

  // Adapters report STT times on the session's audio timeline; the engine maps them onto the call's clock.
  it('the HUMAN line and the turn metrics from a real STT are on the call\'s clock', async () => {
    const clock = new RealClock();
    const stt = deepgramStt();
    const c = await call({ clock, stt, llm: new ScriptedLlm(clock, { rules: [], fallback: 'Okay.' }), tts: new ScriptedTts(clock, { msPerWord: 50 }) });
    deepgram.stt.script('hello there');
    // In real time, as a carrier delivers it: the vendor's audio times then match the call's clock.
    await c.silence(200, 20);
    await c.speech(600, 20);
    await c.silence(500, 20);
    await until(() => c.bot().length > 0, 'the agent\'s answer', 5000);
    await c.conv.end();
    await stt.dispose?.();
    const human = c.conv.transcript.lines.find((l) => l.sender === 'HUMAN')!;
    const metrics = c.events.find((e) => e.type === 'metrics') as Extract<ConversationEvent, { type: 'metrics' }>;
    expect(human.atMs).toBeGreaterThanOrEqual(c.startedAt);
    expect(metrics.metrics.speechEndMs).toBeGreaterThanOrEqual(c.startedAt);
    expect(metrics.metrics.speechEndMs).toBeLessThanOrEqual(metrics.metrics.sttFinalMs!);
  });

  it('LLM through OpenAI chat: the streamed reply is the BOT line, the request carries prompt and caller, a tool call goes round', async () => {
    const clock = new RealClock();
    const stt = new ScriptedStt(clock);
    const tools = [{
      name: 'check_availability', description: 'Checks a table',
      parameters: { type: 'object', properties: { party_size: { type: 'integer' } }, required: ['party_size'] },
    }];
    const ran: ToolCall[] = [];
    const before = openai.requests;
    openai.reply({ toolCalls: [{ id: 'call_e2e_1', name: 'check_availability', arguments: ['{"party', '_size": 2}'] }] });
    openai.reply({ text: ['Yes,', ' we have', ' a table', ' at eight.'] });
    const c = await call({
      clock, stt, llm: openaiLlm(), tts: new ScriptedTts(clock, { msPerWord: 60 }), agent: { tools },
      runTool: async (call) => { ran.push(call); return { result: '{"free":true,"time":"20:00"}' }; },
    });
    void stt.say({ text: 'do you have a table for two tonight', durationMs: 300 });
    await until(() => c.bot().length > 0, 'the agent\'s answer', 5000);
    await c.conv.end();

    expect(c.lines()).toEqual(['HUMAN: do you have a table for two tonight', 'BOT: Yes, we have a table at eight.']);
    expect(ran).toHaveLength(1);
    expect(ran[0].name).toBe('check_availability');
    expect(JSON.parse(ran[0].arguments)).toEqual({ party_size: 2 });
    expect(openai.requests - before).toBe(2);
    // The second request carries the whole turn: prompt, caller, the model's call and the tool's result.
    const body = openai.lastRequest!.body as { messages: Json[]; tools: { function: { name: string } }[]; model: string };
    expect(body.model).toBe('gpt-4o-mini');
    expect(body.tools.map((t) => t.function.name)).toEqual(['check_availability']);
    expect(body.messages[0]).toEqual({ role: 'system', content: PROMPT });
    expect(body.messages[1]).toEqual({ role: 'user', content: 'do you have a table for two tonight' });
    expect(body.messages[2]).toMatchObject({ role: 'assistant', tool_calls: [{ id: 'call_e2e_1', type: 'function', function: { name: 'check_availability' } }] });
    expect(body.messages[3]).toEqual({ role: 'tool', tool_call_id: 'call_e2e_1', content: '{"free":true,"time":"20:00"}' });
    expect(body.messages).toHaveLength(4);
    expect(c.conv.history.at(-1)).toEqual({ role: 'assistant', content: 'Yes, we have a table at eight.' });
    expect(c.events.filter((e) => e.type === 'tool_call')).toHaveLength(1);
    expect(c.events.filter((e) => e.type === 'error')).toEqual([]);
  });

  it('TTS through ElevenLabs: the call plays the vendor\'s audio in full and the BOT line holds its timed words', async () => {
    const clock = new RealClock();
    const stt = new ScriptedStt(clock);
    const reply = 'We open at nine every day.';
    const llm = new ScriptedLlm(clock, { rules: [{ when: 'hours', reply }], perWordMs: 5 });
    const tts = elevenTts();
    const c = await call({ clock, stt, llm, tts });
    void stt.say({ text: 'what are your hours', durationMs: 300 });
    await until(() => c.bot().length > 0, 'the agent\'s answer', 5000);
    await c.conv.end();
    await tts.dispose?.();

    expect(c.lines()).toEqual(['HUMAN: what are your hours', `BOT: ${reply}`]);
    // The fake voices each word as WORD_MS of tone: six words, at the call's rate, none lost or doubled.
    const expected = (6 * WORD_MS * RATE) / 1000;
    expect(Math.abs(playedSamples(c.transport) - expected)).toBeLessThanOrEqual(RATE / 50);
    expect(c.transport.played.every((p) => !p.cut)).toBe(true);
    const conn = eleven.log.at(-1)!;
    expect(conn.query.get('output_format')).toBe(`pcm_${RATE}`);
    expect(conn.query.get('sync_alignment')).toBe('true');
    expect(eleven.violations).toEqual([]);
    expect(c.events.filter((e) => e.type === 'error')).toEqual([]);
  });

  it('all three vendors in one call: the caller barges in, the audio is cleared and the BOT line keeps only what was heard', async () => {
    const clock = new RealClock();
    const stt = deepgramStt();
    const tts = elevenTts();
    const long = 'Your order left our warehouse on Monday and it should arrive by Thursday afternoon at the very latest.';
    const longWords = long.split(' ');
    openai.reply({ text: long.split(/(?<= )/) });
    openai.reply({ text: ['Okay,', ' I will stop.'] });
    const c = await call({ clock, stt, llm: openaiLlm(), tts });
    deepgram.stt.script('where is my order', 'wait stop that');
    await c.silence(200);
    await c.speech(900);
    await c.silence(500);
    await until(() => playedSamples(c.transport) >= (4 * WORD_MS * RATE) / 1000, 'the reply to be playing', 5000);
    expect(c.lines()).toEqual(['HUMAN: Where is my order.']);
    const bargeAt = clock.now();
    await c.speech(900);
    await c.silence(500);
    await until(() => c.bot().length >= 2, 'the answer to the interruption', 6000);
    await c.conv.end();
    await stt.dispose?.();
    await tts.dispose?.();

    expect(c.transport.clears.length).toBeGreaterThanOrEqual(1);
    const clearedAt = c.transport.clears[0];
    expect(clearedAt).toBeGreaterThan(bargeAt);
    // The caller was heard within a few hundred ms of talking over the agent (one interim word).
    expect(clearedAt - bargeAt).toBeLessThan(600);
    const [cut] = c.bot();
    expect(cut.interrupted).toBe(true);
    const heard = cut.text.split(' ').filter(Boolean);
    expect(heard.length).toBeGreaterThan(0);
    expect(heard.length).toBeLessThan(longWords.length);
    expect(heard).toEqual(longWords.slice(0, heard.length));
    // Only words played (most of each) count, and nothing of the cut reply played after the clear.
    const firstReplyHeardMs = c.transport.played.filter((p) => p.startMs < clearedAt).reduce((t, p) => t + Math.min(p.endMs, clearedAt) - p.startMs, 0);
    expect(heard.length * WORD_MS * 0.6).toBeLessThanOrEqual(firstReplyHeardMs + 20);
    expect(c.transport.played.filter((p) => p.startMs < clearedAt && p.endMs > clearedAt + 1)).toEqual([]);
    expect(c.lines()).toEqual(['HUMAN: Where is my order.', `BOT: ${cut.text}-`, 'HUMAN: Wait stop that.', 'BOT: Okay, I will stop.']);
    expect(c.conv.history.filter((m) => m.role === 'assistant')[0]).toEqual({ role: 'assistant', content: cut.text, interrupted: true });
    // The model heard what the caller heard, then the caller's interruption.
    const body = openai.lastRequest!.body as { messages: Json[] };
    expect(body.messages.slice(1)).toEqual([
      { role: 'user', content: 'Where is my order.' },
      { role: 'assistant', content: cut.text },
      { role: 'user', content: 'Wait stop that.' },
    ]);
    expect(c.events.filter((e) => e.type === 'error')).toEqual([]);
  });
});
