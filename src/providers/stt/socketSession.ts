/**
 * The part every streaming-WebSocket transcriber shares (Deepgram, AssemblyAI, Gladia): connect with
 * typed errors, keepalives, vendor times shifted onto the session's timeline, a graceful close that waits
 * for the last finals, and one automatic reconnect when the socket drops mid-call.
 *
 * Reconnecting without losing the turn: audio sent since the last final is sent again on the new socket
 * (replay.ts). The new socket's clock starts at the first replayed frame; `offsetMs` maps it back.
 */
import { joinFrames, type AudioFrame } from '../../engine/audio/frame.js';
import { ProviderError, type SttEvent, type SttSession } from '../../engine/types.js';
import { asProviderError, closeError } from '../errors.js';
import { Listeners, raceAbort } from '../events.js';
import { ReplayBuffer } from './replay.js';
import type { SttOpenOptions, SttProvider } from '../types.js';
import { keepAlive, WebSocket } from '../ws.js';

export interface SttWire {
  readonly provider: string;
  /** Opens a vendor socket, configured and ready for audio. */
  connect(signal?: AbortSignal): Promise<WebSocket>;
  /** One frame of the caller's audio (at the session's rate) as the vendor takes it; null = nothing to send yet (batching). */
  encode(frame: AudioFrame): Buffer | string | null;
  /**
   * Vendor message → events, with times in ms relative to the audio this socket received. Throwing a
   * ProviderError (or returning an error event) reports a vendor-side failure.
   */
  parse(data: WebSocket.RawData, isBinary: boolean): SttEvent[];
  keepAlive?: { intervalMs: number; message: () => string | Buffer | null | undefined };
  /** What tells the vendor the audio is over (it then sends its last results and closes). */
  closeMessage?: () => string | Buffer;
  /** Sent once the socket is open and before any audio (if the vendor needs a config message). */
  onOpen?(ws: WebSocket): void;
  /** The vendor's own reading of a close code (falls back to the generic one in errors.ts). */
  closeError?(code: number, reason: string): ProviderError;
}

/**
 * While the session is idle, audio goes out in messages of this much instead of one per 20 ms frame: a fifth
 * of the messages (and syscalls, and TLS records) while the caller listens. Deepgram advises 20–250 ms per
 * message.
 */
export const IDLE_BATCH_MS = 100;
/** How long a graceful close waits for the vendor's last results. */
const CLOSE_WAIT_MS = 1500;
/** A socket that drops again this soon after a reconnect is failing for good: report, do not loop. */
const RECONNECT_COOLDOWN_MS = 10_000;

export class SocketSttSession implements SttSession {
  private ws: WebSocket;
  private readonly listeners = new Listeners<SttEvent>();
  /** Session ms at which the current socket's audio begins. */
  private offsetMs = 0;
  private readonly replay = new ReplayBuffer();
  private reconnecting = false;
  private closing = false;
  private closed = false;
  private lastReconnectAt = -Infinity;
  private stopKeepAlive?: () => void;
  private idle = false;
  /** Idle audio not sent yet (it is in the replay buffer too, so a reconnect never loses it). */
  private held: AudioFrame[] = [];
  private heldSamples = 0;

  private constructor(private readonly wire: SttWire, ws: WebSocket) {
    this.ws = ws;
    this.attach(ws);
  }

  static async open(wire: SttWire, signal?: AbortSignal, ready?: Promise<WebSocket>): Promise<SocketSttSession> {
    const ws = ready
      ? await raceAbort(ready, signal).catch((err: unknown) => { void ready.then((w) => w.terminate(), () => {}); throw err; })
      : await wire.connect(signal);
    if (signal?.aborted || ws.readyState !== WebSocket.OPEN) {
      ws.terminate();
      throw signal?.aborted ? signal.reason : new ProviderError('network', 'socket closed before use', wire.provider);
    }
    return new SocketSttSession(wire, ws);
  }

  on(listener: (e: SttEvent) => void): () => void {
    return this.listeners.on(listener);
  }

  private emit(e: SttEvent): void {
    this.listeners.emit(e);
  }

  push(frame: AudioFrame): void {
    if (this.closing || this.closed) return;
    this.replay.push(frame);
    if (this.reconnecting || this.ws.readyState !== WebSocket.OPEN) return;
    if (!this.idle) return this.send(this.ws, frame);
    this.held.push(frame);
    this.heldSamples += frame.samples.length;
    if (this.heldSamples * 1000 >= IDLE_BATCH_MS * frame.sampleRate) this.sendHeld();
  }

  pace(mode: 'live' | 'idle'): void {
    this.idle = mode === 'idle';
    if (!this.idle) this.sendHeld();
  }

  /** Hands over (and forgets) what idle held back. */
  private takeHeld(): AudioFrame[] {
    const frames = this.held;
    this.held = [];
    this.heldSamples = 0;
    return frames;
  }

  /** What idle held back, as one message. */
  private sendHeld(): void {
    if (!this.held.length) return;
    const frames = this.takeHeld();
    if (this.reconnecting || this.closed || this.ws.readyState !== WebSocket.OPEN) return; // replayed on the next socket
    this.send(this.ws, frames.length === 1 ? frames[0] : joinFrames(frames));
  }

  private send(ws: WebSocket, frame: AudioFrame): void {
    const data = this.wire.encode(frame);
    if (data !== null) ws.send(data);
  }

  private attach(ws: WebSocket): void {
    this.wire.onOpen?.(ws);
    if (this.wire.keepAlive) this.stopKeepAlive = keepAlive(ws, this.wire.keepAlive.intervalMs, this.wire.keepAlive.message);
    ws.on('message', (data, isBinary) => {
      // After a failure, messages already received on the dying socket must not follow its error event.
      if (ws !== this.ws || this.closed) return;
      let events: SttEvent[];
      try {
        events = this.wire.parse(data, isBinary);
      } catch (err) {
        this.fail(asProviderError(this.wire.provider, err));
        ws.terminate();
        return;
      }
      for (const e of events) if (!this.closed) this.deliver(e);
    });
    ws.on('close', (code, reason) => {
      if (ws !== this.ws) return;
      this.stopKeepAlive?.();
      if (this.closing) { this.closed = true; return; }
      // Even a normal (1000) close is a drop when we did not ask for it: the call is still going.
      const text = reason.toString();
      void this.onDrop(this.wire.closeError?.(code, text) ?? closeError(this.wire.provider, code, text));
    });
  }

  private deliver(e: SttEvent): void {
    const off = this.offsetMs;
    switch (e.type) {
      case 'speech_started': case 'speech_ended': case 'interim':
        this.emit({ ...e, atMs: e.atMs + off });
        break;
      case 'final': {
        const endMs = e.endMs + off;
        // Audio up to this final is transcribed; it never needs replaying.
        this.replay.dropUntil(endMs);
        this.emit({
          ...e, startMs: e.startMs + off, endMs,
          words: e.words?.map((w) => ({ ...w, startMs: w.startMs + off, endMs: w.endMs + off })),
        });
        break;
      }
      case 'error':
        this.fail(e.error);
        this.ws.terminate();
        break;
    }
  }

  private fail(error: ProviderError): void {
    if (this.closed) return;
    this.closed = true;
    this.emit({ type: 'error', error });
  }

  private async onDrop(cause: ProviderError): Promise<void> {
    if (this.closed || !cause.retryable || this.reconnecting || Date.now() - this.lastReconnectAt < RECONNECT_COOLDOWN_MS) {
      this.fail(cause);
      return;
    }
    this.reconnecting = true;
    this.lastReconnectAt = Date.now();
    try {
      const ws = await this.wire.connect();
      if (this.closing || this.closed) { ws.close(1000); return; }
      this.ws = ws;
      this.offsetMs = this.replay.startMs;
      this.attach(ws);
      this.takeHeld(); // in the replay, sent just below
      for (const frame of this.replay.frames()) this.send(ws, frame);
    } catch (err) {
      this.fail(err instanceof ProviderError ? err : asProviderError(this.wire.provider, err));
    } finally {
      this.reconnecting = false;
    }
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const ws = this.ws;
    this.stopKeepAlive?.();
    this.sendHeld(); // the vendor transcribes to the last sample
    if (ws.readyState !== WebSocket.OPEN) { ws.terminate(); this.closed = true; return; }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { ws.terminate(); resolve(); }, CLOSE_WAIT_MS);
      ws.once('close', () => { clearTimeout(timer); resolve(); });
      if (this.wire.closeMessage) ws.send(this.wire.closeMessage());
      else ws.close(1000);
    });
    this.closed = true;
  }
}

/**
 * A SpeechToText over a SttWire factory, with pre-connection: `preconnect` opens the socket during call
 * setup and the first matching `open` adopts it instead of paying the handshake.
 */
export class SocketStt implements SttProvider {
  private warm?: { key: string; socket: Promise<WebSocket> };

  constructor(readonly name: string, private readonly makeWire: (opts: SttOpenOptions) => SttWire) {}

  preconnect(opts: { sampleRate: number; language: string }): void {
    const socket = this.makeWire(opts).connect();
    socket.catch(() => {}); // reported by the open that adopts it
    if (this.warm) void this.warm.socket.then((ws) => ws.close(1000), () => {});
    this.warm = { key: warmKey(opts), socket };
  }

  async open(opts: SttOpenOptions, signal?: AbortSignal): Promise<SttSession> {
    const wire = this.makeWire(opts);
    const warm = this.warm;
    this.warm = undefined;
    // Keywords are part of the socket's URL or config: a socket warmed without them cannot serve an open with them.
    if (warm && warm.key === warmKey(opts)) {
      try {
        return await SocketSttSession.open(wire, signal, warm.socket);
      } catch {
        // A pre-connected socket that failed or went stale: fall through to a fresh connect.
      }
    } else if (warm) void warm.socket.then((ws) => ws.close(1000), () => {});
    return SocketSttSession.open(wire, signal);
  }

  async dispose(): Promise<void> {
    const warm = this.warm;
    this.warm = undefined;
    if (warm) await warm.socket.then((ws) => ws.close(1000), () => {});
  }
}

function warmKey(opts: SttOpenOptions): string {
  return `${opts.sampleRate}/${opts.language}/${JSON.stringify(opts.keywords ?? {})}`;
}
