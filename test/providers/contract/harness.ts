/**
 * What each vendor's test gives the shared contract suites: its adapter, pointed at its fake, and the
 * fake's controls. The suites (stt.ts, llm.ts, tts.ts) then check the same behaviour for every vendor.
 */
import type { LlmProvider, SttProvider, TtsProvider } from '../../../src/providers/types.js';
import type { FailureMode } from '../../fakes/server.js';

/** Controls every STT fake offers. */
export interface FakeSttControls {
  /** The next utterances the fake detects in the audio are transcribed as these texts, in order. */
  script(...texts: string[]): void;
  /** The next connection attempt (or session request) fails the way the vendor answers this failure. */
  failNext(mode: FailureMode): void;
  /** While the next utterance is being spoken (after ~200 ms of it), cut the connection without a close frame. */
  dropDuringNextUtterance(): void;
  /** Connections the fake accepted so far. */
  readonly connections: number;
  /** Whether the last connection ended with the vendor's own end-of-audio message before the socket closed. */
  readonly gracefulClose: boolean;
  /** Total bytes of audio received over all connections. */
  readonly audioBytes: number;
  /** The credential the last connection presented (from whichever header or query the vendor uses). */
  readonly lastKey: string | undefined;
  close(): Promise<void>;
}

export interface SttHarness {
  /** An adapter using `key` against the fake (the fake accepts only `validKey`). */
  make(key?: string): SttProvider;
  validKey: string;
  fake: FakeSttControls;
  /** Rates the vendor accepts here (the suite runs at each of 8000 and 16000 that are listed). */
  sampleRates: number[];
  /** The vendor reports speech start/end events (else the suite does not require them). */
  speechEvents: boolean;
  /** The vendor sends interim results. */
  interim: boolean;
  /** Finals carry word timings. */
  words: boolean;
  /** The adapter reconnects on a mid-stream drop (socket vendors); request-per-segment vendors need not. */
  reconnects: boolean;
}

/** Controls every LLM fake offers. */
export interface FakeLlmControls {
  /**
   * The next request is answered with these pieces: text deltas in order, then tool calls whose
   * argument JSON arrives split as given, then usage (in the vendor's own framing).
   */
  reply(r: { text?: string[]; toolCalls?: { id: string; name: string; arguments: string[] }[]; usage?: { input: number; output: number } }): void;
  failNext(mode: FailureMode): void;
  /** The next reply starts after this delay (before any byte of the response). */
  delayNextFirstByte(ms: number): void;
  /** The next reply sends its first text delta, then cuts the connection. */
  dropNextMidStream(): void;
  /** The next reply sends its first text delta, then waits (until the client goes away). */
  hangNextAfterFirstChunk(): void;
  /** performance.now() when the server saw the last request's connection closed by the client. */
  readonly lastClientCloseAt: number | undefined;
  /** The last request, as the vendor received it. */
  readonly lastRequest: { path: string; headers: Record<string, string | string[] | undefined>; body: unknown } | undefined;
  close(): Promise<void>;
}

export interface LlmHarness {
  make(key?: string, opts?: { firstTokenTimeoutMs?: number; model?: string }): LlmProvider;
  validKey: string;
  fake: FakeLlmControls;
  /** The key as the fake saw it in the last request. */
  lastKey(): string | undefined;
  /** Reads the vendor request body back into neutral terms so the suite can check the mapping. */
  inspect(body: unknown): { system?: string; messages: { role: string; text: string }[]; tools: string[]; temperature?: number; model?: string };
}

/** Controls every TTS fake offers. Fakes voice each word as WORD_MS of tone at the requested rate. */
export interface FakeTtsControls {
  failNext(mode: FailureMode): void;
  delayNextFirstByte(ms: number): void;
  /** The next synthesis stream sends some audio, then the connection is cut. */
  dropNextMidStream(): void;
  /**
   * The text the vendor received for synthesis since the latest `make()` or the latest new context/session,
   * in order (joined; whitespace as received). Fakes reset it there, so each test sees only its own text.
   */
  readonly receivedText: string;
  /** performance.now() when the fake last saw a cancel (cancel message or the client closing the stream). */
  readonly lastCancelAt: number | undefined;
  readonly lastKey: string | undefined;
  /** Requests or sockets opened so far. */
  readonly connections: number;
  close(): Promise<void>;
}

export const WORD_MS = 100;

export interface TtsHarness {
  make(key?: string): TtsProvider;
  validKey: string;
  fake: FakeTtsControls;
  sampleRates: number[];
  /** The vendor returns word timings. */
  words: boolean;
}

/** What a full-featured socket STT vendor offers; a harness spreads this and overrides what differs. */
export const STT_HARNESS_DEFAULTS = {
  sampleRates: [8000, 16000], speechEvents: true, interim: true, words: true, reconnects: true,
} satisfies Partial<SttHarness>;

/** The call rates every TTS vendor here serves (resampling where the vendor has no such format). */
export const TTS_RATES = [8000, 16000, 24000];
