/**
 * Seeded randomized conversation fuzz. Each run builds one call on a VirtualClock from a plan drawn by a
 * seeded PRNG, plays it, forces an end, and checks invariants that must hold for every call. A failing
 * run prints its seed, its plan and a timeline of what happened.
 *
 *   npx vitest run test/engine/fuzz.test.ts                      # the suite: seeds 1..200 (~2-3 s)
 *   FUZZ_SEED=137 npx vitest run test/engine/fuzz.test.ts        # one seed (its plan and timeline print on success too)
 *   FUZZ_RUNS=2000 FUZZ_BASE=10000 npx vitest run test/engine/fuzz.test.ts   # a longer hunt elsewhere
 *
 * Randomized: 1–6 caller turns (LLM keyword hits: a long answer, tool calls, two tools at once, an LLM
 * failure, an end-call tool; plain words; backchannels; VAD-only coughs), when each starts (after a gap,
 * inside the endpoint wait, during the LLM's first-token wait, during a tool call, mid-reply, in the last
 * lead-ms of a reply, after a reply), speech length, interim cadence, final delay, vendor end-of-turn flag,
 * finals without speech events; interrupt and endpointing sensitivity, conversation speed, dynamic turns,
 * greeting (delay, uninterruptible start), idle checks, call duration limit; LLM first token 0–800 ms,
 * 0–200 ms per word, failures on chosen requests; TTS first audio 0–400 ms, word length, word timings on or
 * off, socket drops (failAfterWords, failSessions); tools that hang until aborted, resolve after a delay
 * (honouring the abort signal or not), throw, or end the call; VAD on/off with generated caller frames;
 * 8/16 kHz; the pacer's lead; a hang-up or conv.end() at a random time, and a final one.
 *
 * Invariants (every run): the call ends within 10 s (virtual) of the forced end and exactly once; after it
 * nothing is sent, played or scheduled, the history does not change, no transcript line or metrics event
 * appears, every TTS session and LLM stream was finished or stopped; no frame of a reply is sent after the
 * reply was aborted, replies' audio never interleaves, nothing sent before a clear() is heard after it;
 * queued agent audio flows whenever the caller is quiet (no stuck pause), and finished caller words get an
 * answer; transcript: at most one BOT line per reply, "-" exactly on interrupted ones, a complete line is
 * exactly what the reply said and what the caller heard, an interrupted line is a prefix of it and claims
 * no unheard word, HUMAN lines are what the caller said in order, audio the caller heard is in the
 * transcript (a reply cut by the end of the call aside: reported as an observation); every LLM request
 * and the final history have no orphaned or misplaced tool call/result; agent_ended only after an
 * endCall outcome delivered to a live reply; no unhandled promise rejection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AudioFrame } from '../../src/engine/audio/frame.js';
import { Pacer } from '../../src/engine/audio/pacer.js';
import { VirtualClock } from '../../src/engine/clock.js';
import {
  Conversation, ENGINE_AGENT_DEFAULTS, type ConversationEvent, type EndReason, type EngineAgent, type ToolOutcome,
} from '../../src/engine/conversation.js';
import { FakeTransport } from '../../src/engine/testkit/fakeTransport.js';
import { ScriptedLlm, type LlmRule } from '../../src/engine/testkit/scriptedLlm.js';
import { ScriptedStt } from '../../src/engine/testkit/scriptedStt.js';
import { ScriptedTts } from '../../src/engine/testkit/scriptedTts.js';
import type {
  ChatMessage, LanguageModel, LlmChunk, LlmRequest, ProviderErrorKind, TextToSpeech, TtsEvent, TtsSession, ToolCall,
} from '../../src/engine/types.js';
import { createEnergyVad } from '../../src/engine/vad/index.js';
import { rng as mulberry32 } from './vad/audio.js';

// ---------------------------------------------------------------------------------------------------
// PRNG and plan


interface Rng {
  (): number;
  int(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

function rng(seed: number): Rng {
  const r = mulberry32(seed) as Rng;
  r.int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
  r.pick = (xs) => xs[Math.floor(r() * xs.length)];
  r.chance = (p) => r() < p;
  return r;
}

const LONG = 'Your order left our warehouse on Monday and should arrive by Thursday afternoon at the latest.';
const GREETING = 'Hi, thanks for calling Acme. How can I help you today?';

/** What the caller can say: keyword hits for the LLM's rules, plain words (the fallback), backchannels. */
const SAYINGS = {
  order: 'where is my order',
  book: 'book a table for two',
  weather: 'what is the weather like',
  two: 'can you do two things',
  broken: 'this is broken',
  bye: 'goodbye then',
  yes: 'yes',
  other: ['tell me a joke', 'wait stop', 'never mind', 'hmm let me think and', 'actually no', 'hello are you there'],
  backchannel: ['uh-huh', 'yeah', 'okay', 'mm-hmm', 'right', 'sure'],
} as const;

type Trigger = 'gap' | 'endpoint_wait' | 'llm_wait' | 'tool' | 'mid_reply' | 'reply_tail' | 'after_reply';
type ToolBehavior =
  | { kind: 'hang' } // until aborted
  | { kind: 'delay'; ms: number; honorsAbort: boolean; say?: string }
  | { kind: 'throw'; ms: number }
  | { kind: 'endCall'; ms: number; honorsAbort: boolean; say?: string };

interface TurnPlan {
  /** What the turn waits for (since the previous turn's final) before the caller starts. */
  trigger: Trigger;
  /** Extra wait after the trigger. */
  offsetMs: number;
  /** 'cough': loud noise on the line with no words (VAD only). */
  kind: 'say' | 'cough';
  text: string;
  durationMs: number;
  interimEveryMs: number;
  finalDelayMs: number;
  endOfTurn: boolean;
  finalOnly: boolean;
}

interface Plan {
  seed: number;
  sampleRate: number;
  leadMs: number;
  agent: Partial<EngineAgent>;
  llm: { firstTokenMs: number; perWordMs: number; fallback: string; brokenAfterWords: number; brokenKind: ProviderErrorKind; failRequests: number[]; failAfterWords: number };
  tts: { firstAudioMs: number; msPerWord: number; wordTimings: boolean; failAfterWords?: number; failSessions?: number };
  tools: ToolBehavior[];
  vad: boolean;
  turns: TurnPlan[];
  /** An end at a fixed time, independent of the turns (may fall mid-reply, mid-tool, anywhere). */
  endAt: { atMs: number; how: 'hangup' | 'api' } | null;
  /** Quiet time after the last turn before the forced end. */
  tailMs: number;
  finalEnd: 'hangup' | 'api';
}

function makePlan(seed: number): Plan {
  const r = rng(seed);
  const vad = r.chance(0.35);
  const msPerWord = 20 * r.int(3, 18); // whole 20 ms frames: every audio frame carries its reply's mark
  const firstTokenMs = r.int(0, 800);
  const nTurns = r.int(1, 6);
  const turns: TurnPlan[] = [];
  for (let i = 0; i < nTurns; i++) {
    const cough = vad && r.chance(0.2);
    const roll = r();
    const text = cough ? '' : roll < 0.16 ? SAYINGS.order : roll < 0.28 ? SAYINGS.book : roll < 0.38 ? SAYINGS.weather
      : roll < 0.45 ? SAYINGS.two : roll < 0.53 ? SAYINGS.broken : roll < 0.6 ? SAYINGS.bye : roll < 0.66 ? SAYINGS.yes
        : roll < 0.82 ? r.pick(SAYINGS.other) : r.pick(SAYINGS.backchannel);
    const words = text.split(' ').length;
    const trigger = i === 0 ? r.pick<Trigger>(['gap', 'gap', 'after_reply']) : r.pick<Trigger>(['gap', 'endpoint_wait', 'llm_wait', 'tool', 'mid_reply', 'mid_reply', 'reply_tail', 'reply_tail', 'after_reply']);
    const offsetMs = trigger === 'gap' ? r.int(0, 3000) : trigger === 'endpoint_wait' ? r.int(0, 700) : trigger === 'reply_tail' ? r.int(0, 160) : trigger === 'llm_wait' ? Math.floor(r() * (firstTokenMs + 100))
      : trigger === 'mid_reply' ? r.int(0, 2500) : r.int(0, 400);
    turns.push({
      trigger, offsetMs, kind: cough ? 'cough' : 'say', text,
      durationMs: cough ? r.pick([r.int(100, 600), r.int(1500, 3000)]) : r.int(Math.max(150, words * 150), words * 400 + 200),
      interimEveryMs: r.chance(0.4) ? 0 : r.int(50, 400),
      finalDelayMs: r.int(0, 300),
      endOfTurn: r.chance(0.88),
      finalOnly: r.chance(0.1),
    });
  }
  const toolKinds = Array.from({ length: r.int(1, 4) }, (): ToolBehavior => {
    const k = r();
    if (k < 0.25) return { kind: 'hang' };
    if (k < 0.6) return { kind: 'delay', ms: r.int(0, 1500), honorsAbort: r.chance(0.6), say: r.chance(0.3) ? 'One moment please.' : undefined };
    if (k < 0.8) return { kind: 'throw', ms: r.int(0, 800) };
    return { kind: 'endCall', ms: r.int(0, 800), honorsAbort: r.chance(0.6), say: r.chance(0.5) ? 'Goodbye!' : undefined };
  });
  const ttsFails = r.chance(0.3);
  const idle = r.chance(0.25);
  const greet = r.chance(0.3);
  return {
    seed,
    sampleRate: r.chance(0.85) ? 8000 : 16000,
    leadMs: r.pick([40, 60, 120, 120, 200]),
    agent: {
      interruptSensitivity: r.pick(['low', 'high'] as const),
      endpointingSensitivity: r.pick(['auto', 'relaxed', 'sensitive'] as const),
      conversationSpeed: r.pick([0.5, 1, 1, 1.5, 2]),
      dynamicTurns: r.chance(0.2) ? { minWaitMs: r.int(100, 400), maxSilenceMs: r.int(500, 1500) } : null,
      initialMessage: greet ? GREETING : null,
      initialMessageDelayMs: greet ? r.int(0, 1500) : 0,
      initialMessageUninterruptibleMs: greet && r.chance(0.5) ? r.int(300, 3000) : 0,
      idleTimeSeconds: idle ? r.int(2, 8) : null,
      askIfHumanPresentOnIdle: idle && r.chance(0.7),
      maxIdleChecks: r.int(1, 2),
      callDurationSec: r.chance(0.12) ? r.int(5, 40) : null,
      tools: [{ name: 'book', description: 'book', parameters: {} }, { name: 'lookup', description: 'look up', parameters: {} }, { name: 'end_call', description: 'hang up', parameters: {} }],
    },
    llm: {
      firstTokenMs,
      perWordMs: r.int(0, 200),
      fallback: r.pick(['Okay.', 'Sure, I can help with that.', 'Let me think about that for a second.']),
      brokenAfterWords: r.int(0, 4),
      brokenKind: r.pick(['quota', 'timeout', 'network', 'unavailable', 'protocol'] as const),
      failRequests: r.chance(0.3) ? Array.from({ length: 8 }, (_, i) => i).filter(() => r.chance(0.25)) : [],
      failAfterWords: r.int(0, 3),
    },
    tts: {
      firstAudioMs: r.int(0, 400),
      msPerWord,
      wordTimings: r.chance(0.8),
      ...(ttsFails ? { failAfterWords: r.int(0, 6), failSessions: r.chance(0.6) ? r.int(1, 3) : undefined } : {}),
    },
    tools: toolKinds,
    vad,
    turns,
    endAt: r.chance(0.35) ? { atMs: r.int(200, 20_000), how: r.pick(['hangup', 'api'] as const) } : null,
    tailMs: r.pick([0, r.int(0, 2000), r.int(4000, 12_000)]),
    finalEnd: r.pick(['hangup', 'api'] as const),
  };
}

// ---------------------------------------------------------------------------------------------------
// Recording wrappers

interface SentFrame { seq: number; at: number; reply?: number; samples: number }

/** FakeTransport that records every send, clear and hang-up, and refuses (records) sends after hang-up. */
class RecordingTransport extends FakeTransport {
  readonly sent: SentFrame[] = [];
  readonly clearLog: { seq: number; at: number; lastReply?: number }[] = [];
  hungUpAt?: number;
  sentAfterHangup = 0;

  constructor(private readonly vclock: VirtualClock, rate: number, private readonly nextSeq: () => number) { super(vclock, rate); }

  override sendAudio(frame: AudioFrame, markId?: string): void {
    const reply = markId ? Number(markId.split(':')[0]) : undefined;
    this.sent.push({ seq: this.nextSeq(), at: this.vclock.now(), reply, samples: frame.samples.length });
    if (this.hungUpAt !== undefined) { this.sentAfterHangup++; return; }
    super.sendAudio(frame, markId);
  }

  override clear(): void {
    const last = [...this.sent].reverse().find((f) => f.samples > 0 && f.reply !== undefined)?.reply;
    this.clearLog.push({ seq: this.nextSeq(), at: this.vclock.now(), lastReply: last });
    super.clear();
  }

  override hangup(): Promise<void> {
    const p = super.hangup();
    this.hungUpAt ??= this.vclock.now();
    return p;
  }

  override callerHangup(): void {
    this.hungUpAt ??= this.vclock.now();
    super.callerHangup();
  }
}

function wellFormed(messages: ChatMessage[]): string[] {
  const problems: string[] = [];
  const answered = new Set<string>();
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.role === 'assistant' && m.toolCalls?.length) {
      const block = new Set<string>();
      for (let j = i + 1; j < messages.length && messages[j].role === 'tool'; j++) block.add((messages[j] as { toolCallId: string }).toolCallId);
      for (const c of m.toolCalls) if (!block.has(c.id)) problems.push(`orphaned tool call ${c.id} (${c.name}) at message ${i}: no tool result follows it`);
    }
    if (m.role === 'tool') {
      if (answered.has(m.toolCallId)) problems.push(`tool result for ${m.toolCallId} at message ${i} answers a call that already has a result`);
      answered.add(m.toolCallId);
      let k = i - 1;
      while (k >= 0 && messages[k].role === 'tool') k--;
      const owner = messages[k];
      if (!(owner && owner.role === 'assistant' && owner.toolCalls?.some((c) => c.id === m.toolCallId))) {
        problems.push(`tool result for ${m.toolCallId} at message ${i} does not follow the assistant message that made the call`);
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// One run

interface RunResult { violations: string[]; observations: string[]; log: string[]; transcript: string; endReason?: EndReason }

const unhandled: { seed: number; reason: unknown }[] = [];
let currentSeed = 0;
const onUnhandled = (reason: unknown) => { unhandled.push({ seed: currentSeed, reason }); };

async function runPlan(plan: Plan): Promise<RunResult> {
  const violations: string[] = [];
  const observations: string[] = [];
  const log: string[] = [];
  let seq = 0;
  const nextSeq = () => ++seq;
  const clock = new VirtualClock();
  const note = (msg: string) => log.push(`${String(clock.now()).padStart(6)} ${msg}`);
  const rate = plan.sampleRate;
  const transport = new RecordingTransport(clock, rate, nextSeq);
  const stt = new ScriptedStt(clock);

  // ---- LLM: keyword rules, plus failures on chosen request numbers ----
  let requestNo = 0;
  const failSet = new Set(plan.llm.failRequests);
  const rules: LlmRule[] = [
    { when: () => failSet.has(requestNo++), reply: 'Hmm, one moment while I check that.', error: { kind: 'unavailable', afterWords: plan.llm.failAfterWords } },
    { when: 'order', reply: LONG },
    { when: 'book', reply: 'Let me book that for you.', toolCalls: [{ name: 'book', arguments: '{"party":2}' }] },
    { when: 'weather', reply: 'Let me check.', toolCalls: [{ name: 'lookup', arguments: '{"q":"weather"}' }] },
    { when: 'two things', reply: '', toolCalls: [{ name: 'lookup', arguments: '{}' }, { name: 'book', arguments: '{}' }] },
    { when: 'broken', reply: 'Let me check on that right now for you.', error: { kind: plan.llm.brokenKind, afterWords: plan.llm.brokenAfterWords } },
    { when: 'goodbye', reply: 'Goodbye, have a nice day.', toolCalls: [{ name: 'end_call', arguments: '{}' }] },
    { when: 'yes', reply: 'Great, booked.' },
  ];
  const scriptedLlm = new ScriptedLlm(clock, { rules, fallback: plan.llm.fallback, firstTokenMs: plan.llm.firstTokenMs, perWordMs: plan.llm.perWordMs });
  const scriptedTts = new ScriptedTts(clock, plan.tts);

  // ---- reply bookkeeping: every reply's signal is seen first by tts.open, right after newReply ----
  let conv!: Conversation;
  const peekReplyId = () => (conv as unknown as { reply?: { id: number } }).reply?.id;
  const bargeOpen = () => (conv as unknown as { barge?: object }).barge !== undefined;
  const replyOf = new Map<AbortSignal, number>();
  const abortSeq = new Map<number, number>();
  const abortAt = new Map<number, number>();
  const expectedWords = new Map<number, string[]>();
  const fromLlm = new Set<number>();
  const ttsSessions: { reply: number; closed: boolean; no: number }[] = [];
  const llmStreams: { reply: number; closed: boolean }[] = [];
  let ended: EndReason | undefined;
  const endCallDelivered: number[] = [];
  // Pieces (LLM chunks, tool lines, fixed lines) are word-aligned, so a reply's words are the pieces' words in order.
  const appendExpected = (id: number, text: string) => expectedWords.set(id, [...(expectedWords.get(id) ?? []), ...text.split(/\s+/).filter(Boolean)]);
  let endBeganSeq = Infinity;
  let historyAtEnd = '';

  const idOf = (signal: AbortSignal, where: string): number => {
    const id = replyOf.get(signal);
    if (id === undefined) { violations.push(`harness: ${where} got a signal no TTS session was opened with`); return -1; }
    return id;
  };

  const tts: TextToSpeech = {
    async open(o, signal) {
      if (!replyOf.has(signal)) {
        const id = peekReplyId();
        if (id === undefined) violations.push('harness: a TTS session was opened with no current reply');
        const rid = id ?? -1;
        replyOf.set(signal, rid);
        const onAbort = () => { abortSeq.set(rid, nextSeq()); abortAt.set(rid, clock.now()); note(`reply ${rid} aborted`); };
        if (signal.aborted) onAbort(); else signal.addEventListener('abort', onAbort, { once: true });
      }
      const rid = replyOf.get(signal)!;
      const rec = { reply: rid, closed: false, no: ttsSessions.length + 1 };
      ttsSessions.push(rec);
      const firstSession = ttsSessions.filter((s) => s.reply === rid).length === 1;
      const inner = await scriptedTts.open(o, signal);
      const session: TtsSession = {
        pushText(t) { if (firstSession && !fromLlm.has(rid)) appendExpected(rid, t); inner.pushText(t); },
        flush() { inner.flush(); },
        cancel() { rec.closed = true; inner.cancel(); },
        async *events(): AsyncIterable<TtsEvent> {
          try { for await (const e of inner.events()) yield e; } finally { rec.closed = true; }
        },
      };
      return session;
    },
  };

  const llm: LanguageModel = {
    stream(request: LlmRequest, signal: AbortSignal): AsyncIterable<LlmChunk> {
      const rid = idOf(signal, 'llm.stream');
      fromLlm.add(rid);
      for (const p of wellFormed(request.messages)) violations.push(`LLM request ${requestNo + 1} (reply ${rid}): ${p}`);
      const last = request.messages.at(-1);
      if (last && last.role !== 'user' && last.role !== 'tool') violations.push(`LLM request (reply ${rid}) ends with a ${last.role} message`);
      if (ended !== undefined) violations.push(`LLM request (reply ${rid}) made after the call ended`);
      const rec = { reply: rid, closed: false };
      llmStreams.push(rec);
      note(`llm request for reply ${rid}`);
      const inner = scriptedLlm.stream(request, signal);
      return (async function* () {
        try {
          for await (const c of inner) {
            if (c.type === 'text') appendExpected(rid, c.text);
            yield c;
          }
        } catch (e) {
          note(`llm stream of reply ${rid} threw: ${(e as Error).message}`);
          throw e;
        } finally { rec.closed = true; }
      })();
    },
  };

  // ---- tools ----
  let toolCalls = 0;
  const runTool = async (call: ToolCall, signal: AbortSignal): Promise<ToolOutcome> => {
    const rid = idOf(signal, 'runTool');
    const b = plan.tools[toolCalls++ % plan.tools.length];
    const behavior: ToolBehavior = call.name === 'end_call' && b.kind !== 'hang' ? { kind: 'endCall', ms: 'ms' in b ? b.ms : 0, honorsAbort: 'honorsAbort' in b ? b.honorsAbort : true, say: 'Goodbye!' } : b;
    note(`tool ${call.name} (${call.id}) for reply ${rid}: ${JSON.stringify(behavior)}`);
    const deliver = (o: ToolOutcome): ToolOutcome => {
      note(`tool ${call.id} returns ${JSON.stringify(o)}${signal.aborted ? ' (after its reply was aborted)' : ''}`);
      if (o.say) appendExpected(rid, o.say);
      if (o.endCall && !signal.aborted) endCallDelivered.push(rid);
      return o;
    };
    switch (behavior.kind) {
      case 'hang':
        return new Promise<ToolOutcome>((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      case 'delay':
        await clock.sleep(behavior.ms, behavior.honorsAbort ? signal : undefined);
        return deliver({ result: JSON.stringify({ ok: true, tool: call.name }), say: behavior.say });
      case 'throw':
        await clock.sleep(behavior.ms, signal);
        throw new Error(`tool ${call.name} failed`);
      case 'endCall':
        await clock.sleep(behavior.ms, behavior.honorsAbort ? signal : undefined);
        return deliver({ result: '{"ended":true}', say: behavior.say, endCall: true });
    }
  };

  // ---- the call ----
  let pacer!: Pacer;
  conv = new Conversation({
    agent: { ...ENGINE_AGENT_DEFAULTS, prompt: 'You are a helpful agent.', idleTimeSeconds: null, ...plan.agent },
    transport, stt, llm, tts, clock, runTool,
    vad: plan.vad ? createEnergyVad() : undefined,
    pacer: (send) => (pacer = new Pacer({ clock, sampleRate: rate, send, leadMs: plan.leadMs })),
  });
  const events: ConversationEvent[] = [];
  const botLines: { reply?: number; text: string; interrupted: boolean; at: number }[] = [];
  let linesAfterEnd = 0;
  conv.on((e) => {
    events.push(e);
    if (ended !== undefined && e.type !== 'ended') {
      if (e.type === 'transcript') linesAfterEnd++;
      else if (e.type !== 'tool_call' && e.type !== 'error') violations.push(`a ${e.type} event after the call ended`);
      else observations.push(`${e.type} event after the end`);
    }
    switch (e.type) {
      case 'transcript':
        if (e.line.sender === 'BOT') botLines.push({ reply: peekReplyId(), text: e.line.text, interrupted: !!e.line.interrupted, at: clock.now() });
        note(`transcript ${e.line.sender}${e.line.sender === 'BOT' ? `(reply ${peekReplyId()})` : ''}: ${e.line.text}${e.line.interrupted ? '-' : ''}`);
        break;
      case 'ended':
        if (ended !== undefined) violations.push(`a second ended event (${e.reason})`);
        ended = e.reason;
        note(`ended: ${e.reason}`);
        historyAtEnd = JSON.stringify(conv.history);
        for (const p of wellFormed(conv.history)) violations.push(`history at the end: ${p}`);
        break;
      case 'error': note(`error (${e.stage}): ${e.error.message}`); break;
      case 'tool_call': note(`tool_call event ${e.call.id}${e.error ? ` error ${e.error}` : ''}`); break;
      default: break;
    }
  });

  // Caller audio for the VAD: quiet line noise, loud while the caller speaks or coughs.
  const loud: [number, number][] = [];
  let lastSayEnd = 0;
  let feeding = plan.vad;
  let noise = plan.seed * 7 + 1;
  const frameSamples = rate / 50;
  const feed = (t: number) => {
    if (!feeding) return;
    const amp = loud.some(([a, b]) => t >= a && t < b) ? 8000 : 30;
    const samples = new Int16Array(frameSamples);
    for (let i = 0; i < frameSamples; i++) samples[i] = Math.round((((noise = (noise * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff) * 2 - 1) * amp);
    if (transport.hungUpAt === undefined) transport.callerAudio({ samples, sampleRate: rate, timestampMs: t });
    clock.setTimeout(() => feed(t + 20), 20);
  };

  // Every end (caller, API, idle, duration limit, endCall) goes through end(): note when the first began.
  const realEnd = conv.end.bind(conv);
  conv.end = (reason) => { if (endBeganSeq === Infinity) endBeganSeq = nextSeq(); return realEnd(reason); };
  await conv.start();
  if (plan.vad) clock.setTimeout(() => feed(0), 0);

  const forceEnd = (how: 'hangup' | 'api', why: string) => {
    if (ended !== undefined || transport.hungUpAt !== undefined) return;
    note(`${why}: ${how === 'hangup' ? 'caller hangs up' : 'conv.end()'}`);
    if (how === 'hangup') transport.callerHangup();
    else void conv.end('api');
  };
  const endTimer = plan.endAt ? clock.setTimeout(() => forceEnd(plan.endAt!.how, 'scheduled end'), plan.endAt.atMs) : undefined;

  const over = () => ended !== undefined || transport.hungUpAt !== undefined;
  // Liveness, checked at every step: agent audio waiting in the pacer must flow unless the caller is
  // (or was just) making sound — any barge-in resolves within 2 s of onset or 400 ms after the speech.
  let stalled = false;
  const checkFlow = () => {
    const now = clock.now();
    const lastSent = transport.sent.at(-1)?.at ?? 0;
    const quietSince = Math.max(0, ...loud.map(([, b]) => b), lastSayEnd);
    if (!stalled && !over() && pacer.queuedMs() > 0 && now - lastSent > 3000 && now - quietSince > 3000) {
      stalled = true;
      violations.push(`${pacer.queuedMs()} ms of agent audio queued but nothing sent since ${lastSent} although the caller has been silent since ${quietSince} (output ${pacer.isPaused() ? 'paused' : 'not paused'}, barge-in ${bargeOpen() ? 'open' : 'none'}): the agent is muted`);
    }
  };
  const advanceUntil = async (cond: () => boolean, maxMs: number, step = 10) => {
    for (let t = 0; t < maxMs && !cond() && !over(); t += step) { await clock.advance(step); checkFlow(); }
  };
  const nonEmptySent = () => transport.sent.filter((f) => f.samples > 0).length;

  let lastActivityEnd = 0;
  for (const [i, turn] of plan.turns.entries()) {
    if (over()) break;
    const base = { requests: scriptedLlm.requests.length, tools: toolCalls, sent: nonEmptySent(), bot: botLines.length };
    const trig: Record<Trigger, () => boolean> = {
      gap: () => true,
      endpoint_wait: () => true,
      llm_wait: () => scriptedLlm.requests.length > base.requests,
      tool: () => toolCalls > base.tools,
      mid_reply: () => nonEmptySent() > base.sent,
      reply_tail: () => nonEmptySent() > base.sent && pacer.queuedMs() === 0 && botLines.length === base.bot,
      after_reply: () => botLines.length > base.bot,
    };
    await advanceUntil(trig[turn.trigger], 6000);
    await advanceUntil(() => false, turn.offsetMs);
    if (over()) break;
    const start = clock.now();
    lastActivityEnd = start + turn.durationMs + turn.finalDelayMs;
    loud.push([start, start + turn.durationMs]);
    if (turn.kind === 'cough') {
      note(`turn ${i}: cough ${turn.durationMs} ms (after ${turn.trigger}+${turn.offsetMs})`);
      await advanceUntil(() => false, turn.durationMs);
      continue;
    }
    note(`turn ${i}: caller says "${turn.text}" (after ${turn.trigger}+${turn.offsetMs})`);
    let said = false;
    stt.say({ text: turn.text, durationMs: turn.durationMs, interimEveryMs: turn.interimEveryMs, finalDelayMs: turn.finalDelayMs, endOfTurn: turn.endOfTurn, finalOnly: turn.finalOnly })
      .then(() => { said = true; }, (e: unknown) => violations.push(`harness: stt.say failed: ${String(e)}`));
    await advanceUntil(() => said, 20_000);
    lastSayEnd = clock.now();
  }

  // Quiet tail, then the check that nothing is stuck: the caller has been silent long enough for any
  // barge-in to resolve (2 s long-speech window + 400 ms grace), so output must not be paused.
  await advanceUntil(() => false, plan.tailMs, 20);
  // Words the caller finished (vendor end of turn) must be answered: no endpoint wait exceeds 3 s
  // (dynamic turns at half speed), so after 4 s of quiet none may still be pending.
  const pendingWords = (conv as unknown as { userText: string }).userText;
  const lastSay = [...plan.turns].reverse().find((t) => t.kind === 'say');
  if (!over() && clock.now() - lastActivityEnd >= 4000 && pendingWords && lastSay?.endOfTurn) {
    violations.push(`the caller's words "${pendingWords}" are still waiting for an answer ${clock.now() - lastActivityEnd} ms after the caller's last sound, with no endpoint coming`);
  }
  if (!over() && clock.now() - lastActivityEnd >= 3000 && pacer.isPaused()) {
    violations.push(`output is still paused ${clock.now() - lastActivityEnd} ms after the caller's last sound (queued ${pacer.queuedMs()} ms, barge-in ${bargeOpen() ? 'open' : 'none'}): the agent is muted`);
  }

  // ---- forced end, under a watchdog ----
  forceEnd(plan.finalEnd, 'final end');
  endTimer?.cancel();
  let done: EndReason | undefined;
  void conv.done.then((r) => { done = r; });
  const endStarted = clock.now();
  for (let t = 0; t < 10_000 && done === undefined; t += 50) await clock.advance(50);
  if (done === undefined) violations.push(`conv.done did not resolve within 10 s (virtual) of the end being forced at ${endStarted}`);
  feeding = false;

  // ---- after the end: nothing keeps running ----
  const sentAtEnd = transport.sent.length;
  const playedAtEnd = transport.played.length;
  await clock.advance(120_000);
  if (transport.sent.length > sentAtEnd) violations.push(`${transport.sent.length - sentAtEnd} frames sent to the transport after the call ended`);
  if (transport.sentAfterHangup > 0) violations.push(`${transport.sentAfterHangup} sendAudio calls after the transport was hung up`);
  if (transport.played.length > playedAtEnd) violations.push('audio played after the call ended');
  if (clock.pending() !== 0) violations.push(`${clock.pending()} timers still pending 120 s after the end`);
  if (JSON.stringify(conv.history) !== historyAtEnd) {
    violations.push('the history changed after the call ended');
    for (const p of wellFormed(conv.history)) violations.push(`final history: ${p}`);
  }
  if (linesAfterEnd) violations.push(`${linesAfterEnd} transcript lines recorded after the call ended`);
  if (events.filter((e) => e.type === 'ended').length !== 1) violations.push(`${events.filter((e) => e.type === 'ended').length} ended events`);
  for (const s of ttsSessions) if (!s.closed) violations.push(`TTS session #${s.no} (reply ${s.reply}) was never cancelled nor finished: left open after the call`);
  for (const s of llmStreams) if (!s.closed) violations.push(`an LLM stream of reply ${s.reply} was never finished nor stopped`);

  // ---- audio invariants ----
  const audio = transport.sent.filter((f) => f.samples > 0);
  for (const f of audio) if (f.reply === undefined) observations.push(`unmarked audio frame at ${f.at}`);
  // No frame of a reply is handed to the transport after that reply was aborted.
  const lateByReply = new Map<number, SentFrame[]>();
  for (const f of audio) {
    const a = f.reply !== undefined ? abortSeq.get(f.reply) : undefined;
    if (a !== undefined && f.seq > a) lateByReply.set(f.reply!, [...(lateByReply.get(f.reply!) ?? []), f]);
  }
  for (const [r, fs] of lateByReply) {
    violations.push(`reply ${r} was aborted at ${abortAt.get(r)} but ${fs.length} of its frames (${fs.length * 20} ms) were sent after that (${fs[0].at}..${fs.at(-1)!.at})`);
  }
  // Replies never interleave: once a later reply's audio went out, no earlier reply's audio follows.
  let maxReply = 0;
  for (const f of audio) {
    if (f.reply === undefined) continue;
    if (f.reply < maxReply) { violations.push(`audio of reply ${f.reply} sent at ${f.at} after audio of the later reply ${maxReply}`); break; }
    maxReply = f.reply;
  }
  // A clear stops everything sent before it: nothing of those replies is heard after the clear.
  for (const c of transport.clearLog) {
    if (c.lastReply === undefined) continue;
    const heardAfter = transport.played.filter((p) => {
      const r = p.markId ? Number(p.markId.split(':')[0]) : undefined;
      return r !== undefined && r <= c.lastReply! && p.endMs > c.at;
    });
    if (heardAfter.length) violations.push(`after the clear at ${c.at}, ${heardAfter.length} frames of reply ≤ ${c.lastReply} still played (until ${heardAfter.at(-1)!.endMs})`);
  }

  // ---- transcript invariants ----
  const heardMs = new Map<number, number>();
  for (const p of transport.played) {
    if (!p.markId) continue;
    const r = Number(p.markId.split(':')[0]);
    heardMs.set(r, (heardMs.get(r) ?? 0) + (p.endMs - p.startMs));
  }
  const w = plan.tts.msPerWord;
  const words = (s: string) => s.split(/\s+/).filter(Boolean);
  const linesByReply = new Map<number, number>();
  for (const b of botLines) {
    if (b.reply === undefined) { violations.push(`BOT line "${b.text}" recorded with no current reply`); continue; }
    linesByReply.set(b.reply, (linesByReply.get(b.reply) ?? 0) + 1);
    const n = words(b.text).length;
    const heard = heardMs.get(b.reply) ?? 0;
    const expected = expectedWords.get(b.reply) ?? [];
    if (!b.interrupted) {
      if (Math.abs(n * w - heard) > 1) violations.push(`BOT line of reply ${b.reply} ("${b.text}") has ${n} words (${n * w} ms of audio) but the caller heard ${heard} ms of that reply`);
      if (b.text.trim() !== expected.join(' ')) violations.push(`BOT line of reply ${b.reply} is "${b.text}" but the reply said "${expected.join(' ')}"`);
    } else {
      if (words(b.text).some((x, k) => expected[k] !== x)) violations.push(`interrupted BOT line of reply ${b.reply} ("${b.text}") is not a prefix of what it said ("${expected.join(' ')}")`);
      if (plan.tts.wordTimings && n * w > heard + 0.4 * w + 1) violations.push(`interrupted BOT line of reply ${b.reply} claims ${n} words (${n * w} ms) but only ${heard} ms of it was heard`);
    }
  }
  for (const [r, n] of linesByReply) if (n > 1) violations.push(`reply ${r} has ${n} BOT lines`);
  const rendered = conv.transcript.toString().split('\n');
  conv.transcript.lines.forEach((l, k) => {
    if (l.sender === 'BOT' && l.interrupted && !rendered[k]?.endsWith('-')) violations.push(`interrupted BOT line ${k} renders without "-": ${rendered[k]}`);
    if (l.sender === 'BOT' && !l.interrupted && rendered[k]?.endsWith('-')) violations.push(`complete BOT line ${k} renders with "-": ${rendered[k]}`);
    if (!l.interrupted && l.text.trim() === '') violations.push(`empty ${l.sender} line ${k}`);
  });
  // HUMAN lines are made of what the caller said, in order: each line joins utterances said after those
  // of the previous line (the engine may drop some, e.g. words over an uninterruptible greeting).
  const saidTexts = plan.turns.filter((t) => t.kind === 'say').map((t) => words(t.text));
  const matchLine = (ws: string[], from: number): number => {
    if (ws.length === 0) return from;
    for (let k = from; k < saidTexts.length; k++) {
      const u = saidTexts[k];
      if (u.length <= ws.length && u.every((x, j) => ws[j] === x)) {
        const end = matchLine(ws.slice(u.length), k + 1);
        if (end >= 0) return end;
      }
    }
    return -1;
  };
  let cursor = 0;
  for (const l of conv.transcript.lines.filter((x) => x.sender === 'HUMAN')) {
    const end = matchLine(words(l.text), cursor);
    if (end < 0) violations.push(`HUMAN line "${l.text}" is not made of what the caller said after the previous HUMAN line, in order`);
    else cursor = end;
  }
  // Audio the caller heard is in the transcript (a reply still playing when the call ended aside).
  for (const [r, ms] of heardMs) {
    if (ms < 0.6 * w || linesByReply.has(r)) continue;
    if (abortSeq.has(r) && abortSeq.get(r)! > endBeganSeq) { observations.push(`reply ${r} (${ms} ms heard) was cut by the end of the call and has no BOT line`); continue; }
    violations.push(`the caller heard ${ms} ms of reply ${r} but the transcript has no BOT line for it`);
  }

  // ---- how the call ended ----
  if (ended === 'agent_ended' && !endCallDelivered.some((r) => !abortSeq.has(r))) {
    violations.push(`the call ended as agent_ended but no reply that ran to completion got an endCall outcome (delivered to: ${endCallDelivered.join(',') || 'none'})`);
  }
  if (done !== undefined && done !== ended) violations.push(`conv.done resolved ${done} but the ended event said ${ended}`);

  return { violations, observations, log, transcript: conv.transcript.toString(), endReason: ended };
}

// ---------------------------------------------------------------------------------------------------
// The suite

const single = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const runs = Number(process.env.FUZZ_RUNS ?? 200);
const baseSeed = Number(process.env.FUZZ_BASE ?? 1);
const seeds = single !== undefined ? [single] : Array.from({ length: runs }, (_, i) => baseSeed + i);

function report(plan: Plan, res: RunResult): string {
  return [
    `seed ${plan.seed}: ${res.violations.length} invariant violation(s) — replay with FUZZ_SEED=${plan.seed} npx vitest run test/engine/fuzz.test.ts`,
    ...res.violations.map((v) => `  ✗ ${v}`),
    ...(res.observations.length ? ['observations:', ...res.observations.map((o) => `  · ${o}`)] : []),
    `plan: ${JSON.stringify(plan)}`,
    'transcript:', ...res.transcript.split('\n').map((l) => `  ${l}`),
    'timeline:', ...res.log.slice(-120).map((l) => `  ${l}`),
  ].join('\n');
}

describe('conversation fuzz', () => {
  beforeAll(() => { process.on('unhandledRejection', onUnhandled); });
  afterAll(() => { process.off('unhandledRejection', onUnhandled); });

  it.each(seeds)('seed %i', async (seed) => {
    currentSeed = seed;
    const plan = makePlan(seed);
    const before = unhandled.length;
    const res = await runPlan(plan);
    await new Promise((r) => setImmediate(r));
    for (const u of unhandled.slice(before)) res.violations.push(`unhandled rejection: ${u.reason instanceof Error ? u.reason.stack : String(u.reason)}`);
    if (single !== undefined && !res.violations.length) console.log(report(plan, res));
    if (res.violations.length) expect.fail(report(plan, res));
  });
});
