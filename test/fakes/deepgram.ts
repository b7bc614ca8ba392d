/**
 * A loopback Deepgram: the live transcription socket (`/v1/listen`) and the Aura streaming speech socket
 * (`/v1/speak`), speaking Deepgram's documented wire protocol.
 *
 * What it checks, as Deepgram does: `Authorization: Token <key>` (401 with a `dg-error` header and an
 * `err_code`/`err_msg` body otherwise), the query (known model, language the model has, encoding with a
 * sample rate, `keyterm` only on Nova-3 and `keywords` never on it, `utterance_end_ms` only with interim
 * results, boolean and numeric values well-formed), audio in binary frames decoded per `encoding` (so audio
 * in the wrong encoding is heard wrongly), control messages as JSON text, an idle socket closed with
 * 1011/NET-0001. On `/v1/speak`: Speak/Flush/Clear/Close messages, binary linear16 (or μ/A-law) audio at the
 * requested rate, Metadata/Flushed/Cleared/Warning replies, the 20-flushes-per-minute limit.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { decodeALaw, decodeMuLaw, encodeALaw, encodeMuLaw } from '../../src/engine/audio/g711.js';
import type { FakeSttControls, FakeTtsControls } from '../providers/contract/harness.js';
import { WORD_MS } from '../providers/contract/harness.js';
import { rejectUpgrade, sleep, startFakeServer, type FailureMode, type FakeServer } from './server.js';
import { spreadWords, TranscriptScript, UtteranceTracker } from './speech.js';
import { countWords, pcmBytes, tone } from './tts.js';

const NOVA3_LANGS = new Set(['multi', 'en', 'es', 'fr', 'pt', 'de', 'nl', 'sv', 'da', 'it', 'tr', 'no', 'id', 'bg', 'cs', 'fi',
  'hi', 'hu', 'ja', 'ko', 'pl', 'ru', 'uk', 'vi', 'ca', 'et', 'el', 'lv', 'lt', 'ms', 'ro', 'sk', 'be', 'bn', 'bs', 'hr', 'kn',
  'mk', 'mr', 'sr', 'sl', 'ta', 'tl', 'te', 'zh', 'th']);
/** Nova-2's 36 languages (Deepgram changelog 2024-05-14), by base code, plus its English/Spanish `multi`. */
const NOVA2_LANGS = new Set(['multi', 'bg', 'ca', 'zh', 'cs', 'da', 'nl', 'en', 'et', 'fi', 'fr', 'de', 'el', 'hi', 'hu', 'id', 'it',
  'ja', 'ko', 'lv', 'lt', 'ms', 'no', 'pl', 'pt', 'ro', 'ru', 'sk', 'es', 'sv', 'th', 'tr', 'uk', 'vi']);
const LISTEN_ENCODINGS = new Set(['linear16', 'linear32', 'flac', 'alaw', 'mulaw', 'amr-nb', 'amr-wb', 'opus', 'ogg-opus', 'speex', 'g729']);
const SPEAK_RATES: Record<string, number[]> = { linear16: [8000, 16000, 24000, 32000, 48000], mulaw: [8000, 16000], alaw: [8000, 16000] };
const FLUSH_WINDOW_MS = 60_000;

let requestSeq = 0;
const requestId = () => `00000000-0000-4000-8000-${String(++requestSeq).padStart(12, '0')}`;

interface Rejection { status: number; code: string; msg: string }

function deny(socket: Duplex, r: Rejection): false {
  const id = requestId();
  return rejectUpgrade(socket, r.status, { err_code: r.code, err_msg: r.msg, request_id: id }, { 'dg-request-id': id, 'dg-error': r.msg });
}

const FAILURES: Record<FailureMode, Rejection> = {
  auth: { status: 401, code: 'INVALID_AUTH', msg: 'Invalid credentials.' },
  quota: { status: 429, code: 'TOO_MANY_REQUESTS', msg: 'Too many requests. Please try again later.' },
  unavailable: { status: 503, code: 'SERVICE_UNAVAILABLE', msg: 'Service temporarily unavailable.' },
};

function keyOf(req: http.IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Token (.+)$/.exec(h);
  return m ? m[1] : h;
}

const badQuery = (msg: string): Rejection => ({ status: 400, code: 'INVALID_QUERY_PARAMETER', msg });

function bool(q: URLSearchParams, name: string): boolean | Rejection {
  const v = q.get(name);
  if (v === null) return false;
  if (v !== 'true' && v !== 'false') return badQuery(`Invalid value for ${name}: ${v}`);
  return v === 'true';
}

// ---------------- /v1/listen ----------------

export interface ListenConfig {
  model: string;
  language: string;
  encoding: string;
  sampleRate: number;
  interim: boolean;
  vadEvents: boolean;
  punctuate: boolean;
  /** ms, or false when endpointing is off */
  endpointing: number | false;
  utteranceEndMs?: number;
  keywords: string[];
  keyterms: string[];
}

/** Deepgram's checks on a `/v1/listen` query; a string is the 400 it answers. */
export function parseListenQuery(q: URLSearchParams): ListenConfig | Rejection {
  const model = q.get('model') ?? 'base';
  if (!/^(nova-3|nova-2|nova|enhanced|base)(-[a-z]+)?$/.test(model)) return badQuery(`No such model: ${model}`);
  const language = q.get('language') ?? 'en';
  const base = language.toLowerCase().split('-')[0];
  const nova3 = model.startsWith('nova-3');
  if (nova3 ? !NOVA3_LANGS.has(base) : !NOVA2_LANGS.has(base)) {
    return { status: 400, code: 'Bad Request', msg: `No such model/language/tier combination found: ${model}/${language}` };
  }
  const encoding = q.get('encoding');
  if (encoding !== null && !LISTEN_ENCODINGS.has(encoding)) return badQuery(`Invalid encoding: ${encoding}`);
  const rate = q.get('sample_rate');
  if (encoding !== null && rate === null) return badQuery('sample_rate is required when encoding is set');
  if (rate !== null && !/^\d+$/.test(rate)) return badQuery(`Invalid sample_rate: ${rate}`);
  if (encoding !== 'linear16' && encoding !== 'mulaw' && encoding !== 'alaw') return badQuery(`this fake decodes only linear16, mulaw and alaw, not ${encoding}`);
  const channels = q.get('channels') ?? '1';
  if (!/^[1-9]\d*$/.test(channels)) return badQuery(`Invalid channels: ${channels}`);
  if (channels !== '1') return badQuery('this fake takes mono audio only');
  const flags: Record<string, boolean> = {};
  for (const name of ['interim_results', 'vad_events', 'smart_format', 'punctuate']) {
    const b = bool(q, name);
    if (typeof b !== 'boolean') return b;
    flags[name] = b;
  }
  const ep = q.get('endpointing');
  if (ep !== null && ep !== 'false' && !/^\d+$/.test(ep)) return badQuery(`Invalid endpointing: ${ep}`);
  const ue = q.get('utterance_end_ms');
  if (ue !== null) {
    if (!/^\d+$/.test(ue)) return badQuery(`Invalid utterance_end_ms: ${ue}`);
    if (!flags.interim_results) return badQuery('utterance_end_ms requires interim_results=true');
  }
  const keywords = q.getAll('keywords');
  const keyterms = q.getAll('keyterm');
  if (nova3 && keywords.length) return badQuery('Keywords are not supported for Nova-3. Please use `keyterm` instead.');
  if (!nova3 && keyterms.length) return badQuery('Keyterm Prompting is only available with Nova-3 models.');
  for (const k of keywords) {
    const m = /^(.+?)(?::(-?\d+(?:\.\d+)?))?$/.exec(k);
    if (!m || /:/.test(m[1])) return badQuery(`Invalid keyword: ${k}`);
  }
  if (keyterms.some((t) => !t.trim())) return badQuery('Empty keyterm');
  return {
    model, language, encoding, sampleRate: Number(rate), interim: flags.interim_results, vadEvents: flags.vad_events,
    punctuate: flags.punctuate || flags.smart_format,
    endpointing: ep === 'false' ? false : Number(ep ?? 10), utteranceEndMs: ue === null ? undefined : Number(ue),
    keywords, keyterms,
  };
}

export interface DeepgramSttFake extends FakeSttControls {
  /** Queries of every accepted connection, in order. */
  readonly queries: URLSearchParams[];
  /** Every JSON text message received, in order. */
  readonly controlMessages: { type: string }[];
  /** Binary frames of zero length (Deepgram treats them as the end of the stream). */
  readonly emptyFrames: number;
  /** Binary audio messages received over all connections (their sizes add up to audioBytes). */
  readonly audioMessages: number;
  /** Bytes of audio the latest connection received. */
  readonly lastConnectionAudioBytes: number;
  /** Like Deepgram's NET-0001: close a connection that sends neither audio nor KeepAlive for this long. */
  idleTimeoutMs: number;
  /** Finals come without speech_final, leaving the turn end to UtteranceEnd (endpointing missed it). */
  finalsWithoutSpeechFinal: boolean;
  /** How the last connection ended: who closed and with which code. */
  readonly lastClose: { code: number; by: 'client' | 'server' } | undefined;
}

function punctuate(text: string): string {
  const t = text.trim();
  return t ? `${t[0].toUpperCase()}${t.slice(1)}${/[.!?]$/.test(t) ? '' : '.'}` : t;
}

class ListenConnection {
  private tracker: UtteranceTracker;
  /** Start of the segment the next Results covers (Deepgram's `start`): the end of the previous final. */
  private segmentStartMs = 0;
  private speechStartMs: number | null = null;
  private lastWordEndMs: number | null = null;
  private utteranceEndDue = false;
  private idle?: NodeJS.Timeout;
  private ended = false;

  constructor(private readonly ws: WebSocket, private readonly cfg: ListenConfig, private readonly fake: SttFakeState) {
    this.tracker = new UtteranceTracker(cfg.sampleRate, {
      onStart: (at) => this.onStart(at),
      onProgress: (start, now) => this.onProgress(start, now),
      onEnd: (start, end) => this.final(start, end, !fake.finalsWithoutSpeechFinal && cfg.endpointing !== false),
    });
    fake.lastConnectionAudioBytes = 0;
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', (code) => {
      this.ended = true;
      clearTimeout(this.idle);
      fake.lastClose ??= { code, by: 'client' };
    });
    this.touch();
  }

  private send(m: unknown): void {
    if (!this.ended) this.ws.send(JSON.stringify(m));
  }

  private closeWith(code: number, reason: string): void {
    this.fake.lastClose = { code, by: 'server' };
    this.ended = true;
    this.ws.close(code, reason);
  }

  private touch(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.closeWith(1011, 'NET-0001'), this.fake.idleTimeoutMs);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.ended) return;
    if (isBinary) {
      if (data.length === 0) { this.fake.emptyFrames++; this.closeStream(); return; }
      this.fake.audioBytes += data.length;
      this.fake.audioMessages++;
      this.fake.lastConnectionAudioBytes += data.length;
      this.touch();
      this.tracker.push(this.decode(data));
      this.checkUtteranceEnd();
      return;
    }
    let m: { type?: unknown };
    try {
      m = JSON.parse(data.toString('utf8')) as { type?: unknown };
    } catch {
      this.closeWith(1008, 'DATA-0000');
      return;
    }
    this.fake.controlMessages.push(m as { type: string });
    switch (m.type) {
      case 'KeepAlive': this.touch(); break;
      case 'Finalize': this.finalizePending(true); break;
      case 'CloseStream': this.fake.gracefulClose = true; this.closeStream(); break;
      default: this.closeWith(1008, 'DATA-0000');
    }
  }

  private decode(data: Buffer): Int16Array {
    if (this.cfg.encoding === 'mulaw') return decodeMuLaw(data);
    if (this.cfg.encoding === 'alaw') return decodeALaw(data);
    const out = new Int16Array(Math.floor(data.length / 2));
    new Uint8Array(out.buffer).set(data.subarray(0, out.length * 2));
    return out;
  }

  private onStart(atMs: number): void {
    this.speechStartMs = atMs;
    this.utteranceEndDue = false;
    if (this.cfg.vadEvents) this.send({ type: 'SpeechStarted', channel: [0], timestamp: atMs / 1000 });
  }

  private onProgress(startMs: number, nowMs: number): void {
    if (this.fake.dropArmed && nowMs - startMs >= 200) {
      this.fake.dropArmed = false;
      this.ended = true;
      this.ws.terminate();
      return;
    }
    if (!this.cfg.interim) return;
    const all = this.fake.script.peek().split(/\s+/).filter(Boolean);
    const n = Math.max(1, Math.min(all.length, Math.floor((nowMs - startMs) / 150)));
    this.results(spreadWords(all.slice(0, n).join(' '), startMs, nowMs), false, false, nowMs);
  }

  private final(startMs: number, endMs: number, speechFinal: boolean): void {
    this.speechStartMs = null;
    const words = spreadWords(this.fake.script.next(), startMs, endMs);
    this.results(words, true, speechFinal, this.tracker.receivedMs);
    this.segmentStartMs = this.tracker.receivedMs;
    this.lastWordEndMs = endMs;
    this.utteranceEndDue = this.cfg.interim && this.cfg.utteranceEndMs !== undefined;
  }

  private results(words: { word: string; startMs: number; endMs: number }[], isFinal: boolean, speechFinal: boolean, toMs: number): void {
    const text = words.map((w) => w.word).join(' ');
    const shown = this.cfg.punctuate && isFinal ? punctuate(text) : text;
    const shownWords = shown.split(' ');
    this.send({
      type: 'Results',
      channel_index: [0, 1],
      duration: (toMs - this.segmentStartMs) / 1000,
      start: this.segmentStartMs / 1000,
      is_final: isFinal,
      speech_final: speechFinal,
      channel: {
        alternatives: [{
          transcript: shown,
          confidence: 0.98,
          words: words.map((w, i) => ({
            word: w.word.toLowerCase(), start: w.startMs / 1000, end: w.endMs / 1000, confidence: 0.98,
            punctuated_word: this.cfg.punctuate ? shownWords[i] : undefined,
          })),
        }],
      },
      metadata: { request_id: 'fake', model_info: { name: this.cfg.model, version: 'fake', arch: 'fake' }, model_uuid: 'fake' },
      from_finalize: false,
    });
  }

  private checkUtteranceEnd(): void {
    if (!this.utteranceEndDue || this.lastWordEndMs === null || this.speechStartMs !== null) return;
    if (this.tracker.receivedMs - this.lastWordEndMs < this.cfg.utteranceEndMs!) return;
    this.utteranceEndDue = false;
    this.send({ type: 'UtteranceEnd', channel: [0, 1], last_word_end: this.lastWordEndMs / 1000 });
  }

  private finalizePending(speechFinal: boolean): void {
    if (this.speechStartMs !== null) this.final(this.speechStartMs, this.tracker.receivedMs, speechFinal);
  }

  /** CloseStream: the last results, the stream's Metadata, then a normal close. */
  private closeStream(): void {
    this.finalizePending(false);
    this.send({
      type: 'Metadata', transaction_key: 'deprecated', request_id: requestId(), sha256: 'fake', created: new Date().toISOString(),
      duration: this.tracker.receivedMs / 1000, channels: 1, models: ['fake'], model_info: { fake: { name: this.cfg.model, version: 'fake', arch: 'fake' } },
    });
    this.closeWith(1000, '');
  }
}

interface SttFakeState {
  script: TranscriptScript;
  dropArmed: boolean;
  gracefulClose: boolean;
  audioBytes: number;
  audioMessages: number;
  lastConnectionAudioBytes: number;
  controlMessages: { type: string }[];
  emptyFrames: number;
  idleTimeoutMs: number;
  finalsWithoutSpeechFinal: boolean;
  lastClose: { code: number; by: 'client' | 'server' } | undefined;
}

// ---------------- /v1/speak ----------------

export interface DeepgramTtsFake extends FakeTtsControls {
  readonly queries: URLSearchParams[];
  /** Every message received on every speak socket, in order. */
  readonly messages: Record<string, unknown>[];
  /** Flushes allowed per minute per socket (Deepgram: 20); more get a Warning and no audio. */
  flushLimit: number;
  /** The next speak socket to receive text hangs: it takes the messages but sends no audio and no Flushed. */
  hangNextReply(): void;
}

interface SpeakConfig { model: string; encoding: string; sampleRate: number }

function parseSpeakQuery(q: URLSearchParams): SpeakConfig | Rejection {
  const model = q.get('model') ?? 'aura-asteria-en';
  if (!/^aura-(2-)?[a-z]+-[a-z]{2}$/.test(model)) return badQuery(`No such model: ${model}`);
  const encoding = q.get('encoding') ?? 'linear16';
  const rates = SPEAK_RATES[encoding];
  if (!rates) return badQuery(`Unsupported encoding for streaming: ${encoding}`);
  const rate = Number(q.get('sample_rate') ?? (encoding === 'linear16' ? 24000 : 8000));
  if (!rates.includes(rate)) return badQuery(`Unsupported sample_rate ${q.get('sample_rate')} for ${encoding}`);
  if (q.has('container')) return badQuery('container is not supported on the streaming socket');
  return { model, encoding, sampleRate: rate };
}

/** WORD_MS of a 300 Hz tone per word, in the socket's encoding. */
function voice(text: string, cfg: SpeakConfig): Buffer {
  const pcm = tone(countWords(text) * WORD_MS, cfg.sampleRate, { hz: 300 });
  if (cfg.encoding === 'mulaw') return Buffer.from(encodeMuLaw(pcm));
  if (cfg.encoding === 'alaw') return Buffer.from(encodeALaw(pcm));
  return pcmBytes(pcm);
}

interface TtsFakeState {
  receivedText: string;
  lastCancelAt: number | undefined;
  delayFirstByteMs: number;
  dropArmed: boolean;
  messages: Record<string, unknown>[];
  flushLimit: number;
  hangArmed: boolean;
}

/** A complete sentence followed by whitespace: Deepgram starts voicing it without waiting for a Flush. */
const SENTENCE = /^[\s\S]*[.!?](?=\s)\s*/;

class SpeakConnection {
  private buffer = '';
  private chain: Promise<void> = Promise.resolve();
  /** Bumped by Clear: queued and running synthesis of an older generation stops. */
  private generation = 0;
  private busy = 0;
  /** The chunk already on its way when a Clear arrives: like Deepgram's, it still reaches the client, before Cleared. */
  private inFlight?: Buffer;
  private flushes: number[] = [];
  private flushSeq = 0;
  private clearSeq = 0;
  private ended = false;
  /** A hung server: messages are taken, nothing is voiced or answered. */
  private hung = false;

  constructor(private readonly ws: WebSocket, private readonly cfg: SpeakConfig, private readonly fake: TtsFakeState) {
    fake.receivedText = '';
    this.send({ type: 'Metadata', request_id: requestId(), model_name: cfg.model, model_version: 'fake', model_uuid: 'fake' });
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', () => {
      if (!this.ended && (this.busy > 0 || this.buffer.trim())) fake.lastCancelAt = performance.now();
      this.ended = true;
    });
  }

  private send(m: unknown): void {
    if (!this.ended) this.ws.send(JSON.stringify(m));
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.ended) return;
    let m: Record<string, unknown>;
    try {
      if (isBinary) throw new Error('binary');
      m = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    } catch {
      this.ended = true;
      this.ws.close(1008, 'DATA-0000');
      return;
    }
    this.fake.messages.push(m);
    if (this.fake.hangArmed && m.type === 'Speak') { this.fake.hangArmed = false; this.hung = true; }
    if (this.hung) return;
    switch (m.type) {
      case 'Speak': {
        if (typeof m.text !== 'string') { this.ended = true; this.ws.close(1008, 'DATA-0000'); return; }
        this.fake.receivedText += m.text;
        this.buffer += m.text;
        const done = SENTENCE.exec(this.buffer);
        if (done) {
          this.buffer = this.buffer.slice(done[0].length);
          this.queue(done[0]);
        }
        break;
      }
      case 'Flush': {
        const now = performance.now();
        this.flushes = this.flushes.filter((t) => now - t < FLUSH_WINDOW_MS);
        if (this.flushes.length >= this.fake.flushLimit) {
          this.send({ type: 'Warning', description: 'Flush limit reached: no more Flush messages are processed until the 60-second window has passed.', code: 'FLUSH_LIMIT_EXCEEDED' });
          break;
        }
        this.flushes.push(now);
        const seq = this.flushSeq++;
        this.queue(this.take(), () => this.send({ type: 'Flushed', sequence_id: seq }));
        break;
      }
      case 'Clear':
        this.fake.lastCancelAt = performance.now();
        this.generation++;
        this.buffer = '';
        if (this.inFlight) this.ws.send(this.inFlight, { binary: true });
        this.inFlight = undefined;
        this.send({ type: 'Cleared', sequence_id: this.clearSeq++ });
        break;
      case 'Close':
        this.queue(this.take(), () => { this.ended = true; this.ws.close(1000); });
        break;
      default:
        this.send({ type: 'Warning', description: `Unknown message type: ${String(m.type)}`, code: 'UNKNOWN_MESSAGE_TYPE' });
    }
  }

  private take(): string {
    const t = this.buffer;
    this.buffer = '';
    return t;
  }

  /** Voices `text` after whatever is queued, in 50 ms chunks, unless a Clear comes first. */
  private queue(text: string, after?: () => void): void {
    const gen = this.generation;
    this.busy++;
    this.chain = this.chain.then(async () => {
      try {
        const audio = text.trim() ? voice(text, this.cfg) : Buffer.alloc(0);
        const bytesPerSample = this.cfg.encoding === 'linear16' ? 2 : 1;
        const chunk = (this.cfg.sampleRate / 20) * bytesPerSample;
        for (let off = 0, sent = 0; off < audio.length; off += chunk, sent++) {
          if (this.ended || gen !== this.generation) return;
          if (this.fake.delayFirstByteMs) { const d = this.fake.delayFirstByteMs; this.fake.delayFirstByteMs = 0; await sleep(d); }
          if (this.ended || gen !== this.generation) return;
          if (this.fake.dropArmed && sent === 2) { this.fake.dropArmed = false; this.ended = true; this.ws.terminate(); return; }
          this.ws.send(audio.subarray(off, off + chunk), { binary: true });
          this.inFlight = off + chunk < audio.length ? audio.subarray(off + chunk, off + 2 * chunk) : undefined;
          await sleep(2);
          this.inFlight = undefined;
        }
        if (!this.ended && gen === this.generation) after?.();
      } finally {
        this.busy--;
      }
    });
  }
}

// ---------------- the server ----------------

export interface DeepgramFake {
  url: string;
  stt: DeepgramSttFake;
  tts: DeepgramTtsFake;
  close(): Promise<void>;
}

export async function startDeepgramFake(validKey: string): Promise<DeepgramFake> {
  let server: FakeServer | undefined;
  let failNextStt: FailureMode | undefined;
  let failNextTts: FailureMode | undefined;
  let sttConnections = 0;
  let ttsConnections = 0;
  let sttLastKey: string | undefined;
  let ttsLastKey: string | undefined;
  const sttQueries: URLSearchParams[] = [];
  const ttsQueries: URLSearchParams[] = [];
  const pending = new WeakMap<http.IncomingMessage, ListenConfig | SpeakConfig>();
  const script = new TranscriptScript();
  const sttState: SttFakeState = {
    script, dropArmed: false, gracefulClose: false, audioBytes: 0, audioMessages: 0, lastConnectionAudioBytes: 0, controlMessages: [], emptyFrames: 0,
    idleTimeoutMs: 10_000, finalsWithoutSpeechFinal: false, lastClose: undefined,
  };
  const ttsState: TtsFakeState = { receivedText: '', lastCancelAt: undefined, delayFirstByteMs: 0, dropArmed: false, messages: [], flushLimit: 20, hangArmed: false };
  const close = async () => { await server?.close(); server = undefined; };

  server = await startFakeServer({
    upgrade: (req, socket) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const listen = url.pathname === '/v1/listen';
      if (!listen && url.pathname !== '/v1/speak') return deny(socket, { status: 404, code: 'NOT_FOUND', msg: `No route ${url.pathname}` });
      const key = keyOf(req);
      if (listen) { sttConnections++; sttLastKey = key; } else { ttsConnections++; ttsLastKey = key; }
      if (key !== validKey) return deny(socket, FAILURES.auth);
      const failure = listen ? failNextStt : failNextTts;
      if (listen) failNextStt = undefined; else failNextTts = undefined;
      if (failure) return deny(socket, FAILURES[failure]);
      const cfg = listen ? parseListenQuery(url.searchParams) : parseSpeakQuery(url.searchParams);
      if ('status' in cfg) return deny(socket, cfg);
      (listen ? sttQueries : ttsQueries).push(url.searchParams);
      pending.set(req, cfg);
      return true;
    },
    connection: (ws, req) => {
      const cfg = pending.get(req)!;
      if ('language' in cfg) {
        sttState.gracefulClose = false;
        sttState.lastClose = undefined;
        new ListenConnection(ws, cfg, sttState);
      } else new SpeakConnection(ws, cfg, ttsState);
    },
  });
  const url = server.url;

  const stt: DeepgramSttFake = {
    script: (...texts) => script.add(...texts),
    failNext: (mode) => { failNextStt = mode; },
    dropDuringNextUtterance: () => { sttState.dropArmed = true; },
    get connections() { return sttConnections; },
    get gracefulClose() { return sttState.gracefulClose; },
    get audioBytes() { return sttState.audioBytes; },
    get audioMessages() { return sttState.audioMessages; },
    get lastConnectionAudioBytes() { return sttState.lastConnectionAudioBytes; },
    get lastKey() { return sttLastKey; },
    get queries() { return sttQueries; },
    get controlMessages() { return sttState.controlMessages; },
    get emptyFrames() { return sttState.emptyFrames; },
    get idleTimeoutMs() { return sttState.idleTimeoutMs; },
    set idleTimeoutMs(v: number) { sttState.idleTimeoutMs = v; },
    get finalsWithoutSpeechFinal() { return sttState.finalsWithoutSpeechFinal; },
    set finalsWithoutSpeechFinal(v: boolean) { sttState.finalsWithoutSpeechFinal = v; },
    get lastClose() { return sttState.lastClose; },
    close,
  };
  const tts: DeepgramTtsFake = {
    failNext: (mode) => { failNextTts = mode; },
    delayNextFirstByte: (ms) => { ttsState.delayFirstByteMs = ms; },
    dropNextMidStream: () => { ttsState.dropArmed = true; },
    get receivedText() { return ttsState.receivedText; },
    get lastCancelAt() { return ttsState.lastCancelAt; },
    get lastKey() { return ttsLastKey; },
    get connections() { return ttsConnections; },
    get queries() { return ttsQueries; },
    get messages() { return ttsState.messages; },
    get flushLimit() { return ttsState.flushLimit; },
    set flushLimit(v: number) { ttsState.flushLimit = v; },
    hangNextReply: () => { ttsState.hangArmed = true; },
    close,
  };
  return { url, stt, tts, close };
}
