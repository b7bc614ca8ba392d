/**
 * OpenAI transcription, one request per spoken segment: OpenAI's file transcription API has no
 * streaming input, so the caller's audio is cut into utterances here (the engine's energy VAD), each
 * utterance is sent as a WAV, and the answer becomes interim/final events on the session's timeline.
 *
 * Follows OpenAI's API reference "Create transcription" (POST /audio/transcriptions, multipart: file,
 * model, language in ISO-639-1, prompt, response_format, stream, timestamp_granularities[];
 * https://platform.openai.com/docs/api-reference/audio/createTranscription), its "Streaming events"
 * (`transcript.text.delta` / `transcript.text.done` as server-sent events, gpt-4o-* models only), the
 * "Speech to text" guide (prompting with the words to expect; whisper-1 word timestamps via
 * verbose_json), and "Retrieve model" (GET /models/{model}), used at open so a bad key or model fails
 * during call setup rather than on the caller's first sentence, and so the first segment finds a warm
 * keep-alive connection.
 */
import type { AudioFrame } from '../../engine/audio/frame.js';
import { encodeWav } from '../../engine/audio/wav.js';
import { ProviderError, type SttEvent, type SttSession, type WordTiming } from '../../engine/types.js';
import { EnergyVad } from '../../engine/vad/energy.js';
import type { VadEvent } from '../../engine/vad/types.js';
import { AsyncQueue } from '../asyncQueue.js';
import { asProviderError, isAbort } from '../errors.js';
import { streamBytes, vendorFetch } from '../http.js';
import { Listeners, raceAbort } from '../events.js';
import { openAIHeaders } from '../tts/openai.js';
import type { SttConfig as BaseSttConfig, SttOpenOptions, SttProvider, VendorAccess } from '../types.js';

const PROVIDER = 'openai';
export const DEFAULT_STT_MODEL = 'gpt-4o-transcribe';
/** Audio kept before a detected onset: the VAD confirms speech late, the words' start must not be cut. */
const PREROLL_MS = 500;
/** A monologue is cut here so the caller does not wait for one huge request at the end. */
const MAX_SEGMENT_MS = 30_000;
/** How long close() waits for the transcripts of audio already spoken; whatever comes later is dropped. */
const CLOSE_WAIT_MS = 8000;
/** The energy VAD's noise floor starts at the first frame; seeding it with a quiet line's level lets it
 * hear a caller who speaks from the first frame. */
const SEED_LEVEL = 33; // ≈ -60 dBFS

export interface SttConfig extends BaseSttConfig {
  /** How long close() waits for the transcripts of audio already spoken (default 8 s). */
  closeWaitMs?: number;
}

export class OpenAIStt implements SttProvider {
  readonly name = PROVIDER;
  private warm?: Promise<void>;

  constructor(private readonly access: VendorAccess, private readonly cfg: SttConfig) {}

  get model(): string { return this.cfg.model ?? DEFAULT_STT_MODEL; }

  /** Checks the key and model now; the first open adopts the answer (and the open connection). */
  preconnect(): void {
    this.warm = this.checkModel();
    this.warm.catch(() => {});
  }

  private async checkModel(signal?: AbortSignal): Promise<void> {
    const res = await vendorFetch({
      provider: PROVIDER, method: 'GET', url: `${this.access.baseUrl}/models/${encodeURIComponent(this.model)}`,
      headers: openAIHeaders(this.access), signal: signal ?? new AbortController().signal, firstByteTimeoutMs: 5000,
    });
    await res.arrayBuffer(); // read to the end so the socket goes back to the keep-alive pool
  }

  async open(opts: SttOpenOptions, signal?: AbortSignal): Promise<SttSession> {
    if (signal?.aborted) throw signal.reason;
    const warm = this.warm;
    this.warm = undefined;
    let ok = false;
    if (warm) ok = await raceAbort(warm, signal).then(() => true, (err) => { if (signal?.aborted) throw err; return false; });
    if (!ok) await this.checkModel(signal);
    return new OpenAISttSession(this.access, {
      model: this.model,
      sampleRate: opts.sampleRate,
      language: isoLanguage(opts.language || this.cfg.language),
      prompt: promptFor(opts.keywords ?? this.cfg.keywords, this.cfg.prompt),
      closeWaitMs: this.cfg.closeWaitMs,
    });
  }
}

export function createOpenAIStt(access: VendorAccess, cfg: SttConfig): SttProvider {
  return new OpenAIStt(access, cfg);
}

/** 'en-US' → 'en'; anything that is not an ISO-639 code ('multi', 'auto') lets OpenAI detect. */
export function isoLanguage(language: string | undefined): string | undefined {
  const primary = language?.split(/[-_]/)[0]?.toLowerCase();
  return primary && /^[a-z]{2,3}$/.test(primary) ? primary : undefined;
}

/** OpenAI has no boost weights; the guide's way to expect words is naming them in the prompt. */
export function promptFor(keywords: Record<string, number> | undefined, extra: unknown): string | undefined {
  const words = Object.entries(keywords ?? {}).filter(([, boost]) => !(boost < 0)).map(([w]) => w.trim()).filter(Boolean);
  const parts = [typeof extra === 'string' ? extra.trim() : '', words.length ? `Vocabulary: ${words.join(', ')}.` : ''].filter(Boolean);
  return parts.length ? parts.join(' ') : undefined;
}

interface SessionConfig { model: string; sampleRate: number; language?: string; prompt?: string; closeWaitMs?: number }
interface Segment { samples: Int16Array; startMs: number; endMs: number; endOfTurn: boolean }
interface Chunk { startMs: number; samples: Int16Array }

export class OpenAISttSession implements SttSession {
  private readonly listeners = new Listeners<SttEvent>();
  private readonly vad: EnergyVad;
  private readonly controller = new AbortController();
  private rate: number;
  /** Session ms of audio pushed so far (the session's timeline). */
  private pushedMs = 0;
  private audio: Chunk[] = [];
  private segmentStartMs: number | null = null;
  /** Segments' results, released in order. */
  private chain: Promise<void> = Promise.resolve();
  private closing = false;
  /** Set when close() resolves: the engine has moved on, so nothing is emitted after that. */
  private closed = false;

  constructor(private readonly access: VendorAccess, private readonly cfg: SessionConfig) {
    this.rate = cfg.sampleRate;
    this.vad = new EnergyVad({ sampleRate: cfg.sampleRate });
    const seed = new Int16Array(Math.round(cfg.sampleRate / 50)).fill(SEED_LEVEL);
    this.vad.process({ samples: seed, sampleRate: cfg.sampleRate, timestampMs: -20 });
  }

  on(listener: (e: SttEvent) => void): () => void {
    return this.listeners.on(listener);
  }

  private emit(e: SttEvent): void {
    if (!this.closed) this.listeners.emit(e);
  }

  push(frame: AudioFrame): void {
    if (this.closing || frame.samples.length === 0) return;
    if (frame.sampleRate !== this.rate) return; // the session's rate is fixed at open
    const startMs = this.pushedMs;
    this.pushedMs += (frame.samples.length * 1000) / this.rate;
    this.audio.push({ startMs, samples: frame.samples.slice() });
    for (const e of this.vad.process({ samples: frame.samples, sampleRate: this.rate, timestampMs: startMs })) this.onVad(e);
    if (this.segmentStartMs === null) {
      while (this.audio.length > 1 && this.audio[1].startMs < this.pushedMs - PREROLL_MS) this.audio.shift();
    } else if (this.pushedMs - this.segmentStartMs >= MAX_SEGMENT_MS) {
      this.cut(this.pushedMs, false);
      this.segmentStartMs = this.pushedMs;
    }
  }

  private onVad(e: VadEvent): void {
    if (e.type === 'speech_start') {
      const atMs = Math.max(0, e.atMs);
      this.segmentStartMs = atMs;
      this.emit({ type: 'speech_started', atMs });
    } else if (this.segmentStartMs !== null) {
      this.emit({ type: 'speech_ended', atMs: e.atMs });
      this.cut(e.atMs, true);
      this.segmentStartMs = null;
    }
  }

  /** Sends the audio from the segment's start to `endMs` for transcription. */
  private cut(endMs: number, endOfTurn: boolean): void {
    const startMs = this.segmentStartMs ?? endMs;
    const samples = sliceAudio(this.audio, startMs, endMs, this.rate);
    if (samples.length < this.rate / 10) return; // under 0.1 s: OpenAI refuses it, and it is no word anyway
    this.submit({ samples, startMs, endMs, endOfTurn });
  }

  /** Starts the request now; its events wait for the previous segment's. */
  private submit(seg: Segment): void {
    const events = new AsyncQueue<SttEvent>();
    void this.transcribe(seg, events).then(() => events.end(), (err) => events.fail(err));
    this.chain = this.chain.then(async () => {
      try {
        for await (const e of events) this.emit(e);
      } catch (err) {
        if (isAbort(err, this.controller.signal)) return;
        this.emit({ type: 'error', error: asProviderError(PROVIDER, err) });
      }
    });
  }

  /** One retry on a dropped connection: the segment is in memory and transcribing it twice is harmless. */
  private async transcribe(seg: Segment, out: AsyncQueue<SttEvent>): Promise<void> {
    try {
      await this.request(seg, out);
    } catch (err) {
      if (this.controller.signal.aborted || !(err instanceof ProviderError) || err.kind !== 'network') throw err;
      await this.request(seg, out);
    }
  }

  private async request(seg: Segment, out: AsyncQueue<SttEvent>): Promise<void> {
    const streaming = this.cfg.model.startsWith('gpt-');
    const form = new FormData();
    form.append('file', new Blob([encodeWav(seg.samples, this.rate) as Uint8Array<ArrayBuffer>], { type: 'audio/wav' }), 'segment.wav');
    form.append('model', this.cfg.model);
    if (this.cfg.language) form.append('language', this.cfg.language);
    if (this.cfg.prompt) form.append('prompt', this.cfg.prompt);
    if (streaming) {
      form.append('response_format', 'json');
      form.append('stream', 'true');
    } else {
      form.append('response_format', 'verbose_json');
      form.append('timestamp_granularities[]', 'word');
    }
    const req = { provider: PROVIDER, url: `${this.access.baseUrl}/audio/transcriptions`, headers: openAIHeaders(this.access), body: form, signal: this.controller.signal };
    const final = (text: string, words?: WordTiming[]) => {
      if (text.trim()) out.push({ type: 'final', text: text.trim(), startMs: seg.startMs, endMs: seg.endMs, endOfTurn: seg.endOfTurn, words });
    };

    if (!streaming) {
      const res = await vendorFetch(req);
      const body = await res.json().catch(() => { throw new ProviderError('protocol', 'transcription answer is not JSON', PROVIDER); }) as {
        text?: unknown; words?: { word: string; start: number; end: number }[];
      };
      if (typeof body.text !== 'string') throw new ProviderError('protocol', 'transcription answer has no text', PROVIDER);
      final(body.text, body.words?.map((w) => ({ word: w.word, startMs: seg.startMs + w.start * 1000, endMs: seg.startMs + w.end * 1000 })));
      return;
    }

    let text = '';
    for await (const data of serverSentEvents(streamBytes(req))) {
      let event: { type?: string; delta?: string; text?: string };
      try { event = JSON.parse(data) as typeof event; } catch { throw new ProviderError('protocol', 'malformed transcription event', PROVIDER); }
      if (event.type === 'transcript.text.delta' && typeof event.delta === 'string') {
        text += event.delta;
        if (text.trim()) out.push({ type: 'interim', text: text.trim(), atMs: seg.endMs });
      } else if (event.type === 'transcript.text.done') {
        final(typeof event.text === 'string' ? event.text : text);
        return;
      } else if (event.type === 'error') {
        throw new ProviderError('protocol', `transcription failed: ${JSON.stringify(event).slice(0, 200)}`, PROVIDER);
      }
    }
    throw new ProviderError('network', 'transcription stream ended before transcript.text.done', PROVIDER);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.segmentStartMs !== null) {
      // Still talking: what was said so far is transcribed before the session ends.
      this.emit({ type: 'speech_ended', atMs: this.pushedMs });
      this.cut(this.pushedMs, true);
      this.segmentStartMs = null;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.chain, new Promise<void>((r) => { timer = setTimeout(r, this.cfg.closeWaitMs ?? CLOSE_WAIT_MS); })]);
    clearTimeout(timer);
    // Results still on their way (a segment stuck behind a slow one, a request cut by the abort) are dropped.
    this.closed = true;
    this.controller.abort(new Error('transcriber closed'));
    this.audio = [];
  }
}

/** Samples of [fromMs, toMs) out of consecutive chunks. */
export function sliceAudio(chunks: Chunk[], fromMs: number, toMs: number, rate: number): Int16Array {
  const parts: Int16Array[] = [];
  for (const c of chunks) {
    const endMs = c.startMs + (c.samples.length * 1000) / rate;
    if (endMs <= fromMs || c.startMs >= toMs) continue;
    const a = Math.max(0, Math.round(((fromMs - c.startMs) * rate) / 1000));
    const b = Math.min(c.samples.length, Math.round(((toMs - c.startMs) * rate) / 1000));
    if (b > a) parts.push(c.samples.subarray(a, b));
  }
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** The `data` payloads of a server-sent event stream (events split anywhere across chunks). */
export async function* serverSentEvents(bytes: AsyncIterable<Uint8Array>): AsyncIterable<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  for await (const chunk of bytes) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      if (line === '') {
        if (data.length) { const d = data.join('\n'); data = []; if (d !== '[DONE]') yield d; }
      } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
  }
  if (data.length) { const d = data.join('\n'); if (d !== '[DONE]') yield d; }
}
