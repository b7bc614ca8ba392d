/**
 * A fake of PlayHT's HTTP streaming endpoint (POST /api/v2/tts/stream), per its API reference: the
 * secret key in AUTHORIZATION (bare, or "Bearer …" as older guides show), the user id in X-USER-ID,
 * a JSON body validated against the documented fields and ranges, and audio streamed back in the
 * requested output_format. It serves `wav` (a streamed RIFF header with placeholder sizes, then PCM16 at
 * sample_rate); each word is WORD_MS of tone. Errors carry PlayHT's {error_message, error_id} body.
 */
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FakeTtsControls } from '../providers/contract/harness.js';
import { json, sleep, startFakeServer, type FailureMode } from './server.js';
import { countWords, toneBytes } from './tts.js';

const ENGINES = ['PlayHT2.0-turbo', 'PlayHT2.0', 'PlayHT1.0', 'Play3.0-mini', 'PlayDialog', 'PlayDialog-turbo'];
const QUALITIES = ['draft', 'low', 'medium', 'high', 'premium'];
const FORMATS = ['mp3', 'wav', 'ogg', 'flac', 'mulaw'];

export interface PlayHTFake extends FakeTtsControls {
  url: string;
  readonly requests: { headers: http.IncomingHttpHeaders; body: Record<string, unknown> }[];
  /** The next answer starts with this much silence (what experimental_remove_silence trims). */
  leadingSilenceNext(ms: number): void;
  resetReceivedText(): void;
}

const fail = (res: http.ServerResponse, status: number, id: string, message: string) => json(res, status, { error_message: message, error_id: id });

/** A WAV header as a streaming encoder writes it: sizes unknown, so 0xFFFFFFFF. */
export function streamingWavHeader(rate: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(0xffffffff, 4); h.write('WAVE', 8);
  h.write('fmt ', 12); h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24); h.writeUInt32LE(rate * 2, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34);
  h.write('data', 36); h.writeUInt32LE(0xffffffff, 40);
  return h;
}

export async function startPlayHTFake(validKey: string, validUserId: string): Promise<PlayHTFake> {
  let failNext: FailureMode | undefined;
  let delayNext = 0;
  let dropNext = false;
  let silenceNext = 0;
  let receivedText: string[] = [];
  let lastCancelAt: number | undefined;
  let lastKey: string | undefined;
  let connections = 0;
  const requests: PlayHTFake['requests'] = [];

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer) => {
    if (req.method !== 'POST' || req.url?.split('?')[0] !== '/api/v2/tts/stream') return fail(res, 404, 'NOT_FOUND', 'Not found');
    connections++;
    const auth = String(req.headers.authorization ?? '');
    lastKey = auth.replace(/^Bearer /, '') || undefined;
    if (!auth || !req.headers['x-user-id']) return fail(res, 401, 'UNAUTHORIZED', 'Missing AUTHORIZATION or X-USER-ID header');
    if (lastKey !== validKey || req.headers['x-user-id'] !== validUserId) return fail(res, 403, 'FORBIDDEN', 'Invalid credentials: the secret key and user id do not match');
    const mode = failNext;
    failNext = undefined;
    if (mode === 'auth') return fail(res, 401, 'UNAUTHORIZED', 'Unauthorized');
    if (mode === 'quota') return fail(res, 429, 'RATE_LIMIT_EXCEEDED', 'You have exceeded your rate limit or plan quota');
    if (mode === 'unavailable') return fail(res, 503, 'SERVICE_UNAVAILABLE', 'Service temporarily unavailable');
    if (String(req.headers.accept).includes('application/json')) return fail(res, 400, 'FAKE_UNSUPPORTED', 'the fake does not serve the JSON (URL) answer');
    if (!String(req.headers['content-type']).startsWith('application/json')) return fail(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'content-type must be application/json');
    let body: Record<string, unknown>;
    try { body = JSON.parse(raw.toString()) as Record<string, unknown>; } catch { return fail(res, 400, 'INVALID_JSON', 'Body is not valid JSON'); }
    requests.push({ headers: req.headers, body });
    const invalid = validate(body);
    if (invalid) return fail(res, 400, 'VALIDATION_ERROR', invalid);
    if (body.output_format !== 'wav') return fail(res, 400, 'FAKE_UNSUPPORTED', `the fake serves output_format "wav" only, not ${String(body.output_format)}`);
    const text = body.text as string;
    receivedText.push(text);
    const rate = (body.sample_rate as number | undefined) ?? 24_000;

    const delay = delayNext; delayNext = 0;
    if (delay) await sleep(delay);
    const drop = dropNext; dropNext = false;
    const silence = silenceNext; silenceNext = 0;
    res.on('close', () => { if (!res.writableFinished && !drop) lastCancelAt = performance.now(); });
    res.writeHead(200, { 'content-type': 'audio/wav', 'transfer-encoding': 'chunked' });
    const stream = Buffer.concat([streamingWavHeader(rate), Buffer.alloc(Math.round((silence * rate) / 1000) * 2), toneBytes(countWords(text), rate)]);
    // The first read ends inside the header; later ones split samples.
    const cuts = [30, 44 + 1601];
    for (let at = 0, n = 0; at < stream.length; n++) {
      if (res.destroyed) return;
      const end = cuts[n] ?? at + 3201;
      res.write(stream.subarray(at, end));
      at = end;
      if (drop && n === 2) { await sleep(5); res.socket?.destroy(); return; }
      await sleep(8);
    }
    res.end();
  };

  const server = await startFakeServer({ http: handle });
  return {
    url: server.url,
    close: () => server.close(),
    failNext: (m) => { failNext = m; },
    delayNextFirstByte: (ms) => { delayNext = ms; },
    dropNextMidStream: () => { dropNext = true; },
    leadingSilenceNext: (ms) => { silenceNext = ms; },
    resetReceivedText: () => { receivedText = []; },
    get receivedText() { return receivedText.join(' '); },
    get lastCancelAt() { return lastCancelAt; },
    get lastKey() { return lastKey; },
    get connections() { return connections; },
    get requests() { return requests; },
  };
}

/** The documented constraints of the stream request; the first violation, as PlayHT words it. */
function validate(b: Record<string, unknown>): string | undefined {
  const engine = b.voice_engine;
  if (engine !== undefined && (typeof engine !== 'string' || !ENGINES.includes(engine))) return `voice_engine must be one of ${ENGINES.join(', ')}`;
  const limit = engine === 'Play3.0-mini' ? 20_000 : 2000;
  if (typeof b.text !== 'string' || !b.text.trim() || b.text.length > limit) return `text is required (at most ${limit} characters)`;
  if (typeof b.voice !== 'string' || !b.voice) return 'voice is required';
  if (b.output_format !== undefined && !FORMATS.includes(b.output_format as string)) return `output_format must be one of ${FORMATS.join(', ')}`;
  const range = (k: string, lo: number, hi: number) => b[k] !== undefined && (typeof b[k] !== 'number' || (b[k] as number) < lo || (b[k] as number) > hi) ? `${k} must be a number from ${lo} to ${hi}` : undefined;
  if (b.sample_rate !== undefined && !Number.isInteger(b.sample_rate)) return 'sample_rate must be an integer';
  if (b.quality !== undefined && !QUALITIES.includes(b.quality as string)) return `quality must be one of ${QUALITIES.join(', ')}`;
  return range('sample_rate', 8000, 48000) ?? range('speed', 0.1, 5) ?? range('temperature', 0, 2) ?? range('top_p', 0, 1)
    ?? range('text_guidance', 0, 2) ?? range('voice_guidance', 1, 6);
}
