/**
 * ElevenLabs text-to-speech over the multi-context WebSocket.
 *
 * Followed: "Multi-Context WebSocket" API reference and the "Multi-Context Websocket" guide
 * (elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-multi-stream-input,
 * elevenlabs.io/docs/eleven-api/guides/how-to/websockets/multi-context-web-socket) and the vendor's
 * AsyncAPI spec for both socket endpoints (github.com/elevenlabs/elevenlabs-docs, fern/apis/api/asyncapi.yml).
 *
 * Why multi-stream-input rather than stream-input: the single-context socket ends at the end-of-input
 * message, so every reply would need its own handshake. The multi-context socket serves a whole call
 * (one context per reply), which is what preconnect keeps warm, and a barge-in before the reply's text
 * is complete is a `close_context` that leaves the socket up.
 *
 * Wire facts relied on:
 * - `wss://…/v1/text-to-speech/{voice_id}/multi-stream-input?model_id&output_format=pcm_{rate}&sync_alignment=true&inactivity_timeout`,
 *   key in the `xi-api-key` header. `optimize_streaming_latency` is only documented (deprecated) for the
 *   single-context socket, so the stored voice's value is not sent.
 * - A context opens with `text: " "`; `voice_settings`/`generation_config` go in the socket's first
 *   message only (later differing values are rejected with 1008). Text chunks follow as sent by the
 *   LLM; the end is `flush: true` then `close_context: true`, after which the vendor finishes the
 *   context and sends `isFinal`. A context closed before its flush stops generating. A flushed one
 *   keeps generating, so a later cancel closes the socket (and a fresh one is opened at once).
 * - Audio arrives as base64 PCM16 with `alignment {chars, charStartTimesMs, charsDurationsMs}` whose
 *   times are relative to that message's audio (sync_alignment), so word timings are offset by the
 *   audio already received in the reply and a word may straddle two messages.
 * - Errors arrive as `{message, error, code}` followed by a close; 1008 is used for both a bad key and
 *   an exhausted quota, so the text decides the kind. At most 5 contexts may be open per socket.
 */
import { randomUUID } from 'node:crypto';
import type { TtsSession, WordTiming } from '../../engine/types.js';
import { ProviderError, type ProviderErrorKind } from '../../engine/types.js';
import { closeError } from '../errors.js';
import type { TtsProvider, VendorAccess } from '../types.js';
import { toWebSocketUrl, trimSlash } from '../vendors.js';
import type { WebSocket } from '../ws.js';
import { ContextReply, ContextSocket, ReplyOutput, type Json } from './contextSocket.js';

const PROVIDER = 'elevenlabs';
export const DEFAULT_ELEVENLABS_MODEL = 'eleven_flash_v2_5';
/** The PCM rates the vendor synthesizes at; any other caller rate is resampled from the next one up. */
export const ELEVENLABS_PCM_RATES = [8000, 16000, 22050, 24000, 44100];
/** Smaller first chunks than the vendor default [120,160,250,290]: the first audio comes sooner. */
const CHUNK_LENGTH_SCHEDULE = [50, 120, 160, 250];
/** The vendor's maximum: a call's socket sits idle while the caller speaks. */
const INACTIVITY_TIMEOUT_S = 180;

export function elevenLabsRate(sampleRate: number): number {
  return ELEVENLABS_PCM_RATES.find((r) => r >= sampleRate) ?? ELEVENLABS_PCM_RATES[ELEVENLABS_PCM_RATES.length - 1];
}

export function createElevenLabsTts(access: VendorAccess, voice: Record<string, unknown>): TtsProvider {
  return new ElevenLabsTts(access, voice);
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The stored voice's settings in the vendor's shape; undefined keeps the voice's own defaults. */
export function voiceSettings(voice: Record<string, unknown>): Json | undefined {
  const stability = num(voice.stability);
  const similarity = num(voice.similarity_boost);
  const style = num(voice.style);
  const speed = num(voice.speed);
  const boost = typeof voice.use_speaker_boost === 'boolean' ? voice.use_speaker_boost : undefined;
  if ([stability, similarity, style, speed, boost].every((v) => v === undefined)) return undefined;
  // The older schema requires both of these whenever settings are sent; the vendor defaults fill gaps.
  const s: Json = { stability: stability ?? 0.5, similarity_boost: similarity ?? 0.75 };
  if (style !== undefined) s.style = style;
  if (boost !== undefined) s.use_speaker_boost = boost;
  if (speed !== undefined) s.speed = speed;
  return s;
}

class ElevenLabsTts implements TtsProvider {
  readonly name = PROVIDER;
  private readonly sockets = new Map<number, ContextSocket>();
  /** Sockets whose first message (carrying the voice settings) has been sent. */
  private readonly configured = new WeakSet<WebSocket>();
  private readonly voiceId: string;
  private readonly model: string;

  constructor(private readonly access: VendorAccess, private readonly voice: Record<string, unknown>) {
    if (typeof voice.voice_id !== 'string' || !voice.voice_id) throw new ProviderError('protocol', 'the voice has no voice_id', PROVIDER, false);
    this.voiceId = voice.voice_id;
    this.model = typeof voice.model_id === 'string' && voice.model_id ? voice.model_id : DEFAULT_ELEVENLABS_MODEL;
  }

  preconnect(opts: { sampleRate: number }): void {
    this.socket(elevenLabsRate(opts.sampleRate)).warm();
  }

  async open(opts: { sampleRate: number }, signal: AbortSignal): Promise<TtsSession> {
    const rate = elevenLabsRate(opts.sampleRate);
    const socket = this.socket(rate);
    const ws = await socket.acquire(signal);
    return new ElevenLabsReply(socket, ws, () => this.setup(ws), new ReplyOutput(PROVIDER, rate, opts.sampleRate), signal);
  }

  /** What the socket's very first message carries; later contexts inherit it. */
  private setup(ws: WebSocket): Json {
    if (this.configured.has(ws)) return {};
    this.configured.add(ws);
    const setup: Json = { generation_config: { chunk_length_schedule: CHUNK_LENGTH_SCHEDULE } };
    const settings = voiceSettings(this.voice);
    if (settings) setup.voice_settings = settings;
    return setup;
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.sockets.values()].map((s) => s.dispose()));
    this.sockets.clear();
  }

  private socket(rate: number): ContextSocket {
    let s = this.sockets.get(rate);
    if (!s) {
      const q = new URLSearchParams({
        model_id: this.model,
        output_format: `pcm_${rate}`,
        sync_alignment: 'true',
        inactivity_timeout: String(INACTIVITY_TIMEOUT_S),
      });
      s = new ContextSocket({
        provider: PROVIDER,
        url: `${toWebSocketUrl(trimSlash(this.access.baseUrl))}/v1/text-to-speech/${encodeURIComponent(this.voiceId)}/multi-stream-input?${q}`,
        headers: { 'xi-api-key': this.access.apiKey },
        contextOf: (m) => (typeof m.contextId === 'string' ? m.contextId : typeof m.context_id === 'string' ? m.context_id : undefined),
        closeError: elevenLabsCloseError,
        goodbye: { close_socket: true },
      });
      this.sockets.set(rate, s);
    }
    return s;
  }
}

/** ElevenLabs reuses 1008 for bad keys, spent quota and idle timeouts; the words say which. */
function kindOf(text: string): ProviderErrorKind | undefined {
  const t = text.toLowerCase();
  if (/quota|credits|too_many_concurrent|concurrent requests|rate.?limit|max_active_conversations/.test(t)) return 'quota';
  if (/invalid_api_key|api key|unauthori[sz]ed|authori[sz]ation|permission/.test(t)) return 'auth';
  if (/timeout|timed out|have not received/.test(t)) return 'timeout';
  return undefined;
}

function errorMessage(m: Json | undefined): string {
  if (!m) return '';
  const parts = [m.error, m.message].filter((p): p is string => typeof p === 'string' && p.length > 0);
  return parts.join(': ').slice(0, 300);
}

export function elevenLabsCloseError(code: number, reason: string, last: Json | undefined): ProviderError {
  const said = errorMessage(last);
  const kind = kindOf(`${said} ${reason}`) ?? closeError(PROVIDER, code, reason).kind;
  const detail = said || reason.slice(0, 200);
  return new ProviderError(kind, `socket closed (${code}${detail ? ` ${detail}` : ''})`, PROVIDER);
}

/** Words from character alignment that arrives in pieces; a word may continue in the next piece. */
export class AlignmentWords {
  private word = '';
  private start = 0;
  private end = 0;

  /** Completed words of one alignment whose times are relative to `offsetMs` on the reply's timeline. */
  push(a: { chars: string[]; starts: number[]; durations: number[] }, offsetMs: number): WordTiming[] {
    const out: WordTiming[] = [];
    a.chars.forEach((ch, i) => {
      if (/\s/.test(ch)) {
        this.emit(out);
        return;
      }
      const startMs = offsetMs + (a.starts[i] ?? 0);
      if (!this.word) this.start = startMs;
      this.word += ch;
      this.end = Math.max(this.end, startMs + (a.durations[i] ?? 0));
    });
    return out;
  }

  /** The word still open at the end of the reply. */
  finish(): WordTiming[] {
    const out: WordTiming[] = [];
    this.emit(out);
    return out;
  }

  private emit(out: WordTiming[]): void {
    if (this.word) out.push({ word: this.word, startMs: this.start, endMs: this.end });
    this.word = '';
    this.end = 0;
  }
}

function alignmentOf(msg: Json): { chars: string[]; starts: number[]; durations: number[] } | undefined {
  const a = (msg.alignment ?? msg.normalizedAlignment) as Json | null | undefined;
  if (!a || !Array.isArray(a.chars)) return undefined;
  const starts = a.charStartTimesMs ?? a.char_start_times_ms;
  const durations = a.charsDurationsMs ?? a.charDurationsMs ?? a.chars_durations_ms;
  if (!Array.isArray(starts) || !Array.isArray(durations)) return undefined;
  return { chars: a.chars as string[], starts: starts as number[], durations: durations as number[] };
}

class ElevenLabsReply extends ContextReply {
  private readonly words = new AlignmentWords();

  constructor(socket: ContextSocket, ws: WebSocket, private readonly setup: () => Json, out: ReplyOutput, signal: AbortSignal) {
    super(socket, ws, randomUUID(), out, signal);
  }

  protected override opening(): Json {
    return { text: ' ', context_id: this.id, ...this.setup() };
  }

  protected textMessage(text: string): Json {
    return { text, context_id: this.id };
  }

  protected endMessages(): Json[] {
    return [{ text: '', context_id: this.id, flush: true }, { context_id: this.id, close_context: true }];
  }

  protected stopVendor(): void {
    // A context closed before its flush stops; a flushed one would run to the end, so drop the socket.
    if (!this.flushed) this.send({ context_id: this.id, close_context: true });
    else this.socket.restart(this.ws);
  }

  protected message(m: Json): void {
    if (typeof m.audio === 'string' && m.audio) {
      const offset = this.out.receivedMs;
      this.audio(Buffer.from(m.audio, 'base64'));
      const a = alignmentOf(m);
      if (a) this.out.words(this.words.push(a, offset));
    }
    if (m.isFinal === true || m.is_final === true) {
      this.out.words(this.words.finish());
      this.complete();
    } else if (typeof m.error === 'string' && !m.audio) {
      this.fail(elevenLabsCloseError(typeof m.code === 'number' ? m.code : 1008, '', m));
    }
  }
}
