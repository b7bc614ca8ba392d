/**
 * A fake Cartesia TTS WebSocket (`/tts/websocket`), faithful to the vendor's API reference and Fern
 * definitions: key in `X-API-Key` (or the `api_key` query), a dated `Cartesia-Version` header (or the
 * `cartesia_version` query), generation requests validated field by field, every input on a context
 * repeating all fields but transcript/continue/duration, transcripts concatenated verbatim, `chunk` /
 * `timestamps` (seconds from the context's start) / `done` / `error` responses, and cancel halting only
 * inputs not yet being generated. Each word is WORD_MS of tone at the requested rate.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { WORD_MS, type FakeTtsControls } from '../providers/contract/harness.js';
import { rejectUpgrade, startFakeServer, sleep, type FailureMode } from './server.js';
import { pcmBytes, tone } from './tts.js';

type Json = Record<string, unknown>;

/** Time between chunks: ten times faster than real time, slow enough to cancel mid-reply. */
const PACE_MS = 10;
const LANGUAGES = ['en', 'fr', 'de', 'es', 'pt', 'zh', 'ja', 'hi', 'it', 'ko', 'nl', 'pl', 'ru', 'sv', 'tr'];
const SPEEDS = ['slowest', 'slow', 'normal', 'fast', 'fastest'];
const EMOTION = /^(anger|positivity|surprise|sadness|curiosity)(:(lowest|low|high|highest))?$/;
const FIXED_PER_CONTEXT = (m: Json) => JSON.stringify({ ...m, transcript: undefined, continue: undefined, duration: undefined });

export interface CartesiaConnection {
  headers: IncomingMessage['headers'];
  /** Every message the client sent, parsed. */
  messages: Json[];
}

export interface CartesiaFake extends FakeTtsControls {
  url: string;
  readonly log: CartesiaConnection[];
  /** Error responses the fake sent (a client bug shows up here). */
  readonly errors: Json[];
  /** The next generation request on any socket is answered with this status in an error message. */
  failNextRequest(status: number, error: string): void;
}

interface Context {
  fields: string;
  buffer: string;
  ended: boolean;
  cancelled: boolean;
  finished: boolean;
  /** Failure controls armed when this context was opened, so a stray older stream cannot take them. */
  delayMs: number;
  drop: boolean;
  /** Audio already voiced for this context, where the next word's timestamps start. */
  atMs: number;
  chain: Promise<void>;
}

export async function startCartesiaFake(validKey: string): Promise<CartesiaFake> {
  const log: CartesiaConnection[] = [];
  const errors: Json[] = [];
  let failNext: FailureMode | undefined;
  let failRequest: { status: number; error: string } | undefined;
  let delayNext = 0;
  let dropNext = false;
  let receivedText = '';
  let lastCancelAt: number | undefined;
  let lastKey: string | undefined;

  const server = await startFakeServer({
    upgrade: (req, socket) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/tts/websocket') return rejectUpgrade(socket, 404, { error: 'Not found' });
      const header = req.headers['x-api-key'];
      lastKey = typeof header === 'string' ? header : url.searchParams.get('api_key') ?? undefined;
      const version = req.headers['cartesia-version'] ?? url.searchParams.get('cartesia_version');
      if (typeof version !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(version)) {
        return rejectUpgrade(socket, 400, { error: 'Cartesia-Version header is required (YYYY-MM-DD)' });
      }
      if (lastKey !== validKey) return rejectUpgrade(socket, 401, { error: 'Invalid API key' });
      if (failNext === 'auth') return (failNext = undefined, rejectUpgrade(socket, 401, { error: 'Invalid API key' }));
      if (failNext === 'unavailable') return (failNext = undefined, rejectUpgrade(socket, 503, { error: 'Service temporarily unavailable' }));
      return true;
    },
    connection: (ws, req) => serve(ws, req),
  });

  function serve(ws: WebSocket, req: IncomingMessage): void {
    const conn: CartesiaConnection = { headers: req.headers, messages: [] };
    log.push(conn);
    const contexts = new Map<string, Context>();
    let open = true;
    ws.on('close', () => {
      open = false;
      if ([...contexts.values()].some((c) => !c.cancelled && !c.finished)) lastCancelAt = performance.now();
    });
    const send = (m: Json) => { if (open) ws.send(JSON.stringify(m)); };
    const error = (contextId: unknown, status: number, text: string) => {
      const m = { type: 'error', context_id: contextId, status_code: status, done: true, error: text };
      errors.push(m);
      send(m);
    };

    const done = (id: string, ctx: Context) => {
      if (ctx.finished) return;
      ctx.finished = true;
      send({ type: 'done', done: true, status_code: 206, context_id: id });
    };

    /** Voices the complete words of `text` for one context, one chunk and one timestamps message per word. */
    async function generate(id: string, ctx: Context, text: string): Promise<void> {
      const words = text.split(/\s+/).filter(Boolean);
      const rate = ((JSON.parse(ctx.fields) as Json).output_format as Json).sample_rate as number;
      const timestamps = (JSON.parse(ctx.fields) as Json).add_timestamps === true;
      for (const word of words) {
        if (!open) return;
        if (ctx.delayMs) {
          const d = ctx.delayMs;
          ctx.delayMs = 0;
          await sleep(d);
        }
        const samples = tone(WORD_MS, rate, { phase: Math.round((ctx.atMs * rate) / 1000) });
        send({ type: 'chunk', data: pcmBytes(samples).toString('base64'), done: false, status_code: 206, step_time: 12, context_id: id });
        if (timestamps) {
          send({ type: 'timestamps', done: false, status_code: 206, context_id: id,
            word_timestamps: { words: [word], start: [ctx.atMs / 1000], end: [(ctx.atMs + WORD_MS) / 1000] } });
        }
        ctx.atMs += WORD_MS;
        if (ctx.drop) {
          ws.terminate();
          return;
        }
        await sleep(PACE_MS);
      }
    }

    function schedule(id: string, ctx: Context, all: boolean): void {
      const cut = all ? ctx.buffer.length : ctx.buffer.search(/\s\S*$/) + 1;
      const text = cut > 0 ? ctx.buffer.slice(0, cut) : '';
      ctx.buffer = ctx.buffer.slice(Math.max(cut, 0));
      // Cancel halts inputs not yet begun; the one being generated runs to its end.
      ctx.chain = ctx.chain.then(() => (ctx.cancelled ? undefined : generate(id, ctx, text)));
      if (all) ctx.chain = ctx.chain.then(() => done(id, ctx));
    }

    ws.on('message', (data) => {
      let m: Json;
      try {
        m = JSON.parse(String(data)) as Json;
      } catch {
        return error(undefined, 400, 'Invalid JSON');
      }
      conn.messages.push(m);
      const id = m.context_id;
      if (m.cancel === true) {
        const ctx = typeof id === 'string' ? contexts.get(id) : undefined;
        if (!ctx) return error(id, 400, 'context_id to cancel was not found');
        ctx.cancelled = true;
        lastCancelAt = performance.now();
        if (!ctx.ended) ctx.chain = ctx.chain.then(() => done(id as string, ctx));
        return;
      }
      const problem = checkRequest(m);
      if (problem) return error(id, 400, problem);
      const cid = id as string;
      let ctx = contexts.get(cid);
      if (!ctx) {
        if (failRequest) {
          const f = failRequest;
          failRequest = undefined;
          return error(cid, f.status, f.error);
        }
        if (failNext === 'quota') {
          failNext = undefined;
          return error(cid, 429, 'Too Many Requests: concurrency limit reached');
        }
        receivedText = '';
        ctx = { fields: FIXED_PER_CONTEXT(m), buffer: '', ended: false, cancelled: false, finished: false, delayMs: delayNext, drop: dropNext, atMs: 0, chain: Promise.resolve() };
        delayNext = 0;
        dropNext = false;
        contexts.set(cid, ctx);
      } else if (ctx.ended) {
        return error(cid, 400, 'Context has already been closed (continue was false)');
      } else if (FIXED_PER_CONTEXT(m) !== ctx.fields) {
        return error(cid, 400, 'Inputs on the same context must keep all fields except transcript, continue, and duration the same');
      }
      if (ctx.cancelled) return;
      receivedText += m.transcript as string;
      ctx.buffer += m.transcript as string;
      ctx.ended = m.continue !== true;
      schedule(cid, ctx, ctx.ended);
    });
  }

  return {
    url: server.url,
    log,
    errors,
    failNextRequest: (status, error) => { failRequest = { status, error }; },
    failNext: (mode) => { failNext = mode; },
    delayNextFirstByte: (ms) => { delayNext = ms; },
    dropNextMidStream: () => { dropNext = true; },
    get receivedText() { return receivedText; },
    get lastCancelAt() { return lastCancelAt; },
    get lastKey() { return lastKey; },
    get connections() { return log.length; },
    close: () => server.close(),
  };
}

/** The documented generation request, field by field; the reason it is invalid, if it is. */
function checkRequest(m: Json): string | undefined {
  if (typeof m.model_id !== 'string' || !m.model_id) return 'model_id is required';
  if (typeof m.transcript !== 'string') return 'transcript must be a string';
  if (typeof m.context_id !== 'string' || !m.context_id) return 'context_id is required';
  const v = m.voice as Json | undefined;
  if (!v || v.mode !== 'id' || typeof v.id !== 'string' || !v.id) return 'voice must be {mode: "id", id}';
  const c = v.__experimental_controls as Json | undefined;
  if (c !== undefined) {
    const s = c.speed;
    if (s !== undefined && !(typeof s === 'number' ? s >= -1 && s <= 1 : SPEEDS.includes(s as string))) return 'invalid speed';
    if (c.emotion !== undefined && !(Array.isArray(c.emotion) && c.emotion.every((e) => typeof e === 'string' && EMOTION.test(e)))) return 'invalid emotion';
  }
  if (m.language !== undefined && !LANGUAGES.includes(m.language as string)) return `unsupported language ${String(m.language)}`;
  const f = m.output_format as Json | undefined;
  if (!f || f.container !== 'raw') return 'output_format.container must be raw on the WebSocket';
  if (f.encoding !== 'pcm_s16le') return 'this fake only produces pcm_s16le';
  if (!Number.isInteger(f.sample_rate) || (f.sample_rate as number) < 8000 || (f.sample_rate as number) > 48000) return 'invalid sample_rate';
  if (m.continue !== undefined && typeof m.continue !== 'boolean') return 'continue must be a boolean';
  if (m.add_timestamps !== undefined && typeof m.add_timestamps !== 'boolean') return 'add_timestamps must be a boolean';
  const d = m.max_buffer_delay_ms;
  if (d !== undefined && !(Number.isInteger(d) && (d as number) >= 0 && (d as number) <= 1000)) return 'max_buffer_delay_ms must be in [0, 1000]';
  return undefined;
}
