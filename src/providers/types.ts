/**
 * What an adapter adds to the engine's provider interfaces: a name for errors and metrics, optional
 * pre-connection while a call is being set up, and disposal of warm sockets when the call ends.
 */
import type { LanguageModel, SpeechToText, TextToSpeech } from '../engine/types.js';

/** What `SpeechToText.open` is asked for. */
export type SttOpenOptions = Parameters<SpeechToText['open']>[0];

/** The part of an agent's transcriber config every STT adapter reads; each vendor adds its own fields. */
export interface SttConfig {
  model?: string;
  language: string;
  keywords?: Record<string, number>;
  [k: string]: unknown;
}

export interface SttProvider extends SpeechToText {
  readonly name: string;
  /** Starts connecting now so the call's first `open` with the same options finds a socket ready. */
  preconnect?(opts: { sampleRate: number; language: string }): void;
  dispose?(): Promise<void>;
}

export interface TtsProvider extends TextToSpeech {
  readonly name: string;
  preconnect?(opts: { sampleRate: number }): void;
  dispose?(): Promise<void>;
}

export interface LlmProvider extends LanguageModel {
  readonly name: string;
}

/** Where an adapter sends its requests and with which secret: always passed in, never read from env here. */
export interface VendorAccess {
  apiKey: string;
  /** The vendor's base URL (env override or default), without a trailing slash. */
  baseUrl: string;
  /** Vendor-specific extras from the account connection (region, endpoint, user id, api version…). */
  extra?: Record<string, string>;
}
