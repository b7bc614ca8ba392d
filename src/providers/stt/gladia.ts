/**
 * Gladia live transcription (v2): a session is initiated over HTTP, then audio streams over the
 * WebSocket URL the init call returns.
 *
 * Follows Gladia's own documents:
 *  - "Initiate a session", POST /v2/live (https://docs.gladia.io/api-reference/v2/live/init): the
 *    `x-gladia-key` header, the JSON config (encoding, bit_depth, sample_rate, channels, model,
 *    endpointing, language_config, realtime_processing.custom_vocabulary_config, messages_config) and
 *    the `{ id, created_at, url }` answer; optional `region` query.
 *  - "Live STT quickstart" (https://docs.gladia.io/chapters/live-stt/quickstart) and the real-time
 *    WebSocket AsyncAPI (https://docs.gladia.io/asyncapi.yaml): binary audio chunks,
 *    `{"type":"stop_recording"}`, and the `transcript` / `speech_start` / `speech_end` messages
 *    (times in seconds from the session's first audio byte).
 *  - The message and config types generated from Gladia's OpenAPI in gladiaio/sdk
 *    (`packages/sdk-js/src/v2/live/generated-types.ts`).
 *  - "Delete live transcription", DELETE /v2/live/{id} with `x-gladia-key`
 *    (https://docs.gladia.io/api-reference/v2/live/delete): how a session whose socket never opened is
 *    ended at once instead of lingering on Gladia's side until it expires.
 *
 * A reconnect is a new session (new POST, new socket): the new socket's clock starts at zero, which
 * the shared session maps back with the replayed audio.
 */
import type { AudioFrame } from '../../engine/audio/frame.js';
import { ProviderError, type SttEvent } from '../../engine/types.js';
import { vendorFetch } from '../http.js';
import { pcmBytes } from '../pcm.js';
import type { SttConfig as BaseSttConfig, SttOpenOptions, SttProvider, VendorAccess } from '../types.js';
import { trimSlash } from '../vendors.js';
import { connectWebSocket, DEFAULT_CONNECT_TIMEOUT_MS, messageText, type WebSocket } from '../ws.js';
import { SocketStt, type SttWire } from './socketSession.js';

const PROVIDER = 'gladia';
/** Seconds of silence that end an utterance; Gladia's default is tuned for captions, not turn-taking. */
const DEFAULT_ENDPOINTING_S = 0.3;
/** Time allowed for the best-effort DELETE of a session whose socket could not be opened. */
const END_SESSION_TIMEOUT_MS = 5000;

export interface SttConfig extends BaseSttConfig {
  /** Seconds of silence that close an utterance (Gladia `endpointing`). */
  endpointing?: number;
  maximum_duration_without_endpointing?: number;
  /** Time allowed for the init request and for the socket handshake, each. */
  connectTimeoutMs?: number;
}

interface GladiaWord { word: string; start: number; end: number }
interface GladiaUtterance { text: string; start: number; end: number; words?: GladiaWord[] }

/** 'en-US' → ['en']; 'multi' / 'auto' → detect per utterance. */
function languageConfig(language: string): { languages: string[]; code_switching: boolean } {
  const base = language.trim().toLowerCase().split(/[-_]/)[0];
  if (!base || base === 'multi' || base === 'auto') return { languages: [], code_switching: true };
  return { languages: [base], code_switching: false };
}

/**
 * Deepgram-style boosts (positive weights, typically up to 10) as Gladia vocabulary intensities
 * (0–1). Negative boosts have no Gladia equivalent and are left out.
 */
function vocabulary(keywords: Record<string, number> | undefined): { value: string; intensity: number }[] {
  if (!keywords) return [];
  return Object.entries(keywords)
    .filter(([term, boost]) => term.trim() && boost > 0)
    .map(([term, boost]) => ({ value: term.trim(), intensity: Math.round(Math.min(1, Math.max(0.1, boost / 10)) * 100) / 100 }));
}

export function initRequest(cfg: SttConfig, o: SttOpenOptions): Record<string, unknown> {
  const vocab = vocabulary(o.keywords ?? cfg.keywords);
  return {
    encoding: 'wav/pcm',
    bit_depth: 16,
    sample_rate: o.sampleRate,
    channels: 1,
    model: cfg.model ?? 'solaria-1',
    endpointing: cfg.endpointing ?? DEFAULT_ENDPOINTING_S,
    ...(cfg.maximum_duration_without_endpointing !== undefined ? { maximum_duration_without_endpointing: cfg.maximum_duration_without_endpointing } : {}),
    language_config: languageConfig(o.language || cfg.language),
    ...(vocab.length ? { realtime_processing: { custom_vocabulary: true, custom_vocabulary_config: { vocabulary: vocab } } } : {}),
    messages_config: {
      receive_partial_transcripts: true,
      receive_final_transcripts: true,
      receive_speech_events: true,
      receive_pre_processing_events: false,
      receive_realtime_processing_events: false,
      receive_post_processing_events: false,
      receive_acknowledgments: false,
      receive_errors: true,
      receive_lifecycle_events: false,
    },
  };
}

const ms = (seconds: number) => Math.round(seconds * 1000);

class GladiaWire implements SttWire {
  readonly provider = PROVIDER;

  constructor(private readonly access: VendorAccess, private readonly cfg: SttConfig, private readonly opts: SttOpenOptions) {}

  async connect(signal?: AbortSignal): Promise<WebSocket> {
    const timeoutMs = this.cfg.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const region = this.access.extra?.region;
    const res = await vendorFetch({
      provider: PROVIDER,
      url: `${trimSlash(this.access.baseUrl)}/v2/live${region ? `?region=${encodeURIComponent(region)}` : ''}`,
      headers: { 'x-gladia-key': this.access.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify(initRequest(this.cfg, this.opts)),
      signal: signal ?? new AbortController().signal,
      firstByteTimeoutMs: timeoutMs,
    });
    const session = (await res.json().catch(() => null)) as { id?: unknown; url?: unknown } | null;
    const id = typeof session?.id === 'string' && session.id ? session.id : undefined;
    try {
      if (typeof session?.url !== 'string' || !/^wss?:\/\//.test(session.url)) {
        throw new ProviderError('protocol', 'session init answered without a WebSocket url', PROVIDER);
      }
      // The url carries the session's own token: no key on the socket.
      return await connectWebSocket(session.url, { provider: PROVIDER, timeoutMs, signal });
    } catch (err) {
      // The session exists on Gladia's side even though we cannot use it: end it rather than let it linger.
      if (id) this.endSession(id);
      throw err;
    }
  }

  /**
   * Best-effort DELETE /v2/live/{id}, in the background: the caller's failure is reported at once, and this
   * request is not tied to the caller's signal (an aborted open must still free the session).
   */
  private endSession(id: string): void {
    void vendorFetch({
      provider: PROVIDER,
      method: 'DELETE',
      url: `${trimSlash(this.access.baseUrl)}/v2/live/${encodeURIComponent(id)}`,
      headers: { 'x-gladia-key': this.access.apiKey },
      signal: new AbortController().signal,
      firstByteTimeoutMs: END_SESSION_TIMEOUT_MS,
    }).then((res) => res.arrayBuffer()).catch(() => {}); // a refusal (already gone, not deletable) changes nothing here
  }

  encode(frame: AudioFrame): Buffer {
    return pcmBytes(frame.samples);
  }

  closeMessage = (): string => JSON.stringify({ type: 'stop_recording' });

  parse(data: WebSocket.RawData, isBinary: boolean): SttEvent[] {
    if (isBinary) return [];
    let m: { type?: string; data?: Record<string, unknown> | null };
    try {
      m = JSON.parse(messageText(data)) as typeof m;
    } catch {
      throw new ProviderError('protocol', 'unreadable message', PROVIDER);
    }
    const d = m.data ?? {};
    switch (m.type) {
      case 'transcript': return this.transcript(d as { is_final?: boolean; utterance?: GladiaUtterance });
      case 'speech_start': return [{ type: 'speech_started', atMs: ms(Number(d.time) || 0) }];
      case 'speech_end': return [{ type: 'speech_ended', atMs: ms(Number(d.time) || 0) }];
      default: return []; // acknowledgments, post-processing and lifecycle messages; failures end in a close
    }
  }

  private transcript(d: { is_final?: boolean; utterance?: GladiaUtterance }): SttEvent[] {
    const u = d.utterance;
    const text = u?.text?.trim();
    if (!u || !text) return [];
    if (!d.is_final) return [{ type: 'interim', text, atMs: ms(u.end) }];
    // Gladia's words keep their leading space; a final is an utterance closed by endpointing.
    const words = (u.words ?? []).map((w) => ({ word: w.word.trim(), startMs: ms(w.start), endMs: ms(w.end) })).filter((w) => w.word);
    return [{ type: 'final', text, startMs: ms(u.start), endMs: ms(u.end), endOfTurn: true, words }];
  }
}

export function createGladiaStt(access: VendorAccess, cfg: SttConfig): SttProvider {
  return new SocketStt(PROVIDER, (opts) => new GladiaWire(access, cfg, { ...opts, language: opts.language || cfg.language }));
}
