/**
 * The engine's contracts with the outside: a Transport (carrier media stream or browser socket) and
 * three provider kinds. The engine imports nothing else from outside src/engine.
 */
import type { AudioFrame } from './audio/frame.js';

// ---- transport ----

export type TransportEvent =
  | { type: 'audio'; frame: AudioFrame }
  | { type: 'dtmf'; digits: string }
  /** The audio up to this mark was actually played to the caller (marks dropped by clear() never arrive). */
  | { type: 'played'; markId: string }
  | { type: 'hangup' };

export interface Transport {
  /** PCM rate of inbound frames and of the frames the engine sends (codecs stay inside the transport). */
  readonly sampleRate: number;
  on(listener: (event: TransportEvent) => void): () => void;
  /** Queues audio for playback; a mark, if given, is reported via `played` once this frame has played. */
  sendAudio(frame: AudioFrame, markId?: string): void;
  /** Drops every queued, unplayed frame at once (the carrier buffer included). */
  clear(): void;
  sendDtmf(digits: string): Promise<void>;
  /** Transfer, hold and conference answer whether the caller left the agent (nothing said: they did not). */
  transfer(to: string): Promise<HandOff | void>;
  setHold(on: boolean): Promise<HandOff | void>;
  addToConference(to: string, opts: { placePrimaryOnHold: boolean }): Promise<HandOff | void>;
  hangup(): Promise<void>;
}

/**
 * After a transfer, hold or conference: `handed_off` when the caller is no longer the agent's to talk to
 * (a transfer took them off the stream, a hold or a warm transfer hands them to a human), so the agent's
 * part of the call is over; `stays` when the agent is still on the line with them.
 */
export type HandOff = 'handed_off' | 'stays';

/** What an agent's actions do to the call through its transport. */
export type TransportControls = Pick<Transport, 'sendDtmf' | 'transfer' | 'setHold' | 'addToConference'>;

// ---- provider errors ----

export type ProviderErrorKind = 'auth' | 'quota' | 'timeout' | 'protocol' | 'network' | 'unavailable';

/** A provider failure the engine can act on: retry, fall back, or apologise and carry on. */
export class ProviderError extends Error {
  constructor(
    readonly kind: ProviderErrorKind,
    message: string,
    readonly provider: string,
    readonly retryable = kind === 'network' || kind === 'timeout' || kind === 'unavailable',
  ) {
    super(`${provider}: ${message}`);
  }
}

// ---- speech to text ----

export interface WordTiming {
  word: string;
  /** Milliseconds on the audio timeline of whatever reports it (STT session or TTS session). */
  startMs: number;
  endMs: number;
}

/**
 * Times in STT events (`atMs`, `startMs`, `endMs`, word timings) are milliseconds of the session's audio,
 * counted from its first frame, as vendors report them; the engine maps them onto the call's clock.
 */
export type SttEvent =
  | { type: 'speech_started'; atMs: number }
  | { type: 'interim'; text: string; atMs: number }
  /** A stable piece of transcript; `endOfTurn` when the vendor's endpointing says the utterance ended. */
  | { type: 'final'; text: string; startMs: number; endMs: number; endOfTurn: boolean; words?: WordTiming[] }
  | { type: 'speech_ended'; atMs: number }
  | { type: 'error'; error: ProviderError };

export interface SttSession {
  push(frame: AudioFrame): void;
  /**
   * `idle`: nothing the caller said waits on this audio (they are quiet and their last words are final), so
   * it may reach the vendor in fewer, larger messages; `live` (the start): every frame at once, and what
   * idle held back goes out now. Optional: a session without it sends every frame as it comes.
   */
  pace?(mode: 'live' | 'idle'): void;
  on(listener: (event: SttEvent) => void): () => void;
  close(): Promise<void>;
}

export interface SpeechToText {
  open(opts: { sampleRate: number; language: string; keywords?: Record<string, number> }, signal?: AbortSignal): Promise<SttSession>;
}

// ---- language model ----

export interface ToolCall { id: string; name: string; arguments: string }

export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  /** `interrupted`: the caller cut this line off; `content` holds only what was heard. */
  | { role: 'assistant'; content: string; toolCalls?: ToolCall[]; interrupted?: boolean }
  | { role: 'tool'; content: string; toolCallId: string };

export interface ToolSpec { name: string; description: string; parameters: Record<string, unknown> }

export type LlmChunk =
  | { type: 'text'; text: string }
  | { type: 'tool_call'; call: ToolCall }
  | { type: 'usage'; inputTokens: number; outputTokens: number };

export interface LlmRequest {
  messages: ChatMessage[];
  tools: ToolSpec[];
  temperature: number;
  model?: string;
}

export interface LanguageModel {
  /** Streams the reply; stops promptly (and rejects with the signal's reason) when `signal` aborts. */
  stream(request: LlmRequest, signal: AbortSignal): AsyncIterable<LlmChunk>;
}

// ---- text to speech ----

export type TtsEvent =
  | { type: 'audio'; samples: Int16Array }
  /** Word timings relative to the start of this session's audio. */
  | { type: 'words'; words: WordTiming[] }
  | { type: 'done' };

export interface TtsSession {
  pushText(text: string): void;
  /** No more text: synthesize what is buffered, then emit `done`. */
  flush(): void;
  events(): AsyncIterable<TtsEvent>;
  cancel(): void;
}

export interface TextToSpeech {
  open(opts: { sampleRate: number }, signal: AbortSignal): Promise<TtsSession>;
}
