/**
 * A small application for the carrier emulator's tests, seen the way Twilio sees one: every request it
 * gets is recorded (path, query, parameters, whether the X-Twilio-Signature checks out with the `twilio`
 * package's own validateRequest), TwiML is answered by path, and media-stream WebSockets are recorded
 * (handshake signature, every message) and can be scripted by path.
 */
import webhooks from 'twilio/lib/webhooks/webhooks.js';
import type { WebSocket } from 'ws';
import { startFakeServer, type FakeServer } from '../fakes/server.js';
import { until } from './until.js';

export interface Hit {
  path: string;
  query: Record<string, string>;
  /** The form of a POST, the query of a GET. */
  params: Record<string, string>;
  signed: boolean;
  at: number;
  method: string;
}

export type StreamMessage = Record<string, any> & { at: number };

export interface StreamPeer {
  ws: WebSocket;
  path: string;
  signed: boolean;
  messages: StreamMessage[];
  streamSid?: string;
  closed: boolean;
  send(msg: unknown): void;
  waitFor(pred: (m: StreamMessage) => boolean, timeoutMs?: number): Promise<StreamMessage>;
}

export interface TwimlApp extends FakeServer {
  hits: Hit[];
  hitsFor(path: string): Hit[];
  /** TwiML to answer by path (given the request's parameters); other paths answer "ok" as text/plain. */
  twiml: Map<string, (params: Record<string, string>) => string>;
  /** Called with each new media-stream socket on that path. */
  onStream: Map<string, (peer: StreamPeer) => void>;
  peers: StreamPeer[];
}

export async function startTwimlApp(authToken: string): Promise<TwimlApp> {
  const hits: Hit[] = [];
  const twiml = new Map<string, (params: Record<string, string>) => string>();
  const onStream = new Map<string, (peer: StreamPeer) => void>();
  const peers: StreamPeer[] = [];
  const signedBy = (signature: string | string[] | undefined, url: string, params: Record<string, string>) =>
    webhooks.validateRequest(authToken, String(signature ?? ''), url, params);
  const server: FakeServer = await startFakeServer({
    http: (req, res, body) => {
      const url = new URL(req.url ?? '/', server.url);
      const form = Object.fromEntries(new URLSearchParams(body.toString()));
      const query = Object.fromEntries(url.searchParams);
      const params = req.method === 'GET' ? query : form;
      hits.push({ path: url.pathname, query, params, signed: signedBy(req.headers['x-twilio-signature'], `${server.url}${req.url}`, form), at: Date.now(), method: req.method ?? '' });
      const h = twiml.get(url.pathname);
      res.writeHead(200, { 'content-type': h ? 'text/xml' : 'text/plain' });
      res.end(h ? h(params) : 'ok');
    },
    connection: (ws, req) => {
      const path = (req.url ?? '').split('?')[0];
      const peer: StreamPeer = {
        ws, path, messages: [], closed: false,
        signed: signedBy(req.headers['x-twilio-signature'], `${server.wsUrl}${req.url}`, {}),
        send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)),
        waitFor: (pred, timeoutMs = 5000) => until(() => peer.messages.find(pred), `a stream message on ${path}`, timeoutMs),
      };
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString());
        if (m.event === 'start') peer.streamSid = m.streamSid;
        peer.messages.push({ ...m, at: Date.now() });
      });
      ws.on('close', () => { peer.closed = true; });
      peers.push(peer);
      onStream.get(path)?.(peer);
    },
  });
  return { ...server, hits, hitsFor: (path) => hits.filter((h) => h.path === path), twiml, onStream, peers };
}
