/**
 * A loopback Gladia live v2 server, as Gladia documents it ("Initiate a session" POST /v2/live, the
 * real-time WebSocket AsyncAPI, the OpenAPI-generated types in gladiaio/sdk):
 *  - POST /v2/live with `x-gladia-key` and a JSON config → 201 `{ id, created_at, url }`, the url a
 *    `ws://…/v2/live?token=…` on this same server; 401 for a bad key, 429 when over the concurrency
 *    limit, 400 with validation errors for a config Gladia would refuse, 503 in an outage.
 *  - DELETE /v2/live/{id} with `x-gladia-key` ("Delete live transcription") → 202 and the session is gone
 *    (its socket url no longer connects); 401 for a bad key, 404 for an unknown id, 403 while the
 *    session's socket is live (not in a deletable state).
 *  - The socket takes binary PCM (or `audio_chunk` JSON) and `{"type":"stop_recording"}`; it sends
 *    `speech_start` / `speech_end` and partial + final `transcript` messages (times in seconds, words
 *    with their leading space), only those the session's messages_config asked for. After
 *    stop_recording it acknowledges, sends the last final, `end_session`, then closes 1000.
 *
 * It validates what the client sends: path, key, every config field's type and allowed values
 * (unknown fields are refused), the session token on the socket, and the control messages. Closing a
 * socket with 4400 on an unreadable control message is this fake's choice (Gladia does not document it).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { FakeSttControls } from '../providers/contract/harness.js';
import { json, rejectUpgrade, sleep, startFakeServer, type FailureMode } from './server.js';
import { spreadWords, TranscriptScript, UtteranceTracker } from './speech.js';

export interface GladiaFake extends FakeSttControls {
  url: string;
  /** Bodies of the init requests, in order. */
  readonly inits: Record<string, unknown>[];
  /** Query of the last init request. */
  readonly lastInitQuery: URLSearchParams | undefined;
  /** JSON control messages received over sockets, in order. */
  readonly controlMessages: { type: string }[];
  /** The next init request answers only after this delay. */
  delayNextInit(ms: number): void;
  /** The next init answers 201 with this body instead of a session. */
  answerNextInit(body: unknown): void;
  /** performance.now() when the server saw the last init request's connection closed by the client. */
  readonly lastInitClientCloseAt: number | undefined;
  /** Ids of the sessions created by init requests, in order. */
  readonly sessionIds: string[];
  /** Ids of the sessions deleted (DELETE /v2/live/{id} answered 202), in order. */
  readonly deleted: string[];
  /** The next socket upgrade (after a successful init) is refused with this HTTP status. */
  refuseNextSocket(status?: number): void;
}

const ENCODINGS = ['wav/pcm', 'wav/alaw', 'wav/ulaw'];
const BIT_DEPTHS = [8, 16, 24, 32];
const SAMPLE_RATES = [8000, 16000, 32000, 44100, 48000];
const MODELS = ['solaria-1', 'solaria-2'];
const LANGUAGES = new Set('af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo zh'.split(' '));
const MESSAGE_FLAGS = ['receive_partial_transcripts', 'receive_final_transcripts', 'receive_speech_events', 'receive_pre_processing_events',
  'receive_realtime_processing_events', 'receive_post_processing_events', 'receive_acknowledgments', 'receive_errors', 'receive_lifecycle_events'];
const TOP_LEVEL = new Set(['encoding', 'bit_depth', 'sample_rate', 'channels', 'custom_metadata', 'model', 'endpointing', 'maximum_duration_without_endpointing',
  'language_config', 'pre_processing', 'realtime_processing', 'post_processing', 'messages_config', 'callback', 'callback_config']);

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The validation errors Gladia would answer 400 with, empty when the config is acceptable. */
function configErrors(b: unknown): string[] {
  if (!isObj(b)) return ['body must be a JSON object'];
  const errs: string[] = [];
  for (const k of Object.keys(b)) if (!TOP_LEVEL.has(k)) errs.push(`property ${k} should not exist`);
  if (b.encoding !== undefined && !ENCODINGS.includes(b.encoding as string)) errs.push(`encoding must be one of ${ENCODINGS.join(', ')}`);
  if (b.bit_depth !== undefined && !BIT_DEPTHS.includes(b.bit_depth as number)) errs.push(`bit_depth must be one of ${BIT_DEPTHS.join(', ')}`);
  if (b.sample_rate !== undefined && !SAMPLE_RATES.includes(b.sample_rate as number)) errs.push(`sample_rate must be one of ${SAMPLE_RATES.join(', ')}`);
  if (b.channels !== undefined && !(Number.isInteger(b.channels) && (b.channels as number) >= 1 && (b.channels as number) <= 8)) errs.push('channels must be between 1 and 8');
  if (b.model !== undefined && !MODELS.includes(b.model as string)) errs.push(`model must be one of ${MODELS.join(', ')}`);
  if (b.endpointing !== undefined && !(typeof b.endpointing === 'number' && b.endpointing >= 0.01 && b.endpointing <= 10)) errs.push('endpointing must be between 0.01 and 10');
  if (b.maximum_duration_without_endpointing !== undefined && !(typeof b.maximum_duration_without_endpointing === 'number' && b.maximum_duration_without_endpointing >= 5 && b.maximum_duration_without_endpointing <= 60)) {
    errs.push('maximum_duration_without_endpointing must be between 5 and 60');
  }
  if (b.language_config !== undefined) {
    const lc = b.language_config;
    if (!isObj(lc)) errs.push('language_config must be an object');
    else {
      if (lc.languages !== undefined && !(Array.isArray(lc.languages) && lc.languages.every((l) => LANGUAGES.has(l as string)))) errs.push('language_config.languages must be supported language codes');
      if (lc.code_switching !== undefined && typeof lc.code_switching !== 'boolean') errs.push('language_config.code_switching must be a boolean');
    }
  }
  if (b.realtime_processing !== undefined) {
    const rp = b.realtime_processing;
    if (!isObj(rp)) errs.push('realtime_processing must be an object');
    else if (rp.custom_vocabulary !== undefined) {
      const vocab = isObj(rp.custom_vocabulary_config) ? rp.custom_vocabulary_config.vocabulary : undefined;
      if (typeof rp.custom_vocabulary !== 'boolean') errs.push('realtime_processing.custom_vocabulary must be a boolean');
      else if (rp.custom_vocabulary && !(Array.isArray(vocab) && vocab.length > 0 && vocab.every((v) => typeof v === 'string'
        || (isObj(v) && typeof v.value === 'string' && (v.intensity === undefined || (typeof v.intensity === 'number' && v.intensity >= 0 && v.intensity <= 1)))))) {
        errs.push('realtime_processing.custom_vocabulary_config.vocabulary must list strings or { value, intensity 0..1 }');
      }
    }
  }
  if (b.messages_config !== undefined) {
    const mc = b.messages_config;
    if (!isObj(mc)) errs.push('messages_config must be an object');
    else for (const [k, v] of Object.entries(mc)) {
      if (!MESSAGE_FLAGS.includes(k)) errs.push(`messages_config.property ${k} should not exist`);
      else if (typeof v !== 'boolean') errs.push(`messages_config.${k} must be a boolean`);
    }
  }
  return errs;
}

interface Session { id: string; config: Json; live: boolean }

export async function startGladiaFake(validKey: string): Promise<GladiaFake> {
  const script = new TranscriptScript();
  const sessions = new Map<string, Session>();
  const inits: Json[] = [];
  const controlMessages: { type: string }[] = [];
  const sessionIds: string[] = [];
  const deleted: string[] = [];
  let refuseSocket: number | undefined;
  let failure: FailureMode | undefined;
  let initDelay = 0;
  let cannedAnswer: unknown;
  let dropArmed = false;
  let connections = 0;
  let audioBytes = 0;
  let gracefulClose = false;
  let lastKey: string | undefined;
  let lastInitQuery: URLSearchParams | undefined;
  let lastInitClientCloseAt: number | undefined;
  let wsBase = '';

  const error = (res: ServerResponse, status: number, message: string, extra: Json = {}) =>
    json(res, status, { timestamp: new Date().toISOString(), path: '/v2/live', request_id: `G-${randomUUID().slice(0, 8)}`, statusCode: status, message, ...extra });

  const remove = (req: IncomingMessage, res: ServerResponse, id: string) => {
    const key = req.headers['x-gladia-key'];
    if (!key || key !== validKey) return error(res, 401, 'Invalid or missing x-gladia-key');
    const entry = [...sessions].find(([, s]) => s.id === id);
    if (!entry) return error(res, 404, `Live job ${id} not found`);
    if (entry[1].live) return error(res, 403, 'The live job is not in a deletable state');
    sessions.delete(entry[0]);
    deleted.push(id);
    res.writeHead(202);
    res.end();
  };

  const init = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const del = /^\/v2\/live\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'DELETE' && del) return remove(req, res, decodeURIComponent(del[1]));
    if (req.method !== 'POST' || url.pathname !== '/v2/live') return error(res, 404, `Cannot ${req.method} ${url.pathname}`);
    lastInitQuery = url.searchParams;
    res.on('close', () => { if (!res.writableFinished) lastInitClientCloseAt = performance.now(); });
    if (initDelay) {
      const d = initDelay;
      initDelay = 0;
      await sleep(d);
      if (res.destroyed) return;
    }
    const key = req.headers['x-gladia-key'];
    lastKey = typeof key === 'string' ? key : undefined;
    const f = failure;
    failure = undefined;
    if (!key || key !== validKey || f === 'auth') return error(res, 401, 'Invalid or missing x-gladia-key');
    if (f === 'quota') return error(res, 429, 'Too many concurrent sessions for your plan');
    if (f === 'unavailable') return error(res, 503, 'Service Unavailable');
    const region = url.searchParams.get('region');
    if (region !== null && !['us-west', 'eu-west'].includes(region)) return error(res, 400, 'Bad Request', { validation_errors: ['region must be one of us-west, eu-west'] });
    if (!/^application\/json/.test(req.headers['content-type'] ?? '')) return error(res, 400, 'Bad Request', { validation_errors: ['body must be application/json'] });
    let config: unknown;
    try {
      config = JSON.parse(body.toString('utf8'));
    } catch {
      return error(res, 400, 'Bad Request', { validation_errors: ['body must be valid JSON'] });
    }
    const errs = configErrors(config);
    if (errs.length) return error(res, 400, 'Bad Request', { validation_errors: errs });
    inits.push(config as Json);
    if (cannedAnswer !== undefined) {
      const body = cannedAnswer;
      cannedAnswer = undefined;
      return json(res, 201, body);
    }
    const id = randomUUID();
    const token = randomUUID();
    sessions.set(token, { id, config: config as Json, live: false });
    sessionIds.push(id);
    json(res, 201, { id, created_at: new Date().toISOString(), url: `${wsBase}/v2/live?token=${token}` });
  };

  const onConnection = (ws: WebSocket, session: Session) => {
    connections++;
    const connId = connections;
    session.live = true;
    ws.on('close', () => { session.live = false; });
    gracefulClose = false;
    const c = session.config;
    const mc = (c.messages_config ?? {}) as Json;
    const wants = (flag: string, dflt: boolean) => (mc[flag] === undefined ? dflt : mc[flag] === true);
    const rate = (c.sample_rate as number | undefined) ?? 16000;
    const pcm16 = (c.encoding ?? 'wav/pcm') === 'wav/pcm' && (c.bit_depth ?? 16) === 16;
    let speaking: { id: string; start: number } | undefined;
    let revealed = 0;
    let stopping = false;

    const send = (type: string, data?: unknown, extra: Json = {}) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(JSON.stringify({ session_id: session.id, created_at: new Date().toISOString(), type, ...extra, ...(data === undefined ? {} : { data }) }));
    };
    const utterance = (text: string, startMs: number, endMs: number) => {
      const words = spreadWords(text, startMs, endMs);
      return {
        // Gladia words and texts keep the leading space of their position in the transcript.
        text: ` ${text}`, start: startMs / 1000, end: endMs / 1000, confidence: 0.93, channel: 0, language: 'en',
        words: words.map((w) => ({ word: ` ${w.word}`, start: w.startMs / 1000, end: w.endMs / 1000, confidence: 0.93 })),
      };
    };
    const finish = (startMs: number, endMs: number) => {
      const id = speaking?.id ?? randomUUID();
      speaking = undefined;
      const text = script.next();
      if (wants('receive_speech_events', true)) send('speech_end', { time: endMs / 1000, channel: 0 });
      if (wants('receive_final_transcripts', true)) send('transcript', { id, is_final: true, utterance: utterance(text, startMs, endMs) });
    };

    const tracker = new UtteranceTracker(rate, {
      onStart: (at) => {
        speaking = { id: randomUUID(), start: at };
        revealed = 0;
        if (wants('receive_speech_events', true)) send('speech_start', { time: at / 1000, channel: 0 });
      },
      onProgress: (start, now) => {
        if (dropArmed && now - start >= 200) {
          dropArmed = false;
          ws.terminate();
          return;
        }
        if (!wants('receive_partial_transcripts', false) || !speaking) return;
        const words = script.peek().split(/\s+/);
        revealed = Math.min(words.length, revealed + 1);
        send('transcript', { id: speaking.id, is_final: false, utterance: utterance(words.slice(0, revealed).join(' '), start, now) });
      },
      onEnd: finish,
    });

    const audio = (buf: Buffer) => {
      if (stopping) return;
      audioBytes += buf.length;
      if (pcm16) tracker.push(new Int16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length - (buf.length % 2))));
    };

    ws.on('message', (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (isBinary) return audio(buf);
      let m: Json;
      try {
        m = JSON.parse(buf.toString('utf8')) as Json;
        if (!isObj(m)) throw new Error('not an object');
      } catch {
        ws.close(4400, 'Invalid message');
        return;
      }
      controlMessages.push(m as { type: string });
      if (m.type === 'audio_chunk' && isObj(m.data) && typeof m.data.chunk === 'string') return audio(Buffer.from(m.data.chunk, 'base64'));
      if (m.type !== 'stop_recording') {
        ws.close(4400, `Unknown message type ${String(m.type)}`);
        return;
      }
      stopping = true;
      if (connId === connections) gracefulClose = true;
      const duration = tracker.receivedMs / 1000;
      if (wants('receive_acknowledgments', true)) send('stop_recording', { recording_duration: duration, recording_left_to_process: 0 }, { acknowledged: true, error: null });
      if (speaking) finish(speaking.start, tracker.receivedMs);
      if (wants('receive_lifecycle_events', false)) send('end_session');
      ws.close(1000);
    });
  };

  const server = await startFakeServer({
    http: init,
    upgrade: (req, socket) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const session = sessions.get(url.searchParams.get('token') ?? '');
      if (url.pathname !== '/v2/live') return rejectUpgrade(socket, 404, { statusCode: 404, message: 'Not Found' });
      if (!session) return rejectUpgrade(socket, 401, { statusCode: 401, message: 'Invalid or expired token' });
      if (refuseSocket !== undefined) {
        const status = refuseSocket;
        refuseSocket = undefined;
        return rejectUpgrade(socket, status, { statusCode: status, message: 'Service Unavailable' });
      }
      return true;
    },
    connection: (ws, req) => {
      const token = new URL(req.url ?? '/', 'http://fake').searchParams.get('token') ?? '';
      onConnection(ws, sessions.get(token)!);
    },
  });
  wsBase = server.wsUrl;

  return {
    url: server.url,
    script: (...texts) => script.add(...texts),
    failNext: (mode) => { failure = mode; },
    dropDuringNextUtterance: () => { dropArmed = true; },
    delayNextInit: (ms) => { initDelay = ms; },
    answerNextInit: (body) => { cannedAnswer = body; },
    refuseNextSocket: (status = 503) => { refuseSocket = status; },
    get connections() { return connections; },
    get gracefulClose() { return gracefulClose; },
    get audioBytes() { return audioBytes; },
    get lastKey() { return lastKey; },
    get lastInitQuery() { return lastInitQuery; },
    get lastInitClientCloseAt() { return lastInitClientCloseAt; },
    inits,
    controlMessages,
    sessionIds,
    deleted,
    close: () => server.close(),
  };
}
