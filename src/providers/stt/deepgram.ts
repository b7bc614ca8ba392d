/**
 * Deepgram live transcription over the `/v1/listen` WebSocket.
 *
 * Followed: Deepgram "Live Audio" API reference (developers.deepgram.com/reference/speech-to-text/listen-streaming),
 * "Configure Endpointing and Interim Results" (/docs/understand-endpointing-interim-results), "Endpointing",
 * "Interim Results", "Audio Keep Alive" (/docs/audio-keep-alive), "Keyterm Prompting" (/docs/keyterm),
 * "Keywords" (/docs/keywords), "Models & Languages Overview" and the Nova-3 language changelog entries,
 * and "STT Troubleshooting WebSocket, NET, and DATA Errors" (/docs/stt-troubleshooting-websocket-data-and-net-errors).
 *
 * Wire facts relied on: `Authorization: Token <key>`; raw audio in binary frames; `KeepAlive` / `CloseStream`
 * as JSON text frames; `Results` carry `start`/`duration` in seconds from the stream start, `is_final`,
 * `speech_final` and per-word `start`/`end`; `SpeechStarted.timestamp` and `UtteranceEnd.last_word_end` are
 * seconds; Nova-3 takes repeated `keyterm=` (no boosts) and rejects `keywords`, older models take `keywords=word:boost`.
 */
import type { AudioFrame } from '../../engine/audio/frame.js';
import { encodeMuLaw } from '../../engine/audio/g711.js';
import { ProviderError, type SttEvent, type WordTiming } from '../../engine/types.js';
import { pcmBytes } from '../pcm.js';
import type { SttConfig as BaseSttConfig, SttOpenOptions, SttProvider, VendorAccess } from '../types.js';
import { toWebSocketUrl, trimSlash } from '../vendors.js';
import { connectWebSocket, messageText, WebSocket } from '../ws.js';
import { SocketStt, type SttWire } from './socketSession.js';

export interface SttConfig extends BaseSttConfig {
  /** `mulaw` halves the upstream bandwidth of telephony audio; the default is linear16. */
  encoding?: 'linear16' | 'mulaw';
  /** Silence (ms) before Deepgram marks a final `speech_final`; `false` leaves turn ends to UtteranceEnd. */
  endpointing?: number | false;
  /** Gap after the last word (ms, Deepgram's minimum is 1000) before an UtteranceEnd. */
  utterance_end_ms?: number;
  smart_format?: boolean;
  /** How often an idle socket is kept open (Deepgram closes after 10 s without audio or KeepAlive). */
  keepAliveMs?: number;
}

const PROVIDER = 'deepgram';
const DEFAULT_ENDPOINTING_MS = 300;
const DEFAULT_UTTERANCE_END_MS = 1000;
const DEFAULT_KEEPALIVE_MS = 4000;

/**
 * Base languages with a monolingual Nova-3 model (plus `multi`), per Deepgram's models overview and the
 * 2025–2026 Nova-3 language changelog. Anything else falls back to Nova-2, which covers more languages.
 */
const NOVA3_LANGUAGES = new Set([
  'multi', 'en', 'es', 'fr', 'pt', 'de', 'nl', 'sv', 'da', 'it', 'tr', 'no', 'id', 'bg', 'cs', 'fi', 'hi', 'hu',
  'ja', 'ko', 'pl', 'ru', 'uk', 'vi', 'ca', 'et', 'el', 'lv', 'lt', 'ms', 'ro', 'sk', 'be', 'bn', 'bs', 'hr',
  'kn', 'mk', 'mr', 'sr', 'sl', 'ta', 'tl', 'te', 'zh', 'th',
]);

export function defaultModel(language: string): string {
  return NOVA3_LANGUAGES.has(language.toLowerCase().split('-')[0]) ? 'nova-3' : 'nova-2';
}

const isNova3 = (model: string) => model.startsWith('nova-3');

/** The `/v1/listen` query for one session. */
export function listenQuery(cfg: SttConfig, opts: SttOpenOptions): URLSearchParams {
  const language = opts.language || cfg.language;
  const model = cfg.model || defaultModel(language);
  const q = new URLSearchParams({
    model, language,
    encoding: cfg.encoding ?? 'linear16',
    sample_rate: String(opts.sampleRate),
    channels: '1',
    interim_results: 'true',
    endpointing: cfg.endpointing === false ? 'false' : String(cfg.endpointing ?? DEFAULT_ENDPOINTING_MS),
    utterance_end_ms: String(Math.max(1000, cfg.utterance_end_ms ?? DEFAULT_UTTERANCE_END_MS)),
    vad_events: 'true',
    smart_format: String(cfg.smart_format ?? true),
    punctuate: 'true',
  });
  const boosts = { ...cfg.keywords, ...opts.keywords };
  for (const [term, boost] of Object.entries(boosts)) {
    const t = term.trim();
    if (!t || !Number.isFinite(boost)) continue;
    // Keyterms only raise recall, so a suppressing (≤ 0) boost has no Nova-3 equivalent.
    if (isNova3(model)) { if (boost > 0) q.append('keyterm', t); } else q.append('keywords', `${t}:${boost}`);
  }
  return q;
}

interface DgWord { word: string; punctuated_word?: string; start: number; end: number }
interface DgMessage {
  type?: string;
  start?: number;
  duration?: number;
  is_final?: boolean;
  speech_final?: boolean;
  channel?: { alternatives?: { transcript?: string; words?: DgWord[] }[] } | number[];
  timestamp?: number;
  last_word_end?: number;
  description?: string;
  message?: string;
  err_msg?: string;
}

const ms = (s: number | undefined) => Math.round((s ?? 0) * 1000);

/** Deepgram messages → engine events for one socket; remembers whether a turn is still open. */
export class ResultMapper {
  /** Words were finalized since the last end of turn, and no `speech_final` closed it yet. */
  private turnOpen = false;
  private lastEndMs = 0;

  map(m: DgMessage): SttEvent[] {
    switch (m.type) {
      case 'Results': return this.results(m);
      case 'SpeechStarted': return [{ type: 'speech_started', atMs: ms(m.timestamp) }];
      case 'UtteranceEnd': {
        const atMs = m.last_word_end !== undefined && m.last_word_end >= 0 ? ms(m.last_word_end) : this.lastEndMs;
        const out: SttEvent[] = [];
        // Endpointing missed this turn's end (noise kept it open): UtteranceEnd is the word-gap backstop.
        if (this.turnOpen) out.push({ type: 'final', text: '', startMs: atMs, endMs: atMs, endOfTurn: true });
        this.turnOpen = false;
        out.push({ type: 'speech_ended', atMs });
        return out;
      }
      case 'Error':
        throw new ProviderError('protocol', m.description ?? m.message ?? m.err_msg ?? 'error message', PROVIDER);
      default:
        return []; // Metadata, Warning and anything newer
    }
  }

  private results(m: DgMessage): SttEvent[] {
    const alt = Array.isArray(m.channel) ? undefined : m.channel?.alternatives?.[0];
    if (!alt) throw new ProviderError('protocol', 'Results without channel.alternatives', PROVIDER);
    const text = (alt.transcript ?? '').trim();
    const segStart = ms(m.start);
    const segEnd = ms((m.start ?? 0) + (m.duration ?? 0));
    if (!m.is_final) return text ? [{ type: 'interim', text, atMs: segEnd }] : [];
    const endOfTurn = m.speech_final === true;
    if (!text) {
      // An empty speech_final still closes a turn whose words came in earlier finals.
      if (!endOfTurn || !this.turnOpen) return [];
      this.turnOpen = false;
      return [{ type: 'final', text: '', startMs: segEnd, endMs: segEnd, endOfTurn: true }];
    }
    const words: WordTiming[] = (alt.words ?? []).map((w) => ({ word: w.punctuated_word ?? w.word, startMs: ms(w.start), endMs: ms(w.end) }));
    // The segment window includes the silence before the words; the words say when speech was.
    const startMs = words.length ? words[0].startMs : segStart;
    const endMs = words.length ? words[words.length - 1].endMs : segEnd;
    this.lastEndMs = endMs;
    this.turnOpen = !endOfTurn;
    return [{ type: 'final', text, startMs, endMs, endOfTurn, words: words.length ? words : undefined }];
  }
}

class DeepgramWire implements SttWire {
  readonly provider = PROVIDER;
  private readonly mapper = new ResultMapper();
  private lastAudioAt = 0;
  readonly keepAlive: SttWire['keepAlive'];

  constructor(private readonly access: VendorAccess, private readonly cfg: SttConfig, private readonly url: string) {
    const intervalMs = cfg.keepAliveMs ?? DEFAULT_KEEPALIVE_MS;
    // KeepAlive only matters when no audio flows; while it does, the interval sends nothing.
    this.keepAlive = { intervalMs, message: () => (Date.now() - this.lastAudioAt >= intervalMs ? KEEPALIVE : undefined) };
  }

  connect(signal?: AbortSignal): Promise<WebSocket> {
    return connectDeepgram(this.url, this.access.apiKey, signal);
  }

  encode(frame: AudioFrame): Buffer {
    this.lastAudioAt = Date.now();
    if (this.cfg.encoding === 'mulaw') {
      const mu = encodeMuLaw(frame.samples);
      return Buffer.from(mu.buffer, mu.byteOffset, mu.byteLength);
    }
    return pcmBytes(frame.samples);
  }

  parse(data: WebSocket.RawData, isBinary: boolean): SttEvent[] {
    if (isBinary) return []; // Deepgram only sends JSON text; ignore anything else rather than fail a call
    let m: DgMessage;
    try {
      m = JSON.parse(messageText(data)) as DgMessage;
    } catch {
      throw new ProviderError('protocol', 'unparseable message', PROVIDER);
    }
    return this.mapper.map(m);
  }

  closeMessage = () => CLOSE_STREAM;
}

/** Deepgram's handshake: the key as `Token`, failures typed by the shared connector. */
export function connectDeepgram(url: string, apiKey: string, signal?: AbortSignal): Promise<WebSocket> {
  return connectWebSocket(url, { provider: PROVIDER, headers: { Authorization: `Token ${apiKey}` }, signal });
}

const KEEPALIVE = JSON.stringify({ type: 'KeepAlive' });
const CLOSE_STREAM = JSON.stringify({ type: 'CloseStream' });

export function createDeepgramStt(access: VendorAccess, cfg: SttConfig): SttProvider {
  const base = `${toWebSocketUrl(trimSlash(access.baseUrl || 'https://api.deepgram.com'))}/v1/listen`;
  return new SocketStt(PROVIDER, (opts) => new DeepgramWire(access, cfg, `${base}?${listenQuery(cfg, opts)}`));
}
