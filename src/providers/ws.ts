/**
 * Opening vendor WebSockets (the `ws` package) with the failures typed: a refused upgrade carries the
 * vendor's HTTP status and body, a connect that hangs times out, and an abort closes the socket.
 */
import WebSocket from 'ws';
import { asProviderError, closeError, headerSecrets, statusError } from './errors.js';
import { ProviderError } from '../engine/types.js';

export { WebSocket };

export interface ConnectOptions {
  provider: string;
  headers?: Record<string, string>;
  /** Time allowed for the TCP + TLS + upgrade handshake. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Called with the socket as soon as it exists: a vendor's first message can arrive in the same packet
   * as the upgrade answer and would be lost if listeners were attached only after `open` resolves.
   */
  onSocket?(ws: WebSocket): void;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export function connectWebSocket(url: string, o: ConnectOptions): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) return reject(o.signal.reason);
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, { headers: o.headers, handshakeTimeout: o.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, perMessageDeflate: false });
    } catch {
      // ws's own message quotes the whole URL, which may carry a session token.
      return reject(new ProviderError('protocol', 'invalid WebSocket URL', o.provider, false));
    }
    // For the socket's whole life: an 'error' with no listener throws and takes the process down, and a
    // socket can sit unwatched (pooled, pre-connected) between its open and an adapter's own listeners.
    // The close that follows every error carries the outcome.
    ws.on('error', () => {});
    o.onSocket?.(ws);
    let settled = false;
    const done = (err?: unknown) => {
      if (settled) return;
      settled = true;
      o.signal?.removeEventListener('abort', onAbort);
      ws.off('open', onOpen);
      ws.off('error', onError);
      ws.off('close', onClose);
      ws.off('unexpected-response', onResponse);
      if (err !== undefined) reject(err);
      else resolve(ws);
    };
    const onOpen = () => done();
    const onError = (err: Error) => {
      const timeout = /handshake has timed out/i.test(err.message);
      done(timeout ? new ProviderError('timeout', 'connect timed out', o.provider) : asProviderError(o.provider, err));
    };
    const onClose = (code: number, reason: Buffer) => done(closeError(o.provider, code, reason.toString()));
    const onResponse = (_req: unknown, res: import('node:http').IncomingMessage) => {
      // The refusal's status and body are the answer: the socket's own error/close must not win the race.
      ws.off('error', onError);
      ws.off('close', onClose);
      const chunks: Buffer[] = [];
      const finish = (body: string) => { done(statusError(o.provider, res.statusCode ?? 0, body, headerSecrets(o.headers))); ws.terminate(); };
      res.on('data', (c: Buffer) => { if (chunks.length < 16) chunks.push(c); });
      res.on('end', () => finish(Buffer.concat(chunks).toString()));
      res.on('error', () => finish(''));
      res.on('close', () => finish(Buffer.concat(chunks).toString()));
    };
    const onAbort = () => { ws.terminate(); done(o.signal!.reason); };
    ws.once('open', onOpen);
    ws.once('error', onError);
    ws.once('close', onClose);
    ws.once('unexpected-response', onResponse);
    o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Sends `message()` every `intervalMs` while the socket is open (vendors close idle sockets: Deepgram
 * after 10 s without audio): a string or buffer is sent, `null` sends a WebSocket ping, `undefined`
 * sends nothing this time (audio is flowing). Returns the stopper.
 */
export function keepAlive(ws: WebSocket, intervalMs: number, message: () => string | Buffer | null | undefined): () => void {
  const t = setInterval(() => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const m = message();
    if (m === null) ws.ping();
    else if (m !== undefined) ws.send(m);
  }, intervalMs);
  t.unref?.();
  const stop = () => clearInterval(t);
  ws.once('close', stop);
  return stop;
}

/** Text of a ws message, whatever framing it came in. */
export function messageText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}

export function messageBytes(data: WebSocket.RawData): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}
