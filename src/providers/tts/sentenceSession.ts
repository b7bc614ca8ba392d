/**
 * Text-to-speech for vendors that synthesize one request at a time over HTTP (OpenAI speech, Rime,
 * PlayHT, Azure): the streamed text is cut into sentences, each sentence becomes one streamed request,
 * the next sentence's request starts while the current one plays (so there is no gap between them),
 * and audio comes out in order, converted to the caller's rate.
 */
import type { TtsEvent, TtsSession } from '../../engine/types.js';
import { AsyncQueue } from '../asyncQueue.js';
import { asProviderError, isAbort } from '../errors.js';
import { onAbort } from '../events.js';
import { PcmAssembler, RateConverter } from '../pcm.js';

export interface SentenceSynthesizer {
  readonly provider: string;
  /** The rate of the PCM16 the vendor streams back for this session. */
  readonly vendorRate: number;
  /** Streams little-endian PCM16 bytes for `text`; stops when `signal` aborts. */
  synthesize(text: string, signal: AbortSignal): AsyncIterable<Uint8Array>;
}

/** A sentence ends at . ! ? ; or a newline followed by space; short fragments wait for more. */
const SENTENCE_END = /[.!?;:…。！？](?=\s)|\n/g;
const MIN_SENTENCE_CHARS = 12;

/** The longest complete-sentence prefix of `text` worth sending now (at least MIN_SENTENCE_CHARS). */
export function takeSentences(text: string): [string, string] {
  let cut = -1;
  for (const m of text.matchAll(SENTENCE_END)) {
    const end = m.index + m[0].length;
    if (end >= MIN_SENTENCE_CHARS) { cut = end; break; }
  }
  if (cut < 0) return ['', text];
  return [text.slice(0, cut), text.slice(cut)];
}

/** Appends `text` to `buffer`, hands each sentence now complete to `each`, and returns the rest. */
export function feedSentences(buffer: string, text: string, each: (sentence: string) => void): string {
  let rest = buffer + text;
  for (;;) {
    const [sentence, after] = takeSentences(rest);
    if (!sentence) return rest;
    rest = after;
    each(sentence);
  }
}

export class SentenceTtsSession implements TtsSession {
  private buffer = '';
  private readonly out = new AsyncQueue<TtsEvent>();
  private readonly controller = new AbortController();
  /** Requests in order; each resolves to its audio chunks as they arrive. */
  private chain: Promise<void> = Promise.resolve();
  private readonly rate: RateConverter;
  private flushed = false;
  private readonly offAbort: () => void;

  constructor(private readonly synth: SentenceSynthesizer, sampleRate: number, signal: AbortSignal) {
    this.rate = new RateConverter(synth.vendorRate, sampleRate);
    this.offAbort = onAbort(signal, () => this.cancel());
  }

  pushText(text: string): void {
    if (this.flushed || this.controller.signal.aborted) return;
    this.buffer = feedSentences(this.buffer, text, (s) => this.enqueue(s));
  }

  flush(): void {
    if (this.flushed) return;
    this.flushed = true;
    if (this.buffer.trim()) this.enqueue(this.buffer);
    this.buffer = '';
    this.chain = this.chain.then(async () => {
      const tail = await this.rate.flush();
      if (tail.length) this.out.push({ type: 'audio', samples: tail });
      this.out.push({ type: 'done' });
      this.out.end();
    }, () => {}).finally(() => {
      this.rate.destroy();
      this.offAbort();
    });
  }

  /** Starts the request at once (prefetch) but releases its audio only after the previous sentence's. */
  private enqueue(sentence: string): void {
    const text = sentence.trim();
    if (!text) return;
    const chunks = new AsyncQueue<Uint8Array>();
    const signal = this.controller.signal;
    void (async () => {
      try {
        for await (const c of this.synth.synthesize(text, signal)) chunks.push(c);
        chunks.end();
      } catch (err) {
        chunks.fail(err);
      }
    })();
    const previous = this.chain;
    this.chain = previous.then(async () => {
      const pcm = new PcmAssembler();
      try {
        for await (const bytes of chunks) {
          if (signal.aborted) return;
          const samples = await this.rate.process(pcm.push(bytes));
          if (samples.length) this.out.push({ type: 'audio', samples });
        }
      } catch (err) {
        if (isAbort(err, signal)) return;
        this.out.fail(asProviderError(this.synth.provider, err));
        throw err;
      }
    });
    this.chain.catch(() => {});
  }

  events(): AsyncIterable<TtsEvent> {
    return this.out;
  }

  cancel(): void {
    if (this.controller.signal.aborted) return;
    this.controller.abort();
    this.offAbort?.(); // unset when the signal was already aborted at construction
    this.out.end();
    this.rate.destroy();
  }
}
