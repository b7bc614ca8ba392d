/**
 * Deepgram Aura speech over the streaming `/v1/speak` WebSocket.
 *
 * Followed: Deepgram "Continuous Text Stream" API reference (developers.deepgram.com/reference/text-to-speech/speak-streaming),
 * the Text-to-Speech Streaming guides "Flush" (/docs/tts-ws-flush), "Clear" (/docs/tts-ws-clear) and "Close"
 * (/docs/tts-ws-close), "TTS Troubleshooting WebSocket, NET, and DATA Errors", and the Aura WebSocket launch note
 * (partial text and LLM tokens may be sent as they come; the server does the sentence chunking).
 *
 * Wire facts relied on: query `model`, `encoding=linear16`, `sample_rate` (8000/16000/24000/32000/48000; no
 * container on the socket, so audio is raw PCM); `Authorization: Token <key>`; client messages
 * `{type:"Speak",text}`, `Flush`, `Clear`, `Close`; server sends binary audio, `Metadata`, `Flushed`
 * (after the flushed text's last audio), `Cleared`, `Warning`. At most 20 Flushes per minute per socket.
 * Deepgram gives no word timings, so no `words` events are emitted.
 *
 * A reply whose text is complete (Flush or Close sent) and that has had no audio within the first-audio deadline
 * fails with a timeout, as ElevenLabs, Cartesia and Rime replies do: Deepgram is hung, and the socket is dropped.
 *
 * One socket serves a reply; when the reply ends cleanly (Flushed) or is cleared (Cleared), the socket goes
 * back to a one-per-rate pool, so later replies of the call skip the handshake too.
 */
import { ProviderError, type TtsEvent, type TtsSession } from '../../engine/types.js';
import { AsyncQueue } from '../asyncQueue.js';
import { closeError } from '../errors.js';
import { PcmAssembler } from '../pcm.js';
import type { TtsProvider, VendorAccess } from '../types.js';
import { toWebSocketUrl, trimSlash } from '../vendors.js';
import { connectDeepgram } from '../stt/deepgram.js';
import { messageBytes, messageText, WebSocket } from '../ws.js';

const PROVIDER = 'deepgram';
const DEFAULT_MODEL = 'aura-2-thalia-en';
/** Deepgram's per-socket Flush budget; past it a reply ends with Close instead (which also flushes). */
const FLUSH_LIMIT = 20;
const FLUSH_WINDOW_MS = 60_000;
/** Longest text in one Speak message we send; longer pushes are split. */
const MAX_SPEAK_CHARS = 1000;
/** A socket whose Cleared does not come back this soon is not trusted with the next reply. */
const CLEAR_WAIT_MS = 1000;
/** No audio this long after the reply's text was complete: Deepgram is hung (as for the other streaming TTS vendors). */
const FIRST_AUDIO_TIMEOUT_MS = 10_000;

const SPEAK_RATES = new Set([8000, 16000, 24000, 32000, 48000]);

/** Deepgram's close payloads name the failure: DATA-xxxx is our input, NET-xxxx is theirs. */
function speakCloseError(code: number, reason: string): ProviderError {
  if (/^DATA-/.test(reason)) return new ProviderError('protocol', `socket closed (${code} ${reason})`, PROVIDER);
  if (/^NET-/.test(reason)) return new ProviderError('unavailable', `socket closed (${code} ${reason})`, PROVIDER);
  return closeError(PROVIDER, code, reason);
}

interface Pooled { ws: WebSocket; flushes: number[] }

class DeepgramTtsSession implements TtsSession {
  private readonly out = new AsyncQueue<TtsEvent>();
  private readonly pcm = new PcmAssembler();
  private state: 'open' | 'flushing' | 'closing' | 'done' | 'cancelled' | 'failed' = 'open';
  private spoke = false;
  private gotAudio = false;
  private watchdog?: NodeJS.Timeout;
  private readonly detach: () => void;

  constructor(
    private readonly sock: Pooled,
    signal: AbortSignal,
    /** Hands the socket back: reusable (now, or once a Clear is confirmed) when idle and clean, else it is closed. */
    private readonly release: (sock: Pooled, reusable: boolean | Promise<boolean>) => void,
    private readonly firstAudioTimeoutMs = FIRST_AUDIO_TIMEOUT_MS,
  ) {
    const ws = sock.ws;
    const onMessage = (data: WebSocket.RawData, isBinary: boolean) => this.onMessage(data, isBinary);
    const onClose = (code: number, reason: Buffer) => this.onClose(code, reason.toString());
    const onAbort = () => this.cancel();
    ws.on('message', onMessage);
    ws.on('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
    this.detach = () => {
      clearTimeout(this.watchdog);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    if (signal.aborted) this.cancel();
  }

  pushText(text: string): void {
    if (this.state !== 'open' || !text) return;
    for (let i = 0; i < text.length; i += MAX_SPEAK_CHARS) this.send({ type: 'Speak', text: text.slice(i, i + MAX_SPEAK_CHARS) });
    if (text.trim()) this.spoke = true;
  }

  flush(): void {
    if (this.state !== 'open') return;
    if (!this.spoke) { this.finish(true); return; } // nothing to voice: no need to spend a Flush
    const now = Date.now();
    this.sock.flushes = this.sock.flushes.filter((t) => now - t < FLUSH_WINDOW_MS);
    if (this.sock.flushes.length >= FLUSH_LIMIT) { this.closeInstead(); return; }
    this.sock.flushes.push(now);
    this.state = 'flushing';
    this.send({ type: 'Flush' });
    this.armWatchdog();
  }

  /** Close voices what is buffered, then ends the socket: the reply's end without a Flush. */
  private closeInstead(): void {
    this.state = 'closing';
    this.send({ type: 'Close' });
    this.armWatchdog();
  }

  /** Once the text is complete, audio must start within the deadline (audio that already came disarms it). */
  private armWatchdog(): void {
    if (this.gotAudio || this.watchdog) return;
    this.watchdog = setTimeout(() => {
      this.fail(new ProviderError('timeout', 'no audio after the text was complete', PROVIDER));
    }, this.firstAudioTimeoutMs);
  }

  events(): AsyncIterable<TtsEvent> {
    return this.out;
  }

  cancel(): void {
    if (this.state === 'done' || this.state === 'cancelled' || this.state === 'failed') return;
    const closing = this.state === 'closing';
    this.state = 'cancelled';
    this.out.end();
    this.detach();
    const ws = this.sock.ws;
    if (closing || ws.readyState !== WebSocket.OPEN) { this.release(this.sock, false); return; }
    // Clear stops generation at once and keeps the socket; it is reusable once Cleared marks the old audio's end.
    ws.send(JSON.stringify({ type: 'Clear' }));
    this.release(this.sock, new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        ws.off('message', onMessage);
        ws.off('close', onClose);
        resolve(ok);
      };
      const onMessage = (data: WebSocket.RawData, isBinary: boolean) => { if (!isBinary && parse(data)?.type === 'Cleared') done(true); };
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), CLEAR_WAIT_MS);
      ws.on('message', onMessage);
      ws.on('close', onClose);
    }));
  }

  private send(m: Record<string, unknown>): void {
    if (this.sock.ws.readyState === WebSocket.OPEN) this.sock.ws.send(JSON.stringify(m));
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (isBinary) {
      this.gotAudio = true;
      clearTimeout(this.watchdog);
      const samples = this.pcm.push(messageBytes(data));
      if (samples.length) this.out.push({ type: 'audio', samples });
      return;
    }
    const m = parse(data);
    if (!m) return this.fail(new ProviderError('protocol', 'unparseable message', PROVIDER));
    if (m.type === 'Flushed' && this.state === 'flushing') this.finish(true);
    // A Warning while a Flush is pending is most likely the Flush being refused (rate limit): Close still flushes.
    else if (m.type === 'Warning' && this.state === 'flushing') this.closeInstead();
  }

  private onClose(code: number, reason: string): void {
    if (this.state === 'closing' && code === 1000) this.finish(false);
    else this.fail(speakCloseError(code, reason));
  }

  private finish(reusable: boolean): void {
    this.state = 'done';
    this.out.push({ type: 'done' });
    this.out.end();
    this.detach();
    this.release(this.sock, reusable);
  }

  private fail(err: ProviderError): void {
    if (this.state === 'done' || this.state === 'cancelled' || this.state === 'failed') return;
    this.state = 'failed';
    this.out.fail(err);
    this.detach();
    this.release(this.sock, false);
  }
}

function parse(data: WebSocket.RawData): { type?: string } | undefined {
  try {
    return JSON.parse(messageText(data)) as { type?: string };
  } catch {
    return undefined;
  }
}

interface Parked { sock: Promise<Pooled>; unpark: () => void }

class DeepgramTts implements TtsProvider {
  readonly name = PROVIDER;
  /** Idle sockets, at most one per output rate (a pending connect counts). */
  private pool = new Map<number, Parked>();
  private disposed = false;

  constructor(private readonly access: VendorAccess, private readonly model: string, private readonly opts: DeepgramTtsOptions) {}

  private connect(sampleRate: number, signal?: AbortSignal): Promise<Pooled> {
    const base = `${toWebSocketUrl(trimSlash(this.access.baseUrl || 'https://api.deepgram.com'))}/v1/speak`;
    const q = new URLSearchParams({ model: this.model, encoding: 'linear16', sample_rate: String(sampleRate) });
    return connectDeepgram(`${base}?${q}`, this.access.apiKey, signal).then((ws) => ({ ws, flushes: [] }));
  }

  preconnect(opts: { sampleRate: number }): void {
    if (this.disposed || this.pool.has(opts.sampleRate) || !SPEAK_RATES.has(opts.sampleRate)) return;
    const sock = this.connect(opts.sampleRate);
    sock.catch(() => {}); // reported by the open that adopts it
    this.park(opts.sampleRate, sock);
  }

  /** Keeps an idle socket for the next reply at this rate, forgetting it if the server closes it meanwhile. */
  private park(rate: number, sock: Promise<Pooled>): void {
    let ws: WebSocket | undefined;
    const forget = () => { if (this.pool.get(rate)?.sock === sock) this.pool.delete(rate); };
    this.pool.set(rate, { sock, unpark: () => ws?.off('close', forget) });
    void sock.then((s) => {
      if (this.pool.get(rate)?.sock !== sock) return;
      ws = s.ws;
      if (ws.readyState !== WebSocket.OPEN) forget();
      else ws.once('close', forget);
    }, forget);
  }

  private async take(rate: number, signal: AbortSignal): Promise<Pooled> {
    const warm = this.pool.get(rate);
    this.pool.delete(rate);
    if (warm) {
      warm.unpark();
      const s = await warm.sock.catch(() => undefined);
      // A warm connect that failed or a socket the server since closed: connect afresh (a failure repeats there).
      if (s && s.ws.readyState === WebSocket.OPEN) return s;
    }
    return this.connect(rate, signal);
  }

  async open(opts: { sampleRate: number }, signal: AbortSignal): Promise<TtsSession> {
    if (!SPEAK_RATES.has(opts.sampleRate)) throw new ProviderError('protocol', `unsupported sample rate ${opts.sampleRate}`, PROVIDER, false);
    if (signal.aborted) throw signal.reason;
    const sock = await this.take(opts.sampleRate, signal);
    return new DeepgramTtsSession(sock, signal, (s, reusable) => this.giveBack(opts.sampleRate, s, reusable), this.opts.firstAudioTimeoutMs);
  }

  private giveBack(rate: number, sock: Pooled, reusable: boolean | Promise<boolean>): void {
    const drop = () => { if (sock.ws.readyState === WebSocket.OPEN) sock.ws.close(1000); else sock.ws.terminate(); };
    if (reusable === false || this.disposed || this.pool.has(rate)) { drop(); return; }
    // A socket still confirming a Clear is parked as a promise: the next reply waits for it rather than reconnecting.
    this.park(rate, Promise.resolve(reusable).then((ok) => {
      if (ok && sock.ws.readyState === WebSocket.OPEN) return sock;
      drop();
      throw new ProviderError('network', 'socket not reusable', PROVIDER);
    }));
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const parked = [...this.pool.values()];
    this.pool.clear();
    await Promise.all(parked.map((p) => { p.unpark(); return p.sock.then((s) => s.ws.close(1000), () => {}); }));
  }
}

export interface DeepgramTtsOptions {
  /** How long a reply whose text is complete may wait for its first audio (default 10 s, as for the other streaming vendors). */
  firstAudioTimeoutMs?: number;
}

export function createDeepgramTts(access: VendorAccess, voice: Record<string, unknown>, opts: DeepgramTtsOptions = {}): TtsProvider {
  const model = typeof voice.model === 'string' && voice.model ? voice.model : DEFAULT_MODEL;
  return new DeepgramTts(access, model, opts);
}
