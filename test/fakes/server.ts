/**
 * The loopback server every vendor fake is built on: plain HTTP plus WebSocket upgrades on one
 * 127.0.0.1 port, with helpers to answer an upgrade with an HTTP error the way vendors do (401 before
 * the socket exists) and to cut a connection without a close frame (a mid-stream drop).
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

export interface FakeServer {
  /** http://127.0.0.1:port */
  url: string;
  /** ws://127.0.0.1:port */
  wsUrl: string;
  port: number;
  close(): Promise<void>;
}

export interface FakeHandlers {
  http?: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void | Promise<void>;
  /** Return false (after answering with rejectUpgrade) to refuse; otherwise the socket is accepted. */
  upgrade?: (req: http.IncomingMessage, socket: Duplex) => boolean | Promise<boolean>;
  connection?: (ws: WebSocket, req: http.IncomingMessage) => void;
}

export async function startFakeServer(h: FakeHandlers): Promise<FakeServer> {
  const sockets = new Set<Duplex>();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      Promise.resolve(h.http ? h.http(req, res, Buffer.concat(chunks)) : notFound(res)).catch((err) => {
        if (!res.headersSent) { res.writeHead(500); res.end(String(err)); } else res.destroy();
      });
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.on('upgrade', (req, socket, head) => {
    void (async () => {
      const ok = h.upgrade ? await h.upgrade(req, socket) : true;
      if (!ok) return;
      wss.handleUpgrade(req, socket, head, (ws) => h.connection?.(ws, req));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function notFound(res: http.ServerResponse): void {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: 'not found' }));
}

/** Refuses a WebSocket upgrade with an HTTP answer, as vendors do for a bad key or an exhausted quota. */
export function rejectUpgrade(socket: Duplex, status: number, body: unknown, headers: Record<string, string> = {}): false {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const head = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}`, 'Connection: close',
    `Content-Type: ${typeof body === 'string' ? 'text/plain' : 'application/json'}`, `Content-Length: ${Buffer.byteLength(text)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.end(`${head.join('\r\n')}\r\n\r\n${text}`);
  return false;
}

/** Cuts the TCP connection under a WebSocket: the client sees 1006, no close frame. */
export function dropSocket(ws: WebSocket): void {
  ws.terminate();
}

export function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Failure modes every fake can be told to show on its next request or connection. */
export type FailureMode = 'auth' | 'quota' | 'unavailable';
