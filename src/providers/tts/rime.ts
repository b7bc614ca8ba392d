/**
 * Rime text-to-speech over its JSON WebSocket, which streams text in and returns word timestamps.
 *
 * Follows Rime's docs "WebSocket API Overview" (https://docs.rime.ai/docs/websockets: use /ws3 on
 * users-ws.rime.ai), "Websockets JSON" (https://docs.rime.ai/api-reference/arcana/websockets-json and
 * the mist variants: synthesis settings as query parameters, Bearer auth on the upgrade; send
 * {text}, {operation:'flush'|'clear'|'eos'}; receive {type:'chunk', data: base64 audio},
 * {type:'timestamps', word_timestamps:{words,start,end}} in seconds from the start of the current
 * synthesis, {type:'done'} after each synthesis, {type:'error', message}) and "Segmentation & Behavior
 * Settings" (https://docs.rime.ai/docs/websockets-segment: with segment=never only our flushes start
 * synthesis, so each sentence is cut here, the same way the HTTP-per-sentence vendors are).
 */
import type { TtsEvent, TtsSession, WordTiming } from '../../engine/types.js';
import { AsyncQueue } from '../asyncQueue.js';
import { closeError, ProviderError } from '../errors.js';
import { PcmAssembler } from '../pcm.js';
import type { TtsProvider, VendorAccess } from '../types.js';
import { toWebSocketUrl } from '../vendors.js';
import { onAbort } from '../events.js';
import { connectWebSocket, messageText, WebSocket } from '../ws.js';
import { feedSentences } from './sentenceSession.js';

const PROVIDER = 'rime';
export const DEFAULT_RIME_SPEAKER = 'cove';
export const DEFAULT_RIME_MODEL = 'mistv2';
/** No answer this long after text was flushed: Rime is hung. */
const FIRST_AUDIO_TIMEOUT_MS = 10_000;

export interface RimeOptions {
  speaker: string;
  modelId: string;
  speedAlpha?: number;
}

/** Rime's speech sockets live on their own host; any other base URL (a proxy, a test) is used as given. */
export function rimeSocketBase(baseUrl: string): string {
  return toWebSocketUrl(baseUrl).replace(/^wss:\/\/users\.rime\.ai(?=[/:]|$)/, 'wss://users-ws.rime.ai');
}

/** Stored model ids: 'v1' is Rime's first model, served today as 'mist'. */
function modelIdFor(stored: string | undefined): string {
  if (!stored) return DEFAULT_RIME_MODEL;
  return stored === 'v1' ? 'mist' : stored;
}

export class RimeTts implements TtsProvider {
  readonly name = PROVIDER;
  private warm?: { rate: number; socket: Promise<WebSocket> };
  /** After preconnect, each reply's socket is opened while the previous reply plays. */
  private keepWarm = false;

  constructor(private readonly access: VendorAccess, private readonly o: RimeOptions) {}

  url(sampleRate: number): string {
    const q = new URLSearchParams({ speaker: this.o.speaker, modelId: this.o.modelId, audioFormat: 'pcm', samplingRate: String(sampleRate), segment: 'never' });
    // speedAlpha is a mist control (above 1 is slower); arcana and later models ignore or refuse it.
    if (this.o.speedAlpha !== undefined && this.o.modelId.startsWith('mist')) q.set('speedAlpha', String(this.o.speedAlpha));
    return `${rimeSocketBase(this.access.baseUrl)}/ws3?${q}`;
  }

  private connect(sampleRate: number, signal?: AbortSignal): Promise<WebSocket> {
    return connectRime(this.url(sampleRate), this.access.apiKey, signal);
  }

  preconnect(opts: { sampleRate: number }): void {
    this.keepWarm = true;
    this.warmUp(opts.sampleRate);
  }

  private warmUp(rate: number): void {
    const socket = this.connect(rate);
    socket.catch(() => {}); // reported by the open that adopts it
    this.warm = { rate, socket };
  }

  async open(opts: { sampleRate: number }, signal: AbortSignal): Promise<TtsSession> {
    if (signal.aborted) throw signal.reason;
    const warm = this.warm;
    this.warm = undefined;
    let ws: WebSocket | undefined;
    if (warm && warm.rate === opts.sampleRate) {
      ws = await warm.socket.catch(() => undefined);
      if (ws && ws.readyState !== WebSocket.OPEN) ws = undefined;
    } else if (warm) void warm.socket.then((s) => s.close(1000), () => {});
    ws ??= await this.connect(opts.sampleRate, signal);
    if (this.keepWarm) this.warmUp(opts.sampleRate);
    return new RimeSession(ws, opts.sampleRate, signal);
  }

  async dispose(): Promise<void> {
    this.keepWarm = false;
    const warm = this.warm;
    this.warm = undefined;
    if (warm) await warm.socket.then((s) => s.close(1000), () => {});
  }
}

interface RimeMessage { type?: string; data?: string; message?: string; word_timestamps?: { words?: string[]; start?: number[]; end?: number[] } }

export class RimeSession implements TtsSession {
  private readonly out = new AsyncQueue<TtsEvent>();
  private readonly pcm = new PcmAssembler();
  private buffer = '';
  private flushed = false;
  private cancelled = false;
  private eosSent = false;
  private sentText = false;
  /** Samples emitted so far, and where the current synthesis started (its timestamps count from there). */
  private samples = 0;
  private synthesisStart = 0;
  private watchdog?: NodeJS.Timeout;
  private readonly offAbort: () => void;

  constructor(private readonly ws: WebSocket, private readonly rate: number, signal: AbortSignal) {
    ws.on('message', (data) => this.onMessage(messageText(data)));
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
    this.offAbort = onAbort(signal, () => this.cancel());
  }

  private send(message: object): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  pushText(text: string): void {
    if (this.flushed || this.cancelled) return;
    this.buffer = feedSentences(this.buffer, text, (s) => this.speak(s));
  }

  /** Sends a piece exactly as written (Rime concatenates what it receives) and has it synthesized. */
  private speak(text: string): void {
    this.send({ text });
    this.send({ operation: 'flush' });
    this.sentText = true;
    this.armWatchdog();
  }

  flush(): void {
    if (this.flushed || this.cancelled) return;
    this.flushed = true;
    if (this.buffer.trim()) this.speak(this.buffer);
    this.buffer = '';
    if (!this.sentText) {
      this.finish();
      this.ws.close(1000);
      return;
    }
    // EOS: Rime voices what is left, then closes the socket; that close is our `done`.
    this.eosSent = true;
    this.send({ operation: 'eos' });
  }

  private armWatchdog(): void {
    if (this.watchdog || this.samples > 0) return;
    this.watchdog = setTimeout(() => {
      this.fail(new ProviderError('timeout', 'no audio from Rime in time', PROVIDER));
      this.ws.terminate();
    }, FIRST_AUDIO_TIMEOUT_MS);
  }

  private onMessage(text: string): void {
    if (this.cancelled) return;
    let m: RimeMessage;
    try { m = JSON.parse(text) as RimeMessage; } catch {
      this.fail(new ProviderError('protocol', 'Rime sent a message that is not JSON', PROVIDER));
      this.ws.terminate();
      return;
    }
    switch (m.type) {
      case 'chunk': {
        clearTimeout(this.watchdog);
        const samples = this.pcm.push(Buffer.from(m.data ?? '', 'base64'));
        if (!samples.length) return;
        this.samples += samples.length;
        this.out.push({ type: 'audio', samples });
        return;
      }
      case 'timestamps': {
        const t = m.word_timestamps;
        if (!t?.words?.length || !t.start || !t.end) return;
        const base = (this.synthesisStart * 1000) / this.rate;
        const words: WordTiming[] = t.words.map((word, i) => ({ word, startMs: base + (t.start![i] ?? 0) * 1000, endMs: base + (t.end![i] ?? 0) * 1000 }));
        this.out.push({ type: 'words', words });
        return;
      }
      case 'done':
        this.synthesisStart = this.samples;
        return;
      case 'error':
        // Rime keeps the socket open after an error, but this reply cannot be completed as asked.
        this.fail(new ProviderError('protocol', `Rime error: ${String(m.message ?? 'unknown').slice(0, 200)}`, PROVIDER));
        this.ws.close(1000);
        return;
    }
  }

  private onClose(code: number, reason: string): void {
    clearTimeout(this.watchdog);
    if (this.cancelled || this.out.closed) return;
    if (this.eosSent && code === 1000) this.finish();
    else this.fail(code === 1000 ? new ProviderError('network', 'Rime closed the socket before the reply was voiced', PROVIDER) : closeError(PROVIDER, code, reason));
  }

  private finish(): void {
    this.end();
    this.out.push({ type: 'done' });
    this.out.end();
  }

  private fail(err: ProviderError): void {
    this.end();
    this.out.fail(err);
  }

  private end(): void {
    clearTimeout(this.watchdog);
    this.offAbort?.(); // unset when the signal had already aborted at construction
  }

  events(): AsyncIterable<TtsEvent> {
    return this.out;
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.end();
    // Clear drops what Rime has queued; closing ends this reply's socket (the next reply has its own).
    this.send({ operation: 'clear' });
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    this.out.end();
  }
}

/** Opens a Rime socket: Bearer auth on the upgrade; a refusal is typed from its status and Rime's message. */
export function connectRime(url: string, apiKey: string, signal?: AbortSignal): Promise<WebSocket> {
  return connectWebSocket(url, { provider: PROVIDER, headers: { authorization: `Bearer ${apiKey}` }, signal });
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Stored `{type:'voice_rime', speaker, speed_alpha, model_id ('mist'|'mistv2'|'v1'|'arcana')}`. */
export function createRimeTts(access: VendorAccess, voice: Record<string, unknown>): TtsProvider {
  return new RimeTts(access, {
    speaker: str(voice.speaker) ?? DEFAULT_RIME_SPEAKER,
    modelId: modelIdFor(str(voice.model_id)),
    speedAlpha: num(voice.speed_alpha),
  });
}
