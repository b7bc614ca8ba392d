/**
 * AssemblyAI Universal-Streaming (v3) speech-to-text over its WebSocket.
 *
 * Follows AssemblyAI's own documents:
 *  - "Streaming API" reference, `wss://streaming.assemblyai.com/v3/ws`
 *    (https://www.assemblyai.com/docs/api-reference/streaming-api/streaming-api) and its source,
 *    AssemblyAI/assemblyai-api-spec `fern/.definition/universalStreaming.yml` + `__package__.yml`
 *    (query parameters, Begin / Turn / SpeechStarted / Termination / Terminate / ForceEndpoint shapes).
 *  - "Message Sequence" (https://www.assemblyai.com/docs/streaming/universal-streaming/message-sequence):
 *    partial Turns, the end_of_turn Turn and, with format_turns, its formatted copy.
 *  - "Common session errors and closures" (https://www.assemblyai.com/docs/streaming/common-session-errors-and-closures):
 *    the `Error` frame sent before a failure close, close codes 1008 / 3005–3009.
 *  - "Keyterms prompting for Universal-Streaming" (https://www.assemblyai.com/docs/streaming/keyterms-prompting):
 *    `keyterms_prompt` is one query parameter holding a JSON list.
 *
 * Auth is the raw key in the `Authorization` header. Audio messages must hold 50–1000 ms, so the
 * engine's 20 ms frames are batched here before they reach the socket.
 */
import type { AudioFrame } from '../../engine/audio/frame.js';
import { ProviderError, type ProviderErrorKind, type SttEvent, type WordTiming } from '../../engine/types.js';
import { asProviderError } from '../errors.js';
import { pcmBytes } from '../pcm.js';
import type { SttConfig as BaseSttConfig, SttOpenOptions, SttProvider, VendorAccess } from '../types.js';
import { toWebSocketUrl, trimSlash } from '../vendors.js';
import { connectWebSocket, DEFAULT_CONNECT_TIMEOUT_MS, messageText, WebSocket } from '../ws.js';
import { SocketStt, type SttWire } from './socketSession.js';

const PROVIDER = 'assemblyai';
/** The smallest audio message the API accepts; batches are sent once they reach it. */
const MIN_CHUNK_MS = 50;
/** Query parameters a transcriber config may tune, passed through as AssemblyAI names them. */
const TUNABLES = ['end_of_turn_confidence_threshold', 'min_end_of_turn_silence_when_confident', 'max_turn_silence', 'vad_threshold', 'inactivity_timeout'] as const;
/** AssemblyAI takes at most 100 key terms per session. */
const MAX_KEYTERMS = 100;

export interface SttConfig extends BaseSttConfig {
  /** Formatted finals (punctuation, casing); on by default. */
  format_turns?: boolean;
  /** Time allowed for the handshake plus the session's `Begin` message. */
  connectTimeoutMs?: number;
}

interface Word { text: string; start: number; end: number; word_is_final?: boolean }
interface TurnMessage { type: 'Turn'; turn_order: number; end_of_turn: boolean; turn_is_formatted: boolean; transcript: string; words?: Word[] }

/** The kind an AssemblyAI close code (or `Error` frame) means. */
export function assemblyError(code: number, text: string): ProviderError {
  const t = text.toLowerCase();
  let kind: ProviderErrorKind = 'network'; // 1006 drops, 3008 expired sessions: a fresh socket works
  // 1008 covers both a bad key and an account limit; the text tells them apart.
  if (code === 3009 || code === 4002 || code === 4029 || code === 4102 || /concurren|too many|insufficient|balance|credit/.test(t)) kind = 'quota';
  else if (code === 1008 || code === 4001 || code === 4003) kind = 'auth';
  else if (code === 3005 || code === 1011 || code === 1012 || code === 1013 || code === 1014) kind = 'unavailable';
  else if (code === 3006 || code === 3007 || code === 1002 || code === 1003 || code === 1007 || (code >= 4000 && code < 5000)) kind = 'protocol';
  return new ProviderError(kind, `session closed (${code}${text ? ` ${text.slice(0, 200)}` : ''})`, PROVIDER);
}

function isEnglish(language: string): boolean {
  return /^en($|[-_])/i.test(language);
}

/** Boosted terms only: AssemblyAI has no weights and no way to suppress a word. */
function keyterms(keywords: Record<string, number> | undefined): string[] {
  if (!keywords) return [];
  return Object.entries(keywords).filter(([term, boost]) => term.trim() && boost > 0).map(([term]) => term.trim()).slice(0, MAX_KEYTERMS);
}

export function streamingUrl(baseUrl: string, cfg: SttConfig, o: SttOpenOptions): string {
  const url = new URL(`${toWebSocketUrl(trimSlash(baseUrl))}/v3/ws`);
  const q = url.searchParams;
  q.set('sample_rate', String(o.sampleRate));
  q.set('encoding', 'pcm_s16le');
  q.set('speech_model', cfg.model ?? (isEnglish(o.language) ? 'universal-streaming-english' : 'universal-streaming-multilingual'));
  q.set('format_turns', String(cfg.format_turns ?? true));
  for (const k of TUNABLES) if (cfg[k] !== undefined && cfg[k] !== null) q.set(k, String(cfg[k]));
  const terms = keyterms(o.keywords ?? cfg.keywords);
  if (terms.length) q.set('keyterms_prompt', JSON.stringify(terms));
  return url.toString();
}

/**
 * The wait for a session's `Begin`, under the connect's one deadline (handshake plus `Begin`). It
 * watches the socket from the moment it exists (connectWebSocket's onSocket): `Begin` can come in the
 * same packet as the upgrade answer. A close before it carries the vendor's reason, from the `Error`
 * frame (which holds the full text) when one came; a refused upgrade is typed by connectWebSocket.
 */
class BeginWait {
  /** Resolves on `Begin`; rejects with the vendor's reason, the deadline or the abort. */
  readonly begun: Promise<void>;
  /** A failure raised here (deadline, abort, unreadable message): it outranks the error connectWebSocket sees when the socket is then torn down. */
  cause: unknown;
  private ws?: WebSocket;
  private errorFrame?: { code: number; text: string };
  private settled = false;
  private resolve!: () => void;
  private reject!: (err: unknown) => void;
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor(timeoutMs: number, private readonly signal?: AbortSignal) {
    this.begun = new Promise<void>((resolve, reject) => { this.resolve = resolve; this.reject = reject; });
    this.begun.catch(() => {}); // awaited only once the upgrade succeeds
    this.timer = setTimeout(() => this.fail(new ProviderError('timeout', 'no Begin from the vendor in time', PROVIDER)), timeoutMs);
  }

  watch = (ws: WebSocket): void => {
    this.ws = ws;
    ws.on('message', this.onMessage);
    ws.on('close', this.onClose);
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
  };

  /** Ends the wait without an outcome (the connect failed on its own). */
  stop(): void {
    this.settle();
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    this.ws?.off('message', this.onMessage);
    this.ws?.off('close', this.onClose);
    this.signal?.removeEventListener('abort', this.onAbort);
    return true;
  }

  private fail(err: unknown): void {
    if (!this.settle()) return;
    this.cause = err;
    this.ws?.terminate();
    this.reject(err);
  }

  private readonly onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
    if (isBinary) return;
    try {
      const m = JSON.parse(messageText(data)) as { type?: string; error_code?: number; error?: string };
      if (m.type === 'Begin') { if (this.settle()) this.resolve(); }
      else if (m.type === 'Error') this.errorFrame = { code: Number(m.error_code), text: String(m.error ?? '') };
    } catch {
      this.fail(new ProviderError('protocol', 'unreadable message before Begin', PROVIDER));
    }
  };

  private readonly onClose = (code: number, reason: Buffer): void => {
    if (!this.settle()) return;
    this.reject(assemblyError(this.errorFrame?.code ?? code, this.errorFrame?.text ?? reason.toString()));
  };

  private readonly onAbort = (): void => this.fail(this.signal!.reason);
}

/** One session's wire: connection, audio batching, and Turn messages mapped to engine events. */
class AssemblyAIWire implements SttWire {
  readonly provider = PROVIDER;
  private readonly formatTurns: boolean;
  private ws?: WebSocket;
  private pending: Buffer[] = [];
  private pendingMs = 0;
  private inSpeech = false;
  private lastFinalTurn = -1;
  /** The socket's last `Error` frame: the close that follows is read with its code and full text. */
  private errorFrame?: { code: number; text: string };

  constructor(private readonly access: VendorAccess, private readonly cfg: SttConfig, private readonly opts: SttOpenOptions) {
    this.formatTurns = cfg.format_turns ?? true;
  }

  async connect(signal?: AbortSignal): Promise<WebSocket> {
    const timeoutMs = this.cfg.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const begin = new BeginWait(timeoutMs, signal);
    try {
      const ws = await connectWebSocket(streamingUrl(this.access.baseUrl, this.cfg, this.opts), {
        provider: PROVIDER, headers: { Authorization: this.access.apiKey }, timeoutMs, signal, onSocket: begin.watch,
      });
      await begin.begun;
      return ws;
    } catch (err) {
      throw begin.cause ?? err;
    } finally {
      begin.stop();
    }
  }

  onOpen(ws: WebSocket): void {
    // Per-socket state: a new socket numbers its turns from 0 and gets the replay from scratch.
    this.ws = ws;
    this.pending = [];
    this.pendingMs = 0;
    this.inSpeech = false;
    this.lastFinalTurn = -1;
    this.errorFrame = undefined;
  }

  /** A batch once it holds the minimum; null (nothing on the wire) while it fills. */
  encode(frame: AudioFrame): Buffer | null {
    this.pending.push(Buffer.from(pcmBytes(frame.samples)));
    this.pendingMs += (frame.samples.length * 1000) / frame.sampleRate;
    if (this.pendingMs < MIN_CHUNK_MS) return null;
    return this.take();
  }

  /** AssemblyAI's reading of a close, preferring the `Error` frame sent before it (the reason may be cut short). */
  closeError(code: number, reason: string): ProviderError {
    return assemblyError(this.errorFrame?.code ?? code, this.errorFrame?.text ?? reason);
  }

  private take(): Buffer {
    const out = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingMs = 0;
    return out;
  }

  closeMessage = (): string => {
    // The unsent tail, padded with silence to the minimum, so the last words are heard.
    if (this.pendingMs > 0 && this.ws?.readyState === WebSocket.OPEN) {
      const minBytes = Math.ceil((MIN_CHUNK_MS * this.opts.sampleRate) / 1000) * 2;
      const tail = this.take();
      this.ws.send(tail.length >= minBytes ? tail : Buffer.concat([tail, Buffer.alloc(minBytes - tail.length)]));
    }
    return JSON.stringify({ type: 'Terminate' });
  };

  parse(data: WebSocket.RawData, isBinary: boolean): SttEvent[] {
    if (isBinary) return [];
    let m: { type?: string; [k: string]: unknown };
    try {
      m = JSON.parse(messageText(data)) as typeof m;
    } catch (err) {
      throw new ProviderError('protocol', `unreadable message: ${asProviderError(PROVIDER, err).message}`, PROVIDER);
    }
    switch (m.type) {
      case 'Turn': return this.turn(m as unknown as TurnMessage);
      case 'SpeechStarted':
        this.inSpeech = true;
        return [{ type: 'speech_started', atMs: Number(m.timestamp) || 0 }];
      case 'Error': {
        this.errorFrame = { code: Number(m.error_code), text: String(m.error ?? '') };
        const error = assemblyError(this.errorFrame.code, this.errorFrame.text);
        // A retryable failure is left to the close that follows, which reconnects once.
        return error.retryable ? [] : [{ type: 'error', error }];
      }
      default: return []; // Begin (on reconnect races), Termination
    }
  }

  private turn(m: TurnMessage): SttEvent[] {
    const words = (m.words ?? []).filter((w) => typeof w.text === 'string' && w.text.length > 0);
    const out: SttEvent[] = [];
    if (!this.inSpeech && words.length && m.turn_order !== this.lastFinalTurn) {
      this.inSpeech = true;
      out.push({ type: 'speech_started', atMs: words[0].start });
    }
    if (!m.end_of_turn) {
      // Partial: finalized words plus the one still forming, the freshest guess of what was said.
      const text = words.map((w) => w.text).join(' ') || m.transcript;
      if (text.trim()) out.push({ type: 'interim', text: text.trim(), atMs: words.at(-1)?.end ?? 0 });
      return out;
    }
    // With formatting on, the unformatted end-of-turn Turn is followed by its formatted copy.
    if ((this.formatTurns && !m.turn_is_formatted) || m.turn_order === this.lastFinalTurn) return out;
    this.lastFinalTurn = m.turn_order;
    this.inSpeech = false;
    const text = (m.transcript ?? '').trim();
    if (!text) return out;
    const timings: WordTiming[] = words.map((w) => ({ word: w.text, startMs: w.start, endMs: w.end }));
    out.push({ type: 'final', text, startMs: timings[0]?.startMs ?? 0, endMs: timings.at(-1)?.endMs ?? 0, endOfTurn: true, words: timings });
    return out;
  }
}

export function createAssemblyAIStt(access: VendorAccess, cfg: SttConfig): SttProvider {
  return new SocketStt(PROVIDER, (opts) => new AssemblyAIWire(access, cfg, { ...opts, language: opts.language || cfg.language }));
}
