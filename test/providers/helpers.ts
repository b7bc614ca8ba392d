/**
 * Helpers the vendor tests, the contract suites and the end-to-end test share: feeding audio to an STT
 * session, collecting what sessions and streams emit, waiting on a condition, and catching typed failures.
 */
import type { LlmChunk, SttEvent, SttSession, TtsEvent, TtsSession } from '../../src/engine/types.js';
import { ProviderError } from '../../src/engine/types.js';
import { toFrames } from '../fakes/speech.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A signal nobody aborts. */
export const never = () => new AbortController().signal;

/**
 * Feeds audio in 20 ms frames on the session's timeline from `startMs`, one frame every `paceMs` (as a
 * call would, faster than real time), so vendor timing logic works. Returns where the audio ended.
 */
export async function feed(session: Pick<SttSession, 'push'>, samples: Int16Array, rate: number, startMs = 0, paceMs = 2): Promise<number> {
  for (const f of toFrames(samples, rate, startMs)) {
    session.push(f);
    if (paceMs) await sleep(paceMs);
  }
  return startMs + (samples.length * 1000) / rate;
}

/** Every event the session emits from now on, as it arrives. */
export function collect(session: SttSession): SttEvent[] {
  const events: SttEvent[] = [];
  session.on((e) => events.push(e));
  return events;
}

export { until } from '../helpers/until.js';

export type Final = Extract<SttEvent, { type: 'final' }>;
export const finals = (events: SttEvent[]) => events.filter((e): e is Final => e.type === 'final');
export const finalText = (events: SttEvent[]) => finals(events).map((e) => e.text).join(' ').replace(/\s+/g, ' ').trim();

/** Vendors punctuate and capitalise; tests that compare what was said compare words. */
export const normWords = (s: string) => s.toLowerCase().replace(/[^\p{L}\p{N}\s']/gu, ' ').split(/\s+/).filter(Boolean);

/** Everything a stream yields (an LLM stream, a TTS session's events), or its failure. */
export async function drain<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of source) out.push(x);
  return out;
}

/** Pushes `pieces` into an open TTS session, flushes, and returns all it then emits. */
export function say(session: TtsSession, ...pieces: string[]): Promise<TtsEvent[]> {
  const events = drain(session.events());
  for (const p of pieces) session.pushText(p);
  session.flush();
  return events;
}

export const samplesOf = (events: TtsEvent[]) => events.reduce((n, e) => n + (e.type === 'audio' ? e.samples.length : 0), 0);
export const wordsOf = (events: TtsEvent[]) => events.flatMap((e) => (e.type === 'words' ? e.words : []));
export const textOf = (chunks: LlmChunk[]) => chunks.filter((c) => c.type === 'text').map((c) => (c as { text: string }).text).join('');

/** The ProviderError `p` fails with; the test fails if `p` succeeds or fails with anything else. */
export async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e);
  if (!(err instanceof ProviderError)) throw new Error(`expected a ProviderError, got ${String(err)}`);
  return err;
}
