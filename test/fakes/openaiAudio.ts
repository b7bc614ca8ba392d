/**
 * A fake of OpenAI's audio endpoints, as documented in the API reference:
 * - POST /audio/speech: JSON {model, voice, input, response_format, speed, instructions}, Bearer auth,
 *   the audio streamed back (`pcm` = 24 kHz 16-bit LE mono, no header). Each word is WORD_MS of tone.
 * - POST /audio/transcriptions: multipart (file, model, language, prompt, response_format, stream,
 *   timestamp_granularities[]); gpt-4o-* models stream SSE `transcript.text.delta` / `.done` events when
 *   stream=true, whisper-1 answers JSON (verbose_json with word timestamps when asked).
 * - GET /models/{model}: the model object (what the STT adapter checks at open).
 * Errors come as OpenAI sends them: {"error": {message, type, param, code}} with 401 / 429 / 5xx / 400.
 */
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import { decodeWav } from '../../src/engine/audio/wav.js';
import type { FakeSttControls, FakeTtsControls } from '../providers/contract/harness.js';
import { json, sleep, startFakeServer, type FailureMode } from './server.js';
import { SPEECH_RMS, TranscriptScript } from './speech.js';
import { countWords, toneBytes } from './tts.js';

export const SPEECH_MODELS = ['tts-1', 'tts-1-hd', 'gpt-4o-mini-tts', 'gpt-4o-mini-tts-2025-12-15'];
export const SPEECH_VOICES = ['alloy', 'ash', 'ballad', 'coral', 'echo', 'fable', 'onyx', 'nova', 'sage', 'shimmer', 'verse', 'marin', 'cedar'];
export const TRANSCRIBE_MODELS = ['whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe'];
const PCM_RATE = 24_000;

export interface SpeechRequest { headers: http.IncomingHttpHeaders; body: Record<string, unknown> }
export interface TranscriptionRequest { headers: http.IncomingHttpHeaders; fields: Record<string, string[]>; fileName: string; sampleRate: number; samples: number }

export interface OpenAIAudioFake {
  url: string;
  /** `receivedText` counts from here (the harness calls it per adapter it makes). */
  resetReceivedText(): void;
  tts: FakeTtsControls & { readonly speechRequests: SpeechRequest[] };
  stt: FakeSttControls & {
    readonly transcriptions: TranscriptionRequest[];
    readonly modelChecks: number;
    /** The next transcription request is taken but never answered (OpenAI overloaded); it ends when the client gives up. */
    stallNextTranscription(): void;
  };
  close(): Promise<void>;
}

const apiError = (res: http.ServerResponse, status: number, message: string, type: string, code: string | null, param: string | null = null) =>
  json(res, status, { error: { message, type, param, code } });

/** OpenAI shows only the ends of a wrong key. */
const redact = (key: string) => (key.length > 8 ? `${key.slice(0, 3)}${'*'.repeat(key.length - 7)}${key.slice(-4)}` : '****');

export async function startOpenAIAudioFake(validKey: string): Promise<OpenAIAudioFake> {
  let failNext: FailureMode | undefined;
  let delayNext = 0;
  let dropTts = false;
  let dropStt = false;
  let stallStt = false;
  let receivedText: string[] = [];
  let lastCancelAt: number | undefined;
  let ttsKey: string | undefined;
  let sttKey: string | undefined;
  let ttsRequests = 0;
  let modelChecks = 0;
  let gracefulClose = false;
  let audioBytes = 0;
  const speechRequests: SpeechRequest[] = [];
  const transcriptions: TranscriptionRequest[] = [];
  const script = new TranscriptScript();

  /** Auth and injected failures, in the order OpenAI applies them; false when answered. */
  const admit = (req: http.IncomingMessage, res: http.ServerResponse): string | false => {
    const auth = req.headers.authorization;
    const key = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    if (!key) { apiError(res, 401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth.", 'invalid_request_error', null); return false; }
    if (key !== validKey) { apiError(res, 401, `Incorrect API key provided: ${redact(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', 'invalid_api_key'); return false; }
    const mode = failNext;
    failNext = undefined;
    if (mode === 'auth') { apiError(res, 401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key'); return false; }
    if (mode === 'quota') { apiError(res, 429, 'You exceeded your current quota, please check your plan and billing details.', 'insufficient_quota', 'insufficient_quota'); return false; }
    if (mode === 'unavailable') { apiError(res, 503, 'The engine is currently overloaded, please try again later.', 'server_error', null); return false; }
    return key;
  };

  const speech = async (req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer) => {
    ttsRequests++;
    ttsKey = req.headers.authorization?.replace(/^Bearer /, '');
    if (!admit(req, res)) return;
    if (!String(req.headers['content-type']).startsWith('application/json')) return apiError(res, 400, 'Unsupported content type', 'invalid_request_error', null);
    let body: Record<string, unknown>;
    try { body = JSON.parse(raw.toString()) as Record<string, unknown>; } catch { return apiError(res, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null); }
    speechRequests.push({ headers: req.headers, body });
    const { model, voice, input, response_format: format, speed, instructions } = body;
    if (typeof model !== 'string' || !SPEECH_MODELS.includes(model)) return apiError(res, 400, `Invalid model: ${String(model)}`, 'invalid_request_error', null, 'model');
    if (typeof voice !== 'string' || !SPEECH_VOICES.includes(voice)) return apiError(res, 400, `Invalid value for 'voice': ${String(voice)}`, 'invalid_request_error', 'invalid_value', 'voice');
    if (typeof input !== 'string' || !input.trim() || input.length > 4096) return apiError(res, 400, "Invalid 'input': string must be 1 to 4096 characters.", 'invalid_request_error', null, 'input');
    if (speed !== undefined && (typeof speed !== 'number' || speed < 0.25 || speed > 4)) return apiError(res, 400, "Invalid 'speed': must be between 0.25 and 4.0.", 'invalid_request_error', null, 'speed');
    if (instructions !== undefined && model.startsWith('tts-1')) return apiError(res, 400, 'Instructions are not supported for tts-1 or tts-1-hd.', 'invalid_request_error', null, 'instructions');
    // The fake only speaks raw PCM; any other format would come back as an encoded file we cannot play.
    if (format !== 'pcm') return apiError(res, 400, `The fake serves response_format "pcm" only, not ${String(format)}`, 'invalid_request_error', null, 'response_format');
    receivedText.push(input);

    const delay = delayNext;
    delayNext = 0;
    if (delay) await sleep(delay);
    const drop = dropTts;
    dropTts = false;
    res.on('close', () => { if (!res.writableFinished && !drop) lastCancelAt = performance.now(); });
    res.writeHead(200, { 'content-type': 'audio/pcm', 'transfer-encoding': 'chunked' });
    const audio = toneBytes(countWords(input), PCM_RATE);
    // Odd-sized chunks: a sample split across two reads must survive.
    const chunk = 4801;
    for (let at = 0, n = 0; at < audio.length; at += chunk, n++) {
      if (res.destroyed) return;
      res.write(audio.subarray(at, at + chunk));
      if (drop && n === 1) { await sleep(5); res.socket?.destroy(); return; }
      await sleep(8);
    }
    res.end();
  };

  const transcribe = async (req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer) => {
    sttKey = req.headers.authorization?.replace(/^Bearer /, '');
    if (!admit(req, res)) return;
    const ct = String(req.headers['content-type'] ?? '');
    if (!ct.startsWith('multipart/form-data')) return apiError(res, 400, "Invalid Content-Type header (expected multipart/form-data)", 'invalid_request_error', null);
    let form: FormData;
    try { form = await new Response(new Uint8Array(raw), { headers: { 'content-type': ct } }).formData(); } catch { return apiError(res, 400, 'Could not parse multipart form', 'invalid_request_error', null); }
    const fields: Record<string, string[]> = {};
    let file: File | undefined;
    for (const [k, v] of form.entries()) {
      if (typeof v === 'string') (fields[k] ??= []).push(v);
      else if (k === 'file') file = v;
    }
    const one = (k: string) => fields[k]?.[0];
    const model = one('model');
    if (!file) return apiError(res, 400, "Missing required parameter: 'file'.", 'invalid_request_error', null, 'file');
    if (!model || !TRANSCRIBE_MODELS.includes(model)) return apiError(res, 400, `Invalid model: ${String(model)}`, 'invalid_request_error', 'invalid_value', 'model');
    if (!/\.(flac|mp3|mp4|mpeg|mpga|m4a|ogg|wav|webm)$/i.test(file.name)) return apiError(res, 400, 'Invalid file format. Supported formats: flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, wav, webm', 'invalid_request_error', null);
    const format = one('response_format') ?? 'json';
    const isGpt = model.startsWith('gpt-4o');
    if (isGpt && !['json', 'text'].includes(format)) return apiError(res, 400, `response_format '${format}' is not compatible with model '${model}'. Use 'json' or 'text'.`, 'invalid_request_error', 'unsupported_value', 'response_format');
    if (fields['timestamp_granularities[]'] && format !== 'verbose_json') return apiError(res, 400, 'timestamp_granularities requires response_format=verbose_json', 'invalid_request_error', null, 'timestamp_granularities');
    const language = one('language');
    if (language !== undefined && !/^[a-z]{2,3}$/.test(language)) return apiError(res, 400, `Invalid language '${language}'. Language parameter must be specified in ISO-639-1 format.`, 'invalid_request_error', 'invalid_language_format', 'language');
    let wav;
    try { wav = decodeWav(new Uint8Array(await file.arrayBuffer())); } catch { return apiError(res, 400, 'Invalid file format.', 'invalid_request_error', null, 'file'); }
    if (wav.samples.length / wav.sampleRate < 0.1) return apiError(res, 400, 'Audio file is too short. Minimum audio length is 0.1 seconds.', 'invalid_request_error', 'audio_too_short', 'file');
    audioBytes += wav.samples.length * 2;
    transcriptions.push({ headers: req.headers, fields, fileName: file.name, sampleRate: wav.sampleRate, samples: wav.samples.length });
    if (stallStt) {
      stallStt = false;
      if (!res.destroyed) await new Promise<void>((resolve) => res.once('close', () => resolve()));
      return;
    }

    // The fake "hears" an utterance when some 10 ms of the file is loud; silence transcribes to nothing.
    const drop = dropStt;
    dropStt = false;
    // A dropped answer leaves the scripted text for the retry.
    const text = !hasSpeech(wav.samples, wav.sampleRate) ? '' : drop ? script.peek() : script.next();
    const durationS = wav.samples.length / wav.sampleRate;
    gracefulClose = false;
    res.on('close', () => { gracefulClose = res.writableFinished && !drop; });

    if (isGpt && one('stream') === 'true') {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
      const words = text.split(' ').filter(Boolean);
      for (let i = 0; i < words.length; i++) {
        res.write(`data: ${JSON.stringify({ type: 'transcript.text.delta', delta: (i ? ' ' : '') + words[i], logprobs: null })}\n\n`);
        if (drop) { await sleep(5); res.socket?.destroy(); return; }
        await sleep(3);
      }
      res.end(`data: ${JSON.stringify({ type: 'transcript.text.done', text, usage: { type: 'tokens', input_tokens: 20, output_tokens: words.length, total_tokens: 20 + words.length } })}\n\n`);
      return;
    }
    if (drop) { res.socket?.destroy(); return; }
    if (format === 'text') { res.writeHead(200, { 'content-type': 'text/plain' }); res.end(text); return; }
    if (format === 'verbose_json') {
      const ws = text.split(' ').filter(Boolean);
      const each = durationS / Math.max(1, ws.length);
      const words = fields['timestamp_granularities[]']?.includes('word')
        ? ws.map((word, i) => ({ word, start: +(i * each).toFixed(2), end: +((i + 1) * each).toFixed(2) })) : undefined;
      return json(res, 200, { task: 'transcribe', language: 'english', duration: durationS, text, ...(words ? { words } : {}), segments: [] });
    }
    json(res, 200, isGpt ? { text, usage: { type: 'tokens', input_tokens: 20, output_tokens: 5, total_tokens: 25 } } : { text });
  };

  const server = await startFakeServer({
    http: async (req, res, body) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method === 'POST' && path === '/audio/speech') return speech(req, res, body);
      if (req.method === 'POST' && path === '/audio/transcriptions') return transcribe(req, res, body);
      const m = /^\/models\/([^/]+)$/.exec(path);
      if (req.method === 'GET' && m) {
        modelChecks++;
        sttKey = req.headers.authorization?.replace(/^Bearer /, '');
        if (!admit(req, res)) return;
        const id = decodeURIComponent(m[1]);
        if (!TRANSCRIBE_MODELS.includes(id) && !SPEECH_MODELS.includes(id)) return apiError(res, 404, `The model '${id}' does not exist`, 'invalid_request_error', 'model_not_found', 'model');
        return json(res, 200, { id, object: 'model', created: 1_700_000_000, owned_by: 'system' });
      }
      apiError(res, 404, `Invalid URL (${req.method} ${path})`, 'invalid_request_error', null);
    },
  });

  return {
    url: server.url,
    close: () => server.close(),
    resetReceivedText: () => { receivedText = []; },
    tts: {
      failNext: (m) => { failNext = m; },
      delayNextFirstByte: (ms) => { delayNext = ms; },
      dropNextMidStream: () => { dropTts = true; },
      get receivedText() { return receivedText.join(' '); },
      get lastCancelAt() { return lastCancelAt; },
      get lastKey() { return ttsKey; },
      get connections() { return ttsRequests; },
      get speechRequests() { return speechRequests; },
      close: () => server.close(),
    },
    stt: {
      script: (...t) => script.add(...t),
      failNext: (m) => { failNext = m; },
      dropDuringNextUtterance: () => { dropStt = true; },
      stallNextTranscription: () => { stallStt = true; },
      // A session starts with its model check (keep-alive makes TCP connections meaningless to count).
      get connections() { return modelChecks; },
      get gracefulClose() { return gracefulClose; },
      get audioBytes() { return audioBytes; },
      get lastKey() { return sttKey; },
      get transcriptions() { return transcriptions; },
      get modelChecks() { return modelChecks; },
      close: () => server.close(),
    },
  };
}

function hasSpeech(samples: Int16Array, rate: number): boolean {
  const win = Math.round(rate / 100);
  for (let i = 0; i + win <= samples.length; i += win) {
    let sum = 0;
    for (let j = i; j < i + win; j++) sum += samples[j] * samples[j];
    if (Math.sqrt(sum / win) >= SPEECH_RMS) return true;
  }
  return false;
}
