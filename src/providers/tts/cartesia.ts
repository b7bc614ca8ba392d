/**
 * Cartesia Sonic text-to-speech over the TTS WebSocket, one warm socket per call, one context per reply.
 *
 * Followed: "Text to Speech (WebSocket)" API reference and the "Contexts" guide (docs.cartesia.ai,
 * /api-reference/tts/websocket and /use-the-api/tts-websocket/contexts), "API Conventions" and
 * "Concurrency and WebSocket Limits", and the vendor's Fern definitions for API versions 2024-11-13 and
 * 2025-04-16 (github.com/cartesia-ai/docs, fern/apis/version-DATE/definition/tts.yml).
 *
 * Wire facts relied on:
 * - `wss://…/tts/websocket`, key in the `X-API-Key` header and the API version in `Cartesia-Version`
 *   (pinned to 2024-11-13, the version whose voice specifier carries `__experimental_controls`
 *   {speed, emotion}, which is exactly what a stored Cartesia voice holds).
 * - A generation request carries model_id, transcript, voice {mode:'id', id}, language, context_id,
 *   output_format {container:'raw', encoding:'pcm_s16le', sample_rate} (any rate, so the caller's rate
 *   is asked for), add_timestamps and `continue`. Every input on a context repeats all fields except
 *   transcript/continue; transcripts are concatenated verbatim; an empty transcript with
 *   `continue: false` ends the context. `max_buffer_delay_ms` lets the vendor wait for enough LLM text.
 * - Responses: `chunk` (base64 `data`), `timestamps` (`word_timestamps {words, start, end}` in seconds
 *   from the start of the context's audio), `done`, `flush_done`, `error` (`status_code` + `error` or
 *   `title`/`message`). Cancel is `{context_id, cancel: true}`; it only halts inputs not yet being
 *   generated, so whatever still arrives for a cancelled context is dropped here.
 * - Idle sockets are closed after 5 minutes; too many sockets or contexts is HTTP/status 429.
 */
import { randomUUID } from 'node:crypto';
import type { TtsSession, WordTiming } from '../../engine/types.js';
import { ProviderError } from '../../engine/types.js';
import { closeError, kindOfStatus } from '../errors.js';
import type { TtsProvider, VendorAccess } from '../types.js';
import { toWebSocketUrl, trimSlash } from '../vendors.js';
import type { WebSocket } from '../ws.js';
import { ContextReply, ContextSocket, ReplyOutput, type Json } from './contextSocket.js';

const PROVIDER = 'cartesia';
export const CARTESIA_VERSION = '2024-11-13';
export const DEFAULT_CARTESIA_MODEL = 'sonic-2';
/** Enough for a clause of LLM text; the documented range is 0–1000. */
const MAX_BUFFER_DELAY_MS = 500;
const SPEEDS = ['slowest', 'slow', 'normal', 'fast', 'fastest'];

export function createCartesiaTts(access: VendorAccess, voice: Record<string, unknown>): TtsProvider {
  return new CartesiaTts(access, voice);
}

/** The voice specifier, with the stored speed and emotions as the version's experimental controls. */
export function cartesiaVoice(voice: Record<string, unknown>): Json {
  if (typeof voice.voice_id !== 'string' || !voice.voice_id) throw new ProviderError('protocol', 'the voice has no voice_id', PROVIDER, false);
  const spec: Json = { mode: 'id', id: voice.voice_id };
  const controls: Json = {};
  const speed = voice.speed;
  if (typeof speed === 'number' && Number.isFinite(speed)) controls.speed = Math.max(-1, Math.min(1, speed));
  else if (typeof speed === 'string' && SPEEDS.includes(speed) && speed !== 'normal') controls.speed = speed;
  const emotion = Array.isArray(voice.emotion) ? voice.emotion.filter((e): e is string => typeof e === 'string' && e.length > 0) : [];
  if (emotion.length) controls.emotion = emotion;
  if (Object.keys(controls).length) spec.__experimental_controls = controls;
  return spec;
}

/** Cartesia takes ISO 639-1 codes; the stored voice may say 'en-US'. */
const languageOf = (v: unknown) => (typeof v === 'string' && v ? v.split(/[-_]/)[0].toLowerCase() : 'en');

class CartesiaTts implements TtsProvider {
  readonly name = PROVIDER;
  private readonly socket: ContextSocket;
  private readonly fields: Json;

  constructor(access: VendorAccess, voice: Record<string, unknown>) {
    this.fields = {
      model_id: typeof voice.model_id === 'string' && voice.model_id ? voice.model_id : DEFAULT_CARTESIA_MODEL,
      voice: cartesiaVoice(voice),
      language: languageOf(voice.language),
      add_timestamps: true,
      max_buffer_delay_ms: MAX_BUFFER_DELAY_MS,
    };
    this.socket = new ContextSocket({
      provider: PROVIDER,
      url: `${toWebSocketUrl(trimSlash(access.baseUrl))}/tts/websocket`,
      headers: { 'X-API-Key': access.apiKey, 'Cartesia-Version': access.extra?.api_version ?? CARTESIA_VERSION },
      contextOf: (m) => (typeof m.context_id === 'string' ? m.context_id : undefined),
      closeError: (code, reason, last) => (last?.type === 'error' ? cartesiaError(last) : closeError(PROVIDER, code, reason)),
    });
  }

  preconnect(): void {
    this.socket.warm();
  }

  async open(opts: { sampleRate: number }, signal: AbortSignal): Promise<TtsSession> {
    const ws = await this.socket.acquire(signal);
    const request: Json = {
      ...this.fields,
      context_id: randomUUID(),
      output_format: { container: 'raw', encoding: 'pcm_s16le', sample_rate: opts.sampleRate },
    };
    return new CartesiaReply(this.socket, ws, request, new ReplyOutput(PROVIDER, opts.sampleRate, opts.sampleRate), signal);
  }

  async dispose(): Promise<void> {
    await this.socket.dispose();
  }
}

export function cartesiaError(m: Json): ProviderError {
  const status = typeof m.status_code === 'number' ? m.status_code : 500;
  const text = [m.title, m.error, m.message].filter((p): p is string => typeof p === 'string' && p.length > 0).join(': ');
  return new ProviderError(kindOfStatus(status), `${status}${text ? ` ${text.slice(0, 300)}` : ''}`, PROVIDER, status === 429 || status >= 500);
}

export function cartesiaWords(m: Json): WordTiming[] {
  const t = m.word_timestamps as { words?: unknown; start?: unknown; end?: unknown } | undefined;
  if (!t || !Array.isArray(t.words) || !Array.isArray(t.start) || !Array.isArray(t.end)) return [];
  const start = t.start as number[];
  const end = t.end as number[];
  return (t.words as string[]).map((word, i) => ({ word, startMs: Math.round(start[i] * 1000), endMs: Math.round(end[i] * 1000) }));
}

class CartesiaReply extends ContextReply {
  constructor(socket: ContextSocket, ws: WebSocket, private readonly request: Json, out: ReplyOutput, signal: AbortSignal) {
    super(socket, ws, request.context_id as string, out, signal);
  }

  protected textMessage(text: string): Json {
    return { ...this.request, transcript: text, continue: true };
  }

  protected endMessages(): Json[] {
    return [{ ...this.request, transcript: '', continue: false }];
  }

  protected stopVendor(): void {
    this.send({ context_id: this.id, cancel: true });
  }

  protected message(m: Json): void {
    switch (m.type) {
      case 'chunk':
        if (typeof m.data === 'string' && m.data) this.audio(Buffer.from(m.data, 'base64'));
        break;
      case 'timestamps':
        this.out.words(cartesiaWords(m));
        break;
      case 'error':
        this.fail(cartesiaError(m));
        return;
    }
    if (m.type === 'done' || m.done === true) this.complete();
  }
}
