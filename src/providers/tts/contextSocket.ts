/**
 * Plumbing for TTS vendors that multiplex replies as "contexts" over one WebSocket (ElevenLabs
 * multi-stream-input, Cartesia /tts/websocket): one warm socket per call, opened by preconnect or the
 * first reply, server messages routed to the reply they belong to, and a socket that dies failing every
 * reply still running on it with the vendor's typed error. A reply never owns the socket, so aborting
 * an `open` only stops waiting for it.
 */
import type { TtsEvent, TtsSession, WordTiming } from '../../engine/types.js';
import { ProviderError } from '../../engine/types.js';
import { AsyncQueue } from '../asyncQueue.js';
import { asProviderError } from '../errors.js';
import { onAbort, raceAbort } from '../events.js';
import { PcmAssembler, RateConverter } from '../pcm.js';
import { connectWebSocket, WebSocket, messageText } from '../ws.js';

export type Json = Record<string, unknown>;

export interface ContextListener {
  message(msg: Json): void;
  /** The socket closed under the reply. */
  lost(err: ProviderError): void;
}

export interface ContextSocketOptions {
  provider: string;
  url: string;
  headers: Record<string, string>;
  /** The reply a server message belongs to; undefined for socket-wide messages (errors before a close). */
  contextOf(msg: Json): string | undefined;
  /** The typed error for a close, given the last socket-wide message the vendor sent before it. */
  closeError(code: number, reason: string, last: Json | undefined): ProviderError;
  /** Sent before a deliberate close so the vendor ends the session cleanly (ElevenLabs close_socket). */
  goodbye?: Json;
}

export class ContextSocket {
  private ws?: WebSocket;
  private connecting?: Promise<WebSocket>;
  private readonly listeners = new Map<string, { ws: WebSocket; listener: ContextListener }>();
  /** Why each closed socket closed, for replies that attach to it after the fact. */
  private readonly closed = new WeakMap<WebSocket, ProviderError>();
  private disposed = false;

  constructor(private readonly o: ContextSocketOptions) {}

  get provider(): string {
    return this.o.provider;
  }

  /** Connects in the background; a failure here resurfaces on the next `acquire`, which retries. */
  warm(): void {
    this.acquire().catch(() => {});
  }

  /** The open socket, connecting if needed; `signal` aborts the wait, never the shared connection. */
  acquire(signal?: AbortSignal): Promise<WebSocket> {
    if (this.disposed) return Promise.reject(new ProviderError('protocol', 'provider already disposed', this.o.provider));
    if (this.ws?.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    this.connecting ??= this.connect();
    return raceAbort(this.connecting, signal);
  }

  private async connect(): Promise<WebSocket> {
    try {
      const ws = await connectWebSocket(this.o.url, { provider: this.o.provider, headers: this.o.headers });
      if (this.disposed) {
        ws.close(1000);
        throw new ProviderError('protocol', 'provider already disposed', this.o.provider);
      }
      this.adopt(ws);
      return ws;
    } finally {
      this.connecting = undefined;
    }
  }

  private adopt(ws: WebSocket): void {
    this.ws = ws;
    let last: Json | undefined;
    ws.on('message', (data) => {
      let msg: Json;
      try {
        msg = JSON.parse(messageText(data)) as Json;
      } catch {
        return; // not ours to interpret; the vendor only speaks JSON here
      }
      const id = this.o.contextOf(msg);
      const entry = id === undefined ? undefined : this.listeners.get(id);
      if (entry) entry.listener.message(msg);
      else if (id === undefined) last = msg;
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.ws === ws) this.ws = undefined;
      const err = this.o.closeError(code, reason.toString(), last);
      this.closed.set(ws, err);
      for (const [id, entry] of [...this.listeners]) {
        if (entry.ws !== ws) continue;
        this.listeners.delete(id);
        entry.listener.lost(err);
      }
    });
  }

  /**
   * Routes messages for `id` on `ws` to `listener` until the returned detach is called. A socket that
   * is already gone reports its close at once, so a reply never waits on a dead socket.
   */
  attach(ws: WebSocket, id: string, listener: ContextListener): () => void {
    const err = this.closed.get(ws);
    if (err) {
      queueMicrotask(() => listener.lost(err));
      return () => {};
    }
    this.listeners.set(id, { ws, listener });
    return () => {
      if (this.listeners.get(id)?.listener === listener) this.listeners.delete(id);
    };
  }

  /** Sends if the socket is open; otherwise the attached reply hears of the close through `lost`. */
  send(ws: WebSocket, msg: Json): boolean {
    if (ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** Closes `ws` (the only way to stop some vendor work) and, unless disposed, opens a fresh one at once. */
  restart(ws: WebSocket): void {
    if (this.ws === ws) this.ws = undefined;
    ws.close(1000);
    if (!this.disposed) this.warm();
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const ws = this.ws ?? (await this.connecting?.catch(() => undefined));
    this.ws = undefined;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (this.o.goodbye) ws.send(JSON.stringify(this.o.goodbye));
    ws.close(1000);
  }
}

/**
 * The event stream of one reply: vendor PCM converted to the caller's rate in arrival order, word
 * timings, then `done`. Tracks how much vendor audio arrived, which is where the next chunk's own
 * timeline starts for vendors whose timings are chunk-relative.
 */
export class ReplyOutput {
  readonly events = new AsyncQueue<TtsEvent>();
  private chain: Promise<void> = Promise.resolve();
  private readonly pcm = new PcmAssembler();
  private readonly rate: RateConverter;
  private vendorSamples = 0;

  constructor(private readonly provider: string, private readonly vendorRate: number, sampleRate: number) {
    this.rate = new RateConverter(vendorRate, sampleRate);
  }

  get receivedMs(): number {
    return (this.vendorSamples * 1000) / this.vendorRate;
  }

  get audioStarted(): boolean {
    return this.vendorSamples > 0;
  }

  audio(bytes: Uint8Array): void {
    const samples = this.pcm.push(bytes);
    this.vendorSamples += samples.length;
    this.step(async () => {
      const out = await this.rate.process(samples);
      if (out.length) this.events.push({ type: 'audio', samples: out });
    });
  }

  words(words: WordTiming[]): void {
    if (words.length) this.step(() => this.events.push({ type: 'words', words }));
  }

  done(): void {
    this.step(async () => {
      const tail = await this.rate.flush();
      if (tail.length) this.events.push({ type: 'audio', samples: tail });
      this.events.push({ type: 'done' });
      this.events.end();
      this.rate.destroy();
    });
  }

  /** Fails after the audio already received has been delivered. */
  fail(err: ProviderError): void {
    this.step(() => {
      this.events.fail(err);
      this.rate.destroy();
    });
  }

  /** Ends the stream now, dropping whatever is still being converted. */
  stop(): void {
    this.events.end();
    this.rate.destroy();
  }

  private step(fn: () => void | Promise<void>): void {
    this.chain = this.chain
      .then(() => (this.events.closed ? undefined : fn()))
      .catch((err) => this.events.fail(asProviderError(this.provider, err)));
  }
}

/** No audio this long after the reply's text was complete: the vendor is hung. */
const FIRST_AUDIO_TIMEOUT_MS = 10_000;

/**
 * One reply as a context on a ContextSocket: the lifecycle ElevenLabs and Cartesia share (attach on the
 * first words, a first-audio deadline once the text is complete, cancel and failure dropping whatever
 * the vendor still sends). Subclasses say what goes on the wire and read their vendor's messages.
 */
export abstract class ContextReply implements TtsSession {
  protected started = false;
  protected flushed = false;
  protected finished = false;
  protected cancelled = false;
  private detach?: () => void;
  private timer?: NodeJS.Timeout;
  private readonly offAbort: () => void;

  constructor(
    protected readonly socket: ContextSocket,
    protected readonly ws: WebSocket,
    protected readonly id: string,
    protected readonly out: ReplyOutput,
    signal: AbortSignal,
  ) {
    this.offAbort = onAbort(signal, () => this.cancel());
  }

  /** The message carrying one piece of text. */
  protected abstract textMessage(text: string): Json;
  /** The messages that say the text is complete. */
  protected abstract endMessages(): Json[];
  /** Stops the vendor's work on a context that started and has not finished. */
  protected abstract stopVendor(): void;
  /** A server message for this context, while the reply is live. */
  protected abstract message(m: Json): void;
  /** Sent once, before the first text (a context's opening message, if the vendor has one). */
  protected opening(): Json | undefined {
    return undefined;
  }

  pushText(text: string): void {
    if (this.cancelled || this.flushed || !text) return;
    if (!this.started) {
      if (!text.trim()) return; // leading whitespace says nothing
      this.started = true;
      this.detach = this.socket.attach(this.ws, this.id, {
        message: (m) => { if (!this.finished && !this.cancelled) this.message(m); },
        lost: (e) => this.fail(e),
      });
      const first = this.opening();
      if (first) this.send(first);
    }
    this.send(this.textMessage(text));
  }

  flush(): void {
    if (this.cancelled || this.flushed) return;
    this.flushed = true;
    if (!this.started) {
      this.complete();
      return;
    }
    for (const m of this.endMessages()) this.send(m);
    if (!this.out.audioStarted) {
      this.timer = setTimeout(() => this.fail(new ProviderError('timeout', 'no audio after the text was complete', this.socket.provider)), FIRST_AUDIO_TIMEOUT_MS);
    }
  }

  events(): AsyncIterable<TtsEvent> {
    return this.out.events;
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.end();
    this.out.stop();
    if (this.started && !this.finished) this.stopVendor();
  }

  protected audio(bytes: Uint8Array): void {
    clearTimeout(this.timer);
    this.out.audio(bytes);
  }

  /** The vendor finished the context: the audio received is the whole reply. */
  protected complete(): void {
    this.finished = true;
    this.end();
    this.out.done();
  }

  protected fail(err: ProviderError): void {
    if (this.finished || this.cancelled) return;
    this.finished = true;
    this.end();
    this.out.fail(err);
  }

  /** A send on a closed socket is dropped: the reply is attached, so it fails with the close's reason. */
  protected send(msg: Json): void {
    this.socket.send(this.ws, msg);
  }

  private end(): void {
    clearTimeout(this.timer);
    this.detach?.();
    this.offAbort?.(); // unset when the signal had already aborted at construction
  }
}
