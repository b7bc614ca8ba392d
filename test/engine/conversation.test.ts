import { describe, expect, it, vi } from 'vitest';
import { VirtualClock } from '../../src/engine/clock.js';
import { ENGINE_AGENT_DEFAULTS, type ConversationEvent, type EngineAgent, type ToolOutcome } from '../../src/engine/conversation.js';
import { createActionRunner, type EngineAction } from '../../src/engine/actions/index.js';
import { startConversation } from '../../src/engine/index.js';
import { FakeTransport } from '../../src/engine/testkit/fakeTransport.js';
import { ScriptedLlm, type ScriptedLlmOptions } from '../../src/engine/testkit/scriptedLlm.js';
import { ScriptedStt } from '../../src/engine/testkit/scriptedStt.js';
import { ScriptedTts, type ScriptedTtsOptions } from '../../src/engine/testkit/scriptedTts.js';
import type { ToolCall } from '../../src/engine/types.js';
import { createEnergyVad } from '../../src/engine/vad/index.js';
import { answering, type CarrierAnswers } from './handOff.js';

const LONG = 'Your order left our warehouse on Monday and should arrive by Thursday afternoon at the latest.';

async function call(opts: {
  agent?: Partial<EngineAgent>; llm?: Partial<ScriptedLlmOptions>; tts?: ScriptedTtsOptions;
  variables?: Record<string, string>; runTool?: (c: ToolCall, s: AbortSignal) => Promise<ToolOutcome>; vad?: boolean;
  actions?: EngineAction[]; carrier?: CarrierAnswers;
} = {}) {
  const clock = new VirtualClock();
  const transport = answering(new FakeTransport(clock, 8000), clock, opts.carrier ?? {});
  const stt = new ScriptedStt(clock);
  const llm = new ScriptedLlm(clock, {
    firstTokenMs: 100, perWordMs: 20, fallback: 'Okay.',
    rules: [{ when: 'order', reply: LONG }, { when: 'yes', reply: 'Great, booked.' }],
    ...opts.llm,
  });
  const tts = new ScriptedTts(clock, { msPerWord: 300, firstAudioMs: 50, ...opts.tts });
  // Through the public entry point, as telephony and browser transports start calls.
  const conv = await startConversation({
    agent: { ...ENGINE_AGENT_DEFAULTS, prompt: 'You are a helpful agent.', idleTimeSeconds: null, ...opts.agent },
    variables: opts.variables, transport, stt, llm, tts, clock, runTool: opts.runTool,
    vad: opts.vad ? createEnergyVad() : undefined,
    actions: opts.actions ? createActionRunner({ actions: opts.actions, transport, callId: 'call-1', variables: opts.variables }) : undefined,
  });
  const events: ConversationEvent[] = [];
  conv.on((e) => events.push(e));
  const lines = () => conv.transcript.lines.map((l) => `${l.sender}: ${l.text}${l.interrupted ? '-' : ''}`);
  return { clock, transport, stt, llm, tts, conv, events, lines };
}

describe('turns', () => {
  it('answers a caller turn and records both lines once the reply has played', async () => {
    const c = await call();
    void c.stt.say({ text: 'where is my order', durationMs: 1000 });
    await c.clock.advance(1500);
    expect(c.lines()).toEqual(['HUMAN: where is my order']);
    await c.clock.advance(6000);
    expect(c.lines()).toEqual(['HUMAN: where is my order', `BOT: ${LONG}`]);
    expect(c.transport.heardMs()).toBeGreaterThanOrEqual(16 * 300);
    expect(c.conv.history.at(-1)).toEqual({ role: 'assistant', content: LONG });
  });

  it('answers a short "yes"', async () => {
    const c = await call();
    void c.stt.say({ text: 'yes', durationMs: 200 });
    await c.clock.advance(3000);
    expect(c.lines()).toEqual(['HUMAN: yes', 'BOT: Great, booked.']);
  });

  it('starts a turn from an STT final even when no speech start was seen', async () => {
    const c = await call();
    void c.stt.say({ text: 'yes', finalOnly: true });
    await c.clock.advance(3000);
    expect(c.lines()).toEqual(['HUMAN: yes', 'BOT: Great, booked.']);
  });

  it('an empty final (a vendor closing the turn) ends the turn and adds no empty line, even over the agent', async () => {
    const c = await call();
    void c.stt.say({ text: 'where is my order', endOfTurn: false });
    await c.clock.advance(1300);
    void c.stt.say({ text: '', finalOnly: true });
    await c.clock.advance(1500);
    expect(c.lines()).toEqual(['HUMAN: where is my order']);
    expect(c.transport.played.length).toBeGreaterThan(0);
    void c.stt.say({ text: '', finalOnly: true });
    await c.clock.advance(8000);
    expect(c.lines()).toEqual(['HUMAN: where is my order', `BOT: ${LONG}`]);
  });

  it('fills the prompt from the call context', async () => {
    const c = await call({ agent: { prompt: 'You work for ${company}. Greet {{name}}.' }, variables: { company: 'Acme', name: 'Ada' } });
    void c.stt.say({ text: 'hi' });
    await c.clock.advance(3000);
    expect(c.llm.requests[0].messages[0]).toEqual({ role: 'system', content: 'You work for Acme. Greet Ada.' });
  });
});

describe('initial message', () => {
  it('is spoken after its delay, templated, and becomes history', async () => {
    const c = await call({ agent: { initialMessage: 'Hi ${name}!', initialMessageDelayMs: 500 }, variables: { name: 'Ada' } });
    await c.clock.advance(499);
    expect(c.transport.played).toHaveLength(0);
    await c.clock.advance(3000);
    expect(c.lines()).toEqual(['BOT: Hi Ada!']);
    expect(c.conv.history.at(-1)).toEqual({ role: 'assistant', content: 'Hi Ada!' });
  });

  it('cannot be interrupted during its protected start', async () => {
    const c = await call({ agent: { initialMessage: 'Thanks for calling Acme, this call may be recorded.', initialMessageUninterruptibleMs: 2000 } });
    await c.clock.advance(300);
    void c.stt.say({ text: 'hello hello', durationMs: 600 });
    await c.clock.advance(5000);
    expect(c.transport.clears).toEqual([]);
    expect(c.lines()[0]).toBe('BOT: Thanks for calling Acme, this call may be recorded.');
  });
});

describe('barge-in', () => {
  it('stops audio mid-sentence and records only the words that were played', async () => {
    const c = await call();
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(1500); // the reply has started playing
    const before = c.transport.heardMs();
    expect(before).toBeGreaterThan(0);
    void c.stt.say({ text: 'wait stop', durationMs: 600, interimEveryMs: 200 });
    await c.clock.advance(250);
    expect(c.transport.clears).toHaveLength(1);
    const clearedAt = c.transport.clears[0];
    await c.clock.advance(5000);
    // Nothing of the interrupted reply reaches the caller after the clear (the next reply starts later).
    expect(c.transport.heardAfter(clearedAt) - c.transport.heardAfter(clearedAt + 500)).toBe(0);
    const bot = c.conv.transcript.lines.find((l) => l.sender === 'BOT')!;
    expect(bot.interrupted).toBe(true);
    const heardWords = bot.text.split(' ').length;
    expect(heardWords).toBeGreaterThan(0);
    expect(heardWords).toBeLessThan(LONG.split(' ').length);
    // Only words heard in full count: their audio (300 ms each) fits in what played.
    expect(heardWords * 300).toBeLessThanOrEqual(c.transport.heardMs() + 120);
    expect(c.conv.history.find((m) => m.role === 'assistant')).toEqual({ role: 'assistant', content: bot.text, interrupted: true });
    // The caller's interruption is answered next.
    expect(c.lines().at(-1)).toBe('BOT: Okay.');
  });

  it('each turn reports its own timings, also after an interrupted one', async () => {
    const c = await call();
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(1500);
    void c.stt.say({ text: 'wait stop', durationMs: 600, interimEveryMs: 200 });
    await c.clock.advance(5000);
    const turns = c.events.flatMap((e) => (e.type === 'metrics' ? [e.metrics] : []));
    expect(turns.map((m) => m.turn)).toEqual([1, 2]);
    expect(turns[0].interruptedAtMs).toBeGreaterThan(turns[0].firstFrameSentMs!);
    const second = turns[1];
    expect(second.interruptedAtMs).toBeUndefined();
    // Caller's final → endpoint → first token → first audio → first frame, all after the interruption.
    expect(second.sttFinalMs).toBeGreaterThan(turns[0].interruptedAtMs!);
    expect(second.endpointMs).toBeGreaterThanOrEqual(second.sttFinalMs!);
    expect(second.llmFirstTokenMs).toBeGreaterThan(second.endpointMs!);
    expect(second.ttsFirstAudioMs).toBeGreaterThanOrEqual(second.llmFirstTokenMs!);
    expect(second.firstFrameSentMs).toBeGreaterThanOrEqual(second.ttsFirstAudioMs!);
  });

  it('a backchannel does not interrupt at low sensitivity', async () => {
    const c = await call({ agent: { interruptSensitivity: 'low' } });
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(1500);
    void c.stt.say({ text: 'uh-huh', durationMs: 300, interimEveryMs: 100 });
    await c.clock.advance(8000);
    expect(c.transport.clears).toEqual([]);
    expect(c.lines()).toContain(`BOT: ${LONG}`);
    expect(c.lines()).toContain('HUMAN: uh-huh');
  });

  it('a backchannel interrupts at high sensitivity', async () => {
    const c = await call({ agent: { interruptSensitivity: 'high' } });
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(1500);
    void c.stt.say({ text: 'uh-huh', durationMs: 300, interimEveryMs: 100 });
    await c.clock.advance(8000);
    expect(c.transport.clears).toHaveLength(1);
    expect(c.conv.transcript.lines.find((l) => l.sender === 'BOT')?.interrupted).toBe(true);
  });

  it('the LLM stream stops when the caller interrupts, and the agent does not resume the old reply', async () => {
    const c = await call({ llm: { perWordMs: 400 } });
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(2000);
    void c.stt.say({ text: 'never mind', durationMs: 500, interimEveryMs: 100 });
    await c.clock.advance(10_000);
    const bots = c.conv.transcript.lines.filter((l) => l.sender === 'BOT');
    expect(bots.map((b) => b.interrupted ?? false)).toEqual([true, false]);
    expect(bots[1].text).toBe('Okay.');
  });

  it('an interruption during a tool call leaves no orphaned tool call in the history', async () => {
    let started = 0;
    const c = await call({
      llm: { rules: [{ when: 'order', reply: 'Let me look that up.', toolCalls: [{ name: 'lookup', arguments: '{}' }] }] },
      runTool: async (_call, signal) => { started++; await new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason))); return { result: '' }; },
    });
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(4000);
    expect(started).toBe(1);
    void c.stt.say({ text: 'forget it', durationMs: 500, interimEveryMs: 100 });
    await c.clock.advance(5000);
    const calls = c.conv.history.flatMap((m) => (m.role === 'assistant' ? m.toolCalls ?? [] : []));
    const results = c.conv.history.filter((m) => m.role === 'tool').map((m) => (m as { toolCallId: string }).toolCallId);
    expect(calls).toHaveLength(1);
    expect(results).toEqual(calls.map((k) => k.id));
    expect(c.lines().at(-1)).toBe('BOT: Okay.');
  });
});

describe('failures and endings', () => {
  it('an LLM error mid-reply is reported, apologised for, and the call goes on', async () => {
    const c = await call({ llm: { rules: [{ when: 'order', reply: 'Let me see', error: { kind: 'quota', afterWords: 1 } }, { when: 'yes', reply: 'Great, booked.' }] } });
    void c.stt.say({ text: 'where is my order' });
    await c.clock.advance(6000);
    expect(c.events.find((e) => e.type === 'error')).toMatchObject({ stage: 'llm' });
    expect(c.lines().at(-1)).toBe(`BOT: ${ENGINE_AGENT_DEFAULTS.apology}`);
    void c.stt.say({ text: 'yes' });
    await c.clock.advance(4000);
    expect(c.lines().at(-1)).toBe('BOT: Great, booked.');
  });

  it('a TTS socket that drops mid-reply is reopened and the reply finishes without repeating words', async () => {
    const c = await call({ tts: { msPerWord: 300, failAfterWords: 4, failSessions: 1 } });
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(9000);
    expect(c.events.find((e) => e.type === 'error')).toMatchObject({ stage: 'tts' });
    expect(c.tts.sessions).toBe(2);
    expect(c.lines()).toEqual(['HUMAN: where is my order', `BOT: ${LONG.split(' ').join(' ')}`]);
    expect(c.transport.heardMs()).toBeGreaterThanOrEqual(LONG.split(' ').length * 300);
    expect(c.transport.heardMs()).toBeLessThan((LONG.split(' ').length + 1) * 300);
  });

  it('a TTS that keeps failing leaves the played words as a cut-off line and the call goes on', async () => {
    const c = await call({ tts: { msPerWord: 300, failAfterWords: 3 } });
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(6000);
    // Three words from the first session, three from the one reconnect, then it gives up.
    expect(c.lines()).toEqual(['HUMAN: where is my order', 'BOT: Your order left our warehouse on-']);
    expect(c.conv.history.at(-1)).toEqual({ role: 'assistant', content: 'Your order left our warehouse on', interrupted: true });
    expect(c.events.filter((e) => e.type === 'error')).toHaveLength(2);
    void c.stt.say({ text: 'hello' });
    await c.clock.advance(4000);
    expect(c.conv.history.filter((m) => m.role === 'user')).toHaveLength(2);
  });

  it('idle checks, then a hang-up', async () => {
    const c = await call({ agent: { idleTimeSeconds: 5, askIfHumanPresentOnIdle: true, maxIdleChecks: 1 } });
    await c.clock.advance(5500);
    expect(c.lines()).toEqual([]);
    await c.clock.advance(2000);
    expect(c.lines()).toEqual(['BOT: Are you still there?']);
    await c.clock.advance(6000);
    expect(await c.conv.done).toBe('idle');
    expect(c.transport.commands.map((x) => x.command)).toContain('hangup');
  });

  it('idle checks reset when the caller speaks, within the call-wide limit; the timeout changes after the first interaction', async () => {
    const c = await call({ agent: { idleTimeSeconds: 5, idleAfterInteractionSeconds: 8, askIfHumanPresentOnIdle: true, maxIdleChecks: 1, maxAggregateIdleChecks: 1 } });
    await c.clock.advance(7000);
    expect(c.lines()).toEqual(['BOT: Are you still there?']);
    void c.stt.say({ text: 'yes' });
    await c.clock.advance(3000);
    expect(c.lines().at(-1)).toBe('BOT: Great, booked.');
    // Now 8 s apply, and the one check allowed over the call is used up: the next silence ends the call.
    await c.clock.advance(6000);
    expect(c.events.some((e) => e.type === 'ended')).toBe(false);
    await c.clock.advance(3000);
    expect(await c.conv.done).toBe('idle');
    expect(c.lines().filter((l) => l === 'BOT: Are you still there?')).toHaveLength(1);
  });

  it('the call duration limit ends the call', async () => {
    const c = await call({ agent: { callDurationSec: 10 } });
    await c.clock.advance(10_001);
    expect(await c.conv.done).toBe('max_duration');
  });

  it('a caller hang-up ends cleanly with nothing left running', async () => {
    const c = await call();
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(1500);
    c.transport.callerHangup();
    expect(await c.conv.done).toBe('caller_hangup');
    await c.clock.advance(10_000);
    expect(c.clock.pending()).toBe(0);
    expect(c.events.filter((e) => e.type === 'ended')).toHaveLength(1);
  });
});

/** Caller audio on the clock: quiet line noise, with loud noise (a cough, a voice) during the given spans. */
function feedCallerAudio(c: Awaited<ReturnType<typeof call>>, untilMs: number, loud: [number, number][]) {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff) * 2 - 1;
  for (let t = 0; t < untilMs; t += 20) {
    c.clock.setTimeout(() => {
      const amp = loud.some(([a, b]) => t >= a && t < b) ? 8000 : 30;
      const samples = new Int16Array(160).map(() => Math.round(rand() * amp));
      c.transport.callerAudio({ samples, sampleRate: 8000, timestampMs: t });
    }, t);
  }
}

describe('barge-in on voice activity', () => {
  it('a cough pauses the agent at once, and with no words the reply resumes and completes', async () => {
    const c = await call({ vad: true });
    feedCallerAudio(c, 12_000, [[2500, 2800]]);
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(2500);
    const sentBefore = c.transport.heardMs() + c.transport.bufferedMs();
    await c.clock.advance(400);
    // Without a pause 400 ms more would have gone out; paused, only the VAD onset delay plus the pacer lead.
    expect(c.transport.heardMs() + c.transport.bufferedMs() - sentBefore).toBeLessThanOrEqual(260);
    await c.clock.advance(9000);
    expect(c.transport.clears).toEqual([]);
    expect(c.lines()).toEqual(['HUMAN: where is my order', `BOT: ${LONG}`]);
  });

  it('with min_volume set, quiet background sound neither pauses nor interrupts the agent', async () => {
    // The same span that interrupts without a gate (about -17 dBFS) sits below a -10 dBFS gate.
    const c = await call({ vad: true, agent: { minVolumeDbfs: -10 } });
    feedCallerAudio(c, 9000, [[2500, 5200]]);
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(9000);
    expect(c.transport.clears).toEqual([]);
    expect(c.lines()).toEqual(['HUMAN: where is my order', `BOT: ${LONG}`]);
  });

  it('long speech over the agent interrupts even before a transcript arrives', async () => {
    const c = await call({ vad: true });
    feedCallerAudio(c, 8000, [[2500, 5200]]);
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(5000);
    expect(c.transport.clears).toHaveLength(1);
    expect(c.conv.transcript.lines.find((l) => l.sender === 'BOT')?.interrupted).toBe(true);
  });
});

describe('pacing the transcriber', () => {
  const modes = (c: Awaited<ReturnType<typeof call>>) => c.stt.paces.map((p) => p.mode);

  it('idle once the VAD is quiet and the STT has closed the turn; live the moment the VAD hears speech again', async () => {
    const c = await call({ vad: true });
    feedCallerAudio(c, 9000, [[0, 800], [6000, 6800]]);
    void c.stt.say({ text: 'where is my order', durationMs: 800, finalDelayMs: 300 });
    c.clock.setTimeout(() => void c.stt.say({ text: 'and my refund', durationMs: 800, finalDelayMs: 300 }), 6000);
    await c.clock.advance(5000);
    expect(modes(c)).toEqual(['idle']);
    // Both the final (800 + 300 ms) and the VAD's 300 ms of silence came first.
    expect(c.stt.paces[0].atMs).toBeGreaterThanOrEqual(1100);
    await c.clock.advance(4000);
    expect(modes(c)).toEqual(['idle', 'live', 'idle']);
    expect(c.stt.paces[1].atMs).toBeGreaterThanOrEqual(6000);
    expect(c.stt.paces[1].atMs).toBeLessThanOrEqual(6150);
    expect(c.stt.paces[2].atMs).toBeGreaterThanOrEqual(7100);
  });

  it('speech the vendor hears and the VAD does not makes it live at once', async () => {
    const c = await call({ vad: true });
    feedCallerAudio(c, 6000, [[0, 800]]);
    void c.stt.say({ text: 'where is my order', durationMs: 800, finalDelayMs: 300 });
    await c.clock.advance(3000);
    expect(modes(c)).toEqual(['idle']);
    void c.stt.say({ text: 'hello', durationMs: 500 }); // quiet to our VAD
    await c.clock.advance(1);
    expect(modes(c)).toEqual(['idle', 'live']);
    expect(c.stt.paces[1].atMs).toBe(3000);
  });

  it('a late final for earlier words does not idle the stream while the caller goes on', async () => {
    const c = await call({ vad: true });
    feedCallerAudio(c, 6000, [[0, 800], [1200, 2500]]);
    // The first stretch's final comes at 1400 ms, after the caller started again at 1200.
    void c.stt.say({ text: 'where is', durationMs: 800, finalDelayMs: 600 });
    c.clock.setTimeout(() => void c.stt.say({ text: 'my order please', durationMs: 1300, finalDelayMs: 800 }), 1200);
    await c.clock.advance(6000);
    // The VAD heard the second stretch end at 2800; the stream idles only at its own final (3300).
    expect(c.stt.paces[0]).toEqual({ mode: 'idle', atMs: 3300 });
  });

  it('without a VAD the transcriber stays live', async () => {
    const c = await call();
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(5000);
    expect(c.stt.paces).toEqual([]);
  });

  it('once the VAD fails, the transcriber stays live', async () => {
    const c = await call({ vad: true });
    feedCallerAudio(c, 400, []);
    await c.clock.advance(500);
    // A frame at another rate: the detector refuses it and is done for this call.
    c.transport.callerAudio({ samples: new Int16Array(320), sampleRate: 16000, timestampMs: 500 });
    await c.clock.advance(10);
    expect(c.events.some((e) => e.type === 'error' && e.stage === 'vad')).toBe(true);
    void c.stt.say({ text: 'where is my order', durationMs: 800 });
    await c.clock.advance(5000);
    expect(c.lines()[0]).toBe('HUMAN: where is my order');
    expect(c.stt.paces).toEqual([]);
  });
});

describe('actions', () => {
  const END_ON_GOODBYE: EngineAction = { id: 'a1', type: 'action_end_conversation', config: {}, trigger: { type: 'action_trigger_phrase_based', phrases: ['goodbye'] } };

  it('a phrase trigger fires after the agent has spoken the phrase', async () => {
    const c = await call({ actions: [END_ON_GOODBYE], llm: { rules: [{ when: 'thanks', reply: 'You are welcome, Goodbye!' }] } });
    void c.stt.say({ text: 'thanks that is all' });
    await c.clock.advance(2500);
    expect(c.conv.transcript.lines.filter((l) => l.sender === 'BOT')).toHaveLength(0);
    await c.clock.advance(3000);
    expect(c.lines().at(-1)).toBe('BOT: You are welcome, Goodbye!');
    expect(await c.conv.done).toBe('agent_ended');
    expect(c.transport.commands.map((x) => x.command)).toContain('hangup');
  });

  it('the model can end the call; it hangs up after the goodbye has played', async () => {
    const c = await call({
      actions: [{ id: 'a2', type: 'action_end_conversation', config: {}, trigger: { type: 'action_trigger_function_call' } }],
      llm: { rules: [{ when: 'bye', reply: 'Bye now.', toolCalls: [{ name: 'end_conversation', arguments: '{}' }] }] },
    });
    void c.stt.say({ text: 'ok bye' });
    await c.clock.advance(6000);
    expect(await c.conv.done).toBe('agent_ended');
    expect(c.lines().at(-1)).toBe('BOT: Bye now.');
    const hangupAt = c.transport.commands.find((x) => x.command === 'hangup')!.at;
    expect(hangupAt).toBeGreaterThanOrEqual(Math.max(...c.transport.played.map((p) => p.endMs)));
    expect(c.llm.requests[0].tools.map((t) => t.name)).toEqual(['end_conversation']);
  });

  const TRANSFER: EngineAction = { id: 'a3', type: 'action_transfer_call', config: { phone_number: '{manager}' }, trigger: { type: 'action_trigger_function_call' } };
  const transferring = (carrier: CarrierAnswers) => call({
    variables: { manager: '+14155550123' }, actions: [TRANSFER], carrier,
    llm: { rules: [
      { when: (req) => req.messages.at(-1)?.role === 'tool', reply: 'They will be right with you.' },
      { when: 'manager', reply: 'Connecting you.', toolCalls: [{ name: 'transfer_call', arguments: '{}' }] },
    ] },
  });

  /**
   * The caller asks for a manager; once the transfer is under way, and before the carrier has answered (it
   * takes 1 s), their stream closes, as Twilio's does when it moves them. Not ended yet; how it ended, after.
   */
  async function streamClosesMidTransfer(c: Awaited<ReturnType<typeof call>>) {
    const ended = vi.fn();
    void c.conv.done.then(ended);
    void c.stt.say({ text: 'get me a manager' });
    while (!c.transport.commands.some((x) => x.command === 'transfer')) await c.clock.advance(20);
    c.transport.callerHangup();
    await c.clock.advance(500);
    expect(ended).not.toHaveBeenCalled(); // the carrier has not answered yet
    await c.clock.advance(1000);
    return ended;
  }

  it('a transfer that hands the caller off ends the conversation once the line has played, in full, without hanging up', async () => {
    const c = await transferring({ transfer: 'handed_off' });
    void c.stt.say({ text: 'get me a manager' });
    await c.clock.advance(6000);
    expect(c.transport.commands.find((x) => x.command === 'transfer')).toMatchObject({ arg: '+14155550123' });
    // The carrier takes the caller off the stream when it transfers: what the agent said first was heard by then.
    const transferAt = c.transport.commands.find((x) => x.command === 'transfer')!.at;
    expect(transferAt).toBeGreaterThanOrEqual(Math.max(...c.transport.played.map((p) => p.endMs)));
    expect(await c.conv.done).toBe('handed_off');
    // The agent is gone from the call, which goes on: its line stands whole, and nobody hung up.
    expect(c.lines()).toEqual(['HUMAN: get me a manager', 'BOT: Connecting you.']);
    expect(c.llm.requests).toHaveLength(1);
    expect(c.transport.commands.map((x) => x.command)).toEqual(['transfer']);
  });

  it('a transfer the agent stays on for goes on: the model hears the result and carries on', async () => {
    const c = await transferring({ transfer: 'stays' });
    const ended = vi.fn();
    void c.conv.done.then(ended);
    void c.stt.say({ text: 'get me a manager' });
    await c.clock.advance(8000);
    expect(c.transport.commands.map((x) => x.command)).toEqual(['transfer']);
    expect(c.lines()).toEqual(['HUMAN: get me a manager', 'BOT: Connecting you. They will be right with you.']);
    expect(c.llm.requests).toHaveLength(2);
    expect(ended).not.toHaveBeenCalled();
  });

  it('talking over a hand-off under way does not take it back or cut the line off', async () => {
    // The carrier takes a second to answer; the caller says something meanwhile.
    const c = await transferring({ transfer: 'handed_off', takesMs: 1000 });
    const ended = vi.fn();
    void c.conv.done.then(ended);
    void c.stt.say({ text: 'get me a manager' });
    await c.clock.advance(200);
    const transferred = () => c.transport.commands.some((x) => x.command === 'transfer');
    while (!transferred()) await c.clock.advance(20);
    void c.stt.say({ text: 'hello are you still there', durationMs: 600, interimEveryMs: 100 });
    await c.clock.advance(3000);
    expect(ended).toHaveBeenCalledWith('handed_off');
    expect(c.lines().filter((l) => l.startsWith('BOT:'))).toEqual(['BOT: Connecting you.']);
    expect(c.llm.requests).toHaveLength(1);
  });

  it.each([
    ['hands the caller off: the conversation ends as handed off, its line whole', 'handed_off', 'handed_off', 'BOT: Connecting you.'],
    ['keeps the agent on: the caller hung up mid-reply', 'stays', 'caller_hangup', 'BOT: Connecting you.-'],
  ] as const)('the stream closing while a transfer is under way (Twilio moves the caller off it) waits for the answer; one that %s', async (_what, answer, reason, line) => {
    const c = await transferring({ transfer: answer, takesMs: 1000 });
    expect(await streamClosesMidTransfer(c)).toHaveBeenCalledWith(reason);
    expect(c.lines()).toEqual(['HUMAN: get me a manager', line]);
    expect(c.transport.commands.map((x) => x.command)).toEqual(['transfer']);
  });

  it('a warm transfer says its hold message, waits until the caller has heard it, then holds and dials; the agent leaves once the caller is handed off', async () => {
    const c = await call({
      actions: [{ id: 'a4', type: 'action_warm_transfer', config: { phone_number: '+14155550124', hold_message: 'One moment while I connect you.' }, trigger: { type: 'action_trigger_function_call' } }],
      llm: { rules: [{ when: 'person', toolCalls: [{ name: 'warm_transfer', arguments: '{}' }] }] },
      carrier: { hold: 'stays', conference: 'handed_off' },
    });
    void c.stt.say({ text: 'can I talk to a person' });
    await c.clock.advance(8000);
    const hold = c.transport.commands.find((x) => x.command === 'hold')!;
    expect(hold).toBeDefined();
    expect(hold.at).toBeGreaterThanOrEqual(Math.max(...c.transport.played.map((p) => p.endMs)));
    expect(c.transport.commands.find((x) => x.command === 'conference')).toMatchObject({ arg: { to: '+14155550124', placePrimaryOnHold: true } });
    expect(await c.conv.done).toBe('handed_off');
    expect(c.lines()).toEqual(['HUMAN: can I talk to a person', 'BOT: One moment while I connect you.']);
    expect(c.transport.commands.map((x) => x.command)).toEqual(['hold', 'conference']);
  });

  it('a phrase-triggered transfer that hands the caller off ends the conversation after the line', async () => {
    const c = await call({
      variables: { manager: '+14155550123' }, carrier: { transfer: 'handed_off' },
      actions: [{ ...TRANSFER, trigger: { type: 'action_trigger_phrase_based', phrases: ['transferring you'] } }],
      llm: { rules: [{ when: 'manager', reply: 'Sure, transferring you now.' }] },
    });
    void c.stt.say({ text: 'get me a manager' });
    await c.clock.advance(6000);
    expect(await c.conv.done).toBe('handed_off');
    expect(c.lines()).toEqual(['HUMAN: get me a manager', 'BOT: Sure, transferring you now.']);
    expect(c.transport.commands.map((x) => x.command)).toEqual(['transfer']);
  });

  it.each([
    ['hands the caller off', 'handed_off', 'handed_off'],
    ['keeps the agent on', 'stays', 'caller_hangup'],
  ] as const)('a phrase-triggered transfer whose stream closes while it is under way, then %s, ends as %s', async (_what, answer, reason) => {
    const c = await call({
      variables: { manager: '+14155550123' }, carrier: { transfer: answer, takesMs: 1000 },
      actions: [{ ...TRANSFER, trigger: { type: 'action_trigger_phrase_based', phrases: ['transferring you'] } }],
      llm: { rules: [{ when: 'manager', reply: 'Sure, transferring you now.' }] },
    });
    expect(await streamClosesMidTransfer(c)).toHaveBeenCalledWith(reason);
    expect(c.lines()).toEqual(['HUMAN: get me a manager', 'BOT: Sure, transferring you now.']);
  });
});

describe('a closing line (say with endCall)', () => {
  it('replaces what the agent was saying, plays to the end though the caller talks over it, then ends the call', async () => {
    const c = await call({ vad: true });
    void c.stt.say({ text: 'where is my order', durationMs: 500 });
    await c.clock.advance(1500);
    // Mid-answer, the call's own logic decides to close (a do-not-call request, a voicemail beep).
    void c.conv.say('Understood, I will make sure nobody calls you again. Goodbye.', { endCall: true });
    await c.clock.advance(200);
    void c.stt.say({ text: 'wait one more thing', durationMs: 300 });
    const ended = c.conv.done;
    await c.clock.advance(8000);
    expect(await ended).toBe('agent_ended');
    const bot = c.lines().filter((l) => l.startsWith('BOT:'));
    expect(bot.at(-1)).toBe('BOT: Understood, I will make sure nobody calls you again. Goodbye.');
    // The caller's words were recorded but not answered.
    expect(c.lines()).toContain('HUMAN: wait one more thing');
    expect(c.llm.requests).toHaveLength(1);
    expect(c.transport.commands.map((x) => x.command)).toContain('hangup');
  });

  it('without endCall it is an ordinary line and the call goes on', async () => {
    const c = await call();
    void c.conv.say('Please hold on.');
    await c.clock.advance(2000);
    expect(c.lines()).toEqual(['BOT: Please hold on.']);
    void c.stt.say({ text: 'yes', durationMs: 200 });
    await c.clock.advance(3000);
    expect(c.lines()).toEqual(['BOT: Please hold on.', 'HUMAN: yes', 'BOT: Great, booked.']);
  });

  it('ends the call even if the line cannot be voiced', async () => {
    const c = await call({ tts: { msPerWord: 300, failAfterWords: 0 } });
    const ended = c.conv.done;
    void c.conv.say('Goodbye now.', { endCall: true });
    await c.clock.advance(20_000);
    expect(await ended).toBe('agent_ended');
  });
});
