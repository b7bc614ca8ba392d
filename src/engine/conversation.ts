import { durationMs, type AudioFrame } from './audio/frame.js';
import { rmsDbfs } from './audio/mix.js';
import type { Clock, Timer } from './clock.js';
import { fillTemplate } from './templating.js';
import { SpokenUtterance, Transcript, type TranscriptLine } from './transcript.js';
import { endpointDelayMs } from './turns/endpointing.js';
import { confirmsInterruption, type InterruptSensitivity } from './turns/interruptPolicy.js';
import { handsOffCaller, type ActionRunner } from './actions/index.js';
import type { VadEvent, VoiceActivityDetector } from './vad/index.js';
import type {
  ChatMessage, LanguageModel, SpeechToText, SttEvent, SttSession, TextToSpeech, ToolCall, ToolSpec, Transport, TransportEvent,
} from './types.js';

/** The engine's view of an agent: what the stored agent becomes once templated and resolved. */
export interface EngineAgent {
  prompt: string;
  initialMessage: string | null;
  initialMessageDelayMs: number;
  /** The initial message cannot be interrupted during its first this-many ms. */
  initialMessageUninterruptibleMs: number;
  language: string;
  temperature: number;
  model?: string;
  interruptSensitivity: InterruptSensitivity;
  endpointingSensitivity: 'auto' | 'relaxed' | 'sensitive';
  /** Vocode's conversation_speed: above 1 the agent answers sooner, below 1 it waits longer. */
  conversationSpeed: number;
  /** Fluents' dynamic turns: wait less after a complete sentence, longer after a trailing word. */
  dynamicTurns: { minWaitMs: number; maxSilenceMs: number } | null;
  idleTimeSeconds: number | null;
  askIfHumanPresentOnIdle: boolean;
  maxIdleChecks: number;
  /** Idle checks allowed over the whole call (Fluents); consecutive checks reset when the caller speaks. */
  maxAggregateIdleChecks: number | null;
  /** Once the caller has spoken, this idle timeout replaces idleTimeSeconds (Fluents). */
  idleAfterInteractionSeconds: number | null;
  idleMessage: string;
  callDurationSec: number | null;
  /** Caller audio quieter than this (dBFS) counts as silence: background voices do not take turns. */
  minVolumeDbfs: number | null;
  tools: ToolSpec[];
  /** Spoken when the language model fails mid-call; the call goes on. */
  apology: string;
}

export const ENGINE_AGENT_DEFAULTS: Omit<EngineAgent, 'prompt'> = {
  initialMessage: null, initialMessageDelayMs: 0, initialMessageUninterruptibleMs: 0, language: 'en', temperature: 0,
  interruptSensitivity: 'low', endpointingSensitivity: 'auto', conversationSpeed: 1, dynamicTurns: null, idleTimeSeconds: 30,
  askIfHumanPresentOnIdle: false, maxIdleChecks: 1, maxAggregateIdleChecks: null, idleAfterInteractionSeconds: null, idleMessage: 'Are you still there?', callDurationSec: null, minVolumeDbfs: null, tools: [],
  apology: "Sorry, I'm having trouble answering right now. Could you say that again?",
};

export interface ToolOutcome {
  /** Returned to the language model as the tool's result. */
  result: string;
  /** Spoken to the caller before the model continues. */
  say?: string;
  /** Ends the call once the agent finishes speaking. */
  endCall?: boolean;
  /**
   * The caller has left the agent for someone else (a transfer, or a hold or conference that took them off
   * the stream): the conversation ends (`handed_off`) once the reply has played, without hanging up their call.
   */
  handedOff?: boolean;
}

/** What the engine needs from the pacing layer between replies and the transport. */
export interface OutputPacer {
  push(frame: AudioFrame, markId?: string): void;
  /** End of an utterance: send the last partial frame (padded) without waiting for more audio. */
  flush(): void;
  pause(): void;
  resume(): void;
  /** Drops everything not yet handed to the transport. */
  clear(): void;
}

/** `handed_off`: an action handed the caller to someone else; their call goes on without the agent. */
export type EndReason = 'caller_hangup' | 'agent_ended' | 'handed_off' | 'idle' | 'max_duration' | 'api' | 'error';

export interface TurnMetrics {
  turn: number;
  speechEndMs?: number;
  sttFinalMs?: number;
  endpointMs?: number;
  llmFirstTokenMs?: number;
  ttsFirstAudioMs?: number;
  firstFrameSentMs?: number;
  interruptedAtMs?: number;
}

export type ConversationEvent =
  | { type: 'transcript'; line: TranscriptLine }
  | { type: 'tool_call'; call: ToolCall; outcome?: ToolOutcome; error?: string }
  | { type: 'metrics'; metrics: TurnMetrics }
  | { type: 'error'; error: Error; stage: 'stt' | 'llm' | 'tts' | 'tool' | 'vad' }
  | { type: 'dtmf'; digits: string }
  | { type: 'ended'; reason: EndReason };

export interface ConversationOptions {
  agent: EngineAgent;
  variables?: Record<string, string>;
  transport: Transport;
  stt: SpeechToText;
  llm: LanguageModel;
  tts: TextToSpeech;
  clock: Clock;
  pacer: (send: (frame: AudioFrame, markId?: string) => void) => OutputPacer;
  /** Voice activity on the caller's audio: speech onset pauses the agent before any transcript exists. */
  vad?: VoiceActivityDetector;
  /** The agent's actions: tools for the model, phrase triggers after agent lines, transport actions. */
  actions?: ActionRunner;
  /** Runs tool calls instead of `actions` (tests, custom tools). */
  runTool?: (call: ToolCall, signal: AbortSignal) => Promise<ToolOutcome>;
}

/** Talking over the agent this long is an interruption even before any word is transcribed. */
const LONG_SPEECH_MS = 2000;
/** After the caller stops, how long a final may take to confirm (or not) that they interrupted. */
const FINAL_GRACE_MS = 400;
const MAX_TOOL_ROUNDS = 4;
/** A closing line cannot be interrupted (longer than any line takes to say). */
const SAY_UNINTERRUPTIBLE_MS = 3_600_000;

/** When the caller's words ended and were transcribed, kept until the turn they belong to is answered. */
type CallerTiming = Pick<TurnMetrics, 'speechEndMs' | 'sttFinalMs' | 'endpointMs'>;

class Aborted extends Error {
  constructor() { super('reply aborted'); }
}

/** `text` without its first `n` words, keeping the spacing of the rest. */
function dropWords(text: string, n: number): string {
  const word = /\S+\s*/g;
  word.lastIndex = text.length - text.trimStart().length;
  for (let i = 0; i < n; i++) if (!word.exec(text)) return '';
  return text.slice(word.lastIndex);
}

/** How an action's outcome ends the call, if it does: a hand-off outweighs an end-call. */
function endReasonOf(outcome: ToolOutcome): EndReason | undefined {
  return outcome.handedOff ? 'handed_off' : outcome.endCall ? 'agent_ended' : undefined;
}

/** Speech synthesis failed for good mid-reply: what already played stands. */
class TtsFailure extends Error {
  constructor(override readonly cause: unknown) { super(cause instanceof Error ? cause.message : String(cause)); }
}

/**
 * One reply of the agent. It owns one cancellation scope: aborting it stops the LLM stream, the TTS
 * stream, running tools and queued audio together.
 */
class Reply {
  readonly controller = new AbortController();
  readonly utterance = new SpokenUtterance();
  playedMs = 0;
  /** Where this reply's messages start in the history, so an interruption can rewrite them. */
  historyStart = 0;
  /** The text of the reply's last round: what goes into the history once it has all played. */
  finalText = '';
  /** This turn's timings: the caller's side (if the reply answers them) and the reply's own. */
  readonly metrics: TurnMetrics;
  private drained?: () => void;

  constructor(readonly id: number, readonly startedAt: number, readonly uninterruptibleUntil: number, input: CallerTiming) {
    this.metrics = { turn: id, ...input };
  }

  get signal(): AbortSignal { return this.controller.signal; }

  markPlayed(ms: number): void {
    this.playedMs = Math.max(this.playedMs, ms);
    if (this.drained && this.playedMs >= this.utterance.audioMs) this.drained();
  }

  /** Resolves once every produced frame has played (or the reply is aborted). */
  allPlayed(): Promise<void> {
    if (this.playedMs >= this.utterance.audioMs) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.drained = resolve;
      this.signal.addEventListener('abort', () => reject(new Aborted()), { once: true });
    });
  }
}

/**
 * The real-time conversation: listening → thinking → speaking, with barge-in. Knows nothing about
 * HTTP, storage, carriers or vendors: it gets a transport, providers and a clock.
 */
export class Conversation {
  readonly transcript = new Transcript();
  readonly history: ChatMessage[] = [];
  readonly done: Promise<EndReason>;
  private listeners = new Set<(e: ConversationEvent) => void>();
  private resolveDone!: (r: EndReason) => void;
  private stt?: SttSession;
  private pacer: OutputPacer;
  private reply?: Reply;
  private replies = 0;
  private ended = false;
  private unsubscribe: (() => void)[] = [];
  private timers: Timer[] = [];
  /** The caller is talking over the agent; output is paused until words confirm or the window ends. */
  private barge?: { at: number; timer: Timer; speechEnded?: boolean };
  private userText = '';
  /** Where the VAD's latest speech began (call clock): a turn-closing final that ends before it is about earlier words. */
  private vadSpeechStartMs = -Infinity;
  private vadFailed = false;
  /** The STT closed the caller's turn (see paceStt). */
  private sttTurnClosed = false;
  private sttIdle = false;
  private endpointTimer?: Timer;
  private idleTimer?: Timer;
  private idleChecks = 0;
  private idleChecksTotal = 0;
  private callerSpoke = false;
  /** How the call ends once the current reply has played (an end-call or hand-off action, a closing line). */
  private endAfterReply?: EndReason;
  /** The agent is saying its last line (say() with endCall): caller turns are recorded, not answered. */
  private closing = false;
  /**
   * An action that may hand the caller off is under way (all said before it has been heard): talking over
   * it does not take it back, and the stream closing is its doing (Twilio moves the caller off the stream).
   */
  private handingOff = false;
  /** The stream closed while a hand-off was under way: unless it handed the caller off, they hung up. */
  private streamClosed = false;
  /** Timings of the caller turn being heard; they move into the reply that answers it. */
  private callerTiming: CallerTiming & { startMs?: number } = {};
  /** Call-clock time of the STT session's audio time 0 (its first frame); vendors time events by audio received. */
  private sttOrigin?: number;
  private sttOpenedAt = 0;
  /** Aborted when the call ends: work that outlives a reply (phrase-triggered actions) stops with it. */
  private readonly lifetime = new AbortController();

  constructor(private readonly o: ConversationOptions) {
    this.done = new Promise((r) => { this.resolveDone = r; });
    this.pacer = o.pacer((frame, markId) => {
      // Only the current reply's audio is ever queued: abandoning a reply clears the pacer.
      if (this.reply) this.reply.metrics.firstFrameSentMs ??= o.clock.now();
      o.transport.sendAudio(frame, markId);
    });
    const vars = o.variables ?? {};
    this.history.push({ role: 'system', content: fillTemplate(o.agent.prompt, vars) });
  }

  on(listener: (e: ConversationEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: ConversationEvent): void {
    for (const l of [...this.listeners]) l(e);
  }

  async start(): Promise<void> {
    const { o } = this;
    this.stt = await o.stt.open({ sampleRate: o.transport.sampleRate, language: o.agent.language });
    this.sttOpenedAt = o.clock.now();
    this.unsubscribe.push(this.stt.on((e) => this.onStt(e)));
    this.unsubscribe.push(o.transport.on((e) => this.onTransport(e)));
    if (o.agent.callDurationSec) {
      this.timers.push(o.clock.setTimeout(() => void this.end('max_duration'), o.agent.callDurationSec * 1000));
    }
    if (o.agent.initialMessage) {
      const text = fillTemplate(o.agent.initialMessage, o.variables ?? {});
      this.timers.push(o.clock.setTimeout(() => void this.speak(text, o.agent.initialMessageUninterruptibleMs), o.agent.initialMessageDelayMs));
    } else {
      this.armIdle();
    }
  }

  /** Ends the call: stops the reply, closes the STT, hangs up unless the caller already did or was handed off. */
  async end(reason: EndReason = 'api'): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.lifetime.abort(new Aborted());
    if (this.reply) this.abandon(this.reply);
    this.pacer.clear();
    for (const t of [...this.timers, this.endpointTimer, this.idleTimer, this.barge?.timer]) t?.cancel();
    this.o.vad?.close();
    for (const u of this.unsubscribe) u();
    await this.stt?.close().catch(() => {});
    if (reason !== 'caller_hangup' && reason !== 'handed_off') await this.o.transport.hangup().catch(() => {});
    this.emit({ type: 'ended', reason });
    this.resolveDone(reason);
  }

  /**
   * Speaks `text` now, in place of anything the agent was saying: a voicemail message after the beep, a
   * goodbye. With `endCall` the line cannot be interrupted, caller turns are no longer answered, and the
   * call ends once the line has played (or soon after, should speech synthesis fail).
   */
  async say(text: string, opts: { endCall?: boolean } = {}): Promise<void> {
    if (this.ended || this.closing) return;
    if (opts.endCall) {
      this.closing = true;
      this.endAfterReply = 'agent_ended';
      this.endpointTimer?.cancel();
      this.idleTimer?.cancel();
      // A line the TTS cannot voice must not keep the call open: allow it a generous speaking time.
      const words = text.split(/\s+/).length;
      this.timers.push(this.o.clock.setTimeout(() => void this.end('agent_ended'), 10_000 + words * 600));
    }
    await this.speak(text, opts.endCall ? SAY_UNINTERRUPTIBLE_MS : 0);
  }

  // ---- input ----

  private onTransport(e: TransportEvent): void {
    switch (e.type) {
      case 'audio': {
        const frame = this.gate(e.frame);
        this.sttOrigin ??= this.o.clock.now() - durationMs(frame);
        this.stt?.push(frame);
        this.o.vad?.push(frame).then(this.onVadEvents, this.onVadError);
        break;
      }
      case 'dtmf': this.emit({ type: 'dtmf', digits: e.digits }); break;
      case 'hangup':
        if (this.handingOff) this.streamClosed = true;
        else void this.end('caller_hangup');
        break;
      case 'played': {
        const [id, ms] = e.markId.split(':');
        if (this.reply && Number(id) === this.reply.id) this.reply.markPlayed(Number(ms));
        break;
      }
    }
  }

  /** The min-volume noise gate: a frame below the threshold reaches STT and VAD as silence. */
  private gate(frame: AudioFrame): AudioFrame {
    const min = this.o.agent.minVolumeDbfs;
    if (min === null || rmsDbfs(frame.samples) >= min) return frame;
    return { ...frame, samples: new Int16Array(frame.samples.length) };
  }

  private speaking(): boolean {
    return !!this.reply && !this.reply.signal.aborted;
  }

  /** The caller talking now would interrupt the agent's reply. */
  private interruptible(now: number): boolean {
    return this.speaking() && !this.handingOff && now >= this.reply!.uninterruptibleUntil;
  }

  // Bound once: they are handed over for every 20 ms frame.
  private readonly onVadEvents = (events: VadEvent[]): void => { for (const v of events) this.onVad(v); };
  private readonly onVadError = (err: unknown): void => {
    this.vadFailed = true; // nothing would notice the caller starting again: keep the transcriber live
    this.paceStt();
    this.emit({ type: 'error', error: err instanceof Error ? err : new Error(String(err)), stage: 'vad' });
  };

  private onVad(e: VadEvent): void {
    if (this.ended) return;
    const now = this.o.clock.now();
    if (e.type === 'speech_start') {
      this.vadSpeechStartMs = e.atMs;
      this.sttTurnClosed = false;
    }
    this.paceStt();
    if (e.type === 'speech_start') this.onSpeechStart(now);
    else this.onSpeechEnd();
  }

  /**
   * The transcriber may take the caller's audio in larger, rarer messages while none of it is awaited: our
   * VAD hears no speech and the STT has closed the caller's last turn. Speech (ours or the vendor's) makes
   * it live again at once, so the end of what the caller says always goes out frame by frame. Without a
   * working local VAD, nothing would notice the caller starting again first: always live.
   */
  private paceStt(): void {
    const { vad } = this.o;
    const idle = !!vad && !this.vadFailed && !vad.speaking && this.sttTurnClosed;
    if (idle === this.sttIdle) return;
    this.sttIdle = idle;
    this.stt?.pace?.(idle ? 'idle' : 'live');
  }

  private onSpeechStart(now: number): void {
    this.idleTimer?.cancel();
    this.endpointTimer?.cancel();
    if (this.interruptible(now)) this.startBarge(now);
  }

  private onSpeechEnd(): void {
    // Sound that paused a pending answer (a cough, a breath) is over: the caller's words still need one.
    if (this.userText && !this.barge) this.scheduleEndpoint();
    if (!this.barge || this.barge.speechEnded) return;
    // No confirming words yet: give the final a moment, then carry on speaking.
    this.barge.speechEnded = true;
    this.barge.timer.cancel();
    this.barge.timer = this.o.clock.setTimeout(() => this.resume(), FINAL_GRACE_MS);
  }

  /** An STT time (ms of the session's audio) on the call's clock. */
  private sttTime(ms: number): number {
    return ms + (this.sttOrigin ?? this.sttOpenedAt);
  }

  private onStt(raw: SttEvent): void {
    if (this.ended) return;
    const now = this.o.clock.now();
    const e: SttEvent = raw.type === 'final' ? { ...raw, startMs: this.sttTime(raw.startMs), endMs: this.sttTime(raw.endMs) }
      : raw.type === 'speech_ended' ? { ...raw, atMs: this.sttTime(raw.atMs) } : raw;
    // A late final for words said before the caller started again closes nothing they are saying now.
    if (e.type === 'final' && e.endOfTurn) this.sttTurnClosed ||= e.endMs >= this.vadSpeechStartMs;
    else if (e.type === 'speech_started' || ((e.type === 'interim' || e.type === 'final') && e.text.trim())) this.sttTurnClosed = false;
    this.paceStt();
    switch (e.type) {
      case 'speech_started':
        this.onSpeechStart(now);
        break;
      case 'interim':
        if (this.barge && confirmsInterruption(e.text, this.o.agent.interruptSensitivity)) this.interrupt(now);
        break;
      case 'final':
        // Vendors may close a turn with an empty final (Deepgram's UtteranceEnd): it ends the turn, says nothing.
        if (!e.text.trim()) {
          if (e.endOfTurn && this.userText && !this.barge) this.scheduleEndpoint();
          break;
        }
        this.callerTiming.sttFinalMs = now;
        this.callerTiming.speechEndMs ??= e.endMs;
        if (this.barge || this.interruptible(now)) {
          if (confirmsInterruption(e.text, this.o.agent.interruptSensitivity)) this.interrupt(now);
          else {
            // A backchannel: the caller was heard, the agent carries on.
            this.transcriptLine({ sender: 'HUMAN', text: e.text, atMs: e.startMs });
            this.resume();
            return;
          }
        } else if (this.speaking()) {
          // Talking over an uninterruptible line: over a closing line or a hand-off under way the words are
          // kept (they were said), not answered.
          if (this.closing || this.handingOff) this.transcriptLine({ sender: 'HUMAN', text: e.text, atMs: e.startMs });
          return; // over the uninterruptible start of the greeting
        }
        this.userText = `${this.userText} ${e.text}`.trim();
        this.callerTiming.startMs ??= e.startMs;
        if (e.endOfTurn) this.scheduleEndpoint();
        break;
      case 'speech_ended':
        this.callerTiming.speechEndMs = e.atMs;
        this.onSpeechEnd();
        break;
      case 'error':
        this.emit({ type: 'error', error: e.error, stage: 'stt' });
        break;
    }
  }

  /** Speech onset over the agent: pause output at once (the carrier holds only the pacer's small lead). */
  private startBarge(now: number): void {
    if (this.barge) return;
    this.pacer.pause();
    this.barge = { at: now, timer: this.o.clock.setTimeout(() => this.interrupt(this.o.clock.now()), LONG_SPEECH_MS) };
  }

  private resume(): void {
    if (!this.barge) return;
    this.barge.timer.cancel();
    this.barge = undefined;
    this.pacer.resume();
  }

  /** Confirmed barge-in: abort the reply's whole scope and drop all unplayed audio at once. */
  private interrupt(now: number): void {
    this.barge?.timer.cancel();
    this.barge = undefined;
    const reply = this.reply;
    if (!reply || reply.signal.aborted) {
      // The reply finished while the caller talked over its tail: nothing to stop, but unpause.
      this.pacer.resume();
      return;
    }
    reply.metrics.interruptedAtMs = now;
    this.abandon(reply);
    this.endAfterReply = undefined;
  }

  /**
   * Stops a reply that will not finish (barge-in, a newer reply, an error, the end of the call): the
   * caller hears nothing more of it, and the transcript and history keep exactly what was played.
   */
  private abandon(reply: Reply): void {
    if (reply.signal.aborted) return;
    this.pacer.clear();
    this.o.transport.clear();
    reply.controller.abort(new Aborted());
    this.recordCutOff(reply);
  }

  /** A reply that did not finish: the transcript and history get exactly the words that played. */
  private recordCutOff(reply: Reply): void {
    const heard = reply.utterance.playedText(reply.playedMs);
    if (heard || reply.playedMs > 0) this.transcriptLine({ sender: 'BOT', text: heard, atMs: reply.startedAt, interrupted: true });
    this.forgetUnspoken(reply);
    if (heard) this.history.push({ role: 'assistant', content: heard, interrupted: true });
    if (this.reply === reply) this.reply = undefined;
    this.emit({ type: 'metrics', metrics: reply.metrics });
  }

  /**
   * The model must not believe it said what the caller never heard: this reply's earlier assistant
   * messages lose their text (their tool calls stay), and every tool call gets a result, so the
   * history never holds an orphaned call.
   */
  private forgetUnspoken(reply: Reply): void {
    const answered = new Set<string>();
    for (const m of this.history.slice(reply.historyStart)) if (m.role === 'tool') answered.add(m.toolCallId);
    for (let i = reply.historyStart; i < this.history.length; i++) {
      const m = this.history[i];
      if (m.role !== 'assistant') continue;
      this.history[i] = { ...m, content: '' };
      for (const call of m.toolCalls ?? []) {
        if (!answered.has(call.id)) {
          this.history.splice(i + 1, 0, { role: 'tool', toolCallId: call.id, content: JSON.stringify({ error: 'interrupted by the caller before the result arrived' }) });
          answered.add(call.id);
        }
      }
    }
  }

  private scheduleEndpoint(): void {
    this.endpointTimer?.cancel();
    const { agent } = this.o;
    const wait = endpointDelayMs(this.userText, {
      sensitivity: agent.endpointingSensitivity, conversationSpeed: agent.conversationSpeed, dynamic: agent.dynamicTurns,
    });
    this.endpointTimer = this.o.clock.setTimeout(() => this.onUserTurn(), wait);
  }

  private onUserTurn(): void {
    const text = this.userText.trim();
    this.userText = '';
    if (!text || this.ended) return;
    const { startMs, ...timing } = this.callerTiming;
    this.callerTiming = {};
    // Anything still playing gives way to the answer, and its heard part goes into the history first
    // (not a closing line: that one plays to the end).
    if (this.reply && !this.closing) this.abandon(this.reply);
    this.idleChecks = 0;
    this.callerSpoke = true;
    this.transcriptLine({ sender: 'HUMAN', text, atMs: startMs ?? this.o.clock.now() });
    this.history.push({ role: 'user', content: text });
    if (this.closing) return;
    void this.respond({ ...timing, endpointMs: this.o.clock.now() });
  }

  // ---- output ----

  private transcriptLine(line: TranscriptLine): void {
    this.transcript.add(line);
    if (line.text.trim() !== '' || line.interrupted) this.emit({ type: 'transcript', line });
  }

  private newReply(uninterruptibleMs = 0, input: CallerTiming = {}): Reply {
    if (this.reply) this.abandon(this.reply);
    // A new reply starts unpaused: a barge-in, if any, belonged to the old one.
    this.barge?.timer.cancel();
    this.barge = undefined;
    this.pacer.resume();
    const now = this.o.clock.now();
    this.reply = new Reply(++this.replies, now, now + uninterruptibleMs, input);
    this.reply.historyStart = this.history.length;
    return this.reply;
  }

  /** Speaks fixed text (greeting, idle check, tool message) as a reply of its own. */
  private async speak(text: string, uninterruptibleMs = 0): Promise<void> {
    if (this.ended) return;
    const reply = this.newReply(uninterruptibleMs);
    try {
      reply.finalText = text;
      await this.voice(reply, (push) => { push(text); return Promise.resolve(); });
      this.finish(reply);
    } catch (err) {
      this.handleReplyError(reply, err, 'tts');
    }
  }

  /** LLM → TTS → pacer for one user turn, running tool calls in between, all under one scope. */
  private async respond(input: CallerTiming): Promise<void> {
    const reply = this.newReply(0, input);
    let stage: 'llm' | 'tts' | 'tool' = 'llm';
    try {
      for (let round = 0; round < MAX_TOOL_ROUNDS; round++) {
        const calls: ToolCall[] = [];
        let text = '';
        await this.voice(reply, async (push) => {
          const tools = [...this.o.agent.tools, ...(this.o.actions?.tools ?? [])];
          const stream = this.o.llm.stream({ messages: this.history, tools, temperature: this.o.agent.temperature, model: this.o.agent.model }, reply.signal);
          for await (const chunk of stream) {
            if (chunk.type === 'text') {
              reply.metrics.llmFirstTokenMs ??= this.o.clock.now();
              text += chunk.text;
              push(chunk.text);
            } else if (chunk.type === 'tool_call') calls.push(chunk.call);
          }
        });
        reply.finalText = text;
        if (calls.length === 0) break;
        stage = 'tool';
        this.history.push({ role: 'assistant', content: text, toolCalls: calls });
        for (const call of calls) {
          if (this.endAfterReply === 'handed_off') {
            // The caller has left: nothing more is done on their call.
            this.history.push({ role: 'tool', content: JSON.stringify({ error: 'not run: the caller was handed off' }), toolCallId: call.id });
            continue;
          }
          // Vocode's speak_on_send line (or a warm transfer's hold message) is said before the action runs.
          const described = this.o.actions?.describe(call);
          const before = described?.sayBeforeRun;
          if (before) await this.voice(reply, (push) => { push(before); return Promise.resolve(); });
          const handsOff = !!described?.action && handsOffCaller(described.action);
          if (handsOff) {
            // The action may take the caller off the stream (a carrier may redirect the call): all said before
            // it must have been heard.
            await reply.allPlayed();
            this.resume();
          }
          const outcome = await this.handingOver(handsOff, () => this.runTool(call, reply.signal));
          // A tool that ignored the abort still resolves: its result belongs to no reply any more.
          if (reply.signal.aborted) throw new Aborted();
          if (this.ended) return;
          this.history.push({ role: 'tool', content: outcome.result, toolCallId: call.id });
          if (outcome.say) await this.voice(reply, (push) => { push(outcome.say!); return Promise.resolve(); });
          this.endAfterReply = endReasonOf(outcome) ?? this.endAfterReply;
        }
        stage = 'llm';
        if (this.endAfterReply) break;
      }
      this.finish(reply);
    } catch (err) {
      this.handleReplyError(reply, err, stage);
    }
  }

  private async runTool(call: ToolCall, signal: AbortSignal): Promise<ToolOutcome> {
    const run = this.o.runTool ?? this.o.actions?.runTool.bind(this.o.actions);
    if (!run) return { result: JSON.stringify({ error: `no tool named ${call.name}` }) };
    try {
      const outcome = await run(call, signal);
      // A tool that ignored the abort: its outcome reaches no one.
      if (signal.aborted) throw signal.reason;
      this.emit({ type: 'tool_call', call, outcome });
      return outcome;
    } catch (err) {
      if (signal.aborted) throw err;
      const message = err instanceof Error ? err.message : String(err);
      this.emit({ type: 'tool_call', call, error: message });
      return { result: JSON.stringify({ error: message }) };
    }
  }

  /**
   * Streams text through TTS into the pacer, marking frames so the transport can say how much of this
   * reply has played. Resolves when all audio for the text has been produced. A TTS session that drops
   * mid-reply is reopened once and given the words it had not yet spoken (vendors with word timings).
   */
  private async voice(reply: Reply, produce: (push: (text: string) => void) => Promise<void>): Promise<void> {
    const rate = this.o.transport.sampleRate;
    let allText = '';
    let sessionText = '';
    let flushed = false;
    let spokenWords = 0;
    let reconnecting = false;
    let session = await this.o.tts.open({ sampleRate: rate }, reply.signal);
    const abort = () => session.cancel();
    reply.signal.addEventListener('abort', abort, { once: true });

    const consumeAll = async (): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        // Word timings are relative to their TTS session; earlier sessions of the same reply come first.
        const base = reply.utterance.audioMs;
        let timed = false;
        let untimedMs = 0;
        try {
          for await (const e of session.events()) {
            if (reply.signal.aborted) throw new Aborted();
            if (e.type === 'audio') {
              reply.metrics.ttsFirstAudioMs ??= this.o.clock.now();
              const ms = (e.samples.length * 1000) / rate;
              reply.utterance.audioMs += ms;
              untimedMs += ms;
              this.pacer.push({ samples: e.samples, sampleRate: rate, timestampMs: this.o.clock.now() }, `${reply.id}:${reply.utterance.audioMs}`);
            } else if (e.type === 'words') {
              timed = true;
              spokenWords += e.words.length;
              reply.utterance.addTimedWords(e.words.map((w) => ({ ...w, startMs: w.startMs + base, endMs: w.endMs + base })));
            } else if (e.type === 'done') {
              // The last partial frame goes out now, padded, instead of waiting for audio that will not come.
              this.pacer.flush();
              if (!timed) reply.utterance.addUntimedText(sessionText, untimedMs);
              return;
            }
          }
          if (reply.signal.aborted) throw new Aborted();
          return;
        } catch (err) {
          if (reply.signal.aborted || err instanceof Aborted) throw new Aborted();
          // Without word timings we cannot know which words were spoken: resending would repeat them.
          if (attempt > 0 || (!timed && untimedMs > 0)) throw new TtsFailure(err);
          this.emit({ type: 'error', error: err instanceof Error ? err : new Error(String(err)), stage: 'tts' });
          reconnecting = true;
          session = await this.o.tts.open({ sampleRate: rate }, reply.signal);
          sessionText = dropWords(allText, spokenWords);
          reconnecting = false;
          if (sessionText) session.pushText(sessionText);
          if (flushed) session.flush();
        }
      }
    };
    const consumed = consumeAll();
    consumed.catch(() => {}); // awaited below; a failure before then must not count as unhandled
    let completed = false;
    try {
      await produce((t) => {
        allText += t;
        if (reconnecting) return;
        sessionText += t;
        session.pushText(t);
      });
      flushed = true;
      if (!reconnecting) session.flush();
      await consumed;
      completed = true;
    } finally {
      reply.signal.removeEventListener('abort', abort);
      // The LLM failed or the reply was aborted: the vendor socket must not stay open.
      if (!completed) session.cancel();
    }
    if (reply.signal.aborted) throw new Aborted();
  }

  /** The reply's audio is all produced: wait until it has played, then record it. */
  private finish(reply: Reply): void {
    void reply.allPlayed().then(() => {
      if (this.reply !== reply) return;
      const spoken = reply.utterance.fullText();
      this.transcriptLine({ sender: 'BOT', text: spoken, atMs: reply.startedAt });
      if (reply.finalText.trim()) this.history.push({ role: 'assistant', content: reply.finalText.trim() });
      this.reply = undefined;
      this.emit({ type: 'metrics', metrics: reply.metrics });
      if (this.endAfterReply) void this.end(this.endAfterReply);
      else {
        this.armIdle();
        void this.runPhraseActions(spoken);
      }
    }, () => { /* aborted: the interruption recorded what was heard */ });
  }

  /**
   * Runs an action that may hand the caller off. While it is under way, talking over it does not take it
   * back (a carrier's transfer cannot be), and the stream closing is its doing (Twilio moves the caller off
   * the stream before the request returns): unless it did hand the caller off, the caller hung up.
   */
  private async handingOver<T extends ToolOutcome | undefined>(handsOff: boolean, run: () => Promise<T>): Promise<T> {
    if (!handsOff) return run();
    this.handingOff = true;
    let outcome: T;
    try {
      outcome = await run();
    } finally {
      this.handingOff = false;
    }
    if (this.streamClosed && !outcome?.handedOff) void this.end('caller_hangup');
    return outcome;
  }

  /** Phrase-triggered actions fire once the agent has spoken a line containing their phrase. */
  private async runPhraseActions(spoken: string): Promise<void> {
    const actions = this.o.actions;
    if (!actions) return;
    for (const action of actions.phraseActions(spoken)) {
      if (this.ended) return;
      const outcome = await this.handingOver(handsOffCaller(action), () => actions.runPhraseAction(action, this.lifetime.signal).catch(() => undefined));
      if (this.ended) return;
      if (!outcome) continue;
      this.emit({ type: 'tool_call', call: { id: `phrase_${action.id}`, name: action.type, arguments: '{}' }, outcome });
      const ends = endReasonOf(outcome);
      if (ends) return void this.end(ends);
      if (outcome.say) await this.speak(outcome.say);
    }
  }

  private handleReplyError(reply: Reply, err: unknown, stage: 'llm' | 'tts' | 'tool'): void {
    if (err instanceof Aborted || reply.signal.aborted) return;
    if (err instanceof TtsFailure) {
      this.emit({ type: 'error', error: err.cause instanceof Error ? err.cause : err, stage: 'tts' });
      // Let what was already produced play out, then record it as a cut-off line.
      this.pacer.flush();
      void reply.allPlayed().then(() => {
        if (this.reply !== reply) return;
        this.recordCutOff(reply);
        this.armIdle();
      }, () => {});
      return;
    }
    const error = err instanceof Error ? err : new Error(String(err));
    this.emit({ type: 'error', error, stage });
    this.abandon(reply);
    // The call goes on: apologise once, unless the apology itself is what failed.
    if (stage !== 'tts') void this.speak(this.o.agent.apology);
    else this.armIdle();
  }

  private armIdle(): void {
    this.idleTimer?.cancel();
    const { agent } = this.o;
    const secs = (this.callerSpoke ? agent.idleAfterInteractionSeconds : null) ?? agent.idleTimeSeconds;
    if (!secs || this.ended) return;
    this.idleTimer = this.o.clock.setTimeout(() => {
      if (this.speaking() || this.ended) return;
      const withinTotal = agent.maxAggregateIdleChecks === null || this.idleChecksTotal < agent.maxAggregateIdleChecks;
      if (agent.askIfHumanPresentOnIdle && this.idleChecks < agent.maxIdleChecks && withinTotal) {
        this.idleChecks++;
        this.idleChecksTotal++;
        void this.speak(agent.idleMessage);
      } else {
        void this.end('idle');
      }
    }, secs * 1000);
  }
}
