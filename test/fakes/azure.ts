/**
 * A loopback Azure AI Speech: the speech-to-text WebSocket protocol (USP, as the Speech SDK speaks it)
 * and the text-to-speech REST endpoint, on one port.
 *
 * Followed: "Speech Service WebSocket protocol" (docs.microsoft.com/azure/cognitive-services/Speech/
 * api-reference-rest/websocketprotocol: Path/X-RequestId/X-Timestamp/Content-Type headers, binary
 * messages with a 2-byte big-endian header length, a RIFF header in the first audio message, an empty
 * audio message for end of stream, turn.start / speech.startDetected / speech.hypothesis / speech.phrase /
 * speech.endDetected / turn.end, offsets in 100-ns ticks), "Troubleshoot the Speech SDK" (401/403 on the
 * upgrade for a bad key) and "Text to speech REST API" (learn.microsoft.com/azure/ai-services/
 * speech-service/rest-text-to-speech: POST /cognitiveservices/v1, Ocp-Apim-Subscription-Key or
 * Authorization: Bearer, Content-Type application/ssml+xml, X-Microsoft-OutputFormat, User-Agent;
 * 400/401/415/429/502 answers).
 *
 * What it checks, so a wrong adapter fails: the recognition path and `language` locale, the key, that
 * speech.config then speech.context precede audio, that every message carries the headers and request id
 * of its turn, that the first audio is a PCM16 mono RIFF header (its rate is the rate the fake listens
 * at), word timings only when the context asked for them; for synthesis the headers, the output format
 * and well-formed SSML with escaped text.
 */
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { WebSocket } from 'ws';
import type { FakeSttControls, FakeTtsControls } from '../providers/contract/harness.js';
import { WORD_MS } from '../providers/contract/harness.js';
import { rejectUpgrade, sleep, startFakeServer, type FailureMode } from './server.js';
import { TranscriptScript, UtteranceTracker, spreadWords } from './speech.js';
import { pcmBytes, tone } from './tts.js';

export const AZURE_KEY = 'azure-test-key-7f3a';
export const RECOGNITION_PATH = '/speech/recognition/conversation/cognitiveservices/v1';

const TICKS_PER_MS = 10_000;

/** What Azure's front door answers for each failure (the JSON error shape of Cognitive Services). */
const FAILURES: Record<FailureMode, { status: number; body: unknown }> = {
  auth: { status: 401, body: { error: { code: '401', message: 'Access denied due to invalid subscription key or wrong API endpoint.' } } },
  quota: { status: 429, body: { error: { code: '429', message: 'Too many requests. The rate limit of your subscription is exceeded.' } } },
  unavailable: { status: 503, body: { error: { code: '503', message: 'Service Unavailable' } } },
};

export interface AzureSttFake extends FakeSttControls {
  /** The phrase list the last speech.context carried (dgi Generic group). */
  readonly phrases: string[];
  /** The last connection's query parameters. */
  readonly lastQuery: URLSearchParams | undefined;
  /** Protocol violations the fake saw (each also closed the socket). */
  readonly violations: string[];
  /**
   * The service hangs at the next end of audio: no speech.endDetected, no turn.end, and it stops reading the
   * socket, so not even the WebSocket closing handshake is answered.
   */
  hangNextEndOfAudio(): void;
}

export interface SsmlRequest { voice: string; lang: string; rate?: string; pitch?: string; text: string; format: string }

export interface AzureTtsFake extends FakeTtsControls {
  readonly lastSsml: SsmlRequest | undefined;
  readonly lastHeaders: http.IncomingHttpHeaders | undefined;
}

export interface AzureFake {
  url: string;
  wsUrl: string;
  stt: AzureSttFake;
  tts: AzureTtsFake;
  close(): Promise<void>;
}

function keyOf(req: http.IncomingMessage): string | undefined {
  const k = req.headers['ocp-apim-subscription-key'];
  if (typeof k === 'string') return k;
  const auth = req.headers.authorization;
  return auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
}

// ---- USP framing ----

function parseHeaders(block: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of block.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return out;
}

function textMessage(path: string, requestId: string, body: unknown): string {
  return `X-RequestId: ${requestId}\r\nContent-Type: application/json; charset=utf-8\r\nPath: ${path}\r\n\r\n${JSON.stringify(body)}`;
}

interface Riff { sampleRate: number; channels: number; bits: number; format: number }

function parseRiff(b: Buffer): Riff | undefined {
  if (b.length < 44 || b.toString('latin1', 0, 4) !== 'RIFF' || b.toString('latin1', 8, 12) !== 'WAVE' || b.toString('latin1', 12, 16) !== 'fmt ') return undefined;
  return { format: b.readUInt16LE(20), channels: b.readUInt16LE(22), sampleRate: b.readUInt32LE(24), bits: b.readUInt16LE(34) };
}

/** Azure punctuates and capitalises its display text. */
const display = (text: string) => text.charAt(0).toUpperCase() + text.slice(1) + (/[.?!]$/.test(text) ? '' : '.');

export async function startAzureFake(): Promise<AzureFake> {
  const script = new TranscriptScript();
  let sttFail: FailureMode | undefined;
  let dropNext = false;
  let hangEnd = false;
  let sttConnections = 0;
  let graceful = false;
  let audioBytes = 0;
  let sttKey: string | undefined;
  let phrases: string[] = [];
  let lastQuery: URLSearchParams | undefined;
  const violations: string[] = [];

  let ttsFail: FailureMode | undefined;
  let ttsDelay = 0;
  let ttsDrop = false;
  let ttsConnections = 0;
  let ttsKey: string | undefined;
  let lastCancelAt: number | undefined;
  let lastSsml: SsmlRequest | undefined;
  let lastHeaders: http.IncomingHttpHeaders | undefined;
  const received: string[] = [];

  function onConnection(ws: WebSocket, req: http.IncomingMessage): void {
    sttConnections++;
    graceful = false;
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    let configured = false;
    let requestId: string | undefined;
    let wordTimings = false;
    let turnStarted = false;
    let tracker: UtteranceTracker | undefined;
    let startSent = false;
    let current: { text: string; dropAt?: number } | undefined;

    const violate = (why: string) => {
      violations.push(why);
      ws.close(1007, why.slice(0, 120));
    };
    const send = (path: string, body: unknown) => { if (ws.readyState === ws.OPEN) ws.send(textMessage(path, requestId!, body)); };

    const listen = (rate: number) => new UtteranceTracker(rate, {
      onStart(atMs) {
        current = { text: script.next() };
        if (dropNext) { dropNext = false; current.dropAt = atMs + 200; }
        // In continuous recognition the service reports speech start once per turn.
        if (!startSent) { startSent = true; send('speech.startDetected', { Offset: Math.round(atMs * TICKS_PER_MS) }); }
      },
      onProgress(startMs, nowMs) {
        if (!current) return;
        if (current.dropAt !== undefined && nowMs >= current.dropAt) {
          // The replayed audio says it again after the reconnect.
          script.unshift(current.text);
          current = undefined;
          ws.terminate();
          return;
        }
        const words = current.text.split(/\s+/);
        const heard = words.slice(0, Math.max(1, Math.ceil(((nowMs - startMs) / 1000) * words.length))).join(' ');
        send('speech.hypothesis', { Text: heard, Offset: Math.round(startMs * TICKS_PER_MS), Duration: Math.round((nowMs - startMs) * TICKS_PER_MS) });
      },
      onEnd(startMs, endMs) {
        const text = current?.text ?? script.next();
        current = undefined;
        phrase(text, startMs, endMs);
      },
    });

    const phrase = (text: string, startMs: number, endMs: number) => {
      const shown = display(text);
      const best: Record<string, unknown> = { Confidence: 0.93, Lexical: text.toLowerCase(), ITN: text.toLowerCase(), MaskedITN: text.toLowerCase(), Display: shown };
      if (wordTimings) {
        best.Words = spreadWords(text.toLowerCase(), startMs, endMs).map((w) => ({
          Word: w.word, Offset: Math.round(w.startMs * TICKS_PER_MS), Duration: Math.round((w.endMs - w.startMs) * TICKS_PER_MS),
        }));
      }
      const body: Record<string, unknown> = {
        RecognitionStatus: 'Success', Offset: Math.round(startMs * TICKS_PER_MS), Duration: Math.round((endMs - startMs) * TICKS_PER_MS), DisplayText: shown,
      };
      if (query.get('format') === 'detailed') body.NBest = [best];
      send('speech.phrase', body);
    };

    ws.on('message', (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
      if (!isBinary) {
        const text = buf.toString('utf8');
        const split = text.indexOf('\r\n\r\n');
        if (split < 0) return violate('text message without a header block');
        const h = parseHeaders(text.slice(0, split));
        if (!h.path || !h['x-timestamp'] || !/^[0-9a-f]{32}$/i.test(h['x-requestid'] ?? '')) return violate(`missing USP headers on ${h.path}`);
        if (!/^application\/json/.test(h['content-type'] ?? '')) return violate(`${h.path} must be application/json`);
        let body: Record<string, unknown>;
        try { body = JSON.parse(text.slice(split + 4)) as Record<string, unknown>; } catch { return violate(`${h.path} body is not JSON`); }
        const path = h.path.toLowerCase();
        if (path === 'speech.config') {
          const ctx = body.context as { system?: unknown; audio?: unknown } | undefined;
          if (!ctx?.system) return violate('speech.config without context.system');
          configured = true;
        } else if (path === 'speech.context') {
          if (!configured) return violate('speech.context before speech.config');
          requestId = h['x-requestid'];
          const out = body.phraseOutput as { detailed?: { options?: string[] } } | undefined;
          wordTimings = !!out?.detailed?.options?.includes('WordTimings') || query.get('wordLevelTimestamps') === 'true';
          const groups = ((body.dgi as { groups?: { type: string; items: { text: string }[] }[] } | undefined)?.groups) ?? [];
          phrases = groups.filter((g) => g.type === 'Generic').flatMap((g) => g.items.map((i) => i.text));
          turnStarted = false;
          tracker = undefined;
          startSent = false;
        } else if (path !== 'telemetry') {
          return violate(`unknown path ${h.path}`);
        }
        return;
      }
      if (buf.length < 2) return violate('binary message without header length');
      const headerLength = buf.readUInt16BE(0);
      const h = parseHeaders(buf.toString('latin1', 2, 2 + headerLength));
      const payload = buf.subarray(2 + headerLength);
      if (h.path !== 'audio') return violate(`unknown binary path ${h.path}`);
      if (!requestId) return violate('audio before speech.context');
      if (h['x-requestid'] !== requestId) return violate('audio for a request that was not started');
      if (!h['x-timestamp']) return violate('audio without X-Timestamp');
      if (!turnStarted) {
        turnStarted = true;
        send('turn.start', { context: { serviceTag: 'fake0123456789abcdef' } });
      }
      if (!tracker) {
        const riff = parseRiff(payload);
        if (!riff) return violate('the first audio message must carry a RIFF header');
        if (riff.format !== 1 || riff.channels !== 1 || riff.bits !== 16) return violate('only 16-bit mono PCM is accepted here');
        tracker = listen(riff.sampleRate);
        const pcm = payload.subarray(44);
        audioBytes += pcm.length;
        if (pcm.length) tracker.push(new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.length - (pcm.length % 2))));
        return;
      }
      if (payload.length === 0) {
        // End of audio: the service finishes the turn.
        graceful = true;
        if (hangEnd) {
          hangEnd = false;
          (ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
          return;
        }
        const endMs = tracker.receivedMs;
        if (current) { const text = current.text; current = undefined; phrase(text, Math.max(0, endMs - 500), endMs); }
        send('speech.endDetected', { Offset: Math.round(endMs * TICKS_PER_MS) });
        send('turn.end', {});
        return;
      }
      audioBytes += payload.length;
      tracker.push(new Int16Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.length - (payload.length % 2))));
    });
  }

  async function onUpgrade(req: http.IncomingMessage, socket: import('node:stream').Duplex): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://x');
    // Browsers cannot set upgrade headers, so the service also takes the key as a query parameter.
    sttKey = keyOf(req) ?? url.searchParams.get('Ocp-Apim-Subscription-Key') ?? undefined;
    lastQuery = url.searchParams;
    if (url.pathname !== RECOGNITION_PATH) return rejectUpgrade(socket, 404, { error: { code: '404', message: 'Resource not found' } });
    if (sttKey !== AZURE_KEY) return rejectUpgrade(socket, 401, FAILURES.auth.body);
    if (sttFail) {
      const f = FAILURES[sttFail];
      sttFail = undefined;
      return rejectUpgrade(socket, f.status, f.body);
    }
    // The service wants a full locale (en-US), not a bare language.
    if (!/^[a-z]{2,3}-[A-Za-z]{2,4}(-[A-Za-z]+)?$/.test(url.searchParams.get('language') ?? '')) {
      return rejectUpgrade(socket, 400, { error: { code: '400', message: `Unsupported language '${url.searchParams.get('language')}'` } });
    }
    return true;
  }

  async function onHttp(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'POST' || url.pathname !== '/cognitiveservices/v1') { res.writeHead(404); res.end(); return; }
    ttsConnections++;
    ttsKey = keyOf(req);
    lastHeaders = req.headers;
    const endWith = (status: number, text = '') => { res.writeHead(status, text ? { 'content-type': 'application/json' } : {}); res.end(text); };
    if (ttsKey !== AZURE_KEY) return endWith(401);
    if (ttsFail) {
      const f = FAILURES[ttsFail];
      ttsFail = undefined;
      return endWith(f.status === 503 ? 502 : f.status, JSON.stringify(f.body));
    }
    if (req.headers['content-type'] !== 'application/ssml+xml') return endWith(415);
    if (!req.headers['user-agent']) return endWith(400);
    const format = String(req.headers['x-microsoft-outputformat'] ?? '');
    const m = /^raw-(8|16|22050|24|44100|48)(khz|hz)?-16bit-mono-pcm$/.exec(format);
    if (!m) return endWith(400);
    const rate = m[2] === 'khz' ? Number(m[1]) * 1000 : Number(m[1]);
    const ssml = parseSsml(body.toString('utf8'));
    if (!ssml) return endWith(400);
    lastSsml = { ...ssml, format };
    received.push(ssml.text);

    let finished = false;
    res.on('close', () => { if (!finished) lastCancelAt = performance.now(); });
    if (ttsDelay) { const d = ttsDelay; ttsDelay = 0; await sleep(d); }
    const drop = ttsDrop;
    ttsDrop = false;
    res.writeHead(200, { 'content-type': 'audio/basic', 'transfer-encoding': 'chunked' });
    const words = ssml.text.split(/\s+/).filter(Boolean);
    const wordTone = tone(WORD_MS, rate, { hz: 330 });
    for (let i = 0; i < words.length; i++) {
      if (res.destroyed) return;
      if (drop && i === 2) { finished = true; res.destroy(); return; }
      res.write(pcmBytes(wordTone));
      await sleep(5);
    }
    finished = true;
    res.end();
  }

  const server = await startFakeServer({ http: onHttp, upgrade: onUpgrade, connection: onConnection });

  const stt: AzureSttFake = {
    script: (...texts) => script.add(...texts),
    failNext: (mode) => { sttFail = mode; },
    dropDuringNextUtterance: () => { dropNext = true; },
    get connections() { return sttConnections; },
    get gracefulClose() { return graceful; },
    get audioBytes() { return audioBytes; },
    get lastKey() { return sttKey; },
    get phrases() { return phrases; },
    get lastQuery() { return lastQuery; },
    get violations() { return violations; },
    hangNextEndOfAudio: () => { hangEnd = true; },
    close: () => server.close(),
  };
  const tts: AzureTtsFake = {
    failNext: (mode) => { ttsFail = mode; },
    delayNextFirstByte: (ms) => { ttsDelay = ms; },
    dropNextMidStream: () => { ttsDrop = true; },
    get receivedText() { return received.join(' '); },
    get lastCancelAt() { return lastCancelAt; },
    get lastKey() { return ttsKey; },
    get connections() { return ttsConnections; },
    get lastSsml() { return lastSsml; },
    get lastHeaders() { return lastHeaders; },
    close: () => server.close(),
  };
  return { url: server.url, wsUrl: server.wsUrl, stt, tts, close: () => server.close() };
}

// ---- SSML ----

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/**
 * The subset of SSML an adapter sends: <speak version xml:lang> → <voice name> → optional <prosody>
 * → text. Text with a raw `&` or `<` is not XML, which the service refuses with 400.
 */
export function parseSsml(xml: string): Omit<SsmlRequest, 'format'> | undefined {
  const speak = /^\s*(?:<\?xml[^>]*\?>\s*)?<speak\b([^>]*)>([\s\S]*)<\/speak>\s*$/.exec(xml);
  if (!speak || !/version=["']1\.0["']/.test(speak[1])) return undefined;
  const lang = /xml:lang=["']([^"']+)["']/.exec(speak[1])?.[1];
  const voice = /^\s*<voice\b[^>]*\bname=["']([^"']+)["'][^>]*>([\s\S]*)<\/voice>\s*$/.exec(speak[2]);
  if (!lang || !voice) return undefined;
  let inner = voice[2];
  let rate: string | undefined;
  let pitch: string | undefined;
  const prosody = /^\s*<prosody\b([^>]*)>([\s\S]*)<\/prosody>\s*$/.exec(inner);
  if (prosody) {
    rate = /\brate=["']([^"']+)["']/.exec(prosody[1])?.[1];
    pitch = /\bpitch=["']([^"']+)["']/.exec(prosody[1])?.[1];
    inner = prosody[2];
  }
  if (/[<>]/.test(inner) || /&(?!(amp|lt|gt|quot|apos);)/.test(inner)) return undefined;
  const text = inner.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ENTITIES[e]);
  return { voice: voice[1], lang, rate, pitch, text };
}
