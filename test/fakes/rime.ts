/**
 * A fake of Rime's JSON WebSocket (/ws3), per its docs: Bearer auth and the synthesis settings as query
 * parameters on the upgrade (a bad key or setting is refused there with an HTTP status), then
 * {text} / {operation: flush|clear|eos} in and {type:'chunk', data}, {type:'timestamps',
 * word_timestamps:{words,start,end}} (seconds from the start of that synthesis) and {type:'done'} out;
 * eos closes the socket (1000) once everything queued is voiced. segment=never synthesizes only on
 * flush; bySentence (the default) at . ? !. Each word is WORD_MS of PCM16 tone at samplingRate.
 */
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { WebSocket } from 'ws';
import type { FakeTtsControls } from '../providers/contract/harness.js';
import { WORD_MS } from '../providers/contract/harness.js';
import { rejectUpgrade, sleep, startFakeServer, type FailureMode } from './server.js';
import { toneBytes } from './tts.js';

const MODELS = ['mist', 'mistv2', 'mistv3', 'arcana', 'arcanav2', 'coda'];

export interface RimeFake extends FakeTtsControls {
  url: string;
  /** Query parameters of every accepted socket. */
  readonly sockets: URLSearchParams[];
  /** Every JSON message received, in order, over all sockets. */
  readonly messages: Record<string, unknown>[];
  resetReceivedText(): void;
}

export async function startRimeFake(validKey: string): Promise<RimeFake> {
  let failNext: FailureMode | undefined;
  let delayNext = 0;
  let dropNext = false;
  let receivedText: string[] = [];
  let lastCancelAt: number | undefined;
  let lastKey: string | undefined;
  let connections = 0;
  const sockets: URLSearchParams[] = [];
  const messages: Record<string, unknown>[] = [];

  const upgrade = (req: http.IncomingMessage, socket: import('node:stream').Duplex): boolean => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/ws3') return rejectUpgrade(socket, 404, { message: 'not found' });
    connections++;
    const auth = String(req.headers.authorization ?? '');
    lastKey = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    if (lastKey !== validKey) return rejectUpgrade(socket, 401, { message: 'Unauthorized: invalid or missing API key' });
    const mode = failNext;
    failNext = undefined;
    if (mode === 'auth') return rejectUpgrade(socket, 401, { message: 'Unauthorized' });
    if (mode === 'quota') return rejectUpgrade(socket, 429, { message: 'Too many requests: rate limit or usage quota exceeded' });
    if (mode === 'unavailable') return rejectUpgrade(socket, 503, { message: 'Service unavailable' });
    const q = url.searchParams;
    const bad = validate(q);
    if (bad) return rejectUpgrade(socket, 400, { message: bad });
    sockets.push(q);
    return true;
  };

  const connection = (ws: WebSocket, req: http.IncomingMessage) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const rate = Number(q.get('samplingRate') ?? 24000);
    const segment = q.get('segment') ?? 'bySentence';
    let buffer = '';
    const queue: string[] = [];
    let busy = false;
    let eos = false;
    let generation = 0; // bumped by clear: stops what is being voiced
    let finished = false;
    const drop = dropNext; dropNext = false;
    let delay = delayNext; delayNext = 0;
    let sentChunks = 0;

    const send = (m: object) => { if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m)); };
    const pump = async () => {
      if (busy) return;
      busy = true;
      while (queue.length) {
        const gen = generation;
        const text = queue.shift()!;
        const words = text.split(/\s+/).filter(Boolean);
        if (delay) { await sleep(delay); delay = 0; }
        const audio = toneBytes(words.length, rate);
        send({ type: 'timestamps', word_timestamps: { words, start: words.map((_, i) => (i * WORD_MS) / 1000), end: words.map((_, i) => ((i + 1) * WORD_MS) / 1000) }, contextId: null });
        const step = Math.round((WORD_MS * rate) / 1000) * 2 + 1; // odd: samples split across chunks
        for (let at = 0; at < audio.length; at += step) {
          if (gen !== generation || ws.readyState !== ws.OPEN) break;
          send({ type: 'chunk', data: audio.subarray(at, at + step).toString('base64'), contextId: null });
          if (drop && ++sentChunks === 2) { await sleep(5); ws.terminate(); return; }
          await sleep(8);
        }
        if (gen === generation) send({ type: 'done', contextId: null });
      }
      busy = false;
      if (eos && !finished) { finished = true; ws.close(1000); }
    };
    const synthesize = () => {
      if (buffer.trim()) queue.push(buffer);
      buffer = '';
      void pump();
    };

    ws.on('message', (data, isBinary) => {
      let m: Record<string, unknown>;
      try {
        if (isBinary) throw new Error('binary');
        m = JSON.parse(data.toString()) as Record<string, unknown>;
      } catch {
        send({ type: 'error', message: 'Invalid message: expected a JSON object' });
        return;
      }
      messages.push(m);
      if (typeof m.text === 'string') {
        receivedText.push(m.text);
        buffer += m.text;
        if (segment === 'immediate' || (segment === 'bySentence' && /[.?!]\s*$/.test(buffer))) synthesize();
      } else if (m.operation === 'flush') synthesize();
      else if (m.operation === 'clear') { buffer = ''; queue.length = 0; generation++; lastCancelAt = performance.now(); }
      else if (m.operation === 'eos') { eos = true; synthesize(); }
      else send({ type: 'error', message: `Unknown message: ${JSON.stringify(m).slice(0, 100)}` });
    });
    ws.on('close', () => {
      // The client hung up while something was still to be voiced: that is a cancel.
      if (!finished && !drop && (busy || queue.length || buffer)) lastCancelAt = performance.now();
    });
  };

  const server = await startFakeServer({ upgrade, connection });
  return {
    url: server.url,
    close: () => server.close(),
    failNext: (m) => { failNext = m; },
    delayNextFirstByte: (ms) => { delayNext = ms; },
    dropNextMidStream: () => { dropNext = true; },
    resetReceivedText: () => { receivedText = []; },
    get receivedText() { return receivedText.join(''); },
    get lastCancelAt() { return lastCancelAt; },
    get lastKey() { return lastKey; },
    get connections() { return connections; },
    get sockets() { return sockets; },
    get messages() { return messages; },
  };
}

/** The documented query parameters; the first violation. */
function validate(q: URLSearchParams): string | undefined {
  if (!q.get('speaker')) return 'speaker is required';
  const model = q.get('modelId');
  if (model !== null && !MODELS.includes(model)) return `modelId must be one of ${MODELS.join(', ')}`;
  const format = q.get('audioFormat');
  if (format !== null && !['mp3', 'mulaw', 'pcm'].includes(format)) return 'audioFormat must be one of mp3, mulaw, pcm';
  if (format !== 'pcm') return 'the fake serves audioFormat=pcm only';
  const rate = q.get('samplingRate');
  if (rate !== null && (!/^\d+$/.test(rate) || +rate < 4000 || +rate > 48000)) return 'samplingRate must be an integer from 4000 to 48000';
  const segment = q.get('segment');
  if (segment !== null && !['never', 'bySentence', 'immediate'].includes(segment)) return 'segment must be one of never, bySentence, immediate';
  const speed = q.get('speedAlpha');
  if (speed !== null && !(Number(speed) > 0)) return 'speedAlpha must be greater than 0';
  if (speed !== null && model !== null && !model.startsWith('mist')) return `speedAlpha is not supported by ${model}`;
  return undefined;
}
