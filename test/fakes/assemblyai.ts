/**
 * A loopback AssemblyAI Universal-Streaming v3 server, as AssemblyAI documents it (Streaming API
 * reference, Message Sequence, Common session errors and closures): `GET /v3/ws` upgraded with the raw
 * key in `Authorization` (or a `token` query), `Begin` on open, binary PCM of 50–1000 ms per message,
 * `SpeechStarted`, partial `Turn`s, an end-of-turn `Turn` and (with format_turns) its formatted copy,
 * `Terminate` → last Turns, `Termination`, close 1000. Failures are an `Error` frame followed by a close
 * with the same code: 1008 for a bad key or too many sessions, 3005 server error, 3006 bad message,
 * 3007 audio message outside 50–1000 ms.
 *
 * It validates what the client sends, so a wrong adapter fails: path, key, every documented query
 * parameter (values and types), audio message sizes, and JSON control messages.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { FakeSttControls } from '../providers/contract/harness.js';
import { rejectUpgrade, startFakeServer, type FailureMode } from './server.js';
import { spreadWords, TranscriptScript, UtteranceTracker } from './speech.js';

export interface AssemblyAIFake extends FakeSttControls {
  url: string;
  /** Query of the last connection. */
  readonly lastQuery: URLSearchParams | undefined;
  /** Duration (ms) of every audio message received, in order. */
  readonly chunkMs: number[];
  /** JSON control messages received, in order. */
  readonly controlMessages: { type: string }[];
  /** The next connection is accepted, then failed with this Error frame and close code. */
  failNextWith(code: number, text: string): void;
  /** The next upgrade is refused with this HTTP status (a load balancer in trouble). */
  rejectNextUpgrade(status: number): void;
  /** The next connection's `Begin` is held back (until the client gives up). */
  holdNextBegin(): void;
  /** performance.now() when the server last saw a client close its socket. */
  readonly lastClientCloseAt: number | undefined;
  /** Sends an Error frame + close on every open connection (a failure mid-session). */
  failOpenConnections(code: number, text: string): void;
}

const SPEECH_MODELS = ['universal-streaming-english', 'universal-streaming-multilingual', 'u3-rt-pro'];
const ENCODINGS = ['pcm_s16le', 'pcm_mulaw'];
const NUMERIC: Record<string, [number, number]> = {
  end_of_turn_confidence_threshold: [0, 1], vad_threshold: [0, 1],
  min_end_of_turn_silence_when_confident: [0, 10_000], min_turn_silence: [0, 10_000], max_turn_silence: [0, 10_000],
  inactivity_timeout: [5, 3600],
};
const KNOWN = new Set(['sample_rate', 'encoding', 'speech_model', 'format_turns', 'keyterms_prompt', 'language', 'language_detection', 'token', 'filter_profanity', ...Object.keys(NUMERIC)]);

/** What AssemblyAI would refuse in a connection's query, or undefined. */
function queryProblem(q: URLSearchParams): string | undefined {
  for (const k of q.keys()) if (!KNOWN.has(k)) return `Unknown query parameter: ${k}`;
  const rate = Number(q.get('sample_rate'));
  if (!q.has('sample_rate') || !Number.isInteger(rate) || rate <= 0) return 'sample_rate must be a positive integer';
  if (q.has('encoding') && !ENCODINGS.includes(q.get('encoding')!)) return `Invalid encoding: ${q.get('encoding')}`;
  if (q.has('speech_model') && !SPEECH_MODELS.includes(q.get('speech_model')!)) return `Invalid speech_model: ${q.get('speech_model')}`;
  for (const b of ['format_turns', 'language_detection', 'filter_profanity']) {
    if (q.has(b) && !['true', 'false'].includes(q.get(b)!)) return `${b} must be true or false`;
  }
  for (const [k, [lo, hi]] of Object.entries(NUMERIC)) {
    if (!q.has(k)) continue;
    const v = Number(q.get(k));
    if (!Number.isFinite(v) || v < lo || v > hi) return `Invalid ${k}: ${q.get(k)}`;
  }
  if (q.has('keyterms_prompt')) {
    try {
      const terms = JSON.parse(q.get('keyterms_prompt')!) as unknown;
      if (!Array.isArray(terms) || terms.length > 100 || !terms.every((t) => typeof t === 'string' && t.length > 0 && t.length <= 50)) return 'keyterms_prompt must be a JSON list of up to 100 terms';
    } catch {
      return 'keyterms_prompt must be a JSON-encoded list';
    }
  }
  return undefined;
}

const plain = (text: string) => text.toLowerCase().replace(/[^\p{L}\p{N}\s']/gu, '').split(/\s+/).filter(Boolean);
function formatted(text: string): string[] {
  const t = text.trim();
  const s = t.charAt(0).toUpperCase() + t.slice(1);
  return (/[.!?]$/.test(s) ? s : `${s}.`).split(/\s+/);
}

export async function startAssemblyAIFake(validKey: string): Promise<AssemblyAIFake> {
  const script = new TranscriptScript();
  const open = new Set<WebSocket>();
  let failure: FailureMode | { code: number; text: string } | undefined;
  let rejectStatus: number | undefined;
  let holdBegin = false;
  let dropArmed = false;
  let connections = 0;
  let audioBytes = 0;
  let gracefulClose = false;
  let lastKey: string | undefined;
  let lastQuery: URLSearchParams | undefined;
  let lastClientCloseAt: number | undefined;
  const chunkMs: number[] = [];
  const controlMessages: { type: string }[] = [];

  const fail = (ws: WebSocket, code: number, text: string) => {
    ws.send(JSON.stringify({ type: 'Error', error_code: code, error: text }));
    // The close reason is limited to 123 bytes; longer texts point at the Error frame.
    ws.close(code, text.length <= 123 ? text : 'See Error message for details');
  };

  const onConnection = (ws: WebSocket, req: IncomingMessage) => {
    connections++;
    open.add(ws);
    const query = new URL(req.url ?? '/', 'http://fake').searchParams;
    lastQuery = query;
    const key = req.headers.authorization ?? query.get('token') ?? undefined;
    lastKey = key;
    const id = connections;
    gracefulClose = false;
    ws.on('close', () => { open.delete(ws); });

    const f = failure;
    failure = undefined;
    if (!key) return fail(ws, 1008, 'Unauthorized Connection: Missing Authorization header');
    if (key !== validKey || f === 'auth') return fail(ws, 1008, 'Unauthorized Connection: Invalid API key');
    if (f === 'quota') return fail(ws, 1008, 'Unauthorized Connection: Too many concurrent sessions');
    if (f === 'unavailable') return fail(ws, 3005, 'Session Cancelled: An error occurred');
    if (f) return fail(ws, f.code, f.text);
    const problem = queryProblem(query);
    if (problem) return fail(ws, 3006, `Invalid Message: ${problem}`);

    const rate = Number(query.get('sample_rate'));
    const pcm = (query.get('encoding') ?? 'pcm_s16le') === 'pcm_s16le';
    const formatTurns = query.get('format_turns') === 'true';
    let turnOrder = 0;
    let speaking: { start: number } | undefined;
    let revealed = 0;

    const send = (m: object) => { if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m)); };
    const turn = (words: { word: string; startMs: number; endMs: number }[], endOfTurn: boolean, isFormatted: boolean, finalCount = words.length) => send({
      turn_order: turnOrder, turn_is_formatted: isFormatted, end_of_turn: endOfTurn,
      transcript: words.slice(0, finalCount).map((w) => w.word).join(' '),
      end_of_turn_confidence: endOfTurn ? 0.9 : 0.05,
      words: words.map((w, i) => ({ start: Math.round(w.startMs), end: Math.round(w.endMs), text: w.word, confidence: 0.95, word_is_final: i < finalCount })),
      utterance: endOfTurn ? words.map((w) => w.word).join(' ') : '',
      type: 'Turn',
    });
    const endTurn = (start: number, end: number) => {
      speaking = undefined;
      const text = script.next();
      const times = spreadWords(text, start, end);
      turn(plain(text).map((word, i) => ({ ...times[i], word })), true, false);
      if (formatTurns) turn(formatted(text).map((word, i) => ({ ...times[i], word })), true, true);
      turnOrder++;
    };

    const tracker = new UtteranceTracker(rate, {
      onStart: (at) => {
        speaking = { start: at };
        revealed = 0;
        send({ type: 'SpeechStarted', timestamp: Math.round(at) });
      },
      onProgress: (start, now) => {
        if (dropArmed && now - start >= 200) {
          dropArmed = false;
          ws.terminate();
          return;
        }
        // Words appear one per 100 ms; the newest is not final yet.
        const words = plain(script.peek());
        revealed = Math.min(words.length, revealed + 1);
        const times = spreadWords(words.slice(0, revealed).join(' '), start, now);
        turn(times, false, false, revealed - 1);
      },
      onEnd: endTurn,
    });

    ws.on('message', (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (isBinary) {
        const ms = (buf.length * 1000) / ((pcm ? 2 : 1) * rate);
        chunkMs.push(ms);
        if (ms < 50 || ms > 1000) return fail(ws, 3007, `Input duration violation: ${ms.toFixed(0)} ms. Expected between 50 and 1000 ms`);
        audioBytes += buf.length;
        if (pcm) tracker.push(new Int16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length - (buf.length % 2))));
        return;
      }
      let m: { type?: unknown };
      try {
        m = JSON.parse(buf.toString('utf8')) as { type?: unknown };
      } catch {
        return fail(ws, 3006, `Invalid JSON: ${buf.toString('utf8').slice(0, 80)}`);
      }
      if (!m || typeof m !== 'object' || Array.isArray(m)) return fail(ws, 3006, `Invalid Message: ${buf.toString('utf8').slice(0, 80)}`);
      controlMessages.push(m as { type: string });
      switch (m.type) {
        case 'Terminate': {
          if (id === connections) gracefulClose = true;
          if (speaking) endTurn(speaking.start, tracker.receivedMs);
          send({ type: 'Termination', audio_duration_seconds: Math.round(tracker.receivedMs / 1000), session_duration_seconds: 1 });
          ws.close(1000);
          return;
        }
        case 'ForceEndpoint':
          if (speaking) endTurn(speaking.start, tracker.receivedMs);
          return;
        case 'KeepAlive': case 'UpdateConfiguration':
          return;
        default:
          return fail(ws, 3006, `Invalid Message Type: ${String(m.type)}`);
      }
    });

    if (holdBegin) { holdBegin = false; return; }
    send({ type: 'Begin', id: randomUUID(), expires_at: Math.floor(Date.now() / 1000) + 10_800 });
  };

  const server = await startFakeServer({
    upgrade: (req, socket) => {
      const path = new URL(req.url ?? '/', 'http://fake').pathname;
      if (path !== '/v3/ws') return rejectUpgrade(socket, 404, { error: 'Not found' });
      if (rejectStatus) {
        const status = rejectStatus;
        rejectStatus = undefined;
        return rejectUpgrade(socket, status, { error: 'Service Unavailable' });
      }
      socket.once('close', () => { lastClientCloseAt = performance.now(); });
      return true;
    },
    connection: onConnection,
  });

  return {
    url: server.url,
    script: (...texts) => script.add(...texts),
    failNext: (mode) => { failure = mode; },
    failNextWith: (code, text) => { failure = { code, text }; },
    rejectNextUpgrade: (status) => { rejectStatus = status; },
    holdNextBegin: () => { holdBegin = true; },
    dropDuringNextUtterance: () => { dropArmed = true; },
    failOpenConnections: (code, text) => { for (const ws of open) fail(ws, code, text); },
    get connections() { return connections; },
    get gracefulClose() { return gracefulClose; },
    get audioBytes() { return audioBytes; },
    get lastKey() { return lastKey; },
    get lastQuery() { return lastQuery; },
    get lastClientCloseAt() { return lastClientCloseAt; },
    chunkMs,
    controlMessages,
    close: () => server.close(),
  };
}
