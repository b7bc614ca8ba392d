/**
 * An agent's `llm_fallback`: when the primary model fails before saying anything (any ProviderError,
 * a first-token timeout included), the same request goes to the fallback within the same stream() call,
 * so the caller only hears a slightly later answer. After a primary failure the next requests go to
 * the fallback first for `stickyMs`, then the primary gets another chance — a mid-call switch instead of
 * paying the primary's timeout on every turn. Once any chunk was yielded a failure is rethrown: those
 * words were already spoken and cannot be taken back.
 */
import { ProviderError, type LlmChunk, type LlmRequest } from '../../engine/types.js';
import type { LlmProvider } from '../types.js';

export interface FallbackOptions {
  /** No first chunk from the primary within this long counts as a failure (the primary's own deadline still applies). */
  firstTokenTimeoutMs?: number;
  /** How long requests go to the fallback first after a primary failure. Default 60 s. */
  stickyMs?: number;
  /** Clock for the sticky window (tests). */
  now?: () => number;
}

const DEFAULT_STICKY_MS = 60_000;

export function withFallback(primary: LlmProvider, fallback: LlmProvider, opts: FallbackOptions = {}): LlmProvider {
  return new FallbackLlm(primary, fallback, opts);
}

class FallbackLlm implements LlmProvider {
  readonly name: string;
  private primaryDownUntil = -Infinity;
  private readonly now: () => number;

  constructor(private readonly primary: LlmProvider, private readonly fallback: LlmProvider, private readonly opts: FallbackOptions) {
    this.name = `${primary.name}→${fallback.name}`;
    this.now = opts.now ?? (() => performance.now());
  }

  async *stream(request: LlmRequest, signal: AbortSignal): AsyncIterable<LlmChunk> {
    if (signal.aborted) throw signal.reason;
    const order = this.now() < this.primaryDownUntil ? [this.fallback, this.primary] : [this.primary, this.fallback];
    let failure: ProviderError | undefined;
    for (const llm of order) {
      const isPrimary = llm === this.primary;
      let yielded = false;
      try {
        for await (const chunk of attempt(llm, isPrimary ? request : forFallback(request), signal, isPrimary ? this.opts.firstTokenTimeoutMs : undefined)) {
          yielded = true;
          yield chunk;
        }
        if (isPrimary) this.primaryDownUntil = -Infinity;
        return;
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (!(err instanceof ProviderError)) throw err;
        if (isPrimary) this.primaryDownUntil = this.now() + (this.opts.stickyMs ?? DEFAULT_STICKY_MS);
        if (yielded) throw err;
        failure = err;
      }
    }
    throw failure;
  }
}

/** The request's model names the primary's model; the fallback answers with its own. */
function forFallback(request: LlmRequest): LlmRequest {
  const { model: _primaryModel, ...rest } = request;
  return rest;
}

/** One provider's stream with its own abort, so a timed-out or abandoned attempt closes its upstream request. */
async function* attempt(llm: LlmProvider, request: LlmRequest, signal: AbortSignal, firstTokenTimeoutMs?: number): AsyncIterable<LlmChunk> {
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const it = llm.stream(request, ac.signal)[Symbol.asyncIterator]();
  try {
    const first = await firstChunk(it, llm.name, firstTokenTimeoutMs);
    if (first.done) return;
    yield first.value;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    ac.abort();
    void it.return?.(undefined)?.catch(() => {});
  }
}

/** The attempt's first chunk, or a timeout; the caller's `finally` then aborts the abandoned attempt. */
async function firstChunk(it: AsyncIterator<LlmChunk>, provider: string, ms?: number): Promise<IteratorResult<LlmChunk>> {
  if (!ms) return it.next();
  const next = it.next();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProviderError('timeout', `no first token within ${ms} ms`, provider)), ms);
  });
  try {
    return await Promise.race([next, deadline]);
  } catch (err) {
    // The abandoned attempt rejects once aborted; nobody awaits it any more.
    next.catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
